"""Where jobs run: a local process pool, or a ``dask.distributed`` cluster. Results come back as plain JSON.

A backend has ``name``, ``workers``, ``threads()``, ``results(jobs)`` (results as they finish) and
``close(cancel)``.
"""
from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator

from ..fingerprint import grader_build
from .job import run_job


def _pool_worker_init() -> None:
    """Pool processes die with the grader (even on SIGKILL) and leave Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Processes started inside inherit a thread cap for the grader's own numpy/torch (oracles, scoring).

    Without it every pool process runs one BLAS/torch thread per core, and N processes oversubscribe.
    Dask's nanny does the same for its workers (``OMP_NUM_THREADS=1`` and friends).
    """
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(threads) for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _failure(job: dict[str, Any], why: str) -> dict[str, Any]:
    return {"student": job["student"], "ok": False, "error": why, "build": grader_build(), "host": "", "pid": 0}


class PoolBackend:
    """A local process pool of ``workers`` processes (spawned: no state inherited from this one)."""

    name = "process pool"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: Any = None

    def threads(self) -> int:
        from ..resources import available_cpus

        return max(1, available_cpus() // self.workers)

    def _start(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_pool_worker_init)
        return self._pool

    def results(self, jobs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Results as they finish. A pool broken by a dead process is restarted; a job gets two tries."""
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pending = {j["student"]: j for j in jobs}
        tries: Counter[str] = Counter()
        while pending:
            pool = self._start()
            with _thread_env(self.threads()):  # processes spawn during submit() and keep this environment
                futures = {pool.submit(run_job, job): student for student, job in pending.items()}
            broken = False
            for fut in as_completed(futures):
                student = futures[fut]
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                except Exception as exc:
                    result = _failure(pending[student], f"{type(exc).__name__}: {exc}")
                del pending[student]
                yield result
            self.close(cancel=broken)
            for student in list(pending):
                tries[student] += 1
                if tries[student] >= 2:
                    yield _failure(pending.pop(student), "a grading process died twice while grading this student")

    def close(self, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
        pool.shutdown(wait=True, cancel_futures=cancel)


class DaskBackend:
    """The same jobs on a ``dask.distributed`` cluster; results come back here as plain JSON."""

    name = "dask"

    def __init__(self, address: str) -> None:
        from distributed import Client

        self.address = address
        self.client = Client(address, timeout=20)
        self._futures: list[Any] = []

    def threads(self) -> int:
        """Per task: a host's cores divided by the tasks it runs at once (the smallest over hosts)."""
        workers = self.client.scheduler_info().get("workers", {})
        cpus = self.client.run(os.cpu_count)
        slots: Counter[str] = Counter()
        host_cpus: dict[str, int] = {}
        for address, info in workers.items():
            host = info.get("host") or address.rsplit(":", 1)[0]
            slots[host] += int(info.get("nthreads", 1))
            host_cpus[host] = int(cpus.get(address) or 1)
        return min((max(1, host_cpus[h] // slots[h]) for h in slots), default=1)

    @property
    def workers(self) -> int:
        return sum(int(w.get("nthreads", 1)) for w in self.client.scheduler_info().get("workers", {}).values())

    def results(self, jobs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        from distributed import as_completed

        by_key = {}
        for job in jobs:
            fut = self.client.submit(run_job, job, key=f"grade-{uuid.uuid4().hex}", pure=False)
            by_key[fut.key] = job
            self._futures.append(fut)
        for fut in as_completed(self._futures):
            try:
                yield fut.result()
            except Exception as exc:  # KilledWorker, a lost connection: no score for this student
                yield _failure(by_key[fut.key], f"{type(exc).__name__}: {exc}")

    def close(self, cancel: bool = False) -> None:
        if cancel and self._futures:
            self.client.cancel(self._futures)
        self.client.close()
