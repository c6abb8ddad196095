"""Which isolation a worker gets: probe bubblewrap, the uid mode and Landlock, choose a mode, describe it.

Modes, best first: ``bwrap`` (user namespaces), ``uid`` (running as root without namespaces, as in a
Docker or Kubernetes container: a dedicated unprivileged uid per sandbox, with Landlock on top where the
kernel has it; :mod:`.uidmode`), ``landlock`` (not root, no namespaces), ``none`` (only with
``allow_unsandboxed``); ``GRADER_ISOLATION=bwrap|uid|landlock|none|auto`` forces one. When none is
acceptable, :class:`NoIsolation` says why and what staff can do. Nothing here starts a worker.
"""
from __future__ import annotations

import os
import sys

from . import bwrap as bw
from . import seccomp_filter, uidmode
from ..sandbox_runtime import landlock

__all__ = ["NoIsolation", "WorkerError", "bwrap_settings", "choose_mode", "describe", "isolation_available"]

_MODES = ("bwrap", "uid", "landlock", "none")


class WorkerError(RuntimeError):
    """The grader could not start a worker (no isolation available, bad layout, sandbox failure).

    Never caused by student code: no student file is read before the worker reports ready.
    """


class NoIsolation(WorkerError):
    """No acceptable isolation exists on this machine: no student code can run. A message for staff
    (the course's, not the student's fault): what was tried, why each failed, what to change."""


def _requested_mode(mode: str | None) -> str:
    m = (mode or os.environ.get("GRADER_ISOLATION") or "auto").strip().lower()
    if m not in (*_MODES, "auto"):
        raise WorkerError(f"GRADER_ISOLATION={m!r}: expected one of bwrap, uid, landlock, none, auto")
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


def _uid_problem() -> str | None:
    return uidmode.problem()


def uid_landlock() -> bool:
    """Whether the uid mode adds Landlock (the kernel serves it)."""
    return landlock.abi_version() >= 1


def describe(mode: str, applied: dict | None = None) -> str:
    """A readable name of the isolation, e.g. ``"bubblewrap+seccomp+rlimits"``, ``"uid+landlock+seccomp+rlimits"``;
    ``applied`` is what the worker reported (None: what the mode would apply now)."""
    if mode == "none":
        return "none (--allow-unsandboxed)"
    parts = [{"bwrap": "bubblewrap", "uid": "uid"}.get(mode, "landlock")]
    if mode == "uid" and (applied.get("landlock") if applied is not None else uid_landlock()):
        parts.append("landlock")
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
            raise NoIsolation(f"GRADER_ISOLATION=bwrap: {problem}")
        return m
    if m == "landlock":
        problem = _landlock_problem()
        if problem:
            raise NoIsolation(f"GRADER_ISOLATION=landlock: {problem}")
        return m
    if m == "uid":
        problem = _uid_problem()
        if problem:
            raise NoIsolation(f"GRADER_ISOLATION=uid: {problem}")
        return m
    if m == "none":
        if not allow_unsandboxed:
            raise WorkerError("GRADER_ISOLATION=none refuses to run student code without --allow-unsandboxed")
        return m
    reasons = []
    for candidate, check in (("bwrap", _bwrap_problem), ("uid", _uid_problem), ("landlock", _landlock_problem)):
        problem = check()
        if problem is None:
            return candidate
        reasons.append(f"{candidate}: {problem}")
    if allow_unsandboxed:
        return "none"
    raise NoIsolation(no_isolation_message(reasons))


def no_isolation_message(reasons: list[str]) -> str:
    """The staff-facing explanation when no sandbox can start (no student code ran: nobody's grade is 0)."""
    return ("The grader cannot isolate student code on this machine, so it graded nothing (this is not the "
            "student's fault). It tried: " + "; ".join(reasons) + ". Any one of these fixes it: run the grader "
            "as root inside the container (each worker then gets an unprivileged uid of its own: Gradescope's "
            "autograder runs as root); allow user namespaces (a host with unprivileged user namespaces and a "
            "container seccomp profile that permits them); or a host kernel with Landlock (Linux 5.13 or later, "
            "landlock in the kernel's lsm= list). Pass --allow-unsandboxed only where every submission is trusted.")


def isolation_available(mode: str | None = None) -> str | None:
    """The isolation a worker would get now (e.g. ``"bubblewrap+seccomp+rlimits"``), None if none."""
    try:
        return describe(choose_mode(mode, allow_unsandboxed=False))
    except WorkerError:
        return None
