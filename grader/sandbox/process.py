"""The worker's processes: capture its output, kill its whole tree, clean up after it.

Bubblewrap workers live in their own PID namespace (:class:`Namespace`: killing its init kills all);
the others in their own process group. :func:`finalize` also runs at interpreter exit.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from .uidmode import Lease
from .workspace import WorkerDir

__all__ = ["Capture", "Namespace", "finalize", "kill_quietly", "killpg_quietly", "popen"]

#: The one thread that starts sandboxes. A process's parent-death signal (``PR_SET_PDEATHSIG``, which a
#: fork server and bwrap's ``--die-with-parent`` rely on) fires when the *thread* that started it ends:
#: a sandbox started from a short-lived thread (a pool's) would die with that thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


def popen(*args, **kwargs) -> subprocess.Popen:
    """:class:`subprocess.Popen`, run on the long-lived spawner thread."""
    return _SPAWNER.submit(subprocess.Popen, *args, **kwargs).result()


class Capture(threading.Thread):
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


def kill_quietly(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def killpg_quietly(pgid: int | None) -> None:
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Namespace:
    """The init process of a worker's PID namespace (bwrap): killing it kills every process inside."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pidfd: int | None = None

    def learn(self, info_fd: int) -> None:
        """Read bwrap's ``--info-fd`` JSON (without blocking) for the namespace's init; hold a pidfd on it."""
        try:
            os.set_blocking(info_fd, False)
            pid = json.loads(os.read(info_fd, 65536).decode()).get("child-pid")
        except (OSError, ValueError, AttributeError):
            return
        if isinstance(pid, int) and pid > 1:
            self.pid = pid
            try:
                self.pidfd = os.pidfd_open(pid)
            except (OSError, AttributeError):
                self.pidfd = None

    def kill(self) -> None:
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
        elif self.pid:
            kill_quietly(self.pid)

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


def finalize(proc: subprocess.Popen | None, pgid: int | None, ns: Namespace, ws: WorkerDir | None,
             lease: Lease | None = None) -> None:
    """Kill everything a worker started, remove its workspace and give its uid back (also runs at
    interpreter exit)."""
    ns.kill()
    killpg_quietly(pgid)
    if proc is not None:
        kill_quietly(proc.pid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    ns.wait(5.0)
    ns.close()
    if ws is not None:
        ws.remove()
    if lease is not None:
        lease.release()  # every process the uid still runs is killed, its files in /tmp removed
