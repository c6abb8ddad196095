"""Recognise a student error caused by a known numpy 2 change, and say so in one line.

Code that is right under numpy 1.26 can fail under the numpy 2 the grader runs: ``int()`` of a
1-element array, an element assigned a ``(1,)`` array, ``np.float64`` of a ``(1, 1, 1)`` slice (an
array under numpy 2, a scalar before), a Python int out of the array dtype's range (NEP 50), a
removed or moved name (``np.float_``, ``np.lib.pad``: built from numpy's own NumPy 2.0 lists). The student then sees a numpy message that does not name the
cause. :func:`numpy2_hint` maps such a message to a short explanation and fix;
:func:`with_numpy2_hint` appends it to a feedback message::

    message = with_numpy2_hint(f"conv2d raised {exc.type_name}: {exc.message}")

Only the text is inspected (the grader sees the student's exception as a message), so a hint says
"probably" where the same words can also come from a plain bug. Shipped in the student kit: the
self-checks (``coursekit.selfcheck``) add the hint under a failing test; the grader's feedback uses
it in ``grader.suites.context`` (every student exception's message passes there).
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import warnings
from dataclasses import dataclass

import numpy as np

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
)


#: Names removed from numpy's namespace before or in 2.0 that numpy's own list
#: (``numpy._expired_attrs_2_0``) leaves out, because they went through a deprecation first
#: (NumPy 2.0 migration guide, "removed members"; NumPy 1.23-1.25 release notes), with their replacement.
EARLIER_REMOVALS: dict[str, str] = {
    "product": "Use `np.prod` instead.",
    "cumproduct": "Use `np.cumprod` instead.",
    "msort": "Use `np.sort(a, axis=0)` instead.",
    "asscalar": "Use `a.item()` instead.",
    "alen": "Use `len(a)` or `a.shape[0]` instead.",
    "rank": "Use `a.ndim` instead.",
    "int0": "Use `np.intp` instead.",
    "uint0": "Use `np.uintp` instead.",
    "bool8": "Use `np.bool_` instead.",
    "in1d": "Use `np.isin` instead.",
    "trapz": "Use `np.trapezoid` instead.",
    "row_stack": "Use `np.vstack` instead.",
}

#: ndarray methods removed in NumPy 2.0 (migration guide), with their replacement.
REMOVED_METHODS: dict[str, str] = {
    "ptp": "Use `np.ptp(a)` instead.",
    "itemset": "Assign the element instead: `a[i, j] = value`.",
    "newbyteorder": "Use `a.view(a.dtype.newbyteorder(order))` instead.",
}


@functools.cache
def removed_names() -> dict[str, str]:
    """``np.<name>`` removed, with numpy's migration note: numpy's own lists of the installed numpy
    (``__expired_attributes__`` of NumPy 2.0, ``__former_attrs__`` of the builtin aliases) and
    :data:`EARLIER_REMOVALS`. Under numpy 1 the lists are absent and nothing needs naming."""
    notes = dict(EARLIER_REMOVALS)
    try:
        from numpy._expired_attrs_2_0 import __expired_attributes__
        notes.update(__expired_attributes__)
    except ImportError:
        pass
    numpy_types = {"float": "np.float64", "int": "np.int64", "complex": "np.complex128", "object": "np.object_",
                   "str": "np.str_", "bool": "np.bool_"}
    for alias in getattr(np, "__former_attrs__", {}):
        notes[alias] = (f"It was an alias of the builtin `{alias}`: write `{alias}`, or "
                        f"`{numpy_types.get(alias, 'np.' + alias + '_')}` for numpy's own type.")
    with warnings.catch_warnings():  # np.object / np.str warn of their future meaning on lookup
        warnings.simplefilter("ignore")
        return {name: note for name, note in notes.items() if not hasattr(np, name)}


@functools.cache
def private_lib_modules() -> frozenset[str]:
    """Submodules of ``numpy.lib`` that NumPy 2.0 made private (``numpy.lib.arraypad`` is now
    ``numpy.lib._arraypad_impl``): found from the ``_<name>_impl`` modules numpy ships."""
    return frozenset(m.name[1:-len("_impl")] for m in pkgutil.iter_modules(np.lib.__path__)
                     if m.name.startswith("_") and m.name.endswith("_impl") and not hasattr(np.lib, m.name[1:-len("_impl")]))


@functools.cache
def moved_lib_names() -> frozenset[str]:
    """Functions that numpy 1 also exported as ``np.lib.<name>`` (``np.lib.pad``) and numpy 2 keeps only
    as ``np.<name>``: the public names of the private ``numpy.lib`` submodules."""
    moved: set[str] = set()
    for module in private_lib_modules():
        try:
            names = importlib.import_module(f"numpy.lib._{module}_impl").__all__
        except (ImportError, AttributeError):
            continue
        moved.update(n for n in names if hasattr(np, n) and not hasattr(np.lib, n))
    return frozenset(moved)


_NUMPY_NAME = re.compile(r"module 'numpy' has no attribute '(?P<name>\w+)'|`np\.(?P<np>\w+)` was removed in the NumPy 2\.0"
                         r"|cannot import name '(?P<imported>\w+)' from 'numpy' ")
_LIB_NAME = re.compile(r"module 'numpy\.lib' has no attribute '(?P<name>\w+)'|cannot import name '(?P<imported>\w+)' from 'numpy\.lib' ")
_LIB_MODULE = re.compile(r"numpy\.lib\.(?P<name>\w+) (is now private|was an alias)|No module named 'numpy\.lib\.(?P<missing>\w+)'")
_METHOD = re.compile(r"'numpy\.ndarray' (object|type) has no attribute '(?P<name>\w+)'"
                     r"|type object 'numpy\.ndarray' has no attribute '(?P<type>\w+)'"
                     r"|`(?P<removed>\w+)` was removed from the ndarray class")  # numpy 2.0-2.3's own wording


def _first(match: re.Match[str] | None) -> str | None:
    return next((v for v in match.groupdict().values() if v), None) if match else None


def removed_name_hint(message: str) -> str | None:
    """The hint for an AttributeError / ImportError naming something NumPy 2.0 removed or moved, else None."""
    name = _first(_NUMPY_NAME.search(message))
    if name in removed_names():
        return f"`np.{name}` was removed in numpy 2. {removed_names()[name]}"
    name = _first(_LIB_NAME.search(message))
    if name in moved_lib_names():
        return f"`np.lib.{name}` was moved in numpy 2: it is `np.{name}` now."
    module = _first(_LIB_MODULE.search(message))
    if module == "emath":
        return "`np.lib.emath` was removed in numpy 2: it is `np.emath` now."
    if module in private_lib_modules():
        return (f"numpy 2 made `numpy.lib.{module}` private: call its functions from the main namespace "
                f"(e.g. `np.pad`, not `np.lib.{module}.pad`).")
    name = _first(_METHOD.search(message))
    if name in REMOVED_METHODS:
        return f"`ndarray.{name}` was removed in numpy 2. {REMOVED_METHODS[name]}"
    return None


def numpy2_hint(message: str) -> str | None:
    """The one-line hint for a message caused by a known numpy 2 change (``numpy 2 change: ...``), else None."""
    removed = removed_name_hint(message)
    if removed:
        return f"{PREFIX} {removed}"
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


__all__ = ["CHANGES", "EARLIER_REMOVALS", "PREFIX", "REMOVED_METHODS", "Numpy2Change", "moved_lib_names", "numpy2_hint",
           "private_lib_modules", "removed_names", "with_numpy2_hint"]
