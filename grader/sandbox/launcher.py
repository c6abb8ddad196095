"""Start, limit, talk to and kill sandboxed workers: the grader's side of the trust boundary.

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

import dataclasses
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bwrap as bw
from ..sandbox_runtime import landlock, seccomp, wire
from .view import SYSTEM_TREES, PythonView, hidden_within, python_view, visible_packages
from ..sandbox_runtime.wire import Build

__all__ = ["Build", "CallResult", "ErrorInfo", "SandboxLimits", "STATUSES", "Worker", "WorkerError", "choose_mode",
           "isolation_available"]
from .workspace import RUNTIME_PACKAGE, WorkerDir, WorkerDirError, create_worker_dir

STATUSES = ("ok", "error", "not_implemented", "memory", "timeout", "crashed", "forbidden", "protocol")
_WORKER_STATUSES = frozenset({"ok", "error", "not_implemented", "memory"})
_DEAD_STATUSES = frozenset({"timeout", "crashed", "protocol"})
_MODES = ("bwrap", "landlock", "none")
_SYSTEM_READ = ("/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/random", "/dev/zero", "/proc/self",
                "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu", "/sys/fs/cgroup")


class WorkerError(RuntimeError):
    """The grader could not start a worker (no isolation available, bad layout, sandbox failure).

    Never caused by student code: no student file is read before the worker reports ready.
    """


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits and policy for one exercise's worker."""

    time_limit_s: float = 60.0  # wall clock for all calls of the exercise together
    memory_limit_mb: int = 1024  # RLIMIT_AS of the worker
    forbidden_imports: tuple[str, ...] = ()
    forbidden_calls: tuple[str, ...] = ()
    allow_unsandboxed: bool = False
    packages: tuple[str, ...] = ("numpy",)  # allowed top-level packages (course.yml allowed_packages)
    allow_subprocesses: bool = False  # bwrap mode only (its PID namespace is killed as a whole)
    max_processes: int = 1024  # RLIMIT_NPROC, per host uid (threads count too; not enforced for root)
    max_file_mb: int = 64  # RLIMIT_FSIZE
    max_open_files: int = 256  # RLIMIT_NOFILE
    scratch_mb: int = 64  # size of the writable scratch tmpfs and /tmp (bwrap)
    max_result_mb: int = 512  # largest result frame the grader accepts
    max_output_kb: int = 64  # captured stdout / stderr, each
    startup_timeout_s: float = 60.0
    threads: int | None = None  # OMP/OpenBLAS/MKL threads with torch (None: its default); numpy-only workers: 1

    def visible_packages(self) -> tuple[str, ...]:
        """What the worker sees: :func:`view.visible_packages` of ``packages`` and ``forbidden_imports``."""
        return visible_packages(self.packages, self.forbidden_imports)


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

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ------------------------------------------------------------------------------------------ isolation choice


def _requested_mode(mode: str | None) -> str:
    m = (mode or os.environ.get("GRADER_ISOLATION") or "auto").strip().lower()
    if m not in (*_MODES, "auto"):
        raise WorkerError(f"GRADER_ISOLATION={m!r}: expected one of bwrap, landlock, none, auto")
    return m


def _bwrap_settings() -> tuple[str | None, bool]:
    """(problem or None, whether ``--disable-userns`` works); seccomp also denies nested namespaces."""
    exe = os.path.realpath(sys.executable)
    problem = bw.probe(bw.bwrap_binary(), exe, True)
    if problem and bw.probe(bw.bwrap_binary(), exe, False) is None:
        return None, False
    return problem, True


def _bwrap_problem() -> str | None:
    return _bwrap_settings()[0]


def _landlock_problem() -> str | None:
    abi = landlock.abi_version()
    return None if abi >= 1 else "Landlock is not available in this kernel"


def _describe(mode: str, applied: dict | None = None, allow_unsandboxed: bool = False) -> str:
    if mode == "none":
        return "none (--allow-unsandboxed)"
    parts = ["bubblewrap" if mode == "bwrap" else "landlock"]
    if applied is None or applied.get("seccomp"):
        if applied is not None or seccomp.supported():
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
        return _describe(choose_mode(mode, allow_unsandboxed=False))
    except WorkerError:
        return None


# ------------------------------------------------------------------------------------------ output capture


class _Capture(threading.Thread):
    """Drains one output pipe of the worker, keeping the first ``limit`` bytes."""

    def __init__(self, fd: int, limit: int):
        super().__init__(daemon=True)
        self.fd, self.limit = fd, limit
        self.data = bytearray()
        self.dropped = 0

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                room = self.limit - len(self.data)
                if room > 0:
                    self.data += chunk[:room]
                self.dropped += max(0, len(chunk) - max(room, 0))
        except OSError:
            pass
        finally:
            try:
                os.close(self.fd)
            except OSError:
                pass

    def text(self) -> str:
        s = bytes(self.data).decode("utf-8", errors="replace")
        if self.dropped:
            s += f"\n[... {self.dropped} more bytes not shown]"
        return s


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


def _set_nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _grow_pipe(fd: int) -> None:
    """Large pipe buffers: a few-MB array crosses in one or two writes instead of dozens of hand-offs."""
    for size in (16 << 20, 4 << 20, 1 << 20):  # above /proc/sys/fs/pipe-max-size needs CAP_SYS_RESOURCE
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
            return
        except (OSError, AttributeError):
            continue


def _kill_quietly(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _killpg_quietly(pgid: int | None) -> None:
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Namespace:
    """The init process of a worker's PID namespace (bwrap): killing it kills every process inside."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pidfd: int | None = None

    def kill(self) -> None:
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
        elif self.pid:
            _kill_quietly(self.pid)

    def wait(self, timeout: float) -> None:
        """Until the namespace init has exited (the kernel has then reaped every process inside)."""
        if self.pidfd is None:
            return
        p = select.poll()
        p.register(self.pidfd, select.POLLIN)
        p.poll(int(timeout * 1000))

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _finalize(proc: subprocess.Popen | None, pgid: int | None, ns: _Namespace, ws: WorkerDir | None) -> None:
    """Kill everything a worker started and remove its workspace (also runs at interpreter exit)."""
    ns.kill()
    _killpg_quietly(pgid)
    if proc is not None:
        _kill_quietly(proc.pid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    ns.wait(5.0)
    ns.close()
    if ws is not None:
        ws.remove()


# ------------------------------------------------------------------------------------------ the worker handle


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
        self._req_w = self._res_r = self._info_r = None
        self._ns = _Namespace()
        self._asm = wire.FrameAssembler(wire.WireLimits(max_body_bytes=limits.max_result_mb * 2**20))
        self._out: _Capture | None = None
        self._err: _Capture | None = None
        self._used_s = 0.0
        self._dead: tuple[str, ErrorInfo] | None = None
        self._violations: list[dict] = []
        self._finalizer = None
        self.startup_s: float | None = None  # seconds from start() to the worker's "ready"
        self._t0 = 0.0
        #: appears in the worker's command line: lets tests find every process of this worker
        self.token = f"grader-worker-{uuid.uuid4().hex}"

    # -------------------------------------------------------------- public properties
    @property
    def isolation(self) -> str:
        return _describe(self.mode, self.applied) if self.mode else "not started"

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
        return tuple(v["detail"] for v in self._violations)

    @property
    def violation_records(self) -> tuple[dict, ...]:
        """The same as dicts ``{"kind": "import"|"call"|"open"|"tamper", "name", "detail"}``."""
        return tuple(dict(v) for v in self._violations)

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
        view = memoryview(data)
        deadline = time.monotonic() + 10
        while len(view):
            try:
                view = view[os.write(self._req_w, view):]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WorkerError("the worker does not read its configuration") from None
                select.select([], [self._req_w], [], 0.1)
            except OSError as e:
                raise WorkerError(f"the worker died at start-up: {self.stderr.strip()[-1500:]} ({e})") from None

    def _config(self, view: PythonView, student_root: str, runtime_root: str, scratch: str) -> dict:
        lim = self.limits
        mb = 2**20
        rl = {"AS": lim.memory_limit_mb * mb, "CPU": int(lim.time_limit_s * max(1, os.cpu_count() or 1)) + 10,
              "NPROC": lim.max_processes, "FSIZE": lim.max_file_mb * mb, "NOFILE": lim.max_open_files, "CORE": 0}
        cfg = {
            "mode": self.mode,
            "package": self.package,
            "student_root": student_root,
            "sys_path": list(view.sys_path),
            "rlimits": rl,
            "seccomp": self.mode != "none" and seccomp.supported(),
            "block_processes": not (lim.allow_subprocesses and self.mode == "bwrap"),
            "preload": [p for p in ("numpy", "torch") if p in lim.visible_packages()],
            "forbidden_imports": list(lim.forbidden_imports),
            "forbidden_calls": list(lim.forbidden_calls),
            "forbidden_paths": list(view.forbidden),
            "max_result_bytes": lim.max_result_mb * mb,
            "stdlib_paths": list(view.stdlib),
            "library_paths": sorted({*view.site_dirs, *view.sys_path[len(view.stdlib):], *view.visible,
                                     *(os.path.realpath(v) for v in view.visible)}),
            "landlock": None,
        }
        if self.mode == "landlock":
            read = [p for p in _SYSTEM_READ if os.path.exists(p)]
            trees = tuple(dict.fromkeys(os.path.realpath(t) for t in (*SYSTEM_TREES, *view.roots) if os.path.exists(t)))
            read += _grant_except(trees, view.site_dirs)  # every site dir is left out...
            read += _grant_except(view.visible, view.forbidden)  # ...but the allowed packages
            read += [student_root, runtime_root, *view.sys_path[len(view.stdlib):]]
            if not any(view.executable.startswith(r + "/") for r in view.roots):
                read.append(view.executable)
            cfg["landlock"] = {"read": read, "write": [scratch, "/dev/null"]}
        return cfg

    def _env(self, home: str, tmp: str) -> dict[str, str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "USER": "student", "LOGNAME": "student", "MALLOC_ARENA_MAX": "2", "PYTHONIOENCODING": "utf-8"}
        threads = self.limits.threads
        if "torch" not in self.limits.visible_packages():
            threads = 1  # small arrays: BLAS threads only contend (and their start-up costs ~60 ms)
        if threads:
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[k] = str(threads)
        return env

    def _spawn(self) -> None:
        lim = self.limits
        view = python_view(lim.visible_packages(), tuple(lim.forbidden_imports))
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        for fd in (req_w, res_w):
            _grow_pipe(fd)
        pass_fds = [req_r, res_w]
        info_w = None
        if self.mode == "bwrap":
            student, runtime, scratch, tmp = bw.STUDENT, bw.RUNTIME, bw.SCRATCH, "/tmp"
        else:
            student, runtime = str(self._ws.student), str(self._ws.runtime)
            scratch = tmp = str(self._ws.scratch)
            view = _linked_view(view, self._ws.root / "site")
        boot = (f"import sys; sys.path.insert(0, {runtime!r}); "
                f"from {RUNTIME_PACKAGE}.worker import main; del sys.path[0]; main()")
        command = [view.executable, "-I", "-S", "-B", "-u", "-c", boot, "--req", str(req_r), "--res", str(res_w),
                   "--token", self.token]
        env = self._env(scratch, tmp)
        if self.mode == "bwrap":
            info_r, info_w = os.pipe()
            pass_fds.append(info_w)
            self._info_r = info_r
            argv = bw.argv(bwrap=bw.bwrap_binary(), view=view, student=str(self._ws.student),
                           runtime=str(self._ws.runtime), env=env, command=command, info_fd=info_w,
                           scratch_bytes=lim.scratch_mb * 2**20, tmp_bytes=lim.scratch_mb * 2**20,
                           disable_userns=_bwrap_settings()[1])
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
        self._req_w, self._res_r = req_w, res_r
        _set_nonblocking(req_w)
        _set_nonblocking(res_r)
        limit = lim.max_output_kb * 1024
        self._out, self._err = _Capture(out_r, limit), _Capture(err_r, limit)
        self._out.start()
        self._err.start()
        self._finalizer = weakref.finalize(self, _finalize, self._proc, self._proc.pid, self._ns, self._ws)

    def _handshake(self, deadline: float) -> None:
        try:
            self._send_and_receive([], deadline, until=("ready", "fatal"))
        except _Timeout:
            raise WorkerError(f"the worker did not start within {self.limits.startup_timeout_s}s") from None
        except (_Died, wire.WireError) as e:
            self._reap(0.5)
            raise WorkerError(f"the worker failed to start ({e}): {self.stderr.strip()[-1500:]}") from None
        frame = self._last
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
            _set_nonblocking(self._info_r)
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
            return self._forbidden_or(CallResult(status=status, error=err))
        chunks = wire.encode_frame("call", meta, value, has_value=value is not None)  # TypeError on bad args
        if self.remaining_s <= 0:
            return self._forbidden_or(self._die("timeout", self._timeout_error(), 0.0))
        t0 = time.monotonic()
        try:
            self._send_and_receive(chunks, t0 + self.remaining_s, until=("result",))
        except _Timeout:
            self._used_s = self.limits.time_limit_s
            return self._forbidden_or(self._die("timeout", self._timeout_error(), time.monotonic() - t0))
        except _Died as e:
            self._used_s += time.monotonic() - t0
            status, err = self._death_cause(str(e))
            return self._forbidden_or(self._die(status, err, time.monotonic() - t0))
        except wire.WireError as e:
            self._used_s += time.monotonic() - t0
            err = ErrorInfo("ProtocolError", f"the worker sent invalid data: {e}")
            return self._forbidden_or(self._die("protocol", err, time.monotonic() - t0))
        duration = time.monotonic() - t0
        self._used_s += duration
        try:
            result = self._to_result(self._last, duration)
        except wire.WireError as e:
            err = ErrorInfo("ProtocolError", f"the worker sent an invalid result: {e}")
            return self._forbidden_or(self._die("protocol", err, duration))
        return self._forbidden_or(result)

    # -------------------------------------------------------------- frame exchange
    def _send_and_receive(self, chunks: list, deadline: float, until: tuple[str, ...]) -> None:
        """Write ``chunks`` and read frames until one of kind ``until`` arrives (kept in ``self._last``)."""
        pending = [memoryview(c) for c in chunks if memoryview(c).nbytes]
        poller = select.poll()
        poller.register(self._res_r, select.POLLIN)
        if pending:
            poller.register(self._req_w, select.POLLOUT)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout()
            for fd, ev in poller.poll(max(1, int(left * 1000) + 1)):
                if fd == self._req_w:
                    if ev & (select.POLLERR | select.POLLHUP) and not ev & select.POLLOUT:
                        raise _Died("the worker closed its request pipe")
                    try:
                        while pending:
                            n = os.write(self._req_w, pending[0])
                            pending[0] = pending[0][n:]
                            if not len(pending[0]):
                                pending.pop(0)
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, OSError):
                        raise _Died("the worker closed its request pipe") from None
                    if not pending:
                        poller.unregister(self._req_w)
                elif fd == self._res_r:
                    frame = self._drain()
                    if frame is not None:
                        if frame.kind in until:
                            if pending:
                                raise wire.WireError("the worker answered before reading the whole request")
                            self._last = frame
                            return

    def _drain(self) -> wire.Frame | None:
        """Read what is available; handle violation frames; return the first other complete frame."""
        while True:
            target = self._asm.target()
            try:
                n = os.readv(self._res_r, [target]) if len(target) else 0
            except BlockingIOError:
                return None
            except OSError as e:
                raise _Died(f"result pipe error: {e}") from None
            if n == 0 and len(target):
                raise _Died("the worker closed its result pipe")
            frame = self._asm.commit(n)
            if frame is None:
                continue
            if frame.kind == "violation":
                self._record_violations([frame.meta])
                continue
            return frame

    # -------------------------------------------------------------- results
    def _record_violations(self, items: Any) -> None:
        if not isinstance(items, list):
            raise wire.WireError("violations must be a list")
        for v in items[:100]:
            if not isinstance(v, dict):
                raise wire.WireError("a violation must be an object")
            clean = {k: str(v.get(k, ""))[:500] for k in ("kind", "name", "detail")}
            if clean not in self._violations and len(self._violations) < 100:
                self._violations.append(clean)

    def _forbidden_or(self, result: CallResult) -> CallResult:
        if not self._violations:
            return result
        first = self._violations[0]
        kind = {"import": "ForbiddenImport", "call": "ForbiddenCall", "open": "ForbiddenImport"}.get(
            first["kind"], "ForbiddenTampering")
        err = ErrorInfo(kind, f"{first['detail']} - not allowed in this exercise")
        return CallResult(status="forbidden", error=err, duration_s=result.duration_s,
                          violations=self.violations)

    def _to_result(self, frame: wire.Frame, duration: float) -> CallResult:
        meta = frame.meta
        status = meta.get("status")
        if status not in _WORKER_STATUSES:
            raise wire.WireError(f"unknown status {str(status)[:40]!r}")
        self._record_violations(meta.get("violations", []))
        mutated = meta.get("mutated", [])
        if not isinstance(mutated, list) or not all(isinstance(m, str) for m in mutated):
            raise wire.WireError("'mutated' must be a list of str")
        error = None
        if status != "ok":
            error = _error_info(meta.get("error"))
        compute = meta.get("duration_s")
        compute = float(compute) if type(compute) in (int, float) and 0 <= compute <= duration else None
        return CallResult(status=status, value=frame.value if status == "ok" else None, error=error,
                          duration_s=duration, mutated=tuple(m[:200] for m in mutated[:100]), compute_s=compute)

    def _timeout_error(self) -> ErrorInfo:
        return ErrorInfo("Timeout", f"the exercise's time limit of {self.limits.time_limit_s:g}s was exceeded; "
                                    "the worker was stopped")

    def _death_cause(self, why: str) -> tuple[str, ErrorInfo]:
        rc = self._reap(1.0)
        sig = None
        if rc is not None and rc < 0:
            sig = -rc
        elif rc is not None and self.mode == "bwrap" and rc > 128:
            sig = rc - 128
        if sig == signal.SIGXCPU:
            return "timeout", ErrorInfo("Timeout", "the worker used up its CPU time limit")
        if sig is not None:
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            hint = " (out of memory or CPU time?)" if sig == signal.SIGKILL else ""
            return "crashed", ErrorInfo("WorkerCrashed", f"the worker was killed by {name}{hint}")
        code = "unknown" if rc is None else str(rc)
        return "crashed", ErrorInfo("WorkerExited", f"the worker exited during the call (exit status {code}); "
                                                    "did the code call os._exit or close the grader's pipes?")

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
            _killpg_quietly(self._proc.pid)
            _kill_quietly(self._proc.pid)
            self._reap(5.0)
        self._ns.wait(5.0)

    def close(self) -> None:
        """Ask the worker to exit (collecting late violation reports), then kill its tree and clean up."""
        if self._proc is None:
            return
        if self._dead is None:
            try:
                self._send_and_receive(wire.encode_frame("exit", {"op": "exit"}), time.monotonic() + 1.0,
                                       until=("bye",))
                self._record_violations(self._last.meta.get("violations", []))
            except (_Timeout, _Died, wire.WireError):
                pass
            self._dead = ("crashed", ErrorInfo("WorkerClosed", "the worker was closed"))
        self._teardown()

    def _teardown(self) -> None:
        self._kill()
        for cap in (self._out, self._err):
            if cap is not None:
                cap.join(timeout=2)
        for fd in (self._req_w, self._res_r, self._info_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._res_r = self._info_r = None
        if self._finalizer is not None:
            self._finalizer()
        elif self._ws is not None:
            self._ws.remove()


def _error_info(raw: Any) -> ErrorInfo:
    if not isinstance(raw, dict):
        raise wire.WireError("error must be an object")

    def s(key: str, limit: int) -> str:
        v = raw.get(key, "")
        return v[:limit] if isinstance(v, str) else ""

    def i(key: str) -> int | None:
        v = raw.get(key)
        return v if type(v) is int else None

    return ErrorInfo(type=s("type", 100) or "Error", message=s("message", 2000), traceback=s("traceback", 4000),
                     lineno=i("lineno"), filename=s("filename", 300) or None, offset=i("offset"),
                     text=s("text", 300) or None)


def _link_except(entry: str, link: Path, hidden: list[str]) -> None:
    """``link`` -> ``entry``; a directory holding ``hidden`` paths becomes a real directory of links
    to its other entries (recursively), so that the hidden ones are not even listed."""
    inside = hidden_within(entry, hidden)
    if entry in inside or os.path.lexists(link):
        return
    if not inside or not os.path.isdir(entry):
        os.symlink(entry, link)
        return
    link.mkdir()
    for name in sorted(os.listdir(entry)):
        _link_except(os.path.join(entry, name), link / name, inside)
    os.chmod(link, 0o755)


def _linked_view(view: PythonView, site: Path) -> PythonView:
    """Landlock/none modes: a private site directory of symlinks to the visible entries only.

    The real site-packages leaves ``sys.path``, so a package that is not visible is *not found*
    (``ModuleNotFoundError``, which libraries probing for optional packages expect) rather than
    found and unreadable; a forbidden subpackage (``scipy/signal``) is not linked either.
    """
    site.mkdir(exist_ok=True)
    for entry in view.visible:
        _link_except(entry, site / os.path.basename(entry), list(view.forbidden))
    os.chmod(site, 0o755)
    return dataclasses.replace(view, sys_path=(*view.stdlib, str(site)))


def _grant_except(roots: tuple[str, ...] | list[str], masks: tuple[str, ...] | list[str]) -> list[str]:
    """Paths covering ``roots`` except the ``masks`` subtrees (Landlock grants are hierarchical).

    A rule follows a link to its target, so a link leading to or above a mask is walked as its
    target (``masks`` hold real paths)."""
    out = []
    masks_n = [m.rstrip("/") for m in masks]
    seen: set[str] = set()

    def touches_mask(path: str) -> bool:
        return any(path == m or path.startswith(m + "/") or m.startswith(path + "/") for m in masks_n)

    def walk(path: str) -> None:
        if path in masks_n or path in seen:
            return
        seen.add(path)
        if os.path.islink(path):
            real = os.path.realpath(path)
            if touches_mask(real):
                walk(real)
                return
        if not any(m.startswith(path + "/") for m in masks_n):
            out.append(path)
            return
        try:
            names = os.listdir(path)
        except OSError:
            return
        for n in names:
            walk(os.path.join(path, n))

    for r in roots:
        walk(r.rstrip("/"))
    return out
