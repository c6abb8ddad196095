"""What a worker call returns: :class:`CallResult`, its :class:`ErrorInfo`, and their checked
conversion from the worker's (untrusted) result frames, including the forbidden-act records.

Every string of a frame is student text (:mod:`grader.text`): it is made safe and clipped here, the one
place where the trusted side turns a worker's frames into results, whatever the sandbox side did.

Statuses: ``ok``, ``error``, ``not_implemented``, ``memory`` (reported by the worker) and ``timeout``,
``crashed``, ``forbidden``, ``protocol`` (decided by the grader).
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from ..sandbox_runtime import wire
from ..text import ERROR_MESSAGE_CHARS, TRACEBACK_CHARS, student_text, student_value

__all__ = ["STATUSES", "CallResult", "ErrorInfo", "Violations", "death_cause", "error_info", "maybe_not_the_student",
           "to_result"]
STATUSES = ("ok", "error", "not_implemented", "memory", "timeout", "crashed", "forbidden", "protocol")
_WORKER_STATUSES = frozenset({"ok", "error", "not_implemented", "memory"})


@dataclass(frozen=True)
class ErrorInfo:
    """A structured error from the worker (or about it). Strings are truncated, never parsed."""

    type: str
    message: str
    traceback: str = ""
    lineno: int | None = None
    filename: str | None = None
    offset: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class CallResult:
    status: str
    value: Any = None
    error: ErrorInfo | None = None
    duration_s: float = 0.0
    mutated: tuple[str, ...] = ()  # input arrays the student function modified in place (paths like "args[0]")
    violations: tuple[str, ...] = ()  # what was forbidden, readable (see Worker.violation_records)
    compute_s: float | None = None  # the student code's own time, as the worker measured it (untrusted)
    #: The student's own helper calls during this call, as the worker recorded them: untrusted plain JSON
    #: (at most 16 objects), validated by grader.suites.helper_calls before any use.
    helpers: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Violations:
    """The forbidden imports/calls/accesses a worker reported (at most 100, deduplicated, truncated)."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def details(self) -> tuple[str, ...]:
        return tuple(v["detail"] for v in self.records)

    def record(self, items: Any) -> None:
        """Add the worker's reports ``items`` (a list of objects); ``wire.WireError`` if malformed."""
        if not isinstance(items, list):
            raise wire.WireError("violations must be a list")
        for v in items[:100]:
            if not isinstance(v, dict):
                raise wire.WireError("a violation must be an object")
            clean = {k: student_text(str(v.get(k, "")), 500) for k in ("kind", "name", "detail")}
            if clean not in self.records and len(self.records) < 100:
                self.records.append(clean)

    def forbidden_or(self, result: CallResult) -> CallResult:
        """``result``, or a ``forbidden`` result if anything forbidden was reported."""
        if not self.records:
            return result
        first = self.records[0]
        kind = {"import": "ForbiddenImport", "call": "ForbiddenCall", "open": "ForbiddenImport"}.get(
            first["kind"], "ForbiddenTampering")
        err = ErrorInfo(kind, f"{first['detail']} - not allowed in this exercise")
        return CallResult(status="forbidden", error=err, duration_s=result.duration_s,
                          violations=self.details())


def to_result(frame: wire.Frame, duration: float, violations: Violations) -> CallResult:
    """The :class:`CallResult` of a ``result`` frame (its violations go to ``violations``);
    ``wire.WireError`` if the frame is malformed."""
    meta = frame.meta
    status = meta.get("status")
    if status not in _WORKER_STATUSES:
        raise wire.WireError(f"unknown status {str(status)[:40]!r}")
    violations.record(meta.get("violations", []))
    mutated = meta.get("mutated", [])
    if not isinstance(mutated, list) or not all(isinstance(m, str) for m in mutated):
        raise wire.WireError("'mutated' must be a list of str")
    error = None
    if status != "ok":
        error = error_info(meta.get("error"))
    compute = meta.get("duration_s")
    helpers = meta.get("helpers", [])
    compute = float(compute) if type(compute) in (int, float) and 0 <= compute <= duration else None
    return CallResult(status=status, value=student_value(frame.value) if status == "ok" else None, error=error,
                      duration_s=duration, mutated=tuple(student_text(m, 200) for m in mutated[:100]),
                      compute_s=compute,
                      helpers=tuple(student_value(h) for h in helpers[:16] if isinstance(h, dict)) if isinstance(helpers, list) else ())


def error_info(raw: Any) -> ErrorInfo:
    """The worker's error object, checked and truncated."""
    if not isinstance(raw, dict):
        raise wire.WireError("error must be an object")

    def s(key: str, limit: int) -> str:
        v = raw.get(key, "")
        return student_text(v, limit) if isinstance(v, str) else ""

    def i(key: str) -> int | None:
        v = raw.get(key)
        return v if type(v) is int else None

    return ErrorInfo(type=s("type", 100) or "Error", message=s("message", ERROR_MESSAGE_CHARS),
                     traceback=s("traceback", TRACEBACK_CHARS),
                     lineno=i("lineno"), filename=s("filename", 300) or None, offset=i("offset"),
                     text=s("text", 300) or None)


def death_cause(rc: int | None) -> tuple[str, ErrorInfo]:
    """The status and error of a worker that died during a call, from its return code ``rc`` as its fork
    server reaped it (negative: the signal that killed it; None: unknown)."""
    sig = -rc if rc is not None and rc < 0 else None
    if sig == signal.SIGXCPU:
        return "timeout", ErrorInfo("Timeout", "the worker used up its CPU time limit")
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (out of memory or CPU time?)" if sig == signal.SIGKILL else ""
        return "crashed", ErrorInfo("WorkerCrashed", f"the worker was killed by {name}{hint}")
    code = "unknown" if rc is None else str(rc)
    return "crashed", ErrorInfo("WorkerExited", f"the worker exited during the call (exit status {code}); "
                                                "did the code call os._exit or close the grader's pipes?")


#: Signals that a process does not get from its own faults: sent by the OOM killer, an operator or the
#: host (the grader's own kills end a worker as ``timeout`` or ``closed``, never through :func:`death_cause`).
EXTERNAL_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def maybe_not_the_student(message: str) -> bool:
    """True when :func:`death_cause`'s ``message`` may describe a death the student's code did not cause:
    a signal from outside (:data:`EXTERNAL_SIGNALS`), or an end nobody reported (the sandbox vanished).
    A segfault, an abort or an exit status is the code's own."""
    return (any(message.startswith(f"the worker was killed by {s.name}") for s in EXTERNAL_SIGNALS)
            or "(exit status unknown)" in message)
