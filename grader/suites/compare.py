"""Comparing the student's value with the expected one: type, dtype (one rule), shape, values.

A wrong type or dtype (a list, a numpy scalar, float64 where float32 is due) is charged by one concept
(:data:`DTYPE_CONCEPTS`); the other checks compare the values after conversion.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .messages import is_tensor, describe, type_name
from .outcomes import Fail
from .tolerances import tolerance_for

if TYPE_CHECKING:
    from .base import Check

#: The docstrings' dtype rule, stated once (every reference follows it; the comparison enforces it).
DTYPE_RULE = "float32 when every input is float32, float64 otherwise (integer inputs included)"

#: The concepts (course.yml), first one present, whose checks charge the output's type and dtype: a list,
#: a numpy scalar or a float64 array where a float32 one is due, a numpy int where an int is due. Other
#: checks compare the values after conversion, so that one such mistake costs that concept alone: the
#: dtypes concept, else the basic one (values; the seed's sizes of conv_output_size, stride 1 of
#: same_padding). Without any of them, every check charges them.
DTYPE_CONCEPTS = ("dtypes", "values", "no_stride_padding", "stride_one")
DTYPE_CONCEPT = DTYPE_CONCEPTS[0]
_charge_dtype: ContextVar[bool] = ContextVar("charge_dtype", default=True)


def type_charging_concept(exercise: Any) -> str | None:
    """The concept whose checks charge the output type and dtype (:data:`DTYPE_CONCEPTS`), or None: all do."""
    concepts = getattr(exercise, "concepts", None) or {}
    return next((c for c in DTYPE_CONCEPTS if c in concepts), None)


@contextmanager
def dtype_charged_in(exercise: Any, check: "Check") -> Iterator[None]:
    """While ``check`` runs: do comparisons charge a wrong output type or dtype (see :data:`DTYPE_CONCEPTS`)?"""
    charging = type_charging_concept(exercise)
    token = _charge_dtype.set(charging is None or check.concept == charging)
    try:
        yield
    finally:
        _charge_dtype.reset(token)


def type_charged() -> bool:
    """Does the running check charge a wrong output type (see :func:`dtype_charged_in`)?"""
    return _charge_dtype.get()


def as_int(value: Any) -> int | None:
    """An integral number (numpy integer, or a float such as 26.0) as the int it is, else None (bools too)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def rule_dtype(*inputs: Any) -> np.dtype:
    """The output dtype the docstrings promise for these input arrays: see :data:`DTYPE_RULE`."""
    arrays = [np.asarray(a) for a in inputs if a is not None]
    return np.dtype(np.float32) if arrays and np.result_type(*arrays) == np.float32 else np.dtype(np.float64)


def as_plain_array(value: Any) -> np.ndarray | None:
    """A list, tuple, Python number or numpy scalar as the array of real numbers it spells, else None.

    What a student may return instead of an array: graded on its values, its type charged once
    (:data:`DTYPE_CONCEPTS`). Ragged, non-numeric or huge nested values give None.
    """
    if not isinstance(value, (list, tuple, int, float, np.generic)) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        with np.errstate(all="ignore"):
            array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError):
        return None
    return array if array.dtype.kind in "iuf" else None


HintFn = Callable[[np.ndarray, np.ndarray], str | None]


def _safe_hint(hint: HintFn | None, got: np.ndarray, expected: np.ndarray) -> str:
    """The suite's hint as ``". hint"``, or "" (also when the hint itself cannot cope with ``got``)."""
    if hint is None:
        return ""
    try:
        extra = hint(got, expected)
    except Exception:  # noqa: BLE001  a hint is a guess; a strange answer just gets none
        return ""
    return f". {extra}" if extra else ""


def assert_array_matches(got: Any, expected: Any, *, what: str, inputs: str = "", hint: HintFn | None = None,
                         check_dtype: bool | None = None) -> None:
    """Type, shape, values and dtype of ``got`` against ``expected``; raises :class:`Fail`, never anything else.

    Order: a plain numpy array of real numbers (a list or scalar is converted when the type is not
    charged, see :func:`as_plain_array`), the shape, the values (in float64, with the tolerance
    of the less precise of the two float dtypes), then the exact float dtype of :data:`DTYPE_RULE`
    (the reference's dtype is the rule) when ``check_dtype`` is true; None: as the grader set it for
    the running check (:func:`dtype_charged_in`). The diagnosis comes first; the case (``inputs``) on
    its own line.
    """
    if check_dtype is None:
        check_dtype = _charge_dtype.get()
    expected = np.asarray(expected)
    case = f"\ncase: {inputs}" if inputs else ""

    read_from = ""  # the type of a list or scalar graded as the array it spells

    def fail(diagnosis: str, *, arrays: bool = False) -> Fail:
        shown = f"\nexpected {describe(expected)}\ngot {describe(got)}" if arrays else ""
        return Fail(f"{what}: {diagnosis}{read_from}{case}{shown}", expected=expected, got=got, inputs=inputs)

    if type(got) is not np.ndarray:
        if is_tensor(got):
            raise fail("expected a numpy array, got a torch tensor (convert it with .detach().numpy())")
        if isinstance(got, np.ndarray):
            raise fail(f"expected a plain numpy array, got {type_name(got)}")
        converted = as_plain_array(got)
        if converted is None or check_dtype:
            raise fail(f"expected a numpy array, got {type_name(got)}: {describe(got)[:200]}"
                       + (" (return np.asarray(...) of it)" if converted is not None else ""))
        read_from = f" (you returned a {type_name(got)}, read here as an array; return a numpy array)"
        got = converted  # the type is charged by one concept alone (DTYPE_CONCEPTS): the values are still graded here
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
