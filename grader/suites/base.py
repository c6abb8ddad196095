"""The machinery every hidden suite shares: checks, property search, comparison, messages.

A suite is a list of weighted checks for one exercise. A check calls the student's function
through the sandboxed worker (``ctx.student``), computes the expected value on this, trusted,
side (reference solution, cross-checked by an independent oracle) and raises :class:`Fail`
with a message a student understands. Property checks let hypothesis search for a failing case
and shrink it; the message then shows that smallest counterexample.
"""
from __future__ import annotations

import re
import reprlib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from .tolerances import tolerance_for

if TYPE_CHECKING:
    from .context import Context


class Fail(AssertionError):
    """The student's answer is wrong; the message says how."""

    def __init__(self, message: str, *, expected: Any = None, got: Any = None, inputs: Any = None,
                 mistakes: Optional[list[str]] = None):
        super().__init__(message)
        self.expected, self.got, self.inputs = expected, got, inputs
        #: Ids of confirmed classic mistakes (coursekit.mistakes), for class insights.
        self.mistakes: list[str] = list(mistakes or [])


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


# ---------------------------------------------------------------------------------------------
# Describing values for messages
# ---------------------------------------------------------------------------------------------
#: What the student may see of a value: reprlib keeps nested and long values short.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 8, 8, 8
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 120, 120, 60
_MAX_TEXT = 2000


def type_name(value: Any) -> str:
    """``list``, ``torch.Tensor``, ``MyArray (a subclass of numpy.ndarray)``: never raises."""
    try:
        t = type(value)
        module = getattr(t, "__module__", None) or ""
        name = t.__qualname__ if module in ("builtins", "") else f"{module.split('.')[0]}.{t.__qualname__}"
        if isinstance(value, np.ndarray) and t is not np.ndarray:
            return f"{name} (a subclass of numpy.ndarray)"
        return name[:120]
    except Exception:  # noqa: BLE001  a hostile metaclass
        return "an unknown type"


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def describe(value: Any, max_elements: int = 36) -> str:
    """A short human description of any value; arrays printed in full only when small. Never raises."""
    try:
        text = _describe(value, max_elements)
    except Exception as exc:  # noqa: BLE001  an object whose repr or conversion raises
        text = f"a {type_name(value)} that cannot be shown ({type(exc).__name__})"
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def _describe(value: Any, max_elements: int) -> str:
    if _is_tensor(value):
        head = f"torch tensor shape {tuple(value.shape)} dtype {value.dtype}"
        if value.numel() <= max_elements:
            return f"{head}:\n" + _array_body(value.detach().cpu().numpy())
        return head
    if isinstance(value, np.ndarray):
        plain = value.view(np.ndarray)
        head = f"array shape {plain.shape} dtype {plain.dtype}"
        if type(value) is not np.ndarray:
            head += f" ({type_name(value)})"
        if plain.size <= max_elements:
            return f"{head}:\n" + _array_body(plain)
        return head
    if isinstance(value, np.generic):
        return _SHORT.repr(value)
    if isinstance(value, tuple) and type(value) is tuple and len(value) <= 8:
        return "(" + ", ".join(describe(v, max_elements) for v in value) + ("," if len(value) == 1 else "") + ")"
    if type(value) is int and value.bit_length() > 200:
        return f"an int of {value.bit_length()} bits"
    return _SHORT.repr(value)


def _array_body(array: np.ndarray) -> str:
    with np.errstate(all="ignore"):
        return np.array2string(array, precision=4, suppress_small=True, separator=", ", threshold=64)


# ---------------------------------------------------------------------------------------------
# What the student's code did when it raised with an empty message
# ---------------------------------------------------------------------------------------------
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')


def student_frame(traceback: str, package: str = "") -> Optional[str]:
    """``exercises/pooling.py, line 12, in maxpool2d: assert x.ndim == 4`` from a worker traceback, or None.

    The innermost frame in the student's package wins; otherwise the innermost frame of all.
    """
    lines = (traceback or "").splitlines()
    frames = []
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if m:
            after = lines[i + 1] if i + 1 < len(lines) else ""
            code = after.strip() if after.startswith("    ") and not _FRAME.match(after) else ""
            frames.append((m["file"], m["line"], m["func"].strip(), code))
    if not frames:
        return None
    own = [f for f in frames if package and f[0].startswith(package + "/")]
    file, line, func, code = (own or frames)[-1]
    return f"{file}, line {line}, in {func}" + (f": {code[:200]}" if code else "")


def last_printed(stdout: str, lines: int = 5) -> str:
    """The last ``lines`` non-empty lines the student printed, each cut to 200 characters."""
    tail = [l.rstrip()[:200] for l in (stdout or "").splitlines() if l.strip()][-lines:]
    return "\n".join(tail)


def explain_empty(type_name: str, message: str, traceback: str, stdout: str = "", package: str = "") -> str:
    """``message``, or for an empty one (``raise AssertionError``, ``sys.exit()``) where and what was last printed."""
    if str(message).strip():
        return message
    parts = [f"(no message) raised at {frame}" if (frame := student_frame(traceback, package)) else "(no message)"]
    printed = last_printed(stdout)
    if printed:
        parts.append("the last lines your code printed:\n" + "\n".join("    " + l for l in printed.splitlines()))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Comparing the student's value with the expected one
# ---------------------------------------------------------------------------------------------
#: The docstrings' dtype rule, stated once (every reference follows it; the comparison enforces it).
DTYPE_RULE = "float32 when every input is float32, float64 otherwise (integer inputs included)"

#: The concept (course.yml) whose checks charge the output dtype; other checks compare values only, so
#: that one dtype mistake costs that concept alone. An exercise without it charges the dtype everywhere.
DTYPE_CONCEPT = "dtypes"
_charge_dtype: ContextVar[bool] = ContextVar("charge_dtype", default=True)


@contextmanager
def dtype_charged_in(exercise: Any, check: "Check") -> Iterator[None]:
    """While ``check`` runs: do comparisons charge a wrong output dtype (see :data:`DTYPE_CONCEPT`)?"""
    concepts = getattr(exercise, "concepts", None) or {}
    token = _charge_dtype.set(DTYPE_CONCEPT not in concepts or check.concept == DTYPE_CONCEPT)
    try:
        yield
    finally:
        _charge_dtype.reset(token)


def rule_dtype(*inputs: Any) -> np.dtype:
    """The output dtype the docstrings promise for these input arrays: see :data:`DTYPE_RULE`."""
    arrays = [np.asarray(a) for a in inputs if a is not None]
    return np.dtype(np.float32) if arrays and np.result_type(*arrays) == np.float32 else np.dtype(np.float64)


HintFn = Callable[[np.ndarray, np.ndarray], Optional[str]]


def _safe_hint(hint: Optional[HintFn], got: np.ndarray, expected: np.ndarray) -> str:
    """The suite's hint as ``". hint"``, or "" (also when the hint itself cannot cope with ``got``)."""
    if hint is None:
        return ""
    try:
        extra = hint(got, expected)
    except Exception:  # noqa: BLE001  a hint is a guess; a strange answer just gets none
        return ""
    return f". {extra}" if extra else ""


def assert_array_matches(got: Any, expected: Any, *, what: str, inputs: str = "", hint: Optional[HintFn] = None,
                         check_dtype: Optional[bool] = None) -> None:
    """Type, shape, values and dtype of ``got`` against ``expected``; raises :class:`Fail`, never anything else.

    Order: a plain numpy array of real numbers, the shape, the values (in float64, with the tolerance
    of the less precise of the two float dtypes), then the exact float dtype of :data:`DTYPE_RULE`
    (the reference's dtype is the rule) when ``check_dtype`` is true; None: as the grader set it for
    the running check (:func:`dtype_charged_in`). The diagnosis comes first; the case (``inputs``) on
    its own line.
    """
    if check_dtype is None:
        check_dtype = _charge_dtype.get()
    expected = np.asarray(expected)
    case = f"\ncase: {inputs}" if inputs else ""

    def fail(diagnosis: str, *, arrays: bool = False) -> Fail:
        shown = f"\nexpected {describe(expected)}\ngot {describe(got)}" if arrays else ""
        return Fail(f"{what}: {diagnosis}{case}{shown}", expected=expected, got=got, inputs=inputs)

    if type(got) is not np.ndarray:
        if _is_tensor(got):
            raise fail("expected a numpy array, got a torch tensor (convert it with .detach().numpy())")
        if isinstance(got, np.ndarray):
            raise fail(f"expected a plain numpy array, got {type_name(got)}")
        raise fail(f"expected a numpy array, got {type_name(got)}: {describe(got)[:200]}")
    if got.dtype.kind not in "biuf":
        raise fail(f"output dtype is {got.dtype}, expected real numbers ({expected.dtype})")
    if got.shape != expected.shape:
        raise fail(f"wrong output shape {got.shape}, expected {expected.shape}" + _safe_hint(hint, got, expected))
    if got.size:
        with np.errstate(all="ignore"):
            g = got.astype(np.float64)
            e = expected.astype(np.float64)
            if np.isnan(g).any() and not np.isnan(e).any():
                first = tuple(int(i) for i in np.argwhere(np.isnan(g))[0])
                raise fail(f"output contains NaN (first at index {first})", arrays=True)
            lower = got.dtype.kind == "f" and got.dtype.itemsize < expected.dtype.itemsize
            rtol, atol = tolerance_for(np.float32 if lower else expected.dtype, scale=float(np.max(np.abs(e), initial=0.0)))
            close = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if not close.all():
            bad = np.argwhere(~close)
            first = tuple(int(i) for i in bad[0])
            truncates = (f". Your output is {got.dtype}: integer arithmetic truncates or overflows; compute in floating point"
                         if expected.dtype.kind == "f" and got.dtype.kind in "biu" else "")
            raise fail(f"{len(bad)} of {got.size} values differ; first at index {first}: got {g[first]:.6g}, expected "
                       f"{e[first]:.6g}" + _safe_hint(hint, got, expected) + truncates, arrays=True)
    if check_dtype and expected.dtype.kind == "f" and got.dtype != expected.dtype:
        raise fail(f"the values are right but the output dtype is {got.dtype}, expected {expected.dtype}: "
                   f"the rule is {DTYPE_RULE}")
