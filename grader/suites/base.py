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
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from .case_lists import load_cases, store_cases
from .outcomes import Fail

if TYPE_CHECKING:
    from .context import Context


#: Concepts that do not show that a function computes anything: the inputs left untouched, the errors
#: raised on impossible input, the output shape alone. ``no_mutation`` is credited only to a function that
#: earns some other concept (:func:`require_a_computing_concept`), so that garbage earns nothing.
NOT_COMPUTING = frozenset({"no_mutation", "errors", "shape"})

#: Per grading context (one exercise's run): the concepts of which a check earned points so far.
_earned: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()
_earned_lock = threading.Lock()  # exercises are graded in parallel threads, each with its own context


def _recording(run: Callable[["Context"], float | None], concept: str) -> Callable[["Context"], float | None]:
    """``run``, noting in :data:`_earned` that ``concept`` earned points when the check passes or earns a share."""

    def recorded(ctx: "Context") -> float | None:
        share = run(ctx)
        if share is None or share > 0:
            with _earned_lock, contextlib.suppress(TypeError):  # TypeError: a stand-in context with no weak reference
                _earned.setdefault(ctx, set()).add(concept)
        return share

    recorded.__wrapped__ = run  # type: ignore[attr-defined]
    return recorded


def earned_concepts(ctx: "Context") -> set[str]:
    """The concepts of which a check earned points so far in this grading context."""
    with _earned_lock, contextlib.suppress(TypeError):
        return set(_earned.get(ctx, set()))
    return set()


def require_a_computing_concept(ctx: "Context", what: str) -> None:
    """Raise :class:`Fail` unless the function earned a concept that shows it computes something.

    The no-mutation concept runs last and calls this: a function that leaves its inputs untouched keeps
    that concept's points whatever else is wrong, as long as it earns one other concept of its own
    (one mistake costs one concept); an answer that earns nothing else (garbage, zeros of the right
    shape, a constant) earns nothing here either.
    """
    if earned_concepts(ctx) - NOT_COMPUTING:
        return
    raise Fail(f"{what}: your function leaves its inputs untouched, but that is credited only once it earns another "
               f"concept of this exercise (a right answer on one of the other checks), and it earns none yet")


@dataclass
class Check:
    name: str
    weight: float
    #: Returns None for a pass, or the share of the points earned (0..1); raises Fail otherwise.
    run: Callable[["Context"], float | None]
    #: The concept the check grades (course.yml ``concepts``); its points are shared by the concept's checks.
    concept: str = ""
    #: The features its cases may switch on (:mod:`.features`): a check named after a feature varies that
    #: feature alone; "combined" checks declare ``ANY``.
    varies: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.run = _recording(self.run, self.concept)


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

    def check(self, name: str, weight: float = 1.0, concept: str = "", varies: tuple[str, ...] = ()):
        """Register a fixed check; ``varies``: the features (:mod:`.features`) its cases switch on."""

        def deco(fn: Callable[["Context"], None]):
            self.checks.append(Check(name, weight, fn, concept, frozenset(varies)))
            return fn

        return deco

    def varies(self, *features: str):
        """Declare the features of the check registered just before (put it above ``@property_check``)."""

        def deco(fn: Callable[..., Any]):
            self.checks[-1].varies = frozenset(features)
            return fn

        return deco

    def property(self, name: str, strategy: st.SearchStrategy, weight: float = 1.0, max_examples: int = 60,
                 concept: str = "", varies: tuple[str, ...] = ()):
        """A check that searches ``strategy`` for a case the student's code gets wrong.

        The decorated function takes ``(ctx, case)`` and raises :class:`Fail` for a wrong answer.
        Grading is deterministic (``derandomize``): the same code always meets the same cases.
        """

        def deco(fn: Callable[["Context", Any], None]):
            def run(ctx: "Context") -> None:
                search_property(ctx, strategy, fn, max_examples, key=f"{self.exercise_id}/{name}")

            self.checks.append(Check(name, weight, run, concept, frozenset(varies)))
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
