"""Generic describers: *how* a wrong answer differs from the right one, for any exercise (ships to students).

When no classic mistake (:mod:`coursekit.mistakes`) explains a wrong answer, the grader and the
self-checks say precisely how it differs instead of guessing a cause: "your output equals the
expected one flipped upside down", "only the last column differs", "the values are right but the
dtype is float64". Each describer is a pure function ``(got, expected, hints) -> str | None`` that
fires only when its statement is exactly true of this pair (within the tolerance of ``close``).
:func:`differences` runs them all, in order, and returns :class:`Finding`\\ s.

Whether a finding is a *cause* or only a fact about one case is decided by the caller
(:func:`coursekit.mistakes.settle`): a finding is stated as the way the answer is wrong only when
the same describer fires on every failing case; otherwise it is "on this case ...".

Nothing here imports the reference solutions, torch or the grader.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any, Callable, Mapping, Optional

import numpy as np

#: Axis names of the course's NCHW arrays, by number of dimensions.
_AXIS_NAMES = {4: ("N (batch)", "C (channels)", "H (rows)", "W (columns)"), 3: ("C", "H (rows)", "W (columns)"),
               2: ("H (rows)", "W (columns)"), 1: ("the only axis",)}

#: Largest array a describer looks at (bigger answers get no description: a description is a bonus).
MAX_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Finding:
    """One true statement about how ``got`` differs from ``expected``."""
    id: str      # the describer, e.g. "describe.flipped"
    text: str    # "your output equals the expected one flipped upside down (axis H)"
    #: The same statement without this case's numbers, true wherever this describer fires with this id.
    general: str = ""
    #: False when the case is too small for the describer to tell (a 1x1 output cannot show a flip): such a
    #: case neither shows nor contradicts the statement.
    judged: bool = True

    def across(self, others: "list[Finding]") -> str:
        """The text to state for this finding together with ``others`` of the same id (other cases)."""
        return self.text if all(o.text == self.text for o in others) else (self.general or self.text)


#: What a describer returns when the case is too small to tell either way.
UNJUDGED = "unjudged"

Hints = Mapping[str, Any]
Describer = Callable[[Any, Any, Hints], Optional[str]]


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------
def close(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Same shape and values within tolerance (atol relative to the largest |value| of ``b``); dtypes ignored."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
        return False
    if a.size == 0:
        return True
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = max(float(np.max(np.abs(np.nan_to_num(b64, nan=0.0, posinf=0.0, neginf=0.0)), initial=0.0)), 1.0)
    return bool(np.isclose(a64, b64, rtol=rtol, atol=atol * scale, equal_nan=True).all())


def _real_array(value: Any) -> bool:
    return type(value) is np.ndarray and value.dtype.kind in "biuf" and value.size <= MAX_ELEMENTS


def _axis(ndim: int, axis: int) -> str:
    names = _AXIS_NAMES.get(ndim)
    axis = axis % ndim
    return names[axis] if names else f"axis {axis}"


def _both_arrays(got: Any, expected: Any, same_shape: bool = True) -> bool:
    if not (_real_array(got) and _real_array(expected)):
        return False
    return got.shape == expected.shape if same_shape else True


def _differ(got: np.ndarray, expected: np.ndarray) -> bool:
    return not close(got, expected)


# ---------------------------------------------------------------------------------------------
# Array describers
# ---------------------------------------------------------------------------------------------
def dtype_changed(got: Any, expected: Any, hints: Hints) -> str | None:
    """The values are right, the dtype is not (e.g. float32 input upcast to float64)."""
    if not _both_arrays(got, expected) or got.dtype == expected.dtype or not close(got, expected):
        return None
    return (f"the values are right but the dtype is {got.dtype}, expected {expected.dtype}"
            + (" (keep float32 when every input is float32)" if expected.dtype == np.float32 else ""))


def not_an_array(got: Any, expected: Any, hints: Hints) -> str | None:
    """A list, tuple or nested list holding the right values."""
    if not _real_array(expected) or type(got) not in (list, tuple):
        return None
    try:
        values = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if not close(values, expected):
        return None
    return f"the values are right but it is a {type(got).__name__}, not a numpy array (return np.asarray(...))"


def rounded(got: Any, expected: Any, hints: Hints) -> str | None:
    """The expected values rounded, truncated or floored to integers."""
    if not _both_arrays(got, expected) or expected.dtype.kind != "f" or not _differ(got, expected):
        return None
    e = expected.astype(np.float64)
    for how, fn in (("truncated toward zero", np.trunc), ("rounded", np.round), ("rounded down", np.floor)):
        if close(got, fn(e)):
            kind = f" (your dtype is {got.dtype}: integer arithmetic)" if got.dtype.kind in "biu" else ""
            return f"your values are the expected ones {how} to integers{kind}"
    return None


def wrapped_integers(got: Any, expected: Any, hints: Hints) -> str | None:
    """The expected values wrapped around modulo 256 (uint8 overflow)."""
    if not _both_arrays(got, expected) or not _differ(got, expected):
        return None
    e = expected.astype(np.float64)
    for bits in (8, 16):
        span = 2.0 ** bits
        if np.all(np.abs(e - np.rint(e)) < 1e-9) and close(got, np.mod(e, span)):
            return f"your values are the expected ones modulo {int(span)}: a uint{bits} sum wrapped around (overflow)"
    return None


def transposed(got: Any, expected: Any, hints: Hints) -> str | None:
    """Rows and columns (the last two axes) swapped."""
    if not _both_arrays(got, expected, same_shape=False) or expected.ndim < 2:
        return None
    t = np.swapaxes(expected, -1, -2)
    if got.shape != t.shape or not close(got, t) or close(got, expected):
        return None
    return "your output equals the expected one transposed (rows and columns swapped)"


def axes_swapped(got: Any, expected: Any, hints: Hints) -> str | None:
    """Two axes other than the last two swapped (e.g. batch and channels)."""
    if not _both_arrays(got, expected, same_shape=False) or expected.ndim < 3:
        return None
    nd = expected.ndim
    for i, j in combinations(range(nd), 2):
        if (i, j) == (nd - 2, nd - 1):
            continue
        t = np.swapaxes(expected, i, j)
        if got.shape == t.shape and close(got, t) and not close(got, expected):
            return f"your output equals the expected one with axes {_axis(nd, i)} and {_axis(nd, j)} swapped"
    return None


def flipped(got: Any, expected: Any, hints: Hints) -> str | None:
    """Reversed along one or both of the last two axes."""
    if not _both_arrays(got, expected) or expected.ndim < 1 or not _differ(got, expected):
        return None
    nd = expected.ndim
    if nd >= 2 and expected.shape[-1] * expected.shape[-2] <= 1:
        return UNJUDGED
    options = [((-2, -1), "upside down and left to right (rotated 180 degrees)"), ((-2,), "upside down (rows reversed)"),
               ((-1,), "left to right (columns reversed)")] if nd >= 2 else [((-1,), "end to end")]
    for axes, how in options:
        if close(got, np.flip(expected, axis=axes)):
            return f"your output equals the expected one flipped {how}"
    return None


def shifted(got: Any, expected: Any, hints: Hints) -> str | None:
    """Shifted by one position along one of the last two axes (the rest matching)."""
    if not _both_arrays(got, expected) or expected.ndim < 1 or not _differ(got, expected):
        return None
    nd = expected.ndim
    for axis in ([nd - 2, nd - 1] if nd >= 2 else [0]):
        n = expected.shape[axis]
        if n < 3:
            continue
        head = [slice(None)] * nd
        tail = [slice(None)] * nd
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        unit = "row" if axis == nd - 2 else "column"
        if close(got[tuple(head)], expected[tuple(tail)]):
            return (f"your output is the expected one shifted by one {unit} towards the "
                    f"{'end' if unit == 'column' else 'bottom'}: your {unit} i holds the expected {unit} i - 1")
        if close(got[tuple(tail)], expected[tuple(head)]):
            return (f"your output is the expected one shifted by one {unit} towards the "
                    f"{'start' if unit == 'column' else 'top'}: your {unit} i holds the expected {unit} i + 1")
    return None


def _nice(c: float) -> str:
    f = Fraction(c).limit_denominator(64)
    if abs(float(f) - c) < 1e-6 * max(1.0, abs(c)) and f.denominator != 1:
        return f"{c:.6g} (= {f})"
    return f"{c:.6g}"


def scaled(got: Any, expected: Any, hints: Hints) -> str | None:
    """Every value is the expected one times the same constant (not 1)."""
    if not _both_arrays(got, expected) or not _differ(got, expected):
        return None
    if np.count_nonzero(expected) < 2:
        return UNJUDGED
    g, e = got.astype(np.float64), expected.astype(np.float64)
    denom = float(np.sum(e * e))
    if denom <= 0 or not np.isfinite(denom):
        return None
    c = float(np.sum(g * e)) / denom
    if not np.isfinite(c) or abs(c - 1.0) < 1e-6 or abs(c) < 1e-12 or not close(g, c * e):
        return None
    return f"every value is the expected one times {_nice(c)}"


def offset(got: Any, expected: Any, hints: Hints) -> str | None:
    """Every value is the expected one plus the same constant, or a constant per channel map."""
    if not _both_arrays(got, expected) or not _differ(got, expected):
        return None
    if got.size < 2:
        return UNJUDGED
    d = got.astype(np.float64) - expected.astype(np.float64)
    if not np.all(np.isfinite(d)):
        return None
    if close(got, expected + float(np.mean(d))):
        return f"every value is the expected one plus the same constant {float(np.mean(d)):.6g}"
    return None


def offset_per_map(got: Any, expected: Any, hints: Hints) -> str | None:
    """The difference is one constant over each H x W map, not the same for all maps (something bias-like)."""
    if not _both_arrays(got, expected) or expected.ndim < 3 or not _differ(got, expected):
        return None
    if expected.shape[-1] * expected.shape[-2] <= 1:
        return UNJUDGED
    d = got.astype(np.float64) - expected.astype(np.float64)
    if not np.all(np.isfinite(d)):
        return None
    per_map = d.mean(axis=(-2, -1), keepdims=True)
    if np.ptp(per_map) == 0 or not close(got, expected + per_map):
        return None
    return "the difference is one constant per H x W map (per sample and channel): something bias-like is added wrongly"


def all_zero(got: Any, expected: Any, hints: Hints) -> str | None:
    """Zeros (or one constant) where the expected output varies."""
    if not _both_arrays(got, expected) or got.size < 2 or not _differ(got, expected):
        return None
    g = got.astype(np.float64)
    if np.ptp(expected.astype(np.float64)) == 0 or np.ptp(g) != 0:
        return None
    return "your output is all zeros" if np.all(g == 0) else f"every value of your output is the same, {float(g.flat[0]):.6g}"


def batch_items_same(got: Any, expected: Any, hints: Hints) -> str | None:
    """Every batch item holds the same output (the first axis is the batch) while the expected items differ."""
    if not _both_arrays(got, expected) or expected.ndim < 3 or not _differ(got, expected):
        return None
    if expected.shape[0] < 2:
        return UNJUDGED
    if not all(close(got[i], got[0]) for i in range(1, got.shape[0])):
        return None
    if all(close(expected[i], expected[0]) for i in range(1, expected.shape[0])):
        return None
    which = [i for i in range(expected.shape[0]) if close(got[0], expected[i])]
    return ("every batch item gets the same output" + (f", that of item {which[0]}" if which else "")
            + ": each sample of the batch needs its own output")


def channels_same(got: Any, expected: Any, hints: Hints) -> str | None:
    """Every channel (axis 1 of NCHW) holds the same map while the expected channels differ."""
    if not _both_arrays(got, expected) or expected.ndim != 4 or not _differ(got, expected):
        return None
    if expected.shape[1] < 2:
        return UNJUDGED
    if not all(close(got[:, i], got[:, 0]) for i in range(1, got.shape[1])):
        return None
    if all(close(expected[:, i], expected[:, 0]) for i in range(1, expected.shape[1])):
        return None
    return "every channel of your output holds the same map, while the expected channels differ"


def _mismatch(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    g, e = got.astype(np.float64), expected.astype(np.float64)
    scale = max(float(np.max(np.abs(np.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0)), initial=0.0)), 1.0)
    return ~np.isclose(g, e, rtol=1e-4, atol=1e-5 * scale, equal_nan=True)


def padding_windows(got: Any, expected: Any, hints: Hints) -> str | None:
    """The only wrong outputs are those whose window overlaps the padding (``hints['padding_mask']``)."""
    mask = hints.get("padding_mask") if hints else None
    if mask is None or not _both_arrays(got, expected) or not _differ(got, expected):
        return None
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), expected.shape)
    if mask.all():
        return UNJUDGED
    bad = _mismatch(got, expected)
    if not bad.any() or (bad & ~mask).any():
        return None
    return hints.get("padding_text", "only the outputs whose window overlaps the padding differ (every window inside "
                                     "the image is right): look at how the input is padded")


def border_only(got: Any, expected: Any, hints: Hints) -> str | None:
    """Only outermost rows and/or columns differ (at most two deep on each side), the interior is right."""
    if not _both_arrays(got, expected) or expected.ndim < 2 or not _differ(got, expected):
        return None
    bad = _mismatch(got, expected)
    h, w = expected.shape[-2:]
    if h < 3 or w < 3:
        return UNJUDGED
    for depth in (1, 2):
        if h - 2 * depth < 1 or w - 2 * depth < 1:
            return None
        if bad[..., depth:h - depth, depth:w - depth].any():
            continue
        rows = np.zeros(h, dtype=bool)
        rows[:depth] = rows[h - depth:] = True
        cols = np.zeros(w, dtype=bool)
        cols[:depth] = cols[w - depth:] = True
        in_rows = not (bad & ~rows[:, None]).any()      # every wrong value lies on a border row
        in_cols = not (bad & ~cols[None, :]).any()
        row_bad = bad if in_rows else bad & ~cols[None, :]    # a row side counts for what no border column explains
        col_bad = bad if in_cols and not in_rows else bad & ~rows[:, None]
        sides = []
        if not (in_cols and not in_rows):
            sides += [n for n, part in (("top", row_bad[..., :depth, :]), ("bottom", row_bad[..., h - depth:, :])) if part.any()]
        if not in_rows:
            sides += [n for n, part in (("left", col_bad[..., :, :depth]), ("right", col_bad[..., :, w - depth:])) if part.any()]
        plural = "s" if depth == 2 else ""
        where = ", ".join(f"{p} {'row' if p in ('top', 'bottom') else 'column'}{plural}" for p in sides)
        return f"only the border differs ({where}{', two deep' if depth == 2 else ''}); the interior is right"
    return None


def cropped(got: Any, expected: Any, hints: Hints) -> str | None:
    """Shapes differ on one axis and one output is the other with rows/columns cut off."""
    if not _both_arrays(got, expected, same_shape=False) or got.ndim != expected.ndim or got.shape == expected.shape:
        return None
    diff = [i for i in range(got.ndim) if got.shape[i] != expected.shape[i]]
    nd = got.ndim
    if len(diff) > 2:
        return None
    small, big, mine_small = (got, expected, True) if all(got.shape[i] < expected.shape[i] for i in diff) else (
        (expected, got, False) if all(got.shape[i] > expected.shape[i] for i in diff) else (None, None, None))
    if small is None:
        return None
    what = ", ".join(f"{_axis(nd, i)}: {got.shape[i]} instead of {expected.shape[i]}" for i in diff)
    for where in ("start", "end"):
        sel = [slice(None)] * nd
        for i in diff:
            k = small.shape[i]
            sel[i] = slice(0, k) if where == "start" else slice(big.shape[i] - k, big.shape[i])
        if close(big[tuple(sel)], small):
            kept = "first" if where == "start" else "last"
            if mine_small:
                return f"your output has too few positions ({what}); it equals the {kept} ones of the expected output"
            return f"your output has extra positions ({what}); its {kept} ones equal the expected output"
    if all(abs(got.shape[i] - expected.shape[i]) == 1 for i in diff):
        return f"the shape is off by one ({what})"
    return None


def subsampled(got: Any, expected: Any, hints: Hints) -> str | None:
    """One output is the other taken every s-th position (a step of 1 where a stride was due, or the reverse)."""
    if not _both_arrays(got, expected, same_shape=False) or got.ndim != expected.ndim or got.ndim < 2 or got.shape == expected.shape:
        return None
    big, small, mine_big = (got, expected, True) if got.size > expected.size else (expected, got, False)
    for sh in range(1, 5):
        for sw in range(1, 5):
            if (sh, sw) == (1, 1):
                continue
            part = big[..., ::sh, ::sw]
            if part.shape == small.shape and close(part, small):
                step = f"a step of {sh} row{'s' if sh > 1 else ''} and {sw} column{'s' if sw > 1 else ''}"
                if mine_big:
                    return f"the expected output is your output taken with {step}: your window moved by one where it should step"
                return f"your output is the expected one taken with {step}: your window steps further than it should"
    return None


def length_one_axis(got: Any, expected: Any, hints: Hints) -> str | None:
    """The right values with an axis of length one missing or added."""
    if not _both_arrays(got, expected, same_shape=False) or got.shape == expected.shape or got.size != expected.size:
        return None
    if tuple(d for d in got.shape if d != 1) != tuple(d for d in expected.shape if d != 1):
        return None
    if not close(got.reshape(expected.shape), expected):
        return None
    return f"the values are right but the shape is {got.shape}, expected {expected.shape} (an axis of length 1 missing or added)"


# ---------------------------------------------------------------------------------------------
# Number and pair describers (conv_output_size, same_padding)
# ---------------------------------------------------------------------------------------------
def _int_like(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def number_off(got: Any, expected: Any, hints: Hints) -> str | None:
    """An int off by a small amount, or the right value as a float."""
    if not _int_like(expected) or isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.number)):
        return None
    if isinstance(got, (float, np.floating)):
        if float(got) == float(expected):
            return ".float", f"the value is right but a float ({got!r}), expected an int: use // or int()", \
                "the value is right but a float, expected an int: use // or int()"
        return None
    d = int(got) - int(expected)
    if d and abs(d) <= 2:
        how = "more" if d > 0 else "less"
        return f".{how}", f"your answer is {abs(d)} {how} than expected", f"your answer is {how} than expected"
    return None


def pair_swapped(got: Any, expected: Any, hints: Hints) -> str | None:
    """A pair in the wrong order, or with one item wrong."""
    if not (isinstance(expected, tuple) and len(expected) == 2 and all(_int_like(e) for e in expected)):
        return None
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return None
    if tuple(got) == tuple(expected):
        return f"the values are right but it is a {type(got).__name__}, expected a tuple" if type(got) is not tuple else None
    if tuple(got) == tuple(expected)[::-1]:
        return "your pair is the expected one in reverse order (before and after swapped)"
    if not all(_int_like(g) for g in got):
        return None
    if sum(got) == sum(expected):
        return f"your total {sum(got)} is right but it is split {tuple(got)} instead of {tuple(expected)}"
    names = ("the first value (before)", "the second value (after)")
    parts, pattern = [], []
    for name, g, e in zip(names, got, expected):
        if g != e:
            parts.append(f"{name} is {abs(int(g) - int(e))} {'more' if g > e else 'less'} than expected")
            pattern.append("more" if g > e else "less")
        else:
            parts.append(f"{name} is right")
            pattern.append("right")
    general = "; ".join(f"{name} is {'right' if p == 'right' else p + ' than expected'}" for name, p in zip(names, pattern))
    return f".{pattern[0]}_{pattern[1]}", "; ".join(parts), general


def pair_total(got: Any, expected: Any, hints: Hints) -> str | None:
    """A pair of ints whose sum (e.g. the total padding) is more or less than the expected one's."""
    if not (isinstance(expected, tuple) and len(expected) == 2 and all(_int_like(e) for e in expected)):
        return None
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(_int_like(g) for g in got)):
        return None
    d = sum(int(g) for g in got) - sum(int(e) for e in expected)
    if d == 0:
        return None
    how = "more" if d > 0 else "less"
    return (f".{how}", f"your total {sum(got)} is {abs(d)} {how} than the expected total {sum(expected)}",
            f"your total is {how} than the expected one")


#: Every describer, in the order findings are preferred (the most specific first).
DESCRIBERS: tuple[tuple[str, Describer], ...] = (
    ("describe.dtype_changed", dtype_changed),
    ("describe.not_an_array", not_an_array),
    ("describe.length_one_axis", length_one_axis),
    ("describe.transposed", transposed),
    ("describe.axes_swapped", axes_swapped),
    ("describe.flipped", flipped),
    ("describe.shifted", shifted),
    ("describe.rounded", rounded),
    ("describe.wrapped_integers", wrapped_integers),
    ("describe.scaled", scaled),
    ("describe.offset", offset),
    ("describe.offset_per_map", offset_per_map),
    ("describe.all_zero", all_zero),
    ("describe.batch_items_same", batch_items_same),
    ("describe.channels_same", channels_same),
    ("describe.padding_windows", padding_windows),
    ("describe.border_only", border_only),
    ("describe.subsampled", subsampled),
    ("describe.cropped", cropped),
    ("describe.number_off", number_off),
    ("describe.pair_swapped", pair_swapped),
    ("describe.pair_total", pair_total),
)


def _differences_of_one(got: Any, expected: Any, hints: Hints) -> list[Finding]:
    found = []
    for name, describer in DESCRIBERS:
        try:
            with np.errstate(all="ignore"):
                text = describer(got, expected, hints)
        except Exception:  # noqa: BLE001  a description is a bonus: a strange answer gets none
            text = None
        if text == UNJUDGED:
            found.append(Finding(name, "", judged=False))
        elif isinstance(text, tuple):
            suffix, text, general = text
            found.append(Finding(name + suffix, text, general))
        elif text:
            found.append(Finding(name, text, _GENERAL.get(name, "")))
    return found


#: Statements true of every firing of a describer whose text holds numbers of the case.
_GENERAL = {
    "describe.scaled": "every value is the expected one times a constant (not 1)",
    "describe.offset": "every value is off by a constant",
    "describe.dtype_changed": "the values are right but the dtype is not the expected one",
    "describe.cropped": "your output has the wrong number of positions, and the ones it has are right",
    "describe.subsampled": "one output is the other taken with a step",
    "describe.batch_items_same": "every batch item gets the same output",
}


def differences(got: Any, expected: Any, hints: Optional[Hints] = None, unjudged: bool = False) -> list[Finding]:
    """Every describer's statement about how ``got`` differs from ``expected`` (empty when none fits).

    A tuple of arrays (e.g. ``(dx, dw, db)``) is described item by item: "item 3: ...". With ``unjudged``,
    also the describers that cannot tell on a case this small (``judged`` False, no text). Never raises.
    """
    found = _differences(got, expected, hints or {})
    return found if unjudged else [f for f in found if f.judged]


def _differences(got: Any, expected: Any, hints: Hints) -> list[Finding]:
    if isinstance(expected, tuple) and expected and all(isinstance(e, np.ndarray) for e in expected):
        if not (type(got) is tuple and len(got) == len(expected)):
            return []
        found = []
        right = [i + 1 for i, (g, e) in enumerate(zip(got, expected)) if _real_array(g) and close(g, e) and g.dtype == e.dtype]
        for i, (g, e) in enumerate(zip(got, expected)):
            if i + 1 in right:
                continue
            for f in _differences_of_one(g, e, hints):
                extra = f" (items {', '.join(map(str, right))} are right)" if right else ""
                found.append(Finding(f"{f.id}.item{i + 1}", f"item {i + 1} of the result: {f.text}{extra}" if f.judged else "",
                                     f"item {i + 1} of the result: {f.general or f.text}", f.judged))
        return found
    return _differences_of_one(got, expected, hints)
