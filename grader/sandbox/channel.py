"""The grader's end of a worker's two pipes: send a request frame, return the reply frame.

Frames are :mod:`grader.sandbox_runtime.wire` frames. An exchange writes and reads at once (a large
request and an early reply cannot deadlock), keeps to a deadline, and hands every ``violation`` frame
the worker sends meanwhile to a callback. Nothing here knows what the frames mean.
"""
from __future__ import annotations

import fcntl
import os
import select
import time
from typing import Callable

from ..sandbox_runtime import wire

__all__ = ["Channel", "ChannelClosed", "ChannelTimeout", "grow_pipe", "set_nonblocking"]


class ChannelTimeout(Exception):
    """The deadline passed before the awaited frame arrived."""


class ChannelClosed(Exception):
    """The worker closed a pipe (it died or broke the protocol); the message says which."""


def set_nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def grow_pipe(fd: int) -> None:
    """Large pipe buffers: a few-MB array crosses in one or two writes instead of dozens of hand-offs."""
    for size in (16 << 20, 4 << 20, 1 << 20):  # above /proc/sys/fs/pipe-max-size needs CAP_SYS_RESOURCE
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
            return
        except (OSError, AttributeError):
            continue


class Channel:
    """The request pipe's write end and the result pipe's read end of one worker (both non-blocking)."""

    def __init__(self, req_w: int, res_r: int, max_body_bytes: int, on_violation: Callable[[dict], None]):
        self.req_w, self.res_r = req_w, res_r
        set_nonblocking(req_w)
        set_nonblocking(res_r)
        self._asm = wire.FrameAssembler(wire.FrameCaps(max_body_bytes=max_body_bytes))
        self._on_violation = on_violation

    def write_all(self, data: bytes, deadline: float) -> None:
        """Write ``data`` whole without reading (the init frame): :class:`ChannelTimeout` past ``deadline``,
        :class:`ChannelClosed` (with the OS error's text) if the pipe is broken."""
        view = memoryview(data)
        while len(view):
            try:
                view = view[os.write(self.req_w, view):]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ChannelTimeout() from None
                select.select([], [self.req_w], [], 0.1)
            except OSError as e:
                raise ChannelClosed(str(e)) from None

    def exchange(self, chunks: list, deadline: float, until: tuple[str, ...]) -> wire.Frame:
        """Write ``chunks`` and read frames until one of kind ``until`` arrives, and return it.

        Raises :class:`ChannelTimeout`, :class:`ChannelClosed` or ``wire.WireError``."""
        pending = [memoryview(c) for c in chunks if memoryview(c).nbytes]
        poller = select.poll()
        poller.register(self.res_r, select.POLLIN)
        if pending:
            poller.register(self.req_w, select.POLLOUT)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout()
            for fd, ev in poller.poll(max(1, int(left * 1000) + 1)):
                if fd == self.req_w:
                    if ev & (select.POLLERR | select.POLLHUP) and not ev & select.POLLOUT:
                        raise ChannelClosed("the worker closed its request pipe")
                    try:
                        while pending:
                            n = os.write(self.req_w, pending[0])
                            pending[0] = pending[0][n:]
                            if not len(pending[0]):
                                pending.pop(0)
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, OSError):
                        raise ChannelClosed("the worker closed its request pipe") from None
                    if not pending:
                        poller.unregister(self.req_w)
                elif fd == self.res_r:
                    frame = self._drain()
                    if frame is not None and frame.kind in until:
                        if pending:
                            raise wire.WireError("the worker answered before reading the whole request")
                        return frame

    def _drain(self) -> wire.Frame | None:
        """Read what is available; pass violation frames on; return the first other complete frame."""
        while True:
            target = self._asm.target()
            try:
                n = os.readv(self.res_r, [target]) if len(target) else 0
            except BlockingIOError:
                return None
            except OSError as e:
                raise ChannelClosed(f"result pipe error: {e}") from None
            if n == 0 and len(target):
                raise ChannelClosed("the worker closed its result pipe")
            frame = self._asm.commit(n)
            if frame is None:
                continue
            if frame.kind == "violation":
                self._on_violation(frame.meta)
                continue
            return frame

    def close(self) -> None:
        for fd in (self.req_w, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
