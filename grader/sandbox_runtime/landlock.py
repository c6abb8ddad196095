"""Landlock (Linux >= 5.13) through raw syscalls with ctypes: the fallback filesystem sandbox.

:func:`restrict` confines the calling process (and, because it runs before any thread starts, the
whole worker) to the given paths: read-only trees, "list only" trees and writable trees. Everything
else on the filesystem answers EACCES. On ABI >= 4, TCP bind/connect are denied; on ABI >= 6 the
process can no longer signal or reach abstract UNIX sockets outside its own domain, so a student
cannot kill the grader even though both run under the same uid.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct

_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2  # ABI 4
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2  # ABI 6

_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | MAKE_FIFO | MAKE_SOCK
         | TRUNCATE)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable or disabled."""
    libc = _libc()
    v = libc.syscall(ctypes.c_long(_SYS_CREATE), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(v) if v > 0 else 0


def _handled_fs(abi: int) -> int:
    mask = (1 << 13) - 1
    if abi >= 2:
        mask |= REFER
    if abi >= 3:
        mask |= TRUNCATE
    if abi >= 5:
        mask |= IOCTL_DEV
    return mask


def restrict(*, read: list[str], list_only: list[str] = (), write: list[str] = ()) -> int:
    """Confine this process; returns the ABI used. Missing paths are skipped. Raises OSError on failure.

    ``read``: files or trees readable and executable; ``list_only``: trees whose directories may be
    listed (not their files read); ``write``: trees with full read/write access.
    """
    abi = abi_version()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available")
    libc = _libc()
    handled = _handled_fs(abi)
    attr = struct.pack("<Q", handled)
    if abi >= 4:
        attr += struct.pack("<Q", _NET_BIND_TCP | _NET_CONNECT_TCP)
    if abi >= 6:
        attr += struct.pack("<Q", _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL)
    abuf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(ctypes.c_long(_SYS_CREATE), abuf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, "landlock_create_ruleset failed")
    try:
        for paths, access in ((read, READ), (list_only, READ_DIR), (write, READ | WRITE | REFER)):
            for path in paths:
                _add_rule(libc, fd, path, access & handled)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT), ctypes.c_long(fd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return abi


def _add_rule(libc, ruleset_fd: int, path: str, access: int) -> None:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(pfd).st_mode):
            access &= _FILE_ONLY
        if not access:
            return
        rule = ctypes.create_string_buffer(struct.pack("<Qi", access, pfd), 12)
        if libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_long(ruleset_fd), ctypes.c_long(_RULE_PATH_BENEATH),
                        rule, ctypes.c_uint32(0)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"landlock_add_rule({path}) failed: {errno.errorcode.get(e, e)}")
    finally:
        os.close(pfd)
