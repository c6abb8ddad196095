"""The machinery every hidden suite shares: checks, property search, comparison, messages.

A suite is a list of weighted checks for one exercise. A check calls the student's function
through the sandboxed worker (``ctx.student``), computes the expected value on this, trusted,
side (reference solution, cross-checked by an independent oracle) and raises :class:`Fail`
with a message a student understands. Property checks let hypothesis search for a failing case
and shrink it; the message then shows that smallest counterexample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from .tolerances import tolerance_for

if TYPE_CHECKING:
    from .context import Context


class Fail(AssertionError):
    """The student's answer is wrong; the message says how."""

    def __init__(self, message: str, *, expected: Any = None, got: Any = None, inputs: Any = None):
        super().__init__(message)
        self.expected, self.got, self.inputs = expected, got, inputs


class StudentRaised(Exception):
    """The student's function raised; ``type_name`` is the exception class name."""

    def __init__(self, type_name: str, message: str, traceback: str = ""):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.traceback = type_name, message, traceback


class WorkerStopped(Exception):
    """The worker is gone (timeout, crash, forbidden import...): the exercise ends here."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class NotImplementedYet(Exception):
    """The student's function still raises NotImplementedError (a stub)."""


class InternalError(Exception):
    """The grader's own expectation is broken (reference disagrees with the oracle)."""


@dataclass
class Check:
    name: str
    weight: float
    #: Returns None for a pass, or the share of the points earned (0..1); raises Fail otherwise.
    run: Callable[["Context"], Optional[float]]


@dataclass
class Suite:
    exercise_id: str
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, weight: float = 1.0):
        def deco(fn: Callable[["Context"], None]):
            self.checks.append(Check(name, weight, fn))
            return fn

        return deco

    def property(self, name: str, strategy: st.SearchStrategy, weight: float = 1.0, max_examples: int = 60):
        """A check that searches ``strategy`` for a case the student's code gets wrong.

        The decorated function takes ``(ctx, case)`` and raises :class:`Fail` for a wrong answer.
        Grading is deterministic (``derandomize``): the same code always meets the same cases.
        """

        def deco(fn: Callable[["Context", Any], None]):
            def run(ctx: "Context") -> None:
                search_property(ctx, strategy, fn, max_examples)

            self.checks.append(Check(name, weight, run))
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
        raise Fail(f"smallest failing case found: {failure}", expected=failure.expected, got=failure.got, inputs=failure.inputs) from None
    raise Fail("an input made your function give a wrong answer, but a second call gave the right one: is your function deterministic?")


# ---------------------------------------------------------------------------------------------
# Describing values for messages
# ---------------------------------------------------------------------------------------------
def describe(value: Any, max_elements: int = 36) -> str:
    """A short human description of a value, arrays printed in full only when small."""
    if isinstance(value, np.ndarray):
        head = f"array shape {value.shape} dtype {value.dtype}"
        if value.size <= max_elements:
            body = np.array2string(value, precision=4, suppress_small=True, separator=", ", threshold=max_elements)
            return f"{head}:\n{body}"
        return head
    if isinstance(value, tuple):
        return "(" + ", ".join(describe(v, max_elements) for v in value) + ")"
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


# ---------------------------------------------------------------------------------------------
# Comparing the student's value with the expected one
# ---------------------------------------------------------------------------------------------
def assert_array_matches(got: Any, expected: np.ndarray, *, what: str, inputs: str = "", hint: Optional[Callable[[np.ndarray, np.ndarray], Optional[str]]] = None) -> None:
    """Type, shape, dtype kind and values of ``got`` against ``expected``; raises :class:`Fail`."""
    where = f" for {inputs}" if inputs else ""
    if not isinstance(got, np.ndarray):
        raise Fail(f"{what}: expected a numpy array, got {type(got).__name__}{where}", expected=expected, got=got)
    if got.shape != expected.shape:
        extra = hint(got, expected) if hint else None
        raise Fail(f"{what}: wrong output shape {got.shape}, expected {expected.shape}{where}" + (f". {extra}" if extra else ""), expected=expected, got=got)
    if expected.dtype.kind == "f" and got.dtype.kind != "f":
        raise Fail(f"{what}: output dtype is {got.dtype}, expected floating point (integer arithmetic truncates or overflows){where}", expected=expected, got=got)
    if expected.dtype.kind in "iub" and got.dtype.kind not in "iubf":
        raise Fail(f"{what}: output dtype is {got.dtype}, expected numbers{where}", expected=expected, got=got)
    if got.size == 0:
        return
    g = got.astype(np.float64)
    e = expected.astype(np.float64)
    if np.isnan(g).any() and not np.isnan(e).any():
        raise Fail(f"{what}: output contains NaN{where}", expected=expected, got=got)
    rtol, atol = tolerance_for(expected.dtype, scale=float(np.max(np.abs(e), initial=0.0)))
    close = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        bad = np.argwhere(~close)
        first = tuple(int(i) for i in bad[0])
        extra = hint(got, expected) if hint else None
        raise Fail(
            f"{what}: {len(bad)} of {got.size} values differ{where}; first at index {first}: "
            f"got {g[first]:.6g}, expected {e[first]:.6g}" + (f". {extra}" if extra else "")
            + f"\nexpected {describe(expected)}\ngot {describe(got)}",
            expected=expected,
            got=got,
        )
