"""In-process guards of the worker: forbidden imports and calls, reported the moment they happen.

This is the *second* layer. The first is the filesystem view (:mod:`view`): only course.yml's
allowed packages are visible, and forbidden packages and subpackages are absent from it
(bubblewrap), or neither on ``sys.path`` nor readable (Landlock). Here, after the worker's own
imports and before student code:

* an audit hook (``sys.addaudithook``; cannot be removed) sees every ``import`` statement and
  ``__import__``, every file opened (``open``), every ``ctypes.dlopen``, and attempts to rewrite the
  guard's own functions (``object.__setattr__`` on ``__code__``...);
* a finder at the front of ``sys.meta_path`` sees ``importlib.import_module`` (which raises no audit
  event) and refuses forbidden names;
* forbidden callables (``numpy.convolve``...) are replaced in every loaded module of their package
  by a stub that reports and raises; the originals are not kept anywhere in the process;
* :meth:`Guard.check` (after every call and at exit) flags forbidden names present in ``sys.modules``
  and a removed or displaced import finder.

A violation is sent to the grader immediately through ``report`` (a frame on the result pipe), so
the student cannot take it back by catching the exception or by clearing worker state afterwards.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Callable


class ForbiddenImport(ModuleNotFoundError):
    """Importing a module this exercise forbids."""


class ForbiddenCall(RuntimeError):
    """Calling a function this exercise forbids."""


def _matches(name: str, prefixes: tuple[str, ...]) -> str | None:
    for p in prefixes:
        if name == p or name.startswith(p + "."):
            return p
    return None


# numpy's C implementations behind numpy.convolve / numpy.correlate
_IMPLEMENTATIONS = {
    "numpy.convolve": ("numpy._core.multiarray.correlate", "numpy._core.multiarray.correlate2",
                       "numpy.core.multiarray.correlate", "numpy.core.multiarray.correlate2"),
    "numpy.correlate": ("numpy._core.multiarray.correlate", "numpy._core.multiarray.correlate2",
                        "numpy.core.multiarray.correlate", "numpy.core.multiarray.correlate2"),
}


class _ForbiddenFinder:
    """A meta-path finder that refuses forbidden module names (covers ``importlib.import_module``)."""

    def __init__(self, guard: "Guard"):
        self._guard = guard

    def find_spec(self, name, path=None, target=None):
        hit = _matches(name, self._guard.forbidden_imports)
        if hit and self._guard.from_student():
            self._guard.violation("import", name, f"import of {name!r} (forbidden: {hit})")
            raise ForbiddenImport(f"ForbiddenImport: {name!r} may not be imported in this exercise", name=name)
        return None  # a library probing for an optional package: the filesystem view answers

    def invalidate_caches(self):
        return None


class Guard:
    """Holds the forbidden lists and the violation record of one worker."""

    def __init__(self, forbidden_imports: list[str], forbidden_calls: list[str], forbidden_paths: list[str],
                 report: Callable[[dict], None], *, transparent: list[str] = (), libraries: list[str] = ()):
        self.forbidden_imports = tuple(forbidden_imports)
        self._transparent = tuple(p.rstrip(os.sep) + os.sep for p in transparent)
        self._libraries = tuple(p.rstrip(os.sep) + os.sep for p in libraries)
        self.forbidden_calls = tuple(forbidden_calls)
        self.forbidden_paths = tuple(os.path.normpath(p) + os.sep for p in forbidden_paths)
        self.violations: list[dict] = []
        self._seen: set[tuple[str, str]] = set()
        self._report = report
        self._local = threading.local()
        self._finder = _ForbiddenFinder(self)
        self._meta_path = None
        self._protected: set[int] = set()

    # ---------------------------------------------------------------- recording
    def violation(self, kind: str, name: str, detail: str) -> None:
        key = (kind, name)
        if key in self._seen:
            return
        self._seen.add(key)
        v = {"kind": kind, "name": name[:300], "detail": detail[:500]}
        self.violations.append(v)
        try:
            self._report(v)
        except Exception:  # the grader also gets the list with the next result
            pass

    def from_student(self) -> bool:
        """Whether the code asking for a forbidden module is the student's, not a library's probe.

        Walks the stack outwards, skipping the import machinery, the stdlib and the worker; the first
        frame left decides: inside an allowed library (torch probing for optional packages) means no
        violation - the import is still refused - anything else (the student's files, ``exec``'d
        strings) is the student's attempt. A forged ``co_filename`` can only hide a refused attempt.
        """
        f = sys._getframe(1)
        while f is not None:
            fn = f.f_code.co_filename
            if fn.startswith(self._libraries):
                return False
            if not (fn.startswith("<frozen ") or fn.startswith(self._transparent)):
                return True
            f = f.f_back
        return False

    # ---------------------------------------------------------------- installation
    def install(self) -> None:
        self._patch_calls()
        self._wrap_importlib()
        sys.meta_path.insert(0, self._finder)
        self._meta_path = sys.meta_path
        self._protected = {id(o) for o in (Guard, _ForbiddenFinder, Guard._audit, Guard.violation, Guard.check,
                                           _ForbiddenFinder.find_spec, _matches, self._finder, *self._wrappers)}
        sys.addaudithook(self._audit)

    def _wrap_importlib(self) -> None:
        """``importlib.import_module`` / ``importlib.util.find_spec`` raise no audit event, and for
        ``"scipy.signal"`` with scipy absent the finder is only ever asked about ``"scipy"``: check the
        full name they are given."""
        import importlib
        import importlib.util

        guard = self

        def checked(original):
            def wrapper(name, package=None):
                full = name
                if type(name) is str and name.startswith(".") and type(package) is str:
                    try:
                        full = importlib.util.resolve_name(name, package)
                    except (ImportError, ValueError):
                        pass
                hit = _matches(full, guard.forbidden_imports) if type(full) is str else None
                if hit and guard.from_student():
                    guard.violation("import", full, f"import of {full!r} (forbidden: {hit})")
                    raise ForbiddenImport(f"ForbiddenImport: {full!r} may not be imported in this exercise",
                                          name=full)
                return original(name, package)

            wrapper.__name__ = original.__name__
            wrapper.__qualname__ = original.__qualname__
            wrapper.__doc__ = original.__doc__
            return wrapper

        importlib.import_module = checked(importlib.import_module)
        importlib.util.find_spec = checked(importlib.util.find_spec)
        self._wrappers = (importlib.import_module, importlib.util.find_spec)

    def _patch_calls(self) -> None:
        for dotted in self.forbidden_calls:
            modname, _, attr = dotted.rpartition(".")
            mod = sys.modules.get(modname)
            if mod is None or not hasattr(mod, attr):
                continue  # not loaded: the import finder does not cover it, but it is not importable either
            targets = {id(getattr(mod, attr))}
            for impl in _IMPLEMENTATIONS.get(dotted, ()):
                m, _, a = impl.rpartition(".")
                if m in sys.modules and hasattr(sys.modules[m], a):
                    targets.add(id(getattr(sys.modules[m], a)))
            stub = self._make_stub(dotted)
            top = modname.split(".")[0]
            for name, m in list(sys.modules.items()):
                if m is None or not (name == top or name.startswith(top + ".")):
                    continue
                d = getattr(m, "__dict__", None)
                if not isinstance(d, dict):
                    continue
                for k, v in list(d.items()):
                    if id(v) in targets:
                        try:
                            setattr(m, k, stub)
                        except (AttributeError, TypeError):
                            pass
            del targets

    def _make_stub(self, dotted: str):
        guard = self

        def forbidden(*args, **kwargs):
            guard.violation("call", dotted, f"call of {dotted} (forbidden in this exercise)")
            raise ForbiddenCall(f"ForbiddenCall: {dotted} may not be used in this exercise")

        forbidden.__name__ = dotted.rpartition(".")[2]
        forbidden.__qualname__ = forbidden.__name__
        return forbidden

    # ---------------------------------------------------------------- the audit hook
    def _audit(self, event: str, args: tuple) -> None:
        if event not in _EVENTS:
            return
        local = self._local
        if getattr(local, "busy", False):
            return
        local.busy = True
        try:
            if event == "import":
                name = args[0]
                hit = _matches(name, self.forbidden_imports) if type(name) is str else None
                if hit and self.from_student():
                    self.violation("import", name, f"import of {name!r} (forbidden: {hit})")
                    raise ForbiddenImport(f"ForbiddenImport: {name!r} may not be imported in this exercise",
                                          name=name)
            elif event in ("open", "ctypes.dlopen", "os.listdir", "os.scandir"):
                path = args[0] if args else None
                if isinstance(path, bytes):
                    path = os.fsdecode(path)
                if type(path) is str and self.forbidden_paths:
                    full = os.path.realpath(path) + os.sep
                    for p in self.forbidden_paths:
                        if full.startswith(p) and self.from_student():
                            self.violation("open", p.rstrip(os.sep), f"access to {path[:200]!r} (a forbidden package)")
                            raise PermissionError(f"ForbiddenImport: {path[:200]!r} belongs to a forbidden package")
            elif event in ("object.__setattr__", "object.__delattr__"):
                if args and id(args[0]) in self._protected:
                    self.violation("tamper", str(args[1] if len(args) > 1 else ""), "attempt to modify the grader's guard")
                    raise PermissionError("the grader's guard cannot be modified")
        finally:
            local.busy = False

    # ---------------------------------------------------------------- after each call
    def check(self) -> list[dict]:
        """Flag forbidden modules present in ``sys.modules`` and a removed import finder."""
        for name in list(sys.modules):
            hit = _matches(name, self.forbidden_imports) if type(name) is str else None
            if hit:
                self.violation("import", name, f"{name!r} found in sys.modules (forbidden: {hit})")
        mp = sys.meta_path
        if mp is not self._meta_path or not mp or mp[0] is not self._finder:
            self.violation("tamper", "sys.meta_path", "the grader's import finder was removed or displaced")
        return self.violations


_EVENTS = frozenset({"import", "open", "ctypes.dlopen", "os.listdir", "os.scandir",
                     "object.__setattr__", "object.__delattr__"})
