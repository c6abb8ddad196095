"""The no-mutation concept: the inputs come back untouched, credited to a function that computes something.

A function that never modifies its inputs keeps this concept's points whatever else is wrong with it,
so that one mistake costs one concept (issue 18 §4); it is credited only once the function earns
another concept of the exercise (:func:`.base.require_a_computing_concept`), so that garbage of the
right shape earns nothing. Its check runs last in each suite, after the concepts it is gated on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from coursekit import mistakes as catalogue

from .base import require_a_computing_concept
from .diagnosis import diagnose, with_diagnosis
from .outcomes import Fail, StudentRaised

if TYPE_CHECKING:
    from .context import Context


def assert_untouched(ctx: Context, function: str, args: tuple, kwargs: dict[str, Any], *, what: str, inputs: str) -> None:
    """Call the student's ``function``; raise :class:`Fail` if it modified an input in place (or raised)."""
    try:
        _, mutated = ctx.student_checked(function, *args, **kwargs)
    except StudentRaised as exc:  # diagnosed as any check's raise: a wrong helper it called is blamed on its own line
        failure = Fail(f"{what} raised {exc.type_name}: {exc.message}\ncase: {inputs}", inputs=inputs)
        raise with_diagnosis(failure, diagnose(ctx, function, args, kwargs, catalogue.RAISED, None)) from None
    if mutated:
        raise Fail(f"{what}: {catalogue.INPUT_MUTATED_MESSAGE} (changed: {', '.join(mutated)})\ncase: {inputs}",
                   inputs=inputs, mistakes=[catalogue.INPUT_MUTATED])


def check_untouched(ctx: Context, function: str, calls: Iterable[tuple[tuple, dict[str, Any], str]], *, what: str) -> None:
    """The no-mutation check: every ``(args, kwargs, inputs)`` call leaves its inputs untouched, and the
    function earned another concept (else garbage would earn this one)."""
    for args, kwargs, inputs in calls:
        assert_untouched(ctx, function, args, kwargs, what=what, inputs=inputs)
    require_a_computing_concept(ctx, what)
