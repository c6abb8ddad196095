"""Install a seccomp-BPF program (built by the grader's :mod:`grader.sandbox.seccomp_filter`) on this process.

The worker calls :func:`install` after its own start-up and before the first byte of student code is
imported (``seccomp(SET_MODE_FILTER, TSYNC)``); the filter then holds for every thread and child.
"""
from __future__ import annotations

# Hand-written with ctypes: libseccomp's Python bindings are outside the worker's view (no site-packages),
# and installing a ready program is two system calls.
import ctypes
import errno
import struct

#: stands for "this worker's pid" in the grader's program; above the kernel's PID_MAX_LIMIT (2**22)
PID_PLACEHOLDER = 0x5EC0_0000
_INSTRUCTION = struct.Struct("<HBBI")  # struct sock_filter: code, jt, jf, k
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K

_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def with_pid(program: bytes, pid: int) -> bytes:
    """``program`` with every comparison against :data:`PID_PLACEHOLDER` made against ``pid``."""
    if len(program) % _INSTRUCTION.size or not 0 < len(program) <= 4096 * _INSTRUCTION.size:
        raise ValueError(f"not a seccomp program: {len(program)} bytes")
    out = bytearray(program)
    for off in range(0, len(out), _INSTRUCTION.size):
        code, jt, jf, k = _INSTRUCTION.unpack_from(out, off)
        if code == _JEQ_K and k == PID_PLACEHOLDER:
            _INSTRUCTION.pack_into(out, off, code, jt, jf, pid)
    return bytes(out)


def install(program: bytes, *, own_pid: int, syscall_nr: int) -> None:
    """Install ``program`` (``struct sock_filter[]`` bytes) on every thread of this process, its signal
    rules pointed at ``own_pid``; ``syscall_nr`` is seccomp(2)'s number on this architecture (the grader's
    libseccomp knows it). Raises OSError if the kernel refuses, ValueError for malformed bytes."""
    code = with_pid(program, own_pid)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // _INSTRUCTION.size, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(NO_NEW_PRIVS): {errno.errorcode.get(e, e)}")
    rc = libc.syscall(ctypes.c_long(syscall_nr), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                      ctypes.c_long(_SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp(SET_MODE_FILTER) returned {rc}: {errno.errorcode.get(e, e)}")
