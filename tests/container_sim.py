"""Run a command as root the way a Docker container with the default seccomp profile would.

    python tests/container_sim.py [--no-landlock] -- COMMAND ...

A test helper, never part of the grader. It needs root on a host where namespaces work (this
machine), and then, in order:

1. a private mount namespace standing for the container's own filesystem: ``/root`` becomes a
   folder searchable by all that holds only ``.pyenv`` (as ``/usr`` holds Python in an image),
   ``/work`` holds only this repository (the editable install's source in ``/work/main`` and the
   other checkouts are not part of the container), the machine's shared storage is left out and
   ``/tmp`` is the container's own (empty);
2. Docker's default capabilities: the bounding set is cut to them (no ``CAP_SYS_ADMIN``), so the
   command's root has exactly those after ``exec``;
3. a seccomp filter modelled on moby's default profile (``profiles/seccomp/default.json``) for what
   matters here: ``unshare``, ``setns``, ``mount``, ``umount2`` and ``pivot_root`` answer EPERM (they
   are allowed only with ``CAP_SYS_ADMIN``), ``clone`` with any namespace flag (``CLONE_NEWNS | NEWUTS
   | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP``, moby's mask 0x7E020000) answers EPERM, and
   ``clone3`` ENOSYS (glibc then falls back to ``clone``). With ``--no-landlock`` the three
   ``landlock_*`` calls answer ENOSYS too, as on a host kernel without Landlock. Like runc, the filter
   is loaded without setting no-new-privs;
4. ``exec`` of the command, which inherits all of it (children included).
"""
from __future__ import annotations

import argparse
import ctypes
import errno
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CLONE_NEWNS = 0x00020000
#: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET, as moby's profile masks them
NAMESPACE_FLAGS = 0x7E020000
NEEDS_SYS_ADMIN = ("unshare", "setns", "mount", "umount2", "pivot_root")
LANDLOCK_CALLS = ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self")
#: moby's default capability set (CAP_* numbers): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
#: SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP
DOCKER_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)

#: this development machine's shared storage: not part of a container image
MACHINE_ONLY = ("/farm", "/old_root", "/mnt")

_MS_RDONLY, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 4096, 16384, 1 << 18


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    return libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda v: v.encode() if v is not None else None)
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _cover(libc, path: str, keep: str | None, mode: str = "0755") -> None:
    """Cover ``path`` with an empty tmpfs in which only ``keep`` (a folder below it, if given) is shown."""
    fd = os.open(keep, os.O_PATH | os.O_DIRECTORY) if keep else None
    try:
        _mount(libc, "tmpfs", path, "tmpfs", 0, f"mode={mode}")
        if fd is not None:
            os.makedirs(keep)
            _mount(libc, f"/proc/self/fd/{fd}", keep, None, _MS_BIND | _MS_REC)
    finally:
        if fd is not None:
            os.close(fd)


def container_filesystem() -> None:
    """A private mount namespace in which ``/root``, ``/work`` and ``/tmp`` look like a container's."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    repo = str(REPO)
    if os.path.isdir("/root/.pyenv"):
        _cover(libc, "/root", "/root/.pyenv")
    for top, mode in (("/work", "0755"), ("/tmp", "1777")):  # the container's own /tmp, empty
        if os.path.isdir(top):
            _cover(libc, top, repo if repo.startswith(top + "/") else None, mode)
    for other in MACHINE_ONLY:
        if os.path.isdir(other):
            _cover(libc, other, None)


def docker_capabilities() -> None:
    """Cut the bounding set to Docker's default capabilities (an ``exec`` as root then gets just those)."""
    libc = _libc()
    for cap in range(64):
        if cap in DOCKER_CAPS:
            continue
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            if ctypes.get_errno() == errno.EINVAL:
                break
            _check(-1, f"PR_CAPBSET_DROP {cap}")


def docker_seccomp(deny_landlock: bool) -> None:
    """Load the moby-like filter on this process (inherited by the command)."""
    import pyseccomp as sc

    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.CTL_NNP, 0)  # runc does not set no-new-privs (root has CAP_SYS_ADMIN to load it)
    eperm = sc.ERRNO(errno.EPERM)
    for name in NEEDS_SYS_ADMIN:
        f.add_rule(eperm, name)
    flags = 1 if sc.system_arch() in (sc.Arch.S390, sc.Arch.S390X) else 0
    for bit in range(32):
        if NAMESPACE_FLAGS & (1 << bit):
            f.add_rule(eperm, "clone", sc.Arg(flags, sc.MASKED_EQ, 1 << bit, 1 << bit))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    if deny_landlock:
        for name in LANDLOCK_CALLS:
            f.add_rule(sc.ERRNO(errno.ENOSYS), name)
    f.load()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-landlock", action="store_true", help="the landlock_* calls answer ENOSYS")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("a command is needed")
    if os.geteuid() != 0:
        sys.exit("container_sim: must run as root")
    container_filesystem()
    docker_seccomp(args.no_landlock)
    docker_capabilities()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
