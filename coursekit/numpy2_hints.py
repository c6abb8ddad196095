"""Recognise a student error caused by a known numpy 2 change, and say so in one line.

Code that is right under numpy 1.26 can fail under the numpy 2 the grader runs: ``int()`` of a
1-element array, an element assigned a ``(1,)`` array, ``np.float64`` of a ``(1, 1, 1)`` slice (an
array under numpy 2, a scalar before), a Python int out of the array dtype's range (NEP 50), a
removed alias such as ``np.float_``. The student then sees a numpy message that does not name the
cause. :func:`numpy2_hint` maps such a message to a short explanation and fix;
:func:`with_numpy2_hint` appends it to a feedback message::

    message = with_numpy2_hint(f"conv2d raised {exc.type_name}: {exc.message}")

Only the text is inspected (the grader sees the student's exception as a message), so a hint says
"probably" where the same words can also come from a plain bug. Shipped in the student kit: the
self-checks (``coursekit.selfcheck``) add the hint under a failing test; the grader's feedback uses
it in ``grader.suites.context`` (every student exception's message passes there).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: Prefix of every hint, so that feedback, tests and a reader can spot it.
PREFIX = "numpy 2 change:"


@dataclass(frozen=True)
class Numpy2Change:
    """One numpy 2 behaviour change: the message it produces and what to tell the student."""

    name: str
    pattern: re.Pattern[str]
    hint: str
    #: Messages that match ``pattern`` but come from something else (left without a hint).
    unless: re.Pattern[str] | None = None


_SCALAR_FIX = ("numpy 2 converts only 0-d arrays to a Python number (numpy 1 accepted any 1-element array, "
               "e.g. `int(x.sum(keepdims=True))` or `float(window[..., :1])`): take the number with `.item()`, "
               "or index it, e.g. `x[0]`.")

CHANGES: tuple[Numpy2Change, ...] = (
    Numpy2Change(
        "array to scalar",
        re.compile(r"only (length-1|size-1|0-dimensional|one element) arrays can be converted to Python scalars"
                   r"|Conversion of an array with ndim > 0 to a scalar", re.IGNORECASE),
        _SCALAR_FIX,
    ),
    Numpy2Change(
        "sequence into an element",
        re.compile(r"setting an array element with a sequence", re.IGNORECASE),
        ("probably: numpy 2 no longer stores a 1-element array (shape (1,) or (1, 1, 1)) in a single element; "
         "`np.float64(a_slice)` is an array now, not a number. Assign a number: `out[i, j] = window.sum()` "
         "or `value.item()`."),
        unless=re.compile(r"inhomogeneous", re.IGNORECASE),  # a ragged list: a plain bug
    ),
    Numpy2Change(
        "python int out of bounds",
        re.compile(r"Python integer -?\d+ out of bounds for u?int\d+", re.IGNORECASE),
        ("a Python int that does not fit the array's dtype is an error under numpy 2 (NEP 50; numpy 1 wrapped "
         "it around): convert the array first, e.g. `x.astype(np.int64)`, before adding or storing large values."),
    ),
    Numpy2Change(
        "removed name",
        re.compile(r"was removed in the NumPy 2\.0 release|has no attribute '(float_|complex_|NaN|Inf|infty|"
                   r"product|cumproduct|alltrue|sometrue|asfarray|msort|round_|int0|uint0|bool8)'", re.IGNORECASE),
        "numpy 2 removed this alias: use the current name (np.float64, np.nan, np.inf, np.prod, np.all, np.round...).",
    ),
)


def numpy2_hint(message: str) -> str | None:
    """The one-line hint for a message caused by a known numpy 2 change (``numpy 2 change: ...``), else None."""
    for change in CHANGES:
        if change.pattern.search(message) and not (change.unless and change.unless.search(message)):
            return f"{PREFIX} {change.hint}"
    return None


def with_numpy2_hint(message: str) -> str:
    """``message``, followed on a new line by its numpy 2 hint when there is one (never added twice)."""
    hint = numpy2_hint(message)
    if hint is None or PREFIX in message:
        return message
    return f"{message}\n{hint}"


__all__ = ["CHANGES", "PREFIX", "Numpy2Change", "numpy2_hint", "with_numpy2_hint"]
