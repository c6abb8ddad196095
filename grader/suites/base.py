"""The machinery every hidden suite shares: checks, concepts and the property search.

A suite is a list of weighted checks for one exercise. A check calls the student's function
through the sandboxed worker (``ctx.student``), computes the expected value on this, trusted,
side (reference solution, cross-checked by an independent oracle) and raises :class:`Fail`
with a message a student understands. Property checks let hypothesis search for a failing case
and shrink it; the message then shows that smallest counterexample. What a check can end with is
in :mod:`.outcomes`, comparisons in :mod:`.compare`, descriptions of values in :mod:`.messages`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from .outcomes import Fail

if TYPE_CHECKING:
    from .context import Context


@dataclass
class Check:
    name: str
    weight: float
    #: Returns None for a pass, or the share of the points earned (0..1); raises Fail otherwise.
    run: Callable[["Context"], Optional[float]]
    #: The concept the check grades (course.yml ``concepts``); its points are shared by the concept's checks.
    concept: str = ""


@dataclass
class Suite:
    exercise_id: str
    checks: list[Check] = field(default_factory=list)

    def max_points(self, exercise: Any) -> list[float]:
        """Points of each check: its concept's points (course.yml) shared by weight, else by weight alone."""
        concepts = getattr(exercise, "concepts", None)
        if not concepts:
            total = sum(c.weight for c in self.checks)
            return [exercise.points * c.weight / total for c in self.checks]
        per_concept: dict[str, float] = {}
        for c in self.checks:
            per_concept[c.concept] = per_concept.get(c.concept, 0.0) + c.weight
        return [concepts.get(c.concept, 0.0) * c.weight / per_concept[c.concept] for c in self.checks]

    def check(self, name: str, weight: float = 1.0, concept: str = ""):
        def deco(fn: Callable[["Context"], None]):
            self.checks.append(Check(name, weight, fn, concept))
            return fn

        return deco

    def property(self, name: str, strategy: st.SearchStrategy, weight: float = 1.0, max_examples: int = 60,
                 concept: str = ""):
        """A check that searches ``strategy`` for a case the student's code gets wrong.

        The decorated function takes ``(ctx, case)`` and raises :class:`Fail` for a wrong answer.
        Grading is deterministic (``derandomize``): the same code always meets the same cases.
        """

        def deco(fn: Callable[["Context", Any], None]):
            def run(ctx: "Context") -> None:
                search_property(ctx, strategy, fn, max_examples)

            self.checks.append(Check(name, weight, run, concept))
            return fn

        return deco


def search_property(ctx: "Context", strategy: st.SearchStrategy, fn: Callable, max_examples: int) -> None:
    stopped: list[BaseException] = []

    def fails(case: Any) -> bool:
        if stopped:
            return False
        try:
            fn(ctx, case)
        except Fail:
            return True
        except Exception as exc:  # the worker stopped, a stub, or the grader's own error: stop searching
            stopped.append(exc)
            return False
        return False

    search = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    try:
        smallest = find(strategy, fails, settings=search)
    except NoSuchExample:
        smallest = None
    if stopped:
        raise stopped[0]
    if smallest is None:
        return
    try:
        fn(ctx, smallest)
    except Fail as failure:
        raise Fail(f"smallest failing case found: {failure}", expected=failure.expected, got=failure.got, inputs=failure.inputs,
                   mistakes=failure.mistakes) from None
    raise Fail("an input made your function give a wrong answer, but a second call gave the right one: is your function deterministic?")
