"""A seccomp-BPF filter for sandboxed workers, assembled in pure Python and installed with ctypes.

The filter denies (EPERM) what numpy/torch code never needs: debugging other processes, mounts and
namespaces, kernel modules, clocks, keyrings, BPF/perf, io_uring, every ``socket()``, terminal
injection (TIOCSTI), raising resource limits, signals to other processes and, unless subprocesses
are allowed, ``fork``/``vfork``/``execve`` and non-thread ``clone``. ``clone3`` answers ENOSYS so
that glibc falls back to ``clone``, whose flags the filter can inspect. Foreign ABIs (i386, x32)
are killed. Only x86_64 is supported; elsewhere :func:`supported` is False and no filter is installed.

The worker installs it on itself (``seccomp(SET_MODE_FILTER, TSYNC)``) after its own start-up and
before the first byte of student code is imported; it then holds for every thread and child.
"""
from __future__ import annotations

import ctypes
import errno
import platform
import struct

# BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000

# offsets in struct seccomp_data
_OFF_NR, _OFF_ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


def _arg_hi(i: int) -> int:
    return 16 + 8 * i + 4


# x86_64 syscall numbers
_DENY_X86_64 = {
    # other processes' memory and state
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438,
    "pidfd_send_signal": 424, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
    # mounts, namespaces, root
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "move_mount": 429, "open_tree": 428,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "unshare": 272, "setns": 308,
    # the machine
    "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171, "iopl": 172,
    "ioperm": 173, "create_module": 174, "init_module": 175, "delete_module": 176, "finit_module": 313,
    "get_kernel_syms": 177, "query_module": 178, "nfsservctl": 180, "_sysctl": 156, "uselib": 134, "acct": 163,
    "quotactl": 179, "quotactl_fd": 443, "syslog": 103, "vhangup": 153, "kexec_load": 246,
    "kexec_file_load": 320, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "clock_adjtime": 305,
    "personality": 135, "lookup_dcookie": 212,
    # kernel attack surface numpy/torch never touch
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "fanotify_init": 300,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    # network: no sockets at all (socketpair stays allowed)
    "socket": 41,
    # limits may only go down
    "setrlimit": 160,
}
_NR = {"clone": 56, "clone3": 435, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "prlimit64": 302,
       "kill": 62, "tkill": 200, "tgkill": 234, "ioctl": 16}

_CLONE_NEW_MASK = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
_CLONE_THREAD = 0x00010000
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C


def supported() -> bool:
    """True where this module knows the syscall table (x86_64 Linux)."""
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple:
    return (code, jt, jf, k)


def _errno(e: int) -> tuple:
    return _ins(_RET_K, _RET_ERRNO | e)


def build_program(*, own_pid: int, block_processes: bool = True) -> list[tuple]:
    """The filter as (code, jt, jf, k) instructions. ``own_pid``: the only pid signals may target."""
    allow, eperm = _ins(_RET_K, _RET_ALLOW), _errno(errno.EPERM)
    p: list[tuple] = [
        _ins(_LD_W_ABS, _OFF_ARCH),
        _ins(_JEQ_K, _AUDIT_ARCH_X86_64, 1, 0),
        _ins(_RET_K, _RET_KILL_PROCESS),
        _ins(_LD_W_ABS, _OFF_NR),
        _ins(_JGE_K, _X32_BIT, 0, 1),
        _ins(_RET_K, _RET_KILL_PROCESS),
    ]
    deny = dict(_DENY_X86_64)
    if block_processes:
        deny.update(fork=_NR["fork"], vfork=_NR["vfork"], execve=_NR["execve"], execveat=_NR["execveat"])
    for nr in sorted(deny.values()):
        p += [_ins(_JEQ_K, nr, 0, 1), eperm]
    p += [_ins(_JEQ_K, _NR["clone3"], 0, 1), _errno(errno.ENOSYS)]

    def block(nr: int, body: list[tuple]) -> list[tuple]:
        # body runs with A = nr; it must end in a return. Skipped for other syscalls.
        return [_ins(_JEQ_K, nr, 0, len(body)), *body]

    clone = [_ins(_LD_W_ABS, _arg_lo(0)), _ins(_JSET_K, _CLONE_NEW_MASK, 0, 1), eperm]
    if block_processes:
        clone += [_ins(_JSET_K, _CLONE_THREAD, 1, 0), eperm]
    p += block(_NR["clone"], clone + [allow])
    # prlimit64(pid, resource, new_limit, old_limit): reading is fine, setting is not
    p += block(_NR["prlimit64"], [
        _ins(_LD_W_ABS, _arg_lo(2)), _ins(_JEQ_K, 0, 0, 3),
        _ins(_LD_W_ABS, _arg_hi(2)), _ins(_JEQ_K, 0, 0, 1),
        allow, eperm,
    ])
    # kill/tkill/tgkill only towards ourselves (raise(), os.kill(os.getpid(), ...))
    for name in ("kill", "tkill", "tgkill"):
        p += block(_NR[name], [
            _ins(_LD_W_ABS, _arg_lo(0)), _ins(_JEQ_K, own_pid & 0xFFFFFFFF, 0, 1), allow, eperm,
        ])
    p += block(_NR["ioctl"], [
        _ins(_LD_W_ABS, _arg_lo(1)), _ins(_JEQ_K, _TIOCSTI, 1, 0), _ins(_JEQ_K, _TIOCLINUX, 0, 1), eperm, allow,
    ])
    p.append(allow)
    for code, jt, jf, k in p:
        assert 0 <= jt < 256 and 0 <= jf < 256, "jump out of range"
    return p


def assemble(program: list[tuple]) -> bytes:
    """``struct sock_filter[]`` bytes."""
    return b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_NO_NEW_PRIVS = 38
_SYS_SECCOMP = 317
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1


def install(*, own_pid: int, block_processes: bool = True) -> None:
    """Install the filter on every thread of this process. Raises OSError if the kernel refuses."""
    if not supported():
        raise OSError(errno.ENOSYS, "seccomp filter only built for x86_64")
    code = assemble(build_program(own_pid=own_pid, block_processes=block_processes))
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(NO_NEW_PRIVS): {errno.errorcode.get(e, e)}")
    rc = libc.syscall(ctypes.c_long(_SYS_SECCOMP), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                      ctypes.c_long(_SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp(SET_MODE_FILTER) returned {rc}: {errno.errorcode.get(e, e)}")
