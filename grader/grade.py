"""Grade one submission: for each exercise a fresh sandboxed worker, the hidden suite, a score.

This is the trusted side. Student code runs only inside :class:`grader.sandbox.launcher.Worker`;
what comes back is plain data, compared here with the reference and its oracle. Points come
from course.yml. A hang, crash or forbidden import costs only the exercise where it happens.
"""
from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from coursekit.course import Course, Exercise

from . import __version__
from .report import ExerciseResult, GradeReport, TestResult, total
from .sandbox.launcher import SandboxLimits, Worker
from .submission import Workspace, prepare
from .suites import suite_for
from .suites.base import Fail, InternalError, NotImplementedYet, WorkerStopped
from .suites.context import Context

#: Worker statuses that end an exercise, and the exercise status they give.
_STOPPED_STATUS = {"timeout": "timeout", "forbidden": "forbidden", "not_implemented": "not_implemented"}


class GraderInternalError(RuntimeError):
    """The grader itself is broken; no score is reported."""


def select(course: Course, only: Optional[Iterable[str]] = None, skip: Optional[Iterable[str]] = None) -> list[Exercise]:
    """Exercises to grade, in course order; unknown ids raise KeyError naming them."""
    only_set, skip_set = set(only or []), set(skip or [])
    unknown = sorted((only_set | skip_set) - set(course.ids))
    if unknown:
        raise KeyError(f"unknown exercise id(s): {', '.join(unknown)}; known: {', '.join(course.ids)}")
    return [ex for ex in course.exercises if (not only_set or ex.id in only_set) and ex.id not in skip_set]


def syntax_problem(path: Path) -> Optional[str]:
    """A student-readable description of a syntax error in ``path``, or None."""
    try:
        ast.parse(path.read_bytes(), filename=path.name)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        line = (exc.text or "").rstrip()
        return f"SyntaxError in {path.name}, {where}: {exc.msg}" + (f"\n    {line}" if line else "")
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"{path.name} cannot be parsed: {type(exc).__name__}: {exc}"
    return None


def _limits(course: Course, exercise: Exercise, allow_unsandboxed: bool, threads: Optional[int] = None) -> SandboxLimits:
    lim = course.limits(exercise.id)
    return SandboxLimits(time_limit_s=lim.time_limit_s, memory_limit_mb=lim.memory_limit_mb,
                         forbidden_imports=tuple(lim.forbidden_imports), forbidden_calls=tuple(lim.forbidden_calls),
                         allow_unsandboxed=allow_unsandboxed,
                         # a thread cap is for training (torch); numpy-only workers keep the sandbox's 1 thread
                         threads=None if "torch" in lim.forbidden_imports else threads)


def _result(exercise: Exercise, status: str, started: float, tests: list[TestResult], message: str = "") -> ExerciseResult:
    score = 0.0 if status in ("forbidden", "missing", "not_implemented") else round(sum(t.points for t in tests), 6)
    return ExerciseResult(id=exercise.id, score=min(score, exercise.points), max_score=exercise.points, status=status,
                          duration_s=time.monotonic() - started, tests=tests, bonus=exercise.bonus, message=message)


def grade_exercise(ws: Workspace, course: Course, exercise: Exercise, allow_unsandboxed: bool = False,
                   threads: Optional[int] = None) -> tuple[ExerciseResult, str]:
    """Run one exercise's hidden suite against the workspace; returns (result, isolation used)."""
    started = time.monotonic()
    suite = suite_for(exercise.id)
    weights = sum(c.weight for c in suite.checks)
    if exercise.module not in ws.modules:
        why = ws.problems.get(exercise.module, f"{exercise.module}.py was not found in the submission")
        status = "error" if exercise.module in ws.problems else "missing"
        return _result(exercise, status, started, [], why), ""
    needed = {exercise.module} | _imports_of(ws.modules[exercise.module])
    for module_path in sorted(ws.package_dir.glob("*.py")):
        problem = syntax_problem(module_path) if module_path.stem in needed else None
        if problem:
            return _result(exercise, "error", started, [], problem), ""

    tests: list[TestResult] = []
    status: Optional[str] = None
    message = ""
    not_implemented = 0
    with Worker(ws.root, package=ws.package, limits=_limits(course, exercise, allow_unsandboxed, threads)) as worker:
        isolation = worker.isolation
        ctx = Context(worker, exercise, course)
        for check in suite.checks:
            max_points = exercise.points * check.weight / weights
            if status is not None:
                tests.append(TestResult(check.name, False, 0.0, max_points, f"not run: {status}"))
                continue
            ctx.notes.clear()
            try:
                share = check.run(ctx)
            except Fail as failure:
                tests.append(TestResult(check.name, False, 0.0, max_points, str(failure) + _notes(ctx),
                                        detail={"expected": failure.expected, "got": failure.got}))
                continue
            except NotImplementedYet as exc:
                not_implemented += 1
                tests.append(TestResult(check.name, False, 0.0, max_points, f"not implemented yet: {exc}"))
                continue
            except WorkerStopped as stop:
                status = _STOPPED_STATUS.get(stop.status, "error")
                message = _stop_message(stop, exercise, course)
                tests.append(TestResult(check.name, False, 0.0, max_points, message))
                continue
            except InternalError as exc:
                raise GraderInternalError(f"{exercise.id}: {exc}") from exc
            except Exception as exc:  # a bug in the suite itself: no score rather than a wrong one
                raise GraderInternalError(f"{exercise.id}, check {check.name!r}: {type(exc).__name__}: {exc}") from exc
            fraction = 1.0 if share is None else max(0.0, min(1.0, float(share)))
            tests.append(TestResult(check.name, fraction == 1.0, max_points * fraction, max_points, _notes(ctx).strip()))
        if worker_flagged_forbidden(worker):
            status, message = "forbidden", worker_forbidden_message(worker)
    if status is None:
        if not_implemented == len(suite.checks):
            status, message = "not_implemented", f"{exercise.id} is not implemented yet"
        else:
            status = "passed" if all(t.passed for t in tests) else "failed"
    return _result(exercise, status, started, tests, message), isolation


def worker_flagged_forbidden(worker: Worker) -> bool:
    return bool(getattr(worker, "violations", None))


def worker_forbidden_message(worker: Worker) -> str:
    return "forbidden: " + "; ".join(getattr(worker, "violations", []) or ["a forbidden import or call"])


def _notes(ctx: Context) -> str:
    return "".join(f"\n{n}" for n in ctx.notes)


def _stop_message(stop: WorkerStopped, exercise: Exercise, course: Course) -> str:
    lim = course.limits(exercise.id)
    if stop.status == "timeout":
        return f"timeout: your code ran past the {lim.time_limit_s:g} s limit for {exercise.id} (an endless loop?)"
    if stop.status == "memory":
        return f"out of memory: your code needed more than {lim.memory_limit_mb} MB"
    if stop.status == "forbidden":
        return f"forbidden: {stop.message}"
    return f"{stop.status}: {stop.message}"


def _imports_of(path: Path) -> set[str]:
    """Sibling modules a student module imports relatively (``from .padding import pad2d``)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(a.name for a in node.names)
    return names


def grade_submission(submission: Path, course: Course, only: Optional[Iterable[str]] = None, skip: Optional[Iterable[str]] = None,
                     allow_unsandboxed: bool = False, on_exercise: Optional[Callable[[ExerciseResult], None]] = None,
                     threads: Optional[int] = None) -> GradeReport:
    """Grade a folder or zip; ``on_exercise`` is called as each exercise finishes (progress).

    ``threads`` caps OMP/OpenBLAS/MKL threads in each sandbox (None: the sandbox's default).
    """
    started = time.monotonic()
    exercises = select(course, only, skip)
    results: list[ExerciseResult] = []
    isolations: set[str] = set()
    with prepare(Path(submission), course.student_package, course.modules) as ws:
        for ex in exercises:
            result, isolation = grade_exercise(ws, course, ex, allow_unsandboxed, threads)
            if isolation:
                isolations.add(isolation)
            results.append(result)
            if on_exercise:
                on_exercise(result)
        content_hash = ws.content_hash
    score, max_score = total(results)
    report = GradeReport(score=score, max_score=max_score, grader_version=__version__,
                         isolation=", ".join(sorted(isolations)) or "none needed (no student code ran)",
                         duration_s=time.monotonic() - started, exercises=results, submission=str(submission),
                         content_hash=content_hash)
    return report
