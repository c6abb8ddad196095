"""The machinery every hidden suite shares: checks, concepts and the property search.

A suite is a list of weighted checks for one exercise. A check calls the student's function
through the sandboxed worker (``ctx.student``), computes the expected value on this, trusted,
side (reference solution, cross-checked by an independent oracle) and raises :class:`Fail`
with a message a student understands. Property checks let hypothesis search for a failing case
and shrink it; the message then shows that smallest counterexample. What a check can end with is
in :mod:`.outcomes`, comparisons in :mod:`.compare`, descriptions of values in :mod:`.messages`.

Hypothesis costs several ms per case on this side. :func:`search_property` therefore keeps the
list of cases a passing search tried (:mod:`.case_lists`) and later runs call the student
with that list directly; the first case that fails hands over to hypothesis, which searches and
shrinks as without the list (the outcomes already seen are not asked again), and the kept failing
case is reported if hypothesis's own search does not meet it. Hypothesis's draws are seeded
(``derandomize``) but also depend on constants it collects from the modules loaded at the time,
so without a kept list the cases vary a little with what else is imported (tests, other threads);
with one, every submission meets the same cases.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from .case_lists import load_cases, store_cases
from .outcomes import Fail

if TYPE_CHECKING:
    from .context import Context


@dataclass
class Check:
    name: str
    weight: float
    #: Returns None for a pass, or the share of the points earned (0..1); raises Fail otherwise.
    run: Callable[["Context"], float | None]
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
                search_property(ctx, strategy, fn, max_examples, key=f"{self.exercise_id}/{name}")

            self.checks.append(Check(name, weight, run, concept))
            return fn

        return deco


def search_property(ctx: "Context", strategy: st.SearchStrategy, fn: Callable, max_examples: int, key: str = "") -> None:
    """Search ``strategy`` for a case where ``fn(ctx, case)`` raises :class:`Fail`; raise it for the smallest one.

    ``key`` names the check (``exercise/check name``) for the list of cases a passing search tries
    (:mod:`.case_lists`); without one, hypothesis generates every case.
    """
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
    known: dict[Any, bool] = {}  # outcomes of the cases already tried, for hypothesis's second look
    replay = load_cases(key, max_examples)
    failing: list[Any] = []  # the kept case that failed, should hypothesis's own search not meet it
    if replay is not None:
        for case in replay:  # (hypothesis would also reseed the global PRNGs: nothing on this side draws from them)
            failed = fails(case)
            if stopped:
                raise stopped[0]
            _remember(known, case, failed)
            if failed:
                failing.append(case)
                break
        else:
            return  # every kept case passed
    tried: list[Any] = []
    found: list[bool] = []

    def search_fails(case: Any) -> bool:
        tried.append(case)
        with contextlib.suppress(TypeError):  # an unhashable case is simply run
            if case in known:
                return known[case]
        failed = fails(case)
        _remember(known, case, failed)
        if failed:
            found.append(True)
        return failed

    try:
        smallest = find(strategy, search_fails, settings=search)
    except NoSuchExample:
        smallest = None
    if replay is None and not found:
        store_cases(key, max_examples, tried)
    if stopped:
        raise stopped[0]
    if smallest is None and failing:  # hypothesis drew other cases (see .case_lists): the kept one still counts
        smallest = failing[0]
    if smallest is None:
        return
    try:
        fn(ctx, smallest)
    except Fail as failure:
        raise Fail(f"smallest failing case found: {failure}", expected=failure.expected, got=failure.got, inputs=failure.inputs,
                   mistakes=failure.mistakes) from None
    raise Fail("an input made your function give a wrong answer, but a second call gave the right one: is your function deterministic?")


def _remember(known: dict[Any, bool], case: Any, failed: bool) -> None:
    with contextlib.suppress(TypeError):
        known[case] = failed
