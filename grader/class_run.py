"""Grade a whole class: discover submissions, skip what is recorded, dedupe, schedule, record.

``grader grade-all SUBMISSIONS_DIR`` runs here. The submitting machine reads every submission
(:func:`read_submission`), computes one cache key per exercise (:mod:`grader.fingerprint`) and
decides what still needs grading:

* a row in the gradebook with the current cache key and content hash: nothing to do (resume);
* a result for the key in the gradebook's cache (an earlier run, another student): copied;
* a key several students share this run: one representative grades it, the others copy;
* the rest becomes one *job* per student: the bytes of the student's modules, the exercise ids,
  the course as JSON. :func:`run_job` writes the files to a temporary folder and calls
  :func:`grader.grade.grade_submission` (one sandbox per exercise), returning plain JSON.

Jobs run on a local process pool or, with ``--scheduler``, on a ``dask.distributed`` cluster; only
this process writes the gradebook, one transaction per finished student.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import tempfile
import time
import uuid
import warnings
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from coursekit.course import Course, Exercise

from . import __version__
from .exports import StudentKeys, current_rows, write_exports
from .fingerprint import cache_key, code_hash, course_hash, grader_build
from .gradebook import Gradebook, now
from .report import ExerciseResult
from .submission import SubmissionError, prepare

_MODULE_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Folders of an nbgrader course directory that are not the submissions.
_NBGRADER_DIRS = ("source", "release", "autograded", "feedback")
_NO_SANDBOX = "none needed (no student code ran)"


# ------------------------------------------------------------------------------------------ discovery


@dataclass(frozen=True)
class StudentSubmission:
    student: str
    path: Path


def discover(root: Path, assignment: Optional[str] = None) -> tuple[list[StudentSubmission], list[str]]:
    """One submission per student folder or ``<student>.zip``; notes say what was ignored and why.

    ``root`` may also be an nbgrader course directory (its ``submitted/`` folder is used); with
    ``assignment`` each student's submission is ``<student>/<assignment>``.
    """
    root = Path(root)
    if (root / "submitted").is_dir():
        others = [p for p in root.iterdir() if p.name not in ("submitted", *_NBGRADER_DIRS)
                  and not p.name.startswith((".", "_")) and (p.is_dir() or p.suffix.lower() == ".zip")]
        if not others:  # an nbgrader course directory
            root = root / "submitted"
    found: dict[str, StudentSubmission] = {}
    notes: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            student, path = entry.name, entry
            if assignment:
                path = entry / assignment
                if not path.is_dir():
                    notes.append(f"{student}: no {assignment}/ folder, not graded")
                    continue
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            student, path = entry.stem, entry
        else:
            notes.append(f"{entry.name}: neither a folder nor a .zip, ignored")
            continue
        if student in found:
            notes.append(f"{student}: both {found[student].path.name} and {entry.name}; grading {found[student].path.name}")
            continue
        found[student] = StudentSubmission(student, path)
    return list(found.values()), notes


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class ExerciseKey:
    code_hash: str
    course_hash: str
    cache_key: str


@dataclass
class StudentPlan:
    """A submission as read on the submitting machine."""

    student: str
    submission: Path
    content_hash: str
    keys: dict[str, ExerciseKey]                  # every course exercise -> its key now
    sources: dict[str, bytes] = field(default_factory=dict)       # readable modules, sent to the grading worker
    local: dict[str, dict[str, Any]] = field(default_factory=dict)  # results known without running student code
    error: Optional[str] = None                   # the SubmissionError, if the submission cannot be read

    def student_keys(self) -> StudentKeys:
        return StudentKeys(self.student, self.content_hash, {i: k.cache_key for i, k in self.keys.items()})


def raw_fingerprint(path: Path, max_entries: int = 20_000) -> str:
    """A hash of an unreadable submission as it lies on disk (so an unchanged one is not re-read)."""
    h = hashlib.sha256()
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()
    if not path.is_dir():
        return hashlib.sha256(b"absent").hexdigest()
    for n, (folder, dirs, files) in enumerate(os.walk(path, followlinks=False)):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            p = Path(folder, name)
            rel = p.relative_to(path).as_posix()
            if p.is_symlink():
                h.update(f"{rel}\0link\0{os.readlink(p)}\0".encode())
            elif p.is_file():
                st = p.stat()
                h.update(f"{rel}\0{st.st_size}\0".encode())
                if st.st_size <= 4 * 1024 * 1024:
                    h.update(hashlib.sha256(p.read_bytes()).digest())
                else:
                    h.update(str(st.st_mtime_ns).encode())
        if n > max_entries:
            break
    return h.hexdigest()


def read_submission(sub: StudentSubmission, course: Course, build: str) -> StudentPlan:
    """Read the student's modules, compute every exercise's cache key, settle what needs no sandbox."""
    from .grade import grade_exercise  # heavy (suites); only the submitting side needs it here

    package = course.student_package
    try:
        ws = prepare(sub.path, package, course.modules)
    except SubmissionError as exc:
        fp = raw_fingerprint(sub.path)
        keys = {}
        for ex in course.exercises:
            ch = course_hash(course, ex)
            keys[ex.id] = ExerciseKey("unreadable:" + fp, ch, cache_key(ex.id, "unreadable:" + fp + str(exc), ch, build))
        return StudentPlan(sub.student, sub.path, "unreadable:" + fp, keys, error=str(exc))
    with ws:
        sources = {m: p.read_bytes() for m, p in ws.modules.items()}
        hashed: dict[str, bytes] = {**sources, **{m: b"\0unreadable\0" + why.encode() for m, why in ws.problems.items()}}
        plan = StudentPlan(sub.student, sub.path, ws.content_hash, {}, sources)
        for ex in course.exercises:
            code, ch = code_hash(ex.module, hashed, package), course_hash(course, ex)
            plan.keys[ex.id] = ExerciseKey(code, ch, cache_key(ex.id, code, ch, build))
            if ex.module not in ws.modules:  # missing or unreadable: graded at once, no student code runs
                plan.local[ex.id] = grade_exercise(ws, course, ex)[0].to_json()
    return plan


def _error_result(ex: Exercise, message: str) -> dict[str, Any]:
    return ExerciseResult(id=ex.id, score=0.0, max_score=ex.points, status="error", duration_s=0.0, tests=[],
                          bonus=ex.bonus, message=f"the submission could not be read: {message}").to_json()


# ------------------------------------------------------------------------------------------ the job (runs anywhere)


@lru_cache(maxsize=4)
def _course_from(course_json: str) -> Course:
    return Course.model_validate_json(course_json)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Grade one student's exercises from the module bytes in ``job``; returns plain JSON.

    Runs in a pool process or on a Dask worker: writes the files into a fresh temporary folder,
    grades them with :func:`grader.grade.grade_submission` (one sandbox per exercise) and removes
    the folder. A failure of the grader itself comes back as ``{"ok": False, "error": ...}``.
    """
    started = time.monotonic()
    base = {"student": job["student"], "build": grader_build(), "host": socket.gethostname(), "pid": os.getpid()}
    tmp = Path(tempfile.mkdtemp(prefix="grade-all-"))
    try:
        from .grade import grade_submission

        course = _course_from(job["course"])
        package_dir = tmp / job["package"]
        package_dir.mkdir()
        for name, data in job["files"].items():
            if not _MODULE_NAME.fullmatch(name):
                raise ValueError(f"bad module name {name!r} in job")
            (package_dir / f"{name}.py").write_bytes(data)
        with warnings.catch_warnings():  # library deprecation notices would only garble the progress display
            warnings.simplefilter("ignore")
            report = grade_submission(tmp, course, only=job["exercises"], allow_unsandboxed=job["allow_unsandboxed"],
                                      threads=job["threads"])
        return {**base, "ok": True, "report": report.to_json(), "wall_s": time.monotonic() - started}
    except Exception as exc:  # GraderInternalError, WorkerError (no sandbox), a bug: no score for this student
        return {**base, "ok": False, "error": f"{type(exc).__name__}: {exc}", "wall_s": time.monotonic() - started}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------ backends


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
        return max(1, (os.cpu_count() or 1) // self.workers)

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


# ------------------------------------------------------------------------------------------ the run


@dataclass
class RunSummary:
    run_id: int
    students: int
    up_to_date: int = 0                      # nothing to do: already recorded for the current content
    recorded: int = 0                        # students written this run
    graded: int = 0                          # exercise results produced this run (sandboxes, or no code to run)
    copied: int = 0                          # exercise rows filled from the cache or another student
    internal_errors: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    backend: str = ""
    workers: int = 0
    notes: list[str] = field(default_factory=list)
    class_keys: list[StudentKeys] = field(default_factory=list)  # the current class, for exports and the table


@dataclass
class _Available:
    result: dict[str, Any]
    isolation: str
    graded_at: str
    graded_by: str
    this_run: bool


class ClassRun:
    """One ``grade-all``: plan against the gradebook, grade what is missing, record, export."""

    def __init__(self, course: Course, exercises: list[Exercise], force: bool = False,
                 allow_unsandboxed: bool = False) -> None:
        self.course, self.exercises = course, exercises
        self.force, self.allow_unsandboxed = force, allow_unsandboxed
        self.build = grader_build()
        self.plans: dict[str, StudentPlan] = {}
        self.available: dict[str, _Available] = {}     # cache key -> result usable this run
        self.owner: dict[str, str] = {}                # cache key -> the student whose job grades it
        self.needed: dict[str, dict[str, str]] = {}    # student -> exercise id -> cache key still to record
        self.waiting_on: dict[str, set[str]] = defaultdict(set)  # cache key -> students waiting for it
        self.failed: dict[str, str] = {}               # student -> why nothing was recorded

    # -- planning --------------------------------------------------------------------------
    def _needs(self, gb: Gradebook, plan: StudentPlan) -> dict[str, str]:
        rows = {} if self.force else gb.rows(plan.student)
        needs = {}
        for ex in self.exercises:
            key = plan.keys[ex.id].cache_key
            row = rows.get(ex.id)
            if row is None or row.cache_key != key or row.content_hash != plan.content_hash:
                needs[ex.id] = key
        return needs

    def plan(self, gb: Gradebook, run_id: int, subs: list[StudentSubmission], summary: RunSummary,
             on_student: Any = None) -> list[dict[str, Any]]:
        """Read every submission, record what needs no grading, and return the jobs."""
        job_exercises: dict[str, list[str]] = defaultdict(list)
        for sub in subs:
            plan = read_submission(sub, self.course, self.build)
            self.plans[plan.student] = plan
            needs = self._needs(gb, plan)
            if not needs:
                summary.up_to_date += 1
                continue
            self.needed[plan.student] = needs
            if plan.error is not None:
                summary.unreadable.append(plan.student)
                for ex_id, key in needs.items():
                    self.available.setdefault(key, _Available(_error_result(self.course.exercise(ex_id), plan.error),
                                                              _NO_SANDBOX, now(), plan.student, True))
                self._record(gb, run_id, plan.student, summary, on_student, store=[])
                continue
            local_store = []
            for ex_id, key in needs.items():
                if key in self.available or key in self.owner:
                    continue
                hit = None if self.force else gb.cached(key)
                if hit is not None:
                    self.available[key] = _Available(hit.result, hit.isolation, hit.graded_at, hit.graded_by, False)
                    continue
                self.owner[key] = plan.student
                if ex_id in plan.local:
                    self.available[key] = _Available(plan.local[ex_id], _NO_SANDBOX, now(), plan.student, True)
                    local_store.append(key)
                else:
                    job_exercises[plan.student].append(ex_id)
            pending = {k for k in needs.values() if k not in self.available}
            for key in pending:
                self.waiting_on[key].add(plan.student)
            if not pending:
                self._record(gb, run_id, plan.student, summary, on_student, store=local_store)
            elif local_store:
                with gb.transaction():
                    self._store(gb, run_id, local_store, summary)
        weight = {ex.id: (50 if ex.id == "mnist_accuracy" else 1) for ex in self.course.exercises}
        course_json = self.course.model_dump_json()
        jobs = [{"student": s, "package": self.course.student_package, "files": self.plans[s].sources,
                 "exercises": ids, "course": course_json, "content_hash": self.plans[s].content_hash,
                 "allow_unsandboxed": self.allow_unsandboxed, "threads": None}
                for s, ids in job_exercises.items()]
        jobs.sort(key=lambda j: -sum(weight[i] for i in j["exercises"]))  # longest first: better balance
        return jobs

    # -- recording -------------------------------------------------------------------------
    def _store(self, gb: Gradebook, run_id: int, keys: Iterable[str], summary: RunSummary) -> None:
        for key in keys:
            a = self.available[key]
            gb.store_result(run_id, key, a.result, a.isolation, a.graded_by, a.graded_at)
            summary.graded += 1

    def _complete(self, student: str) -> bool:
        return student not in self.failed and all(k in self.available for k in self.needed[student].values())

    def _record(self, gb: Gradebook, run_id: int, student: str, summary: RunSummary, on_student: Any,
                store: Iterable[str] = ()) -> None:
        """One transaction: results just produced (``store``) and the student's rows."""
        plan = self.plans[student]
        rows = []
        for ex_id, key in self.needed[student].items():
            a = self.available[key]
            origin = ("graded" if a.graded_by == student else "dedupe") if a.this_run else "cache"
            summary.copied += origin != "graded"
            k = plan.keys[ex_id]
            rows.append({"exercise": ex_id, "code_hash": k.code_hash, "course_hash": k.course_hash, "cache_key": key,
                         "grader_version": __version__, "grader_build": self.build, "status": a.result["status"],
                         "score": a.result["score"], "max_score": a.result["max_score"], "bonus": a.result["bonus"],
                         "message": a.result.get("message", ""), "tests": a.result.get("tests", []),
                         "duration_s": a.result.get("duration_s", 0.0), "isolation": a.isolation, "origin": origin,
                         "graded_at": a.graded_at})
        with gb.transaction():
            self._store(gb, run_id, store, summary)
            gb.record(run_id, student, str(plan.submission), plan.content_hash, rows, plan.error)
        summary.recorded += 1
        del self.needed[student]
        if on_student:
            on_student(student, any(r["status"] in ("error", "timeout", "forbidden") for r in rows))

    def _fail(self, gb: Gradebook, run_id: int, student: str, why: str, summary: RunSummary, on_student: Any) -> None:
        if student in self.failed or student not in self.needed:
            return
        self.failed[student] = why
        summary.internal_errors[student] = why
        gb.log_internal_error(run_id, student, why)
        if on_student:
            on_student(student, True)

    def finish_job(self, gb: Gradebook, run_id: int, result: dict[str, Any], summary: RunSummary,
                   on_student: Any = None) -> None:
        """Record what one job produced, and every student it completes."""
        student = result["student"]
        plan = self.plans[student]
        if result.get("ok") and result.get("build") != self.build:
            result = {**result, "ok": False, "error": f"the grading worker on {result.get('host')} runs grader "
                                                      f"{result.get('build')}, this machine {self.build}"}
        if result.get("ok") and result["report"].get("content_hash") != plan.content_hash:
            result = {**result, "ok": False, "error": "the grading worker saw different files than were sent"}
        if not result.get("ok"):
            keys = [k for k, s in self.owner.items() if s == student and k not in self.available]
            self._fail(gb, run_id, student, result.get("error", "unknown error"), summary, on_student)
            for key in keys:
                for other in sorted(self.waiting_on.pop(key, ())):
                    self._fail(gb, run_id, other, f"needs the result of {student}'s identical code, which failed: "
                                                  f"{result.get('error')}", summary, on_student)
            return
        report = result["report"]
        produced = []
        for ex_result in report["exercises"]:
            key = plan.keys[ex_result["id"]].cache_key
            self.available[key] = _Available(ex_result, report["isolation"], now(), student, True)
            produced.append(key)
        if student in self.needed and self._complete(student):
            self._record(gb, run_id, student, summary, on_student, store=produced)
        else:
            with gb.transaction():
                self._store(gb, run_id, produced, summary)
        for key in produced:
            for other in sorted(self.waiting_on.pop(key, ())):
                if other in self.needed and self._complete(other):
                    self._record(gb, run_id, other, summary, on_student)


# ------------------------------------------------------------------------------------------ entry point


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
    """An exclusive lock on the output folder (released by the kernel even on SIGKILL)."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self._fh = open(out / ".grade-all.lock", "w")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise ClassRunError(f"another grade-all is writing {out}") from None

    def release(self) -> None:
        self._fh.close()


def grade_all(submissions_dir: Path, course: Course, out: Path = Path("grades"), workers: int = 1,
              scheduler: Optional[str] = None, force: bool = False, only: Optional[Iterable[str]] = None,
              skip: Optional[Iterable[str]] = None, allow_unsandboxed: bool = False, assignment: Optional[str] = None,
              progress: bool = True, command: str = "grade-all", backend: Any = None) -> RunSummary:
    """Grade every submission under ``submissions_dir`` into the gradebook and exports in ``out``.

    ``backend`` (default: a :class:`DaskBackend` for ``scheduler``, else a :class:`PoolBackend`)
    needs ``name``, ``workers``, ``threads()``, ``results(jobs)`` and ``close(cancel)``.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from .grade import select

    started = time.monotonic()
    exercises = select(course, only, skip)
    out = Path(out)
    lock = _Lock(out)
    gb = Gradebook(out / "gradebook.sqlite")
    try:
        subs, notes = discover(Path(submissions_dir), assignment)
        backend = backend or (_connect(scheduler) if scheduler else PoolBackend(workers))
        run_id = gb.start_run(grader_build(), command, backend.workers, scheduler)
        summary = RunSummary(run_id=run_id, students=len(subs), backend=backend.name, workers=backend.workers, notes=notes)
        run = ClassRun(course, exercises, force, allow_unsandboxed)
        console = Console(stderr=True)
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("failures: {task.fields[failures]}"), TimeElapsedColumn(), TextColumn("left:"),
                   TimeRemainingColumn()]
        status = "interrupted"
        with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
            task = bar.add_task("reading submissions", total=len(subs), failures=0)
            failures = [0]

            def on_student(student: str, failed: bool) -> None:
                failures[0] += failed
                bar.update(task, advance=1, failures=failures[0])

            try:
                jobs = run.plan(gb, run_id, subs, summary, on_student)
                bar.update(task, description=f"grading ({summary.up_to_date} up to date)",
                           advance=summary.up_to_date)
                if jobs:
                    threads = backend.threads()
                    for job in jobs:
                        job["threads"] = threads
                    for result in backend.results(jobs):
                        run.finish_job(gb, run_id, result, summary, on_student)
                for student in list(run.needed):  # waited on a result that never came
                    run._fail(gb, run_id, student, "no result was produced", summary, on_student)
                status = "finished" if not summary.internal_errors else "finished with internal errors"
            finally:
                backend.close(cancel=status == "interrupted")
                gb.finish_run(run_id, status)
        summary.class_keys = [p.student_keys() for p in run.plans.values()]
        write_exports(gb, course, summary.class_keys, out)
        summary.wall_s = time.monotonic() - started
        return summary
    finally:
        gb.close()
        lock.release()


def print_summary(summary: RunSummary, gb_path: Path, course: Course, exercises: list[Exercise]) -> None:
    """The final table: per exercise, how the class did; then what this run did."""
    from rich.console import Console
    from rich.table import Table

    from .report import STATUSES

    with Gradebook(gb_path) as gb:
        rows = [r for who in summary.class_keys for r in current_rows(gb, course, who)]
        graded_now = Counter(e["exercise"] for e in gb.events("graded", summary.run_id))
    table = Table(title=f"Class grades ({summary.students} students)", title_justify="left")
    table.add_column("exercise")
    table.add_column("mean", justify="right")
    table.add_column("statuses")
    table.add_column("graded now", justify="right")
    for ex in exercises:
        mine = [r for r in rows if r.exercise == ex.id]
        counts = Counter(r.status for r in mine)
        mean = sum(r.score for r in mine) / len(mine) if mine else 0.0
        table.add_row(ex.id, f"{mean:.3g} / {ex.points:g}", ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]),
                      str(graded_now.get(ex.id, 0)))
    console = Console()
    console.print(table)
    console.print(f"{summary.recorded} students recorded, {summary.up_to_date} already up to date; "
                  f"{summary.graded} exercise results graded, {summary.copied} copied (cache or identical code); "
                  f"{len(summary.unreadable)} unreadable submissions; {summary.backend}, {summary.workers} workers; "
                  f"{summary.wall_s:.1f} s")
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)


def command(args: Any, course: Course) -> int:
    """``grader grade-all``: the CLI handler (usage errors 2, internal errors 3, else 0)."""
    import sys

    from .grade import select

    only = [t.strip() for t in (args.only or "").split(",") if t.strip()]
    skip = [t.strip() for t in (args.skip or "").split(",") if t.strip()]
    try:
        exercises = select(course, only, skip)
    except KeyError as exc:
        print(f"grader: {exc.args[0]}", file=sys.stderr)
        return 2
    if not args.submissions.is_dir():
        print(f"grader: {args.submissions}: not a folder of submissions", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("grader: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = grade_all(args.submissions, course, args.out, args.workers, args.scheduler, args.force, only, skip,
                            args.allow_unsandboxed, args.assignment, progress=True,
                            command=shlex.join(sys.argv[1:]) or "grade-all")
    except ClassRunError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    print_summary(summary, Path(args.out) / "gradebook.sqlite", course, exercises)
    if summary.internal_errors:
        for student, why in sorted(summary.internal_errors.items()):
            print(f"grader: INTERNAL ERROR for {student}, nothing recorded: {why}", file=sys.stderr)
        print(f"grader: {len(summary.internal_errors)} students not graded; rerun the same command after fixing "
              f"the grader", file=sys.stderr)
        return 3
    return 0
