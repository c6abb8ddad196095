"""One sandbox per submission and view: bubblewrap (or a uid of its own, or Landlock) around a fork server.

A :class:`Sandbox` lays out one :class:`~.workspace.WorkerDir` (the student's files and the worker
runtime), starts :mod:`grader.sandbox_runtime.zygote` inside the isolation :mod:`.isolation` chose,
and forks a fresh worker process per exercise (:meth:`Sandbox.fork`). The server has imported numpy
(and torch when the view shows it) before the first fork, so a worker starts in milliseconds; each
worker is a new process that confines itself (rlimits, Landlock, seccomp, guard) before it reads a
student file, and its end costs no other exercise. A sandbox serves one submission only: it is never
shared between two students. Closing it kills everything inside (the PID namespace under bwrap,
the server and, by their death signal, its workers under Landlock; every process of its uid in the uid
mode) and removes its directory.

In the ``uid`` mode (root without namespaces: :mod:`.uidmode`) the server runs under a uid/gid leased
for this sandbox alone (no supplementary groups); its directory is ``root:<gid> 0750`` with the
student's copy and the runtime root's and read-only, its scratch the uid's (0700); the student's files
are always copied there (a prepared workspace is root's own, unreadable to the uid), and the grader's
secrets are made unreadable to other users before the server starts.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import subprocess
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path

from . import bwrap as bw
from . import uidmode
from .channel import Channel, grow_pipe
from .isolation import WorkerError, bwrap_settings, choose_mode, uid_landlock
from .policy import SandboxLimits, preload, worker_env
from .process import Capture, Namespace, finalize, kill_quietly, killpg_quietly, popen
from .view import PythonView, linked_view, python_view
from .workspace import RUNTIME_PACKAGE, WorkerDirError, create_worker_dir

__all__ = ["ForkedWorker", "Sandbox", "Sandboxes", "sandbox_key"]

_MAX_MESSAGE = 1 << 16


def new_token() -> str:
    """A marker put in a process's command line: lets tests find every process of a worker or sandbox."""
    return f"grader-worker-{uuid.uuid4().hex}"


def sandbox_key(limits: SandboxLimits) -> tuple:
    """Workers whose limits give the same key can be forked from the same sandbox (same view, same
    environment); everything else in the limits is applied by each worker to itself."""
    return (limits.visible_packages(), tuple(limits.forbidden_imports), limits.threads, limits.scratch_mb,
            limits.allow_unsandboxed)


@dataclass
class ForkedWorker:
    """The grader's handles on one forked worker: its pipes, its output, its end."""

    ident: str
    channel: Channel
    out: Capture
    err: Capture
    scratch: str  # the worker's own scratch directory, as the worker sees it


class Sandbox:
    """A fork server in a sandbox for one submission (a context manager)."""

    def __init__(self, student_dir: Path | str, package: str = "exercises", limits: SandboxLimits | None = None,
                 *, mode: str | None = None, token: str | None = None, prepared: bool = False):
        if limits is None:
            raise TypeError("a sandbox needs its limits: SandboxLimits.of(course.limits(exercise_id)), or "
                            "SandboxLimits(time_limit_s=..., memory_limit_mb=...)")
        self.student_dir, self.package, self.limits = Path(student_dir), package, limits
        self.prepared = prepared  # student_dir is a grader.submission.Workspace: shown as it is, not copied
        self.key = sandbox_key(limits)
        self.token = token or new_token()
        self._requested = mode
        self.mode: str | None = None
        self.view: PythonView | None = None
        self.student_root = self.runtime_root = self.scratch = ""
        self._ctl: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._ws = None
        self._ns = Namespace()
        self._info_r: int | None = None
        self._out = self._err = None
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._state = "starting"  # starting -> ready | fatal -> gone
        self._fatal = ""
        self._exits: dict[str, int | None] = {}
        self._reader: threading.Thread | None = None
        self._finalizer = None
        self._lease: uidmode.Lease | None = None

    @property
    def uid(self) -> int | None:
        """The uid the server and its workers run as (the ``uid`` mode), else None."""
        return self._lease.uid if self._lease is not None else None

    # ------------------------------------------------------------------ start
    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the server (returns at once; :meth:`fork` may follow before it is ready)."""
        if self._proc is not None:
            return
        self.mode = choose_mode(self._requested, self.limits.allow_unsandboxed)
        try:
            if self.mode == "uid":
                self._lease = uidmode.lease()
            self._ws = create_worker_dir(self.student_dir, self.package, self.prepared and self.mode != "uid")
        except (WorkerDirError, OSError) as e:
            self._release()
            raise WorkerError(str(e)) from None
        try:
            self._spawn()
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        lim = self.limits
        view = python_view(lim.visible_packages(), tuple(lim.forbidden_imports))
        if self.mode == "bwrap":
            self.student_root, self.runtime_root, self.scratch, tmp = bw.STUDENT, bw.RUNTIME, bw.SCRATCH, "/tmp"
        else:
            self.student_root, self.runtime_root = str(self._ws.student), str(self._ws.runtime)
            self.scratch = tmp = str(self._ws.scratch)
            if self.mode == "uid":  # links straight to the real entries: the uid may not reach a venv's own links
                view = dataclasses.replace(view, visible=tuple(os.path.realpath(v) for v in view.visible))
            view = linked_view(view, self._ws.root / "site")
        self.view = view
        user = {}
        if self.mode == "uid":
            user = self._hand_to_uid(view)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        boot = (f"import sys; sys.path.insert(0, {self.runtime_root!r}); "
                f"from {RUNTIME_PACKAGE}.zygote import main; del sys.path[0]; main()")
        command = [view.executable, "-I", "-S", "-B", "-u", "-c", boot, "--ctl", str(theirs.fileno()),
                   "--token", self.token]
        env = worker_env(lim, self.scratch, tmp)
        pass_fds = [theirs.fileno()]
        info_w = None
        if self.mode == "bwrap":
            self._info_r, info_w = os.pipe()
            pass_fds.append(info_w)
            argv = bw.argv(bwrap=bw.bwrap_binary(), view=view, student=str(self._ws.student),
                           runtime=str(self._ws.runtime), env=env, command=command, info_fd=info_w,
                           scratch_bytes=lim.scratch_mb * 2**20, tmp_bytes=lim.scratch_mb * 2**20,
                           disable_userns=bwrap_settings()[1])
            popen_env, cwd = {"PATH": "/usr/bin:/bin"}, "/"
        else:
            argv, popen_env, cwd = command, env, self.scratch
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self._proc = popen(argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, pass_fds=pass_fds,
                               env=popen_env, cwd=cwd, start_new_session=True, **user)
        except OSError as e:
            ours.close()
            for fd in (out_r, err_r):
                os.close(fd)
            raise WorkerError(f"cannot start the sandbox: {e}") from None
        finally:
            theirs.close()
            for fd in (info_w, out_w, err_w):
                if fd is not None:
                    os.close(fd)
        self._ctl = ours
        limit = lim.max_output_kb * 1024
        self._out, self._err = Capture(out_r, limit), Capture(err_r, limit)
        self._out.start()
        self._err.start()
        self._finalizer = weakref.finalize(self, finalize, self._proc, self._proc.pid, self._ns, self._ws, self._lease)
        self._send({"op": "init", "sys_path": list(view.sys_path), "preload": preload(lim), "scratch": self.scratch})
        self._reader = threading.Thread(target=self._read_messages, daemon=True)
        self._reader.start()

    def _hand_to_uid(self, view: PythonView) -> dict:
        """The uid mode: lock the grader's secrets, open the sandbox's directory to the leased uid alone;
        the ``Popen`` arguments that start the server as that uid."""
        ws, uid, gid = self._ws, self._lease.uid, self._lease.gid
        keep = [view.executable, *view.stdlib, *view.visible, *(os.path.realpath(v) for v in view.visible),
                str(ws.root)]
        try:
            uidmode.lock_secrets(keep)
            if not uid_landlock():  # Landlock's grants make the view where the kernel has it; else ACLs do
                self._lease.hide(uidmode.hidden_paths(view))
            os.chown(ws.root, 0, gid)
            os.chmod(ws.root, 0o750)
            os.chown(ws.scratch, uid, gid)
            os.chmod(ws.scratch, 0o700)
        except OSError as e:
            raise WorkerError(f"cannot prepare the uid sandbox (without Landlock it needs POSIX ACLs on the Python "
                              f"installation): {e}") from None
        return {"user": uid, "group": gid, "extra_groups": []}

    def _release(self) -> None:
        if self._lease is not None:
            self._lease.release()

    # ------------------------------------------------------------------ the control socket
    def _send(self, msg: dict, fds: list[int] = ()) -> bool:
        try:
            socket.send_fds(self._ctl, [json.dumps(msg).encode()], list(fds))
            return True
        except (OSError, AttributeError):
            return False

    def _read_messages(self) -> None:
        ctl = self._ctl
        while True:
            try:
                data = ctl.recv(_MAX_MESSAGE)
            except OSError:
                data = b""
            try:
                msg = json.loads(data) if data else None
            except ValueError:
                msg = None
            with self._cond:
                if not isinstance(msg, dict):
                    if self._state in ("starting", "ready"):
                        self._fatal = self._fatal or "the sandbox's fork server ended"
                    self._state = "gone"
                    self._cond.notify_all()
                    return
                op = msg.get("op")
                if op == "ready" and self._state == "starting":
                    self._state = "ready"
                elif op == "fatal":
                    self._state, self._fatal = "gone", str(msg.get("message"))[:2000]
                elif op == "exited":
                    rc = msg.get("returncode")
                    self._exits[str(msg.get("id"))] = rc if type(rc) is int else None
                self._cond.notify_all()

    # ------------------------------------------------------------------ workers
    def fork(self, token: str, max_result_mb: int, max_output_kb: int, on_violation) -> ForkedWorker:
        """Fork a fresh worker; its ``init`` frame is for the caller to send on ``channel``."""
        if self._proc is None:
            raise WorkerError("sandbox not started")
        ident = f"w{next(self._ids)}-{uuid.uuid4().hex[:12]}"  # not guessable by an earlier worker
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (req_w, res_w):
            grow_pipe(fd)
        try:
            sent = self._send({"op": "fork", "id": ident, "token": token}, [req_r, res_w, out_w, err_w])
        finally:
            for fd in (req_r, res_w, out_w, err_w):
                os.close(fd)
        if not sent:
            for fd in (req_w, res_r, out_r, err_r):
                os.close(fd)
            raise WorkerError(f"the sandbox is gone: {self.failure()}")
        channel = Channel(req_w, res_r, max_result_mb * 2**20, on_violation=on_violation)
        limit = max_output_kb * 1024
        out, err = Capture(out_r, limit), Capture(err_r, limit)
        out.start()
        err.start()
        return ForkedWorker(ident, channel, out, err, f"{self.scratch}/{ident}")

    def kill(self, ident: str, wait_s: float = 5.0) -> int | None:
        """SIGKILL a worker's process group; its return code once the server has reaped it (None: unknown)."""
        self._send({"op": "kill", "id": ident})
        return self.returncode(ident, wait_s)

    def returncode(self, ident: str, timeout: float) -> int | None:
        """The worker's return code (negative: killed by that signal), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._exits and self._state != "gone":
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._exits.get(ident)

    def failure(self) -> str:
        """Why the server cannot fork (empty while it can), with the end of its stderr."""
        with self._cond:
            why = self._fatal
        tail = self._err.text().strip()[-1500:] if self._err else ""
        return f"{why}: {tail}" if tail else why

    @property
    def alive(self) -> bool:
        """Started, and neither its server nor the sandbox around it (bwrap) has failed or ended."""
        with self._cond:
            if self._proc is None or self._state not in ("starting", "ready"):
                return False
        return self._proc.poll() is None

    @property
    def stderr(self) -> str:
        return self._err.text() if self._err else ""

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Kill everything inside and remove the sandbox's directory."""
        if self._ctl is not None:
            self._send({"op": "exit"})  # the server kills its workers' process groups
        if self._info_r is not None and not self._ns.pid:
            self._ns.learn(self._info_r)
        self._ns.kill()
        if self._proc is not None:
            killpg_quietly(self._proc.pid)
            kill_quietly(self._proc.pid)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._ns.wait(5.0)
        if self._ctl is not None:
            try:
                self._ctl.shutdown(socket.SHUT_RDWR)  # the reader thread sees the end
            except OSError:
                pass
            if self._reader is not None:
                self._reader.join(timeout=2)
            self._ctl.close()
        for cap in (self._out, self._err):
            if cap is not None:
                cap.join(timeout=2)
        if self._info_r is not None:
            try:
                os.close(self._info_r)
            except OSError:
                pass
            self._info_r = None
        if self._finalizer is not None:
            self._finalizer()
        else:
            if self._ws is not None:
                self._ws.remove()
            self._release()
        with self._cond:
            self._state = "gone"
            self._cond.notify_all()


class Sandboxes:
    """The sandboxes of one submission, one per view, each started on first need (thread-safe).

    A sandbox that has died is replaced, so that nothing one exercise's worker does can cost the
    next. Workers that may start subprocesses get a private sandbox: its PID namespace ends with them.
    """

    def __init__(self, student_dir: Path | str, package: str = "exercises", *, mode: str | None = None,
                 prepared: bool = False):
        self.student_dir, self.package, self.mode, self.prepared = Path(student_dir), package, mode, prepared
        self._by_key: dict[tuple, Sandbox] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "Sandboxes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, limits: SandboxLimits) -> Sandbox | None:
        """The running sandbox for workers with these limits (None: such a worker needs its own)."""
        if limits.allow_subprocesses:
            return None
        key = sandbox_key(limits)
        with self._lock:
            sb = self._by_key.get(key)
            if sb is None or not sb.alive:
                if sb is not None:
                    sb.close()
                sb = self._by_key[key] = Sandbox(self.student_dir, self.package, limits, mode=self.mode,
                                                 prepared=self.prepared)
                sb.start()
            return sb

    def close(self) -> None:
        with self._lock:
            for sb in self._by_key.values():
                sb.close()
            self._by_key.clear()
