"""Talk to sandboxed workers: :class:`Worker`'s lifecycle and call API.

A worker is one exercise's process, forked from a :class:`~.sandbox.Sandbox` (one per submission and
view). Its parts live beside it: the sandbox and its fork server in :mod:`.sandbox`, the limits and the
worker's configuration in :mod:`.policy`, the choice of isolation in :mod:`.isolation`, the framed pipe
exchange in :mod:`.channel`, and the checked results in :mod:`.results`; every public name stays
importable here.

One :class:`Worker` per exercise::

    limits = SandboxLimits(time_limit_s=60, memory_limit_mb=1024, forbidden_imports=("torch",),
                           forbidden_calls=("numpy.convolve",))
    with Sandbox(student_dir, limits=limits) as sandbox:          # once per submission (and view)
        with Worker(student_dir, limits=limits, sandbox=sandbox) as w:
            r = w.call("conv", "conv2d", args=[x, w_, b], kwargs={"stride": (2, 1)})
            if r.ok: use(r.value)      # plain numpy arrays / numbers / str / None / lists / tuples / dicts
            else: report(r.status, r.error)

``Worker(student_dir, limits=limits)`` without a sandbox starts a private one, closed with the worker.

Isolation modes, best first (``GRADER_ISOLATION=bwrap|uid|landlock|none|auto`` forces one):

* ``bwrap`` - bubblewrap namespaces and filesystem view (:mod:`bwrap`) around the sandbox, plus seccomp
  and rlimits applied by each worker itself; a worker's process group is killed at its end, the whole
  PID namespace at the sandbox's.
* ``uid`` - root without user namespaces (a Docker or Kubernetes container): the sandbox's fork server
  and workers run under a uid/gid leased for that sandbox alone, with the grader's secrets unreadable to
  it (:mod:`uidmode`), seccomp, rlimits, no-new-privs, undumpable, and Landlock with the grants below
  where the kernel has it.
* ``landlock`` - when user namespaces are unavailable (and not root): Landlock restricts reads to the system trees
  and the Python installation without any site directory, the allowed packages (without forbidden
  subpackages), the student copy and the runtime; writes to a scratch directory; signals to the
  worker's own domain (each worker applies it to itself); plus seccomp and rlimits; a killed process
  group. ``sys.path`` holds a private
  directory of links to the allowed packages only.
* ``none`` - only with ``allow_unsandboxed=True``: rlimits and the in-process guard only.

Which packages a worker sees: ``SandboxLimits.packages`` (course.yml ``allowed_packages``, passed by
``grader.grade``) minus ``forbidden_imports``, by :func:`view.visible_packages` - the one place.

Statuses of a :class:`CallResult`: ``ok``, ``error`` (an exception or an invalid return value),
``not_implemented``, ``memory`` (MemoryError), ``timeout`` (the exercise's wall-clock budget ran
out), ``crashed`` (the worker died), ``forbidden`` (a forbidden import/call/file was attempted, at
any time since the worker started) and ``protocol`` (the worker sent malformed or oversized data).
After ``timeout``, ``crashed`` or ``protocol`` the worker is dead and every later call returns the
same status at once.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..sandbox_runtime import wire
from ..sandbox_runtime.wire import Build
from .channel import ChannelClosed, ChannelTimeout
from .isolation import WorkerError, choose_mode, describe, isolation_available
from .policy import SandboxLimits, worker_config
from .results import STATUSES, CallResult, ErrorInfo, Violations, death_cause, to_result
from .sandbox import ForkedWorker, Sandbox, new_token, sandbox_key
from .view import PythonView

__all__ = ["Build", "CallResult", "ErrorInfo", "SandboxLimits", "STATUSES", "Sandbox", "Worker", "WorkerError", "choose_mode",
           "isolation_available"]


class Worker:
    """A fresh sandboxed worker process for one exercise (a context manager).

    Forked from ``sandbox`` (one :class:`~.sandbox.Sandbox` per submission and view) when given; else
    the worker starts a private sandbox of its own, closed with it."""

    def __init__(self, student_dir: Path | str, package: str = "exercises", limits: SandboxLimits | None = None,
                 *, mode: str | None = None, sandbox: Sandbox | None = None):
        if limits is None:
            raise TypeError("a worker needs its limits: SandboxLimits.of(course.limits(exercise_id)), or "
                            "SandboxLimits(time_limit_s=..., memory_limit_mb=...)")
        self.student_dir = Path(student_dir)
        self.package = package
        self.limits = limits
        #: appears in the worker's command line: lets tests find every process of this worker
        self.token = new_token()
        if sandbox is not None and sandbox.key != sandbox_key(limits):
            raise WorkerError("this sandbox shows another view than the worker's limits ask for")
        self._own = sandbox is None
        self._sandbox = sandbox or Sandbox(student_dir, package, limits, mode=mode, token=self.token)
        self.mode: str | None = None
        self.applied: dict = {}
        self._forked: ForkedWorker | None = None
        self._used_s = 0.0
        self._dead: tuple[str, ErrorInfo] | None = None
        self._violations = Violations()
        self.startup_s: float | None = None  # seconds from start() to the worker's "ready"
        self._t0 = 0.0

    # -------------------------------------------------------------- public properties
    @property
    def isolation(self) -> str:
        return describe(self.mode, self.applied) if self.mode else "not started"

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.limits.time_limit_s - self._used_s)

    @property
    def stdout(self) -> str:
        return self._forked.out.text() if self._forked else ""

    @property
    def stderr(self) -> str:
        own = self._forked.err.text() if self._forked else ""
        return own if own.strip() or not self._own else self._sandbox.stderr

    @property
    def violations(self) -> tuple[str, ...]:
        """Forbidden imports/calls/accesses seen so far, readable (also after :meth:`close`)."""
        return self._violations.details()

    @property
    def violation_records(self) -> tuple[dict, ...]:
        """The same as dicts ``{"kind": "import"|"call"|"open"|"tamper", "name", "detail"}``."""
        return tuple(dict(v) for v in self._violations.records)

    @property
    def alive(self) -> bool:
        return self._forked is not None and self._dead is None

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> "Worker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, wait: bool = True) -> None:
        """Fork the worker (no student code runs yet). ``wait=False`` returns at once, so that a worker
        can start while the grader is busy elsewhere; it is then awaited on first use."""
        if self._forked is None:
            self._t0 = time.monotonic()
            try:
                if self._own:
                    self._sandbox.start()
                self.mode = self._sandbox.mode
                self._forked = self._sandbox.fork(self.token, self.limits.max_result_mb, self.limits.max_output_kb,
                                                  on_violation=lambda meta: self._violations.record([meta]))
                sb = self._sandbox
                self._cfg = self._config(sb.view, sb.student_root, sb.runtime_root, self._forked.scratch)
                self._send_init()
            except BaseException:
                self._teardown()
                raise
        if wait and self.startup_s is None:
            try:
                self._handshake(self._t0 + self.limits.startup_timeout_s)
            except BaseException:
                self._dead = ("crashed", ErrorInfo("WorkerError", "the worker failed to start"))
                self._teardown()
                raise
            self.startup_s = time.monotonic() - self._t0

    def _send_init(self) -> None:
        data = b"".join(bytes(memoryview(c)) for c in wire.encode_frame("init", self._cfg))
        try:
            self._forked.channel.write_all(data, time.monotonic() + 10)
        except ChannelTimeout:
            raise WorkerError("the worker does not read its configuration") from None
        except ChannelClosed as e:
            raise WorkerError(f"the worker died at start-up: {self._start_failure()} ({e})") from None

    def _config(self, view: PythonView, student_root: str, runtime_root: str, scratch: str) -> dict:
        """:func:`policy.worker_config` for this worker (a method, so the attack tests can weaken it)."""
        return worker_config(self.limits, self.mode, self.package, view, student_root, runtime_root, scratch)

    def _start_failure(self) -> str:
        return (self._sandbox.failure() or self.stderr.strip())[-1500:]

    def _handshake(self, deadline: float) -> None:
        try:
            frame = self._forked.channel.exchange([], deadline, until=("ready", "fatal"))
        except ChannelTimeout:
            raise WorkerError(f"the worker did not start within {self.limits.startup_timeout_s}s") from None
        except (ChannelClosed, wire.WireError) as e:
            self._reap(0.5)
            raise WorkerError(f"the worker failed to start ({e}): {self._start_failure()}") from None
        if frame.kind == "fatal":
            raise WorkerError(f"the worker could not confine itself: {str(frame.meta.get('message'))[:1500]}")
        applied = frame.meta.get("applied")
        self.applied = applied if isinstance(applied, dict) else {}
        if self.mode != "none" and self.applied.get("uid") == 0 and self.mode == "bwrap":
            raise WorkerError("the sandboxed worker runs as root; refusing")
        if self.mode == "uid" and (self.applied.get("uid") != self._sandbox.uid or not self.applied.get("seccomp")):
            raise WorkerError(f"the uid sandbox's worker runs as uid {self.applied.get('uid')} (expected "
                              f"{self._sandbox.uid}) or without its seccomp filter; refusing")

    # -------------------------------------------------------------- requests
    def call(self, module: str, function: str, args: list | tuple = (), kwargs: dict | None = None,
             *, check_mutation: bool = True, watch: list | None = None) -> CallResult:
        """Call ``<package>.<module>.<function>(*args, **kwargs)`` in the worker; ``watch`` (``[(module, function)]``:
        the student's own helpers) asks it to report their calls during this one (``CallResult.helpers``)."""
        meta = {"op": "call", "module": module, "function": function, "check_mutation": check_mutation}
        if watch:
            meta["watch"] = [[str(m), str(f)] for m, f in watch]
        return self._request(meta, (list(args), dict(kwargs or {})))

    def import_module(self, module: str) -> CallResult:
        """Import ``<package>.<module>`` (a SyntaxError comes back with ``lineno``/``filename``)."""
        return self._request({"op": "import", "module": module})

    def describe_model(self, module: str = "convnet", builder: str = "build_convnet",
                       input_shape: tuple[int, ...] = (2, 1, 28, 28)) -> CallResult:
        """Layers, parameter counts and output shapes of ``builder()``'s torch model (plain data)."""
        return self._request({"op": "describe_model", "module": module, "builder": builder,
                              "input_shape": [int(d) for d in input_shape]})

    def train_and_probe(self, module: str, train_images, train_labels, probe_images, epochs: int | None = None,
                        seed: int = 0, threads: int | None = None, max_values: int = 2_000_000,
                        train_kwargs: dict | None = None) -> CallResult:
        """Train the student's ``build_convnet()`` with their ``train`` on the training set only; the value is
        ``{"names", "params", "probe_logits", "train_seconds", "threads"}`` (see ``torch_ops.train_and_probe``),
        for the caller to validate. ``probe_images`` are float32 NCHW training images; no test data is sent."""
        value = {"train_images": train_images, "train_labels": train_labels, "probe_images": probe_images}
        meta = {"op": "train_probe", "module": module, "epochs": epochs, "seed": int(seed),
                "threads": None if threads is None else int(threads), "max_values": int(max_values),
                "train_kwargs": dict(train_kwargs or {})}
        json.dumps(meta)  # plain data only
        return self._request(meta, value)

    def _request(self, meta: dict, value: Any = None) -> CallResult:
        if self._forked is None:
            raise WorkerError("worker not started (use it as a context manager)")
        if self._dead is None and self.startup_s is None:
            self.start()
        if self._dead is not None:
            status, err = self._dead
            return self._violations.forbidden_or(CallResult(status=status, error=err))
        chunks = wire.encode_frame("call", meta, value, has_value=value is not None)  # TypeError on bad args
        if self.remaining_s <= 0:
            return self._violations.forbidden_or(self._die("timeout", self._timeout_error(), 0.0))
        t0 = time.monotonic()
        try:
            frame = self._forked.channel.exchange(chunks, t0 + self.remaining_s, until=("result",))
        except ChannelTimeout:
            self._used_s = self.limits.time_limit_s
            return self._violations.forbidden_or(self._die("timeout", self._timeout_error(), time.monotonic() - t0))
        except ChannelClosed:
            self._used_s += time.monotonic() - t0
            status, err = death_cause(self._reap(1.0))
            return self._violations.forbidden_or(self._die(status, err, time.monotonic() - t0))
        except wire.WireError as e:
            self._used_s += time.monotonic() - t0
            err = ErrorInfo("ProtocolError", f"the worker sent invalid data: {e}")
            return self._violations.forbidden_or(self._die("protocol", err, time.monotonic() - t0))
        duration = time.monotonic() - t0
        self._used_s += duration
        try:
            result = to_result(frame, duration, self._violations)
        except wire.WireError as e:
            err = ErrorInfo("ProtocolError", f"the worker sent an invalid result: {e}")
            return self._violations.forbidden_or(self._die("protocol", err, duration))
        return self._violations.forbidden_or(result)

    # -------------------------------------------------------------- results
    def _timeout_error(self) -> ErrorInfo:
        return ErrorInfo("Timeout", f"the exercise's time limit of {self.limits.time_limit_s:g}s was exceeded; "
                                    "the worker was stopped")

    def _die(self, status: str, err: ErrorInfo, duration: float) -> CallResult:
        self._dead = (status, err)
        self._kill()
        return CallResult(status=status, error=err, duration_s=duration)

    # -------------------------------------------------------------- teardown
    def _reap(self, timeout: float) -> int | None:
        """The worker's return code (negative: the signal that killed it), waiting up to ``timeout``."""
        return self._sandbox.returncode(self._forked.ident, timeout) if self._forked else None

    def _kill(self) -> None:
        """SIGKILL the worker's process group (a private sandbox: everything in it) and wait for its end."""
        if self._own:
            self._sandbox.close()
        elif self._forked is not None:
            self._sandbox.kill(self._forked.ident)

    def close(self) -> None:
        """Ask the worker to exit (collecting late violation reports), then kill it and clean up."""
        if self._forked is None:
            if self._own:
                self._sandbox.close()
            return
        if self._dead is None:
            try:
                bye = self._forked.channel.exchange(wire.encode_frame("exit", {"op": "exit"}),
                                                    time.monotonic() + 1.0, until=("bye",))
                self._violations.record(bye.meta.get("violations", []))
            except (ChannelTimeout, ChannelClosed, wire.WireError):
                pass
            self._dead = ("crashed", ErrorInfo("WorkerClosed", "the worker was closed"))
        self._teardown()

    def _teardown(self) -> None:
        self._kill()
        if self._forked is not None:
            for cap in (self._forked.out, self._forked.err):
                cap.join(timeout=2)
            self._forked.channel.close()
