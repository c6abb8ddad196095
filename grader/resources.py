"""The CPUs this process may really use: the container's CPU quota and affinity, not the host's cores.

``os.cpu_count()`` counts the host's CPUs. In a container (Gradescope gives ½ vCPU, Kubernetes pods
a ``cpu`` limit) the kernel enforces a CFS quota instead: cgroup v2 ``cpu.max`` (``"50000 100000"``
= half a CPU), cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``. :func:`available_cpus` is the
one place the grader counts CPUs: exercises graded at once, local grading processes, torch threads.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

#: Where the cgroup file systems are mounted (a test points this at a fake tree).
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroup_paths(proc_cgroup: Path = Path("/proc/self/cgroup")) -> dict[str, str]:
    """Controller (``""`` for the v2 unified hierarchy) -> this process's cgroup path in it."""
    paths: dict[str, str] = {}
    try:
        text = proc_cgroup.read_text()
    except OSError:
        return paths
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _candidates(base: Path, own: str | None) -> list[Path]:
    """The cgroup folders to read a limit from: this process's own cgroup and its parents, then ``base``.

    Inside a container the cgroup namespace makes ``/proc/self/cgroup`` say ``/``, so ``base`` itself
    is the container's cgroup; on a host the own path (and every ancestor, which may hold the limit)
    is tried first."""
    found: list[Path] = []
    if own and own != "/":
        folder = base / own.lstrip("/")
        while folder != base and base in folder.parents:
            found.append(folder)
            folder = folder.parent
    found.append(base)
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_quota(root: Path | None = None, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota in CPUs (``0.5`` for half a CPU), the smallest along the cgroup path; None without one."""
    root = CGROUP_ROOT if root is None else Path(root)
    own = _own_cgroup_paths(proc_cgroup)
    quotas: list[float] = []
    for folder in _candidates(root, own.get("")):  # cgroup v2: "max 100000" or "50000 100000"
        fields = (_read(folder / "cpu.max") or "").split()
        if len(fields) == 2 and fields[0] != "max":
            try:
                quota, period = int(fields[0]), int(fields[1])
            except ValueError:
                continue
            if quota > 0 and period > 0:
                quotas.append(quota / period)
    for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):  # cgroup v1: quota -1 means none
        base = root / mount
        if not base.is_dir():
            continue
        for folder in _candidates(base, own.get("cpu")):
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            try:
                q, p = int(quota or ""), int(period or "")
            except ValueError:
                continue
            if q > 0 and p > 0:
                quotas.append(q / p)
        break
    return min(quotas) if quotas else None


def affinity_cpus() -> int:
    """CPUs this process may be scheduled on (``sched_getaffinity``), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_cpus(root: Path | None = None, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Whole CPUs this process can use: the affinity, capped by the cgroup quota rounded down; at least 1."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.floor(quota + 1e-9))
    return max(1, cpus)


def memory_limit_bytes(root: Path | None = None, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """The cgroup memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``), None when unlimited."""
    root = CGROUP_ROOT if root is None else Path(root)
    own = _own_cgroup_paths(proc_cgroup)
    limits: list[int] = []
    for folder in _candidates(root, own.get("")):
        value = _read(folder / "memory.max")
        if value and value.isdigit():
            limits.append(int(value))
    base = root / "memory"
    if base.is_dir():
        for folder in _candidates(base, own.get("memory")):
            value = _read(folder / "memory.limit_in_bytes")
            if value and value.isdigit() and int(value) < 1 << 60:  # v1 says "unlimited" with a huge number
                limits.append(int(value))
    return min(limits) if limits else None
