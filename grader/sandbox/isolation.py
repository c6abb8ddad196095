"""Which isolation a worker gets: probe bubblewrap and Landlock, choose a mode, describe it.

Modes, best first: ``bwrap``, ``landlock``, ``none`` (only with ``allow_unsandboxed``);
``GRADER_ISOLATION=bwrap|landlock|none|auto`` forces one. Nothing here starts a worker.
"""
from __future__ import annotations

import os
import sys

from . import bwrap as bw
from . import seccomp_filter
from ..sandbox_runtime import landlock

__all__ = ["WorkerError", "bwrap_settings", "choose_mode", "describe", "isolation_available"]

_MODES = ("bwrap", "landlock", "none")


class WorkerError(RuntimeError):
    """The grader could not start a worker (no isolation available, bad layout, sandbox failure).

    Never caused by student code: no student file is read before the worker reports ready.
    """


def _requested_mode(mode: str | None) -> str:
    m = (mode or os.environ.get("GRADER_ISOLATION") or "auto").strip().lower()
    if m not in (*_MODES, "auto"):
        raise WorkerError(f"GRADER_ISOLATION={m!r}: expected one of bwrap, landlock, none, auto")
    return m


def bwrap_settings() -> tuple[str | None, bool]:
    """(problem or None, whether ``--disable-userns`` works); seccomp also denies nested namespaces."""
    exe = os.path.realpath(sys.executable)
    problem = bw.probe(bw.bwrap_binary(), exe, True)
    if problem and bw.probe(bw.bwrap_binary(), exe, False) is None:
        return None, False
    return problem, True


def _bwrap_problem() -> str | None:
    return bwrap_settings()[0]


def _landlock_problem() -> str | None:
    abi = landlock.abi_version()
    return None if abi >= 1 else "Landlock is not available in this kernel"


def describe(mode: str, applied: dict | None = None) -> str:
    """A readable name of the isolation, e.g. ``"bubblewrap+seccomp+rlimits"``; ``applied`` is what the
    worker reported (None: what the mode would apply now)."""
    if mode == "none":
        return "none (--allow-unsandboxed)"
    parts = ["bubblewrap" if mode == "bwrap" else "landlock"]
    if applied is None or applied.get("seccomp"):
        if applied is not None or seccomp_filter.supported():
            parts.append("seccomp")
    if applied is None or applied.get("rlimits"):
        parts.append("rlimits")
    return "+".join(parts)


def choose_mode(requested: str | None = None, allow_unsandboxed: bool = False) -> str:
    """The isolation mode a worker would use now; raises :class:`WorkerError` if none is acceptable."""
    m = _requested_mode(requested)
    if m == "bwrap":
        problem = _bwrap_problem()
        if problem:
            raise WorkerError(problem)
        return m
    if m == "landlock":
        problem = _landlock_problem()
        if problem:
            raise WorkerError(problem)
        return m
    if m == "none":
        if not allow_unsandboxed:
            raise WorkerError("GRADER_ISOLATION=none refuses to run student code without --allow-unsandboxed")
        return m
    reasons = []
    for candidate, check in (("bwrap", _bwrap_problem), ("landlock", _landlock_problem)):
        problem = check()
        if problem is None:
            return candidate
        reasons.append(problem)
    if allow_unsandboxed:
        return "none"
    raise WorkerError("no sandbox is available (" + "; ".join(reasons) + "); pass --allow-unsandboxed to run "
                      "student code without isolation")


def isolation_available(mode: str | None = None) -> str | None:
    """The isolation a worker would get now (e.g. ``"bubblewrap+seccomp+rlimits"``), None if none."""
    try:
        return describe(choose_mode(mode, allow_unsandboxed=False))
    except WorkerError:
        return None
