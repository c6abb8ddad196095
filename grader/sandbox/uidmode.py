"""The ``uid`` isolation: root without namespaces (a Docker or Kubernetes container), one uid per sandbox.

Docker's default seccomp profile denies user namespaces (and so bubblewrap), and the host kernel may
lack Landlock; but the grader usually runs there as root, which can start the fork server under a
dedicated unprivileged uid. What this module provides:

* :func:`lease` -- a uid/gid of its own for each sandbox, from ``$GRADER_SANDBOX_UIDS`` (``FIRST-LAST``,
  default 64000-64255: inside the 65,536 ids a user-namespaced container maps; no ``/etc/passwd``
  entry needed). Leases are ``flock``\\ s in a root-only folder, so concurrent grader processes never share
  a uid: one student's worker can neither signal, read nor write another's (a class run grades several at
  once). The search starts at a random uid of the range: containers on one host share its uids (and the
  per-uid process limit), so they should not all take the first. Taking a lease first removes whatever an earlier holder left (:func:`sweep`): its processes, its
  files in ``/tmp``, ``/var/tmp`` and ``/dev/shm``.
* :func:`lock_secrets` -- what the uid must not read is made unreadable to it. A root-installed tree is
  usually world-readable (0644 files, 0755 folders), so the grader removes the *other* permission bits
  (``chmod o-rwx``) from: the grader package and the reference wherever they are importable (the source
  tree or bundle holding course.yml, e.g. Gradescope's ``/autograder/source``, and any copy in a site
  directory), the case lists (``$GRADER_CASE_CACHE``), the MNIST folder, the grader's working directory
  (Gradescope's ``/autograder`` with ``submission/`` and ``results/``, a class run's folder with the
  other students and the gradebook) and every path in ``$GRADER_PROTECT`` (``os.pathsep``-separated).
  A path that holds something the worker needs (the Python installation, the sandbox's folder) is not
  locked itself: its other entries are. System trees (``/``, ``/usr``, ``/etc``, ``/tmp``, ...) are never
  touched. The worker's own folder is ``root:<gid> 0750`` (its scratch ``<uid> 0700``), so no other uid
  reaches it.
* :func:`hidden_paths` -- without Landlock, the view is made with POSIX ACLs: the sandbox's gid gets a
  "no access" entry on every entry of the site directories that its view does not show (other
  packages, the grader's own copies) and on the forbidden subpackages (``scipy/signal``), so that, as
  under bubblewrap, a package course.yml does not allow is absent for that worker, not merely refused;
  the entries go when the lease does (and a later holder of the uid removes any a crash left).
* :func:`problem` -- why the mode cannot run here (not root, no seccomp filter, an interpreter that the
  uid cannot reach).

The workers add seccomp (no sockets, namespaces, ptrace or signals to others), rlimits, no-new-privs, an
undumpable process and, where the kernel has it, Landlock with the same grants as the ``landlock`` mode.
"""
from __future__ import annotations

import errno
import fcntl
import os
import random
import shutil
import signal
import stat
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import seccomp_filter
from .view import SYSTEM_TREES, PythonView

__all__ = ["Lease", "hidden_paths", "lease", "lock_secrets", "problem", "secret_paths", "sweep", "uid_range"]

UIDS_ENV = "GRADER_SANDBOX_UIDS"
PROTECT_ENV = "GRADER_PROTECT"
DEFAULT_UIDS = (64000, 64255)
#: World-writable folders where a uid can leave files behind; swept when its lease is taken.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
#: Never locked nor walked: the system, and the folders every process needs.
_NEVER_LOCKED = frozenset({"/", *SYSTEM_TREES, "/etc", "/dev", "/proc", "/sys", "/run", "/var", "/tmp", "/var/tmp",
                           "/dev/shm", "/home", "/opt", "/srv", "/mnt", "/media", "/boot", "/snap"})


class UidModeError(OSError):
    """A uid lease or a lock could not be taken (the grader turns it into a WorkerError)."""


def uid_range() -> range:
    """The sandbox uids (gid = uid): ``$GRADER_SANDBOX_UIDS`` as ``FIRST-LAST``, else 64000-64255."""
    setting = os.environ.get(UIDS_ENV, "").strip()
    first, last = DEFAULT_UIDS
    if setting:
        try:
            a, _, b = setting.partition("-")
            first, last = int(a), int(b or a)
        except ValueError:
            raise UidModeError(errno.EINVAL, f"{UIDS_ENV}={setting!r}: expected FIRST-LAST, e.g. 64000-64255") from None
    if not 1000 <= first <= last < 2**32 - 1:
        raise UidModeError(errno.EINVAL, f"{UIDS_ENV}: {first}-{last} is not a range of unprivileged uids")
    return range(first, last + 1)


def _reachable_by_others(path: str) -> bool:
    """Whether a uid that is neither the owner nor in the group can reach ``path`` (every folder above
    searchable by others, the file itself readable)."""
    p = Path(os.path.realpath(path))
    for d in (*reversed(p.parents), p):
        try:
            st = os.stat(d)
        except OSError:
            return False
        need = stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else stat.S_IROTH
        if not st.st_mode & need:
            return False
    return True


def problem(view: PythonView | None = None) -> str | None:
    """Why the ``uid`` mode cannot run here, or None."""
    if os.geteuid() != 0:
        return "the uid mode needs root (to run student code under a uid of its own)"
    reason = seccomp_filter.problem()
    if reason:
        return f"the uid mode needs a seccomp filter: {reason}"
    try:
        uid_range()
    except UidModeError as e:
        return str(e)
    if view is None:
        import sysconfig

        needed = [sys.executable, sysconfig.get_paths()["stdlib"]]
    else:
        needed = [view.executable, *view.stdlib]
    for path in needed:
        if os.path.exists(path) and not _reachable_by_others(path):
            return (f"the uid mode needs the Python installation readable by other users; {path} is not "
                    "(install Python outside root's home, or make its folders searchable: chmod o+x)")
    return None


# ---------------------------------------------------------------------------------------------- leases


def _lease_dir() -> Path:
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    d = base / "convnets-grader-uids"
    try:
        d.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
        raise UidModeError(errno.EPERM, f"{d} is not a folder of root's alone: remove it")
    return d


@dataclass
class Lease:
    """One sandbox's uid and gid, held (an ``flock``) until :meth:`release`. The lease file lists the
    paths whose ACL denies the gid, so that whoever holds the uid next can undo them after a crash."""

    uid: int
    fd: int

    @property
    def gid(self) -> int:
        return self.uid

    def hide(self, paths: list[tuple[str, int]]) -> None:
        """Give the gid only ``perm`` on each ``(path, perm)`` (recorded in the lease file first)."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, "".join(f"{p}\n" for p, _ in paths).encode(), 0)
        with _acl_lock():
            for path, perm in paths:
                _set_group_entry(path, self.gid, perm)

    def release(self) -> None:
        """Kill what the uid left running, remove its files in the shared folders and its ACL entries,
        free the uid."""
        if self.fd < 0:
            return
        try:
            _clear(self.uid, self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1


def _clear(uid: int, fd: int) -> None:
    """Everything a holder of ``uid`` may have left: processes, files, ACL entries (listed in ``fd``)."""
    sweep(uid)
    size = os.fstat(fd).st_size
    listed = os.pread(fd, size, 0).decode(errors="replace").splitlines() if size else []
    if listed:
        with _acl_lock():
            for path in listed:
                try:
                    _set_group_entry(path, uid, None)
                except OSError:
                    pass
    os.ftruncate(fd, 0)


def lease() -> Lease:
    """A uid no other sandbox of this machine holds, cleared of anything a previous holder left."""
    d = _lease_dir()
    uids = uid_range()
    start = random.randrange(len(uids))  # containers on one host share its uids (and RLIMIT_NPROC): spread them
    for uid in (*uids[start:], *uids[:start]):
        fd = os.open(d / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            _clear(uid, fd)
        except BaseException:
            os.close(fd)
            raise
        return Lease(uid, fd)
    r = uid_range()
    raise UidModeError(errno.EBUSY, f"all {len(r)} sandbox uids ({r.start}-{r.stop - 1}) are in use; "
                                    f"widen {UIDS_ENV}")


def _processes_of(uid: int) -> list[int]:
    """Pids whose real, effective, saved or filesystem uid is ``uid`` (an undumpable process's
    ``/proc/<pid>`` is root's, so the status line is read)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Uid:"):
                        if str(uid).encode() in line.split()[1:]:
                            pids.append(int(name))
                        break
        except OSError:
            continue
    return pids


def sweep(uid: int) -> None:
    """SIGKILL every process of ``uid`` and remove its entries in :data:`SHARED_WRITABLE`."""
    for _ in range(20):
        pids = [p for p in _processes_of(uid) if p != os.getpid()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
    for top in SHARED_WRITABLE:
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue


# ---------------------------------------------------------------------------------------------- secrets


def secret_paths() -> list[str]:
    """What a sandbox uid must not read (see the module's docstring); existing paths only, real paths."""
    import grader

    pkg = Path(grader.__file__).resolve().parent
    found: list[Path] = [pkg]
    if (pkg.parent / "course.yml").exists():  # a source tree or a Gradescope bundle: reference, course.yml, data
        found.append(pkg.parent)
    import site

    for d in {*site.getsitepackages(), site.getusersitepackages()}:
        found += [Path(d) / "grader", Path(d) / "solutions"]  # `pip install` copies (the reference is a package)
    # the case lists of the suites this process grades with (the sandbox never imports the suites itself)
    case_lists = sys.modules.get("grader.suites.case_lists")
    cases = case_lists.case_cache_dir() if case_lists is not None else None
    if cases is not None:
        try:  # made now and locked below, before a search keeps its first list there
            cases.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            pass
        found.append(cases.parent)
    if os.environ.get("MNIST_DIR"):
        found.append(Path(os.environ["MNIST_DIR"]))
    try:
        from coursekit import mnist
        from coursekit.course import load_course

        found.append(mnist.user_cache_dir())
        course = load_course()
        found.append(course.resolve(course.data.mnist_dir))
    except Exception:  # noqa: BLE001  no course here (a Worker used alone): nothing more to protect
        pass
    found.append(Path(os.getcwd()))
    found += [Path(p) for p in os.environ.get(PROTECT_ENV, "").split(os.pathsep) if p]
    out: list[str] = []
    for p in found:
        real = os.path.realpath(p)
        if os.path.exists(real) and real not in out:
            out.append(real)
    return out


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def lock_secrets(keep: list[str] | tuple[str, ...], paths: list[str] | None = None) -> list[str]:
    """Remove other users' access from :func:`secret_paths` (or ``paths``), sparing the trees in ``keep``
    (real paths the worker needs) and the folders above them; returns the paths changed."""
    keep = [os.path.realpath(k) for k in keep]
    changed: list[str] = []

    def lock(path: str) -> None:
        if path in _NEVER_LOCKED or any(_inside(path, k) for k in keep):
            return
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            return  # a link's target is what matters; it is locked where it lies, if secret
        if stat.S_ISDIR(st.st_mode) and any(_inside(k, path) for k in keep):
            try:
                names = os.listdir(path)
            except OSError:
                return
            for name in names:
                lock(os.path.join(path, name))
            return
        if st.st_mode & 0o007:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o007)
            changed.append(path)

    for p in secret_paths() if paths is None else paths:
        lock(os.path.realpath(p))
    return changed


# ---------------------------------------------------------------------------------------------- the view, by ACL

_ACL_XATTR = "system.posix_acl_access"
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF
_HEAD, _ENTRY = struct.Struct("<I"), struct.Struct("<HHI")  # posix_acl_xattr_header / _entry, version 2


class _acl_lock:
    """One writer of ACLs at a time on this machine (entries of several sandboxes share a file's ACL)."""

    def __enter__(self):
        self.fd = os.open(_lease_dir() / "acl.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _acl_entries(path: str) -> list[tuple[int, int, int]]:
    try:
        raw = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
        m = os.lstat(path).st_mode
        return [(_USER_OBJ, (m >> 6) & 7, _UNDEFINED), (_GROUP_OBJ, (m >> 3) & 7, _UNDEFINED), (_OTHER, m & 7, _UNDEFINED)]
    return [_ENTRY.unpack_from(raw, off) for off in range(_HEAD.size, len(raw), _ENTRY.size)]


def _set_group_entry(path: str, gid: int, perm: int | None) -> None:
    """Set (``perm``: rwx bits, 0 for no access) or remove (None) the ACL entry of ``gid`` on ``path``;
    the other entries and what the mode bits grant stay as they were."""
    entries = [e for e in _acl_entries(path) if not (e[0] == _GROUP and e[2] == gid)]
    if perm is not None:
        entries.append((_GROUP, perm, gid))
    named = [e for e in entries if e[0] in (_USER, _GROUP)]
    base = [e for e in entries if e[0] not in (_USER, _GROUP, _MASK)]
    group_obj = next(p for t, p, _ in base if t == _GROUP_OBJ)
    if not named:  # back to plain mode bits (the group bits showed the mask: restore the owning group's)
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        try:
            os.removexattr(path, _ACL_XATTR, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
        os.chmod(path, (mode & ~0o070) | group_obj << 3, follow_symlinks=False)
        return
    mask = group_obj
    for _, perm, _ in named:
        mask |= perm
    out = sorted(base + named + [(_MASK, mask, _UNDEFINED)], key=lambda e: (e[0], e[2]))
    os.setxattr(path, _ACL_XATTR, _HEAD.pack(2) + b"".join(_ENTRY.pack(*e) for e in out), follow_symlinks=False)


SEARCH_ONLY, NO_ACCESS = 1, 0


def hidden_paths(view: PythonView) -> list[tuple[str, int]]:
    """What the view hides from a uid that could otherwise read it, as ``(real path, permission)``:
    each site directory may be traversed, not listed (its shown entries are reached by the private
    site directory's links); every entry of it that is not shown, and every forbidden subpackage inside
    the shown ones, is out of reach."""
    shown = {*view.visible, *(os.path.realpath(v) for v in view.visible)}
    needed = [view.executable, *view.stdlib, *shown]
    out: dict[str, int] = {}
    for site_dir in view.site_dirs:
        try:
            names = os.listdir(site_dir)
        except OSError:
            continue
        out.setdefault(os.path.realpath(site_dir), SEARCH_ONLY)
        for name in names:
            path = os.path.join(site_dir, name)
            real = os.path.realpath(path)
            if path in shown or real in shown or any(_inside(n, real) for n in needed) or not os.path.exists(real):
                continue
            out[real] = NO_ACCESS
    for f in view.forbidden:
        if os.path.exists(f):
            out[os.path.realpath(f)] = NO_ACCESS
    return list(out.items())
