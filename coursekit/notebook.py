"""Helpers the course notebooks use to call *your* functions (this file ships to students).

The notebooks never import ``exercises`` directly. They go through this module so that:

* ``student("conv")`` imports ``exercises.conv`` -- or ``solutions.conv`` when the environment sets
  ``COURSE_IMPL=solutions`` (course staff, CI) -- and picks up the edits you saved since last time;
* ``call(conv.conv2d, x, w)`` returns the result, or, while ``conv2d`` is still a stub, prints one
  friendly line instead of a traceback::

      ⏳ conv2d is not implemented yet — open exercises/conv.py

  and returns a :class:`Pending` placeholder. Passing a ``Pending`` on to ``call`` (or to the
  display helpers) quietly yields another ``Pending``, so the rest of the notebook still runs.
* ``check(...)`` prints ✅ or ❌ for a small worked example instead of raising.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy as np

IMPL_ENV = "COURSE_IMPL"
QUICK_ENV = "COURSE_QUICK"
PACKAGES = ("exercises", "solutions")
#: The stubs raise ``NotImplementedError("<id>: replace this line with your code (<module>.<function>)")``.
_STUB_ORIGIN = re.compile(r"\((\w+)\.(\w+)\)\s*$")


def impl_package() -> str:
    """The package whose functions the notebooks call: ``$COURSE_IMPL``, default ``exercises``.

    ``solutions`` is the reference; any other importable package with the same modules works too.
    """
    package = os.environ.get(IMPL_ENV, "").strip() or "exercises"
    if not package.isidentifier():
        raise ValueError(f"{IMPL_ENV}={package!r}: expected a package name such as {' or '.join(PACKAGES)}")
    return package


def quick() -> bool:
    """True when ``$COURSE_QUICK`` asks for short runs (CI executes the notebooks this way)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def student(module: str, *, reload: bool = True) -> ModuleType:
    """Import ``<package>.<module>`` (``exercises.conv`` by default).

    With ``reload`` (the default) the package's modules are imported afresh, so re-running the
    cell picks up the changes you saved in ``exercises/*.py`` (re-run the cells that use them too).
    """
    package = impl_package()
    if reload:
        for loaded in [k for k in sys.modules if k.startswith(package + ".")]:
            del sys.modules[loaded]
        importlib.invalidate_caches()
    return importlib.import_module(f"{package}.{module}")


@dataclass(frozen=True)
class Pending:
    """Stands in for the result of a function that is still a stub."""

    function: str  # what the notebook called, e.g. "conv2d"
    missing: str  # the stub that raised, e.g. "pad2d" (often the same)
    path: str  # the file to open, e.g. "exercises/padding.py"

    @property
    def message(self) -> str:
        if self.missing == self.function:
            return f"⏳ {self.function} is not implemented yet — open {self.path}"
        return f"⏳ {self.function} needs {self.missing}, which is not implemented yet — open {self.path}"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Pending({self.message!r})"


def pending_for(func: Callable[..., Any], exc: NotImplementedError) -> Pending:
    """The :class:`Pending` describing ``exc`` raised while calling ``func``."""
    name = getattr(func, "__name__", repr(func))
    module = (getattr(func, "__module__", "") or "").rpartition(".")[2] or "?"
    package = impl_package()
    match = _STUB_ORIGIN.search(str(exc))
    missing_module, missing = (match.group(1), match.group(2)) if match else (module, name)
    return Pending(function=name, missing=missing, path=f"{package}/{missing_module}.py")


def is_pending(*values: Any) -> bool:
    """True if any value is a :class:`Pending`, or a list, tuple or dict holding one."""
    for v in values:
        if isinstance(v, Pending):
            return True
        if isinstance(v, (list, tuple)) and is_pending(*v):
            return True
        if isinstance(v, dict) and is_pending(*v.values()):
            return True
    return False


def ready(*values: Any) -> bool:
    """True if no value is a :class:`Pending` (use it to guard a cell's printing)."""
    return not is_pending(*values)


def attempt(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``, or a :class:`Pending` if it (or a stub it calls) is not implemented.

    Silent: nothing is printed. A ``Pending`` argument short-circuits to that same ``Pending``.
    Every other exception propagates unchanged: a real bug deserves its traceback.
    """
    for value in (*args, *kwargs.values()):
        if isinstance(value, Pending):
            return value
    try:
        return func(*args, **kwargs)
    except NotImplementedError as exc:
        return pending_for(func, exc)


#: message -> IPython execution count of the cell that last printed it
_printed: dict[str, int] = {}


def _execution_count() -> int | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count


def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Like :func:`attempt`, but prints the friendly line when the function is a stub.

    In a notebook each line is printed once per cell, however often the cell calls the stub.
    """
    result = attempt(func, *args, **kwargs)
    if isinstance(result, Pending) and not any(r is result for r in (*args, *kwargs.values())):
        count = _execution_count()
        if count is None or _printed.get(result.message) != count:
            print(result.message)
        if count is not None:
            _printed[result.message] = count
    return result


def _difference(got: Any, expected: Any, atol: float) -> str | None:
    """None when ``got`` equals ``expected``, else what differs."""
    if isinstance(expected, str) or isinstance(got, str):
        return None if got == expected else f"got {got!r}, expected {expected!r}"
    try:
        got_arr, exp_arr = np.asarray(got), np.asarray(expected)
    except ValueError:  # ragged: compare item by item
        got_arr = exp_arr = None
    if got_arr is None or got_arr.dtype == object or exp_arr.dtype == object:
        if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
            if len(got) != len(expected):
                return f"{len(got)} items, expected {len(expected)}"
            for k, (g, e) in enumerate(zip(got, expected, strict=True)):
                problem = _difference(g, e, atol)
                if problem:
                    return f"item {k}: {problem}"
            return None
        return None if got == expected else f"got {got!r}, expected {expected!r}"
    if got_arr.shape != exp_arr.shape:
        return f"shape {got_arr.shape}, expected {exp_arr.shape}"
    try:
        same = bool(np.allclose(got_arr, exp_arr, atol=atol, rtol=0, equal_nan=True))
    except TypeError:
        same = bool(np.all(got_arr == exp_arr))
    return None if same else f"got\n{got_arr}\nexpected\n{exp_arr}"


def check(label: str, got: Any, expected: Any, *, atol: float = 1e-6) -> bool:
    """Print ✅ when ``got`` equals ``expected`` (same shape, values within ``atol``), ❌ otherwise.

    A ``got`` that is or holds a :class:`Pending` prints nothing more (its line was already printed)
    and returns False.
    """
    if is_pending(got):
        return False
    problem = _difference(got, expected, atol)
    print(f"✅ {label}" if problem is None else f"❌ {label}: {problem}")
    return problem is None


def shape(value: Any) -> Any:
    """``value.shape`` as a tuple, or the :class:`Pending` itself."""
    return value if isinstance(value, Pending) else tuple(np.shape(value))


def show_images(images: Any, titles: Any = None, *, cmap: str = "gray", size: float = 2.0) -> None:
    """Draw 2-D arrays side by side (nothing happens for a :class:`Pending`)."""
    if is_pending(images) or (isinstance(images, (list, tuple)) and is_pending(*images)):
        return
    import matplotlib.pyplot as plt

    images = [np.asarray(im, dtype=np.float64) for im in images]
    titles = list(titles) if titles is not None else [""] * len(images)
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.3), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(image, cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    plt.show()
