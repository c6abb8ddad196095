"""The entry point of a class run: lock the output folder, discover, plan, grade on a backend, export."""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from coursekit.course import Course

from ..exports import write_exports
from ..fingerprint import grader_build
from ..gradebook import DiskFull, Gradebook, is_disk_full, restore_latest
from .backends import DaskBackend, PoolBackend
from .discovery import discover
from .ledger import ClassRun, RunSummary

#: Held while a run writes the output folder; removed when the run ends.
LOCK_FILE = ".grade-all.lock"
#: The run's one temporary root inside the output folder: every copy of student code made on this
#: machine (submissions read, job folders, sandbox workspaces) lies under it. Swept under the lock
#: when a run starts, so that a killed run leaves nothing behind past the next one.
TMP_DIR = ".grade-all-tmp"


class ClassRunError(RuntimeError):
    """The run cannot start (output folder locked, scheduler unreachable); the message says why."""


def _connect(scheduler: str) -> "DaskBackend":
    try:
        return DaskBackend(scheduler)
    except ImportError:
        raise ClassRunError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClassRunError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


class _Lock:
    """An exclusive lock on the output folder (released by the kernel even on SIGKILL).

    The lock file is removed when the run ends, whatever the outcome. A run that opened the file
    just before another removed it would hold a lock on a deleted file: after locking, the file
    at the path must still be the one locked, else the lock is taken again.
    """

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / LOCK_FILE
        while True:
            self._fh = open(self.path, "a")
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._fh.close()
                raise ClassRunError(f"another grade-all is writing {out} (it holds {self.path})") from None
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fh.fileno()).st_ino:
                    return
            except FileNotFoundError:
                pass
            self._fh.close()

    def release(self) -> None:
        try:
            self.path.unlink(missing_ok=True)  # while still locked: no other run holds this file
        except OSError:
            pass
        self._fh.close()


@dataclass(frozen=True)
class GradeAllOptions:
    """What a class run is asked to do (``grader grade-all``'s flags)."""

    out: Path = Path("grades")             # gradebook, exports, feedback
    workers: int = 1                       # local grading processes (without ``scheduler``)
    scheduler: str | None = None        # a dask.distributed scheduler address
    force: bool = False                    # regrade everything, ignoring recorded results
    only: tuple[str, ...] = ()             # exercise ids to grade (empty: all)
    skip: tuple[str, ...] = ()             # exercise ids to leave out
    allow_unsandboxed: bool = False
    assignment: str | None = None       # nbgrader layout: grade <student>/<assignment>
    command: str = "grade-all"             # as recorded in the gradebook's run
    regrade: tuple[str, ...] = ()          # students to regrade, ignoring their recorded results and the cache
    restore_gradebook: bool = False        # a damaged gradebook: set it aside, restore the newest backup


class RunObserver(Protocol):
    """Follows a run as it goes (the CLI's progress bar)."""

    def reading(self, students: int) -> None: ...
    def grading(self, up_to_date: int) -> None: ...
    def settled(self, student: str, failed: bool) -> None: ...
    def exercises_graded(self, done: int, total: int) -> None: ...


def grade_all(submissions_dir: Path, course: Course, options: GradeAllOptions = GradeAllOptions(),
              backend: Any = None, observer: RunObserver | None = None) -> RunSummary:
    """Grade every submission under ``submissions_dir`` into the gradebook and exports in ``options.out``.

    ``backend`` (default: a :class:`DaskBackend` for ``options.scheduler``, else a :class:`PoolBackend`)
    needs ``name``, ``workers``, ``threads()``, ``results(jobs)`` and ``close(cancel)``.
    """
    from ..grade import select

    started = time.monotonic()
    exercises = select(course, options.only, options.skip)
    out = Path(options.out)
    lock = _Lock(out)
    gb: Gradebook | None = None
    try:
        tmp_root = _swept_tmp(out)
        notes_first = [restore_latest(out / "gradebook.sqlite")] if options.restore_gradebook else []
        with _disk_full_is_one_line(out), _temp_root(tmp_root):
            gb = Gradebook(out / "gradebook.sqlite")
            return _run(submissions_dir, course, options, exercises, gb, backend, observer, started, notes_first,
                        tmp_root)
    finally:
        if gb is not None:
            gb.close()
        shutil.rmtree(out / TMP_DIR, ignore_errors=True)
        lock.release()


def _swept_tmp(out: Path) -> Path:
    """The output folder's temporary root, emptied (the lock is held: no run uses it)."""
    root = out / TMP_DIR
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    return root


@contextmanager
def _temp_root(root: Path) -> Iterator[None]:
    """This process's temporary files (submissions read for planning) go under ``root``."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(root)
    try:
        yield
    finally:
        tempfile.tempdir = saved


@contextmanager
def _disk_full_is_one_line(out: Path) -> Iterator[None]:
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:
        if is_disk_full(exc) or is_disk_full(exc.__cause__ or exc):
            raise DiskFull(f"{out}: the disk is full ({exc}); every student recorded so far is kept: free space "
                           "and rerun the same command") from exc
        raise


def _run(submissions_dir: Path, course: Course, options: GradeAllOptions, exercises: list, gb: Gradebook,
         backend: Any, observer: RunObserver | None, started: float, notes_first: list[str],
         tmp_root: Path) -> RunSummary:
    """The run itself, with the lock held and the gradebook open."""
    subs, notes = discover(Path(submissions_dir), options.assignment)
    notes = notes_first + notes
    unknown = sorted(set(options.regrade) - {s.student for s in subs})
    if unknown:
        raise ClassRunError(f"--regrade names students with no submission here: {', '.join(unknown)}")
    backend = backend or (_connect(options.scheduler) if options.scheduler else PoolBackend(options.workers))
    run_id = gb.start_run(grader_build(), options.command, backend.workers, options.scheduler)
    summary = RunSummary(run_id=run_id, students=len(subs), backend=backend.name, workers=backend.workers, notes=notes)
    run = ClassRun(course, exercises, gb, summary, force=options.force, allow_unsandboxed=options.allow_unsandboxed,
                   on_student=observer.settled if observer else None, regrade=options.regrade)
    if observer:
        observer.reading(len(subs))
    status = "interrupted"
    try:
        jobs = run.plan(subs)
        if observer:
            observer.grading(summary.up_to_date)
        if jobs:
            threads = backend.threads()
            for job in jobs:
                job["threads"] = threads
                job["tmp_root"] = str(tmp_root.resolve())
            total = sum(len(job["exercises"]) for job in jobs)
            per_student = {job["student"]: len(job["exercises"]) for job in jobs}
            done = 0
            if observer:
                observer.exercises_graded(done, total)
            for result in backend.results(jobs):
                run.finish_job(result)
                done += per_student.get(result.get("student"), 0)
                if observer:
                    observer.exercises_graded(done, total)
        run.fail_unfinished()  # waited on a result that never came
        status = "finished" if not summary.internal_errors else "finished with internal errors"
    finally:
        backend.close(cancel=status == "interrupted")
        gb.finish_run(run_id, status)
    gb.backup()
    summary.class_keys = [p.student_keys() for p in run.plans.values()]
    summary.export_failures = write_exports(gb, course, summary.class_keys, Path(options.out)).failed
    summary.wall_s = time.monotonic() - started
    return summary
