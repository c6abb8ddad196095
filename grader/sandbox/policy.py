"""The worker's policy: its limits, and the init configuration and environment derived from them.

Pure functions of :class:`SandboxLimits`, the isolation mode and the worker's :class:`~.view.PythonView`:
they start nothing and write nothing (they only look at which paths exist, for the Landlock grants).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import seccomp_filter
from .isolation import uid_landlock
from .view import SYSTEM_TREES, PythonView, visible_packages

if TYPE_CHECKING:
    from coursekit.course import Limits as CourseLimits

__all__ = ["SandboxLimits", "grant_except", "worker_config", "worker_env"]

#: files and kernel views every Landlock worker may read besides the Python installation
_SYSTEM_READ = ("/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/random", "/dev/zero", "/proc/self",
                "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu", "/sys/fs/cgroup")


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits and policy for one exercise's worker.

    The exercise's limits come from course.yml, through :meth:`of` (grading always builds them so); the
    fields below ``packages`` are the sandbox's own policy."""

    time_limit_s: float  # wall clock for all calls of the exercise together
    memory_limit_mb: int  # RLIMIT_AS of the worker
    forbidden_imports: tuple[str, ...] = ()
    forbidden_calls: tuple[str, ...] = ()
    allow_unsandboxed: bool = False
    packages: tuple[str, ...] = ("numpy",)  # allowed top-level packages (course.yml allowed_packages)
    allow_subprocesses: bool = False  # bwrap mode only (its PID namespace is killed as a whole)
    max_processes: int = 1024  # RLIMIT_NPROC, per host uid (threads count too; not enforced for root)
    max_file_mb: int = 64  # RLIMIT_FSIZE
    max_open_files: int = 256  # RLIMIT_NOFILE
    scratch_mb: int = 64  # size of the writable scratch tmpfs and /tmp (bwrap)
    max_result_mb: int = 512  # largest result frame the grader accepts
    max_output_kb: int = 64  # captured stdout / stderr, each
    startup_timeout_s: float = 60.0
    threads: int | None = None  # OMP/OpenBLAS/MKL threads with torch (None: its default); numpy-only workers: 1

    @classmethod
    def of(cls, limits: "CourseLimits", **policy: Any) -> "SandboxLimits":
        """The worker's limits for an exercise's course.yml limits (``course.limits(exercise_id)``)."""
        return cls(time_limit_s=limits.time_limit_s, memory_limit_mb=limits.memory_limit_mb,
                   forbidden_imports=tuple(limits.forbidden_imports), forbidden_calls=tuple(limits.forbidden_calls),
                   packages=tuple(limits.allowed_packages), **policy)

    def visible_packages(self) -> tuple[str, ...]:
        """What the worker sees: :func:`view.visible_packages` of ``packages`` and ``forbidden_imports``."""
        return visible_packages(self.packages, self.forbidden_imports)


def preload(lim: SandboxLimits) -> list[str]:
    """What is imported before any student file: numpy, and torch where the worker may see it (a torch
    worker). The fork server imports these once for all its workers."""
    return [p for p in ("numpy", "torch") if p in lim.visible_packages()]


def worker_config(lim: SandboxLimits, mode: str, package: str, view: PythonView, student_root: str,
                  runtime_root: str, scratch: str) -> dict:
    """The worker's ``init`` frame: its rlimits, seccomp, guard lists, ``sys.path`` and Landlock grants
    (paths as the worker sees them: ``student_root``, ``runtime_root``, ``scratch``)."""
    mb = 2**20
    rl = {"AS": lim.memory_limit_mb * mb, "CPU": int(lim.time_limit_s * max(1, os.cpu_count() or 1)) + 10,
          "NPROC": lim.max_processes, "FSIZE": lim.max_file_mb * mb, "NOFILE": lim.max_open_files, "CORE": 0}
    cfg = {
        "mode": mode,
        "package": package,
        "student_root": student_root,
        "sys_path": list(view.sys_path),
        "rlimits": rl,
        "seccomp": (seccomp_filter.for_worker(block_processes=not (lim.allow_subprocesses and mode == "bwrap"))
                    if mode != "none" and seccomp_filter.supported() else None),
        "preload": preload(lim),
        "forbidden_imports": list(lim.forbidden_imports),
        "forbidden_calls": list(lim.forbidden_calls),
        "forbidden_paths": list(view.forbidden),
        "max_result_bytes": lim.max_result_mb * mb,
        "stdlib_paths": list(view.stdlib),
        "library_paths": sorted({*view.site_dirs, *view.sys_path[len(view.stdlib):], *view.visible,
                                 *(os.path.realpath(v) for v in view.visible)}),
        "landlock": None,
    }
    if mode == "landlock" or (mode == "uid" and uid_landlock()):  # the uid mode: Landlock on top where it exists
        cfg["landlock"] = {"read": list(landlock_reads(view, student_root, runtime_root)), "write": [scratch, "/dev/null"]}
    return cfg


@lru_cache(maxsize=16)
def landlock_reads(view: PythonView, student_root: str, runtime_root: str) -> tuple[str, ...]:
    """What a Landlock worker may read: the system files, the Python installation without any site
    directory, the visible packages without forbidden subpackages, the student's files and the runtime
    (the same for every worker of a sandbox: computed once)."""
    read = [p for p in _SYSTEM_READ if os.path.exists(p)]
    trees = tuple(dict.fromkeys(os.path.realpath(t) for t in (*SYSTEM_TREES, *view.roots) if os.path.exists(t)))
    read += grant_except(trees, view.site_dirs)  # every site dir is left out...
    read += grant_except(view.visible, view.forbidden)  # ...but the allowed packages
    read += [student_root, runtime_root, *view.sys_path[len(view.stdlib):]]
    if not any(view.executable.startswith(r + "/") for r in view.roots):
        read.append(view.executable)
    return tuple(read)

def worker_env(lim: SandboxLimits, home: str, tmp: str) -> dict[str, str]:
    """The worker's environment variables: a plain locale, ``home``/``tmp``, and its BLAS threads."""
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "USER": "student", "LOGNAME": "student", "MALLOC_ARENA_MAX": "2", "PYTHONIOENCODING": "utf-8"}
    threads = lim.threads
    if "torch" not in preload(lim):
        threads = 1  # small arrays: BLAS threads only contend (and their start-up costs ~60 ms)
    if threads:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    return env


def grant_except(roots: tuple[str, ...] | list[str], masks: tuple[str, ...] | list[str]) -> list[str]:
    """Paths covering ``roots`` except the ``masks`` subtrees (Landlock grants are hierarchical).

    A rule follows a link to its target, so a link leading to or above a mask is walked as its
    target (``masks`` hold real paths)."""
    out = []
    masks_n = [m.rstrip("/") for m in masks]
    seen: set[str] = set()

    def touches_mask(path: str) -> bool:
        return any(path == m or path.startswith(m + "/") or m.startswith(path + "/") for m in masks_n)

    def walk(path: str) -> None:
        if path in masks_n or path in seen:
            return
        seen.add(path)
        if os.path.islink(path):
            real = os.path.realpath(path)
            if touches_mask(real):
                walk(real)
                return
        if not any(m.startswith(path + "/") for m in masks_n):
            out.append(path)
            return
        try:
            names = os.listdir(path)
        except OSError:
            return
        for n in names:
            walk(os.path.join(path, n))

    for r in roots:
        walk(r.rstrip("/"))
    return out
