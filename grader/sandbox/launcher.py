"""Start, talk to and kill sandboxed workers: :class:`Worker`'s lifecycle and call API.

Its parts live beside it: the limits and the worker's configuration in :mod:`.policy`, the choice of
isolation in :mod:`.isolation`, the framed pipe exchange in :mod:`.channel`, killing and output capture
in :mod:`.process`, and the checked results in :mod:`.results`; every public name stays importable here.

One :class:`Worker` per exercise::

    limits = SandboxLimits(time_limit_s=60, memory_limit_mb=1024, forbidden_imports=("torch",),
                           forbidden_calls=("numpy.convolve",))
    with Worker(student_dir, package="exercises", limits=limits) as w:
        r = w.call("conv", "conv2d", args=[x, w_, b], kwargs={"stride": (2, 1)})
        if r.ok: use(r.value)          # plain numpy arrays / numbers / str / None / lists / tuples / dicts
        else: report(r.status, r.error)

Isolation modes, best first (``GRADER_ISOLATION=bwrap|landlock|none|auto`` forces one):

* ``bwrap`` - bubblewrap namespaces and filesystem view (:mod:`bwrap`), plus seccomp and rlimits
  applied by the worker itself; the whole PID namespace is killed at the end.
* ``landlock`` - when user namespaces are unavailable: Landlock restricts reads to the system trees
  and the Python installation without any site directory, the allowed packages (without forbidden
  subpackages), the student copy and the runtime; writes to a scratch directory; signals to the
  worker's own domain; plus seccomp and rlimits; a killed process group. ``sys.path`` holds a private
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
import os
import subprocess
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

from ..sandbox_runtime import wire
from ..sandbox_runtime.wire import Build
from . import bwrap as bw
from .channel import Channel, ChannelClosed, ChannelTimeout, grow_pipe, set_nonblocking
from .isolation import WorkerError, bwrap_settings, choose_mode, describe, isolation_available
from .policy import SandboxLimits, worker_config, worker_env
from .process import Capture, Namespace, kill_quietly, killpg_quietly
from .process import finalize as _finalize  # a module global: tests may replace launcher._finalize
from .results import STATUSES, CallResult, ErrorInfo, Violations, death_cause, to_result
from .view import PythonView, linked_view, python_view
from .workspace import RUNTIME_PACKAGE, WorkerDir, WorkerDirError, create_worker_dir

__all__ = ["Build", "CallResult", "ErrorInfo", "SandboxLimits", "STATUSES", "Worker", "WorkerError", "choose_mode",
           "isolation_available"]


class Worker:
    """A fresh sandboxed worker for one exercise (a context manager)."""

    def __init__(self, student_dir: Path | str, package: str = "exercises", limits: SandboxLimits = SandboxLimits(),
                 *, mode: str | None = None):
        self.student_dir = Path(student_dir)
        self.package = package
        self.limits = limits
        self._requested = mode
        self.mode: str | None = None
        self.applied: dict = {}
        self._proc: subprocess.Popen | None = None
        self._ws: WorkerDir | None = None
        self._channel: Channel | None = None
        self._info_r: int | None = None
        self._ns = Namespace()
        self._out: Capture | None = None
        self._err: Capture | None = None
        self._used_s = 0.0
        self._dead: tuple[str, ErrorInfo] | None = None
        self._violations = Violations()
        self._finalizer = None
        self.startup_s: float | None = None  # seconds from start() to the worker's "ready"
        self._t0 = 0.0
        #: appears in the worker's command line: lets tests find every process of this worker
        self.token = f"grader-worker-{uuid.uuid4().hex}"

    # -------------------------------------------------------------- public properties
    @property
    def isolation(self) -> str:
        return describe(self.mode, self.applied) if self.mode else "not started"

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.limits.time_limit_s - self._used_s)

    @property
    def stdout(self) -> str:
        return self._out.text() if self._out else ""

    @property
    def stderr(self) -> str:
        return self._err.text() if self._err else ""

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
        return self._proc is not None and self._dead is None

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> "Worker":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, wait: bool = True) -> None:
        """Spawn the worker (no student code runs yet). ``wait=False`` returns at once, so that a worker
        can start while the grader is busy elsewhere; it is then awaited on first use."""
        if self._proc is None:
            self._t0 = time.monotonic()
            self.mode = choose_mode(self._requested, self.limits.allow_unsandboxed)
            try:
                self._ws = create_worker_dir(self.student_dir, self.package)
            except (WorkerDirError, OSError) as e:
                raise WorkerError(str(e)) from None
            try:
                self._spawn()
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
            self._channel.write_all(data, time.monotonic() + 10)
        except ChannelTimeout:
            raise WorkerError("the worker does not read its configuration") from None
        except ChannelClosed as e:
            raise WorkerError(f"the worker died at start-up: {self.stderr.strip()[-1500:]} ({e})") from None

    def _config(self, view: PythonView, student_root: str, runtime_root: str, scratch: str) -> dict:
        """:func:`policy.worker_config` for this worker (a method, so the attack tests can weaken it)."""
        return worker_config(self.limits, self.mode, self.package, view, student_root, runtime_root, scratch)

    def _spawn(self) -> None:
        lim = self.limits
        view = python_view(lim.visible_packages(), tuple(lim.forbidden_imports))
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        for fd in (req_w, res_w):
            grow_pipe(fd)
        pass_fds = [req_r, res_w]
        info_w = None
        if self.mode == "bwrap":
            student, runtime, scratch, tmp = bw.STUDENT, bw.RUNTIME, bw.SCRATCH, "/tmp"
        else:
            student, runtime = str(self._ws.student), str(self._ws.runtime)
            scratch = tmp = str(self._ws.scratch)
            view = linked_view(view, self._ws.root / "site")
        boot = (f"import sys; sys.path.insert(0, {runtime!r}); "
                f"from {RUNTIME_PACKAGE}.worker import main; del sys.path[0]; main()")
        command = [view.executable, "-I", "-S", "-B", "-u", "-c", boot, "--req", str(req_r), "--res", str(res_w),
                   "--token", self.token]
        env = worker_env(lim, scratch, tmp)
        if self.mode == "bwrap":
            info_r, info_w = os.pipe()
            pass_fds.append(info_w)
            self._info_r = info_r
            argv = bw.argv(bwrap=bw.bwrap_binary(), view=view, student=str(self._ws.student),
                           runtime=str(self._ws.runtime), env=env, command=command, info_fd=info_w,
                           scratch_bytes=lim.scratch_mb * 2**20, tmp_bytes=lim.scratch_mb * 2**20,
                           disable_userns=bwrap_settings()[1])
            popen_env, cwd = {"PATH": "/usr/bin:/bin"}, "/"
        else:
            argv, popen_env, cwd = command, env, scratch
        self._cfg = self._config(view, student, runtime, scratch)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                                          pass_fds=pass_fds, env=popen_env, cwd=cwd, start_new_session=True)
        except OSError as e:
            for fd in (req_w, res_r, self._info_r, out_r, err_r):
                if fd is not None:
                    os.close(fd)
            self._info_r = None
            raise WorkerError(f"cannot start the worker: {e}") from None
        finally:
            for fd in (req_r, res_w, info_w, out_w, err_w):
                if fd is not None:
                    os.close(fd)
        self._channel = Channel(req_w, res_r, lim.max_result_mb * 2**20,
                                on_violation=lambda meta: self._violations.record([meta]))
        limit = lim.max_output_kb * 1024
        self._out, self._err = Capture(out_r, limit), Capture(err_r, limit)
        self._out.start()
        self._err.start()
        self._finalizer = weakref.finalize(self, _finalize, self._proc, self._proc.pid, self._ns, self._ws)

    def _handshake(self, deadline: float) -> None:
        try:
            frame = self._channel.exchange([], deadline, until=("ready", "fatal"))
        except ChannelTimeout:
            raise WorkerError(f"the worker did not start within {self.limits.startup_timeout_s}s") from None
        except (ChannelClosed, wire.WireError) as e:
            self._reap(0.5)
            raise WorkerError(f"the worker failed to start ({e}): {self.stderr.strip()[-1500:]}") from None
        if frame.kind == "fatal":
            raise WorkerError(f"the worker could not confine itself: {str(frame.meta.get('message'))[:1500]}")
        applied = frame.meta.get("applied")
        self.applied = applied if isinstance(applied, dict) else {}
        if self.mode != "none" and self.applied.get("uid") == 0 and self.mode == "bwrap":
            raise WorkerError("the sandboxed worker runs as root; refusing")
        self._read_ns_pid()

    def _read_ns_pid(self) -> None:
        """bwrap: learn the PID namespace's init from ``--info-fd`` and hold a pidfd on it."""
        if self._info_r is None or self._ns.pid:
            return
        try:
            set_nonblocking(self._info_r)
            data = os.read(self._info_r, 65536)
            pid = json.loads(data.decode()).get("child-pid")
        except (OSError, ValueError, AttributeError):
            return
        if isinstance(pid, int) and pid > 1:
            self._ns.pid = pid
            try:
                self._ns.pidfd = os.pidfd_open(pid)
            except (OSError, AttributeError):
                self._ns.pidfd = None

    # -------------------------------------------------------------- requests
    def call(self, module: str, function: str, args: list | tuple = (), kwargs: dict | None = None,
             *, check_mutation: bool = True) -> CallResult:
        """Call ``<package>.<module>.<function>(*args, **kwargs)`` in the worker."""
        meta = {"op": "call", "module": module, "function": function, "check_mutation": check_mutation}
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
        if self._proc is None:
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
            frame = self._channel.exchange(chunks, t0 + self.remaining_s, until=("result",))
        except ChannelTimeout:
            self._used_s = self.limits.time_limit_s
            return self._violations.forbidden_or(self._die("timeout", self._timeout_error(), time.monotonic() - t0))
        except ChannelClosed:
            self._used_s += time.monotonic() - t0
            status, err = death_cause(self._reap(1.0), self.mode)
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
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        """SIGKILL the whole worker tree: the PID namespace's init (bwrap), the process group, the process."""
        self._read_ns_pid()
        self._ns.kill()
        if self._proc is not None:
            killpg_quietly(self._proc.pid)
            kill_quietly(self._proc.pid)
            self._reap(5.0)
        self._ns.wait(5.0)

    def close(self) -> None:
        """Ask the worker to exit (collecting late violation reports), then kill its tree and clean up."""
        if self._proc is None:
            return
        if self._dead is None:
            try:
                bye = self._channel.exchange(wire.encode_frame("exit", {"op": "exit"}), time.monotonic() + 1.0,
                                             until=("bye",))
                self._violations.record(bye.meta.get("violations", []))
            except (ChannelTimeout, ChannelClosed, wire.WireError):
                pass
            self._dead = ("crashed", ErrorInfo("WorkerClosed", "the worker was closed"))
        self._teardown()

    def _teardown(self) -> None:
        self._kill()
        for cap in (self._out, self._err):
            if cap is not None:
                cap.join(timeout=2)
        if self._channel is not None:
            self._channel.close()
        if self._info_r is not None:
            try:
                os.close(self._info_r)
            except OSError:
                pass
        self._channel = self._info_r = None
        if self._finalizer is not None:
            self._finalizer()
        elif self._ws is not None:
            self._ws.remove()
