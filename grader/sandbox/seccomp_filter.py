"""The worker's system-call filter, built on the trusted side with libseccomp (``pyseccomp``).

The filter denies (EPERM) what numpy/torch code never needs: debugging other processes, mounts and
namespaces, kernel modules, clocks, keyrings, BPF/perf, io_uring, every ``socket()``, terminal
injection (TIOCSTI, TIOCLINUX), raising resource limits, signals to other processes and, when
``block_processes``, ``fork``/``vfork``/``execve`` and non-thread ``clone``. ``clone3`` answers ENOSYS
so that glibc falls back to ``clone``, whose flags a filter can inspect. libseccomp writes it for the
grader's own architecture (the worker runs the same interpreter); syscalls from another ABI (i386,
x32 on x86_64) kill the process.

The worker's pid is not known here (and changes with every fork), so the signal rules compare the
target with ``sandbox_runtime.seccomp.PID_PLACEHOLDER``, which the worker's ``install`` replaces with
its own pid (the one thing libseccomp cannot express: a value known only to the filtered process).
Ioctl requests come from this machine's :mod:`termios`, the seccomp(2) number from libseccomp.
:func:`build` returns the program as ``struct sock_filter[]`` bytes; it travels to the worker in its
``init`` frame.
"""
from __future__ import annotations

import errno
import functools
import tempfile
import termios

from ..sandbox_runtime.seccomp import PID_PLACEHOLDER

__all__ = ["build", "for_worker", "problem", "supported"]

DENIED = (
    # other processes' memory and state
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "pidfd_send_signal",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    # mounts, namespaces, root
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "unshare", "setns",
    # the machine
    "swapon", "swapoff", "reboot", "sethostname", "setdomainname", "iopl", "ioperm", "create_module",
    "init_module", "delete_module", "finit_module", "get_kernel_syms", "query_module", "nfsservctl", "_sysctl",
    "uselib", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup", "kexec_load", "kexec_file_load",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "personality", "lookup_dcookie",
    # kernel attack surface numpy/torch never touch
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "open_by_handle_at",
    "name_to_handle_at", "fanotify_init", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # network: no sockets at all (socketpair stays allowed)
    "socket",
    # limits may only go down
    "setrlimit",
)
PROCESS_CALLS = ("fork", "vfork", "execve", "execveat")
SIGNAL_CALLS = ("kill", "tkill", "tgkill")  # the first argument is the target pid (tid for tkill)

_CLONE_NEW = (0x00000080, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
_CLONE_THREAD = 0x00010000
_LOW_32 = 0xFFFFFFFF  # ioctl's request is an unsigned int: high bits must not hide TIOCSTI


def problem() -> str | None:
    """Why no filter can be built here (libseccomp missing or too old), or None."""
    try:
        import pyseccomp  # loads the system's libseccomp.so.2
    except (ImportError, OSError, RuntimeError) as e:
        return f"no seccomp filter: libseccomp is not available ({e})"

    names = (*DENIED, *PROCESS_CALLS, *SIGNAL_CALLS, "clone", "clone3", "prlimit64", "ioctl", "seccomp")
    unknown = [n for n in names if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) == -1]
    if unknown:
        return f"no seccomp filter: this libseccomp does not know {', '.join(unknown)} (2.5 or newer needed)"
    return None


def supported() -> bool:
    """True where :func:`build` works (libseccomp present and recent enough)."""
    return problem() is None


@functools.lru_cache(maxsize=None)
def build(block_processes: bool) -> bytes:
    """The filter as ``struct sock_filter[]`` bytes for this machine's architecture."""
    reason = problem()
    if reason:
        raise OSError(errno.ENOSYS, reason)
    import pyseccomp as sc

    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    eperm = sc.ERRNO(errno.EPERM)
    for name in DENIED + (PROCESS_CALLS if block_processes else ()):
        f.add_rule(eperm, name)
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    flags = 1 if sc.system_arch() in (sc.Arch.S390, sc.Arch.S390X) else 0  # clone(stack, flags, ...) there
    for bit in _CLONE_NEW:
        f.add_rule(eperm, "clone", sc.Arg(flags, sc.MASKED_EQ, bit, bit))
    if block_processes:
        f.add_rule(eperm, "clone", sc.Arg(flags, sc.MASKED_EQ, _CLONE_THREAD, 0))
    f.add_rule(eperm, "prlimit64", sc.Arg(2, sc.NE, 0))  # reading a limit is fine, setting one is not
    for name in SIGNAL_CALLS:
        f.add_rule(eperm, name, sc.Arg(0, sc.NE, PID_PLACEHOLDER))
    for request in (termios.TIOCSTI, termios.TIOCLINUX):
        f.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, _LOW_32, request))
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def for_worker(block_processes: bool) -> dict:
    """The ``seccomp`` entry of the worker's init frame: the program (hex) and seccomp(2)'s number here."""
    import pyseccomp

    return {"program": build(block_processes).hex(),
            "syscall": pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "seccomp")}
