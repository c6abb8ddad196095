"""The fork server inside a sandbox: one per submission's view, it forks a fresh worker per exercise.

Started by :mod:`grader.sandbox.sandbox` (bubblewrap or Landlock around it, exactly as a lone worker
was) as ``python -I -S -B -u -c <boot> --ctl FD --token T``. ``FD`` is a ``SOCK_SEQPACKET`` socket to
the grader. The server reads student code never: it imports numpy (and torch when the view has it)
once, then waits. Each ``fork`` message carries four file descriptors (request pipe, result pipe,
stdout, stderr); the child takes them, forgets the server and becomes an ordinary worker
(:func:`worker.main`): it reads its own ``init`` frame, confines itself (rlimits, Landlock, seccomp,
guard) and serves. So every exercise runs in a new process that no other exercise has touched, and
the interpreter start-up and numpy's import are paid once per submission instead of once per exercise.

Messages are JSON objects, one per packet. Grader to server: ``{"op": "init", "sys_path", "preload",
"scratch"}`` first, then ``{"op": "fork", "id", "token"}`` (with the four fds), ``{"op": "kill", "id"}``,
``{"op": "exit"}``. Server to grader: ``ready`` or ``fatal`` (after ``init``), ``forked`` (id, pid),
``exited`` (id, returncode: negative for a signal, as :mod:`subprocess` reports it).

The server and its workers are not dumpable (no same-uid process, a sibling worker included, may
read or write their memory); the server dies with the grader and runs no student code; a child that
kills itself or crashes costs only its exercise.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

from .worker import _prctl

_MAX_MESSAGE = 1 << 16


def _set_token(old: str, new: str) -> None:
    """Write ``new`` over ``old`` in this process's command line (same length), so that
    ``/proc/<pid>/cmdline`` names the exercise's worker rather than the server."""
    if len(old) != len(new) or old == new:
        return
    import ctypes

    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49 of stat)
        area = ctypes.string_at(start, end - start)
        at = area.find(old.encode())
        if at >= 0:
            ctypes.memmove(start + at, new.encode(), len(new))
    except (OSError, ValueError, IndexError):
        pass


class Server:
    """The fork loop: serve the control socket, report each child's end."""

    def __init__(self, ctl: socket.socket, token: str):
        self.ctl = ctl
        self.token = token
        self.children: dict[int, tuple[str, int]] = {}  # pidfd -> (id, pid)
        self.pids: dict[str, int] = {}  # id -> pid
        self.scratch = "/tmp"

    def send(self, msg: dict) -> None:
        try:
            self.ctl.send(json.dumps(msg).encode())
        except OSError:
            os._exit(0)  # the grader is gone

    def start(self) -> None:
        """Read ``init``, import what every worker preloads, answer ``ready``."""
        data = self.ctl.recv(_MAX_MESSAGE)
        if not data:
            os._exit(0)
        cfg = json.loads(data)
        self.scratch = cfg["scratch"]
        sys.path[:] = list(cfg["sys_path"])
        # what a worker imports before the student's code, loaded once here (never student files)
        for name in ("traceback", "linecache", "importlib", "importlib.util", "faulthandler", "ctypes", "resource",
                     "threading", f"{__package__}.wire", f"{__package__}.worker", f"{__package__}.guard",
                     f"{__package__}.seccomp", f"{__package__}.landlock", *cfg.get("preload", [])):
            __import__(name)
        if "torch" in cfg.get("preload", []):
            __import__(f"{__package__}.torch_ops")

    def serve(self) -> None:
        while True:
            poller = select.poll()
            poller.register(self.ctl, select.POLLIN)
            for pidfd in self.children:
                poller.register(pidfd, select.POLLIN)
            for fd, _ in poller.poll():
                if fd == self.ctl.fileno():
                    self.handle()
                else:
                    self.reap(fd)

    def handle(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.ctl, _MAX_MESSAGE, 4)
        except OSError:
            data, fds = b"", []
        if not data:
            self.kill_all()
            os._exit(0)
        msg = json.loads(data)
        op = msg.get("op")
        if op == "fork" and len(fds) == 4:
            self.fork(str(msg["id"]), str(msg["token"]), fds)
        elif op == "kill":
            pid = self.pids.get(str(msg.get("id")))
            if pid:
                _kill_group(pid)
        elif op == "exit":
            self.kill_all()
            os._exit(0)
        for fd in fds:
            _close(fd)

    def fork(self, ident: str, token: str, fds: list[int]) -> None:
        scratch = os.path.join(self.scratch, ident)
        try:
            os.mkdir(scratch, 0o700)
        except OSError:
            pass
        pid = os.fork()
        if pid == 0:
            self.child(ident, token, fds, scratch)  # never returns
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        self.pids[ident] = pid
        if pidfd is not None:
            self.children[pidfd] = (ident, pid)
        self.send({"op": "forked", "id": ident, "pid": pid})

    def child(self, ident: str, token: str, fds: list[int], scratch: str) -> None:
        try:
            # stays undumpable, like the server: a sibling worker (same uid) cannot read or write its memory
            os.setpgid(0, 0)
            req, res, out, err = (os.dup(fd) for fd in fds)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in (*fds, out, err, *self.children):
                _close(fd)
            self.ctl.close()
            os.chdir(scratch)
            os.environ["HOME"] = os.environ["TMPDIR"] = scratch
            _set_token(self.token, token)
            if "numpy.random" in sys.modules:
                sys.modules["numpy.random"].seed()  # a fresh process would draw its own seed
            sys.argv[1:] = ["--req", str(req), "--res", str(res), "--token", token]  # as a worker started alone
            from .worker import main

            main()
        finally:
            os._exit(73)

    def reap(self, pidfd: int) -> None:
        ident, pid = self.children.pop(pidfd)
        _close(pidfd)
        self.pids.pop(ident, None)
        _kill_group(pid)  # whatever the worker left in its process group
        try:
            _, status = os.waitpid(pid, 0)
            rc = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            rc = None
        self.send({"op": "exited", "id": ident, "returncode": rc})

    def kill_all(self) -> None:
        for pid in list(self.pids.values()):
            _kill_group(pid)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ctl = socket.socket(fileno=int(argv[argv.index("--ctl") + 1]))
    token = argv[argv.index("--token") + 1]
    _prctl(1, 9)  # PR_SET_PDEATHSIG = SIGKILL: never outlive the grader
    _prctl(4, 0)  # PR_SET_DUMPABLE = 0: a worker of the same uid cannot read or write this process
    os.closerange(3, ctl.fileno())
    os.closerange(ctl.fileno() + 1, 1 << 16)
    server = Server(ctl, token)
    try:
        server.start()
    except BaseException as e:  # noqa: BLE001
        server.send({"op": "fatal", "message": f"{type(e).__name__}: {e}"[:2000]})
        os._exit(72)
    server.send({"op": "ready"})
    server.serve()
