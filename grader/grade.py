"""Grade one submission: for each exercise a fresh sandboxed worker, the hidden suite, a score.

This is the trusted side. Student code runs only inside :class:`grader.sandbox.launcher.Worker`;
what comes back is plain data, compared here with the reference and its oracle. Points come
from course.yml. A hang, crash or forbidden import costs only the exercise where it happens.
"""
from __future__ import annotations

import ast
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from coursekit.course import Course, Exercise

from . import __version__
from .report import NOT_GRADED as STATUS_NOT_GRADED
from .report import ExerciseResult, GradeReport, TestResult, total
from .sandbox.launcher import SandboxLimits, Worker, WorkerError
from .sandbox.results import maybe_not_the_student
from .sandbox.sandbox import Sandboxes
from .submission import Workspace, module_limits, prepare
from .suites import suite_for
from .suites.compare import dtype_charged_in
from .suites.outcomes import Fail, InternalError, NotImplementedYet, WorkerStopped
from .suites.context import Context
from .suites.diagnosis import settle

#: Worker statuses that end an exercise, and the exercise status they give.
_STOPPED_STATUS = {"timeout": "timeout", "forbidden": "forbidden", "not_implemented": "not_implemented"}


#: An exercise is not started with less than this left of the time budget.
MIN_START_S = 5.0

_AST_LOCK = threading.RLock()


def _serialize_ast_parse() -> None:
    """Make ``ast.parse`` take one lock, process-wide (idempotent).

    On CPython 3.11 two threads parsing at once can fail with ``SystemError: AST constructor recursion
    depth mismatch`` (python/cpython#106905): exercises graded in parallel threads parse student modules
    here, and hypothesis and ``traceback`` parse source too. One lock around every parse avoids it.
    """
    if getattr(ast.parse, "_grader_serialized", False):
        return
    unlocked = ast.parse

    def parse(*args, **kwargs):
        with _AST_LOCK:
            return unlocked(*args, **kwargs)

    parse._grader_serialized = True  # type: ignore[attr-defined]
    ast.parse = parse


class GraderInternalError(RuntimeError):
    """The grader itself is broken; no score is reported."""


def select(course: Course, only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> list[Exercise]:
    """Exercises to grade, in course order; unknown ids raise KeyError naming them."""
    only_set, skip_set = set(only or []), set(skip or [])
    unknown = sorted((only_set | skip_set) - set(course.ids))
    if unknown:
        raise KeyError(f"unknown exercise id(s): {', '.join(unknown)}; known: {', '.join(course.ids)}")
    return [ex for ex in course.exercises if (not only_set or ex.id in only_set) and ex.id not in skip_set]


def syntax_problem(path: Path) -> str | None:
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


def _limits(course: Course, exercise: Exercise, allow_unsandboxed: bool, threads: int | None = None) -> SandboxLimits:
    return SandboxLimits.of(course.limits(exercise.id), allow_unsandboxed=allow_unsandboxed, threads=threads)


def _result(exercise: Exercise, status: str, started: float, tests: list[TestResult], message: str = "") -> ExerciseResult:
    score = 0.0 if status in ("forbidden", "missing", "not_implemented") else round(sum(t.points for t in tests), 6)
    return ExerciseResult(id=exercise.id, score=min(score, exercise.points), max_score=exercise.points, status=status,
                          duration_s=time.monotonic() - started, tests=tests, bonus=exercise.bonus, message=message)


NOT_GRADED = ("not graded: the time budget of this grading ran out before {id} could {what}; this is not "
              "your code's fault (staff can give the autograder more time)")
"""The message of an exercise the time budget left out (status ``not_graded``: no points, never cached)."""


def not_graded(exercise: Exercise, started: float, what: str = "run") -> ExerciseResult:
    """An exercise the time budget left no time for: no points, and a message that does not blame the student."""
    return _result(exercise, STATUS_NOT_GRADED, started, [], NOT_GRADED.format(id=exercise.id, what=what))


def _budgeted(limits: SandboxLimits, deadline: float | None) -> SandboxLimits:
    """``limits`` with the worker's time limit cut to what is left of the budget (``deadline``, monotonic)."""
    if deadline is None:
        return limits
    left = max(1.0, deadline - time.monotonic())
    return replace(limits, time_limit_s=left) if left < limits.time_limit_s else limits


def grade_exercise(ws: Workspace, course: Course, exercise: Exercise, allow_unsandboxed: bool = False,
                   threads: int | None = None, sandboxes: Sandboxes | None = None,
                   deadline: float | None = None) -> tuple[ExerciseResult, str]:
    """Run one exercise's hidden suite against the workspace; returns (result, isolation used).

    The worker is forked from the submission's sandbox for its view (``sandboxes``), else it gets a
    private sandbox. ``deadline`` (``time.monotonic()`` time) is the time budget: the worker's time limit
    is cut to it, and an exercise stopped by the budget rather than its own limit is reported as not graded.
    A grader fault is not a grade: when the worker died of something the student's
    code may not have caused (a signal from outside, a sandbox that vanished), the exercise is graded
    again in a fresh worker. Should the second worker die the same way at the same check, the death is
    the code's own; any other second loss makes the exercise ``not_graded`` (no score, graded again by
    the next run)."""
    started = time.monotonic()
    lost: list[tuple[str, str]] = []
    result, isolation = _grade_exercise_once(ws, course, exercise, allow_unsandboxed, threads, sandboxes, lost, deadline)
    if not lost:
        return result, isolation
    first = lost[0]
    lost.clear()
    result, isolation = _grade_exercise_once(ws, course, exercise, allow_unsandboxed, threads, sandboxes, lost, deadline)
    if not lost:
        return result, isolation
    if lost[0] == first and "(exit status unknown)" not in first[1]:  # reproducible: the code kills itself
        return result, isolation
    message = (f"not graded: the grader lost the worker twice ({first[0]}: {first[1]}; then {lost[0][0]}: "
               f"{lost[0][1]}), a fault of the grading machine, not of your code; it will be graded again")
    return ExerciseResult(id=exercise.id, score=0.0, max_score=exercise.points, status=STATUS_NOT_GRADED,
                          duration_s=time.monotonic() - started, tests=[], bonus=exercise.bonus, message=message), isolation


def _grade_exercise_once(ws: Workspace, course: Course, exercise: Exercise, allow_unsandboxed: bool,
                         threads: int | None, sandboxes: Sandboxes | None, lost: list[tuple[str, str]],
                         deadline: float | None) -> tuple[ExerciseResult, str]:
    """One try of :func:`grade_exercise`; a worker lost to a cause that may not be the student's is
    added to ``lost`` as (check name, what happened)."""
    started = time.monotonic()
    suite = suite_for(exercise.id)
    points_of = suite.max_points(exercise)
    if exercise.module not in ws.modules:
        why = ws.problems.get(exercise.module, f"{exercise.module}.py was not found in the submission")
        if exercise.module not in ws.problems and ws.found_note:
            why += f" ({ws.found_note})"
        status = "error" if exercise.module in ws.problems else "missing"
        return _result(exercise, status, started, [], why), ""
    needed = {exercise.module} | _imports_of(ws.modules[exercise.module])
    for module_path in sorted(ws.package_dir.glob("*.py")):
        problem = syntax_problem(module_path) if module_path.stem in needed else None
        if problem:
            return _result(exercise, "error", started, [], problem), ""

    tests: list[TestResult] = []
    status: str | None = None
    message = ""
    not_implemented = 0
    full_limits = _limits(course, exercise, allow_unsandboxed, threads)
    limits = _budgeted(full_limits, deadline)
    with _started_worker(ws, limits, sandboxes) as worker:
        isolation = worker.isolation
        ctx = Context(worker, exercise, course)
        for check, max_points in zip(suite.checks, points_of, strict=True):
            if status is not None:
                tests.append(TestResult(check.name, False, 0.0, max_points, f"not run: {status}"))
                continue
            ctx.notes.clear()
            ctx.metrics.clear()
            try:
                with dtype_charged_in(exercise, check):
                    share = check.run(ctx)
                fraction = 1.0 if share is None else max(0.0, min(1.0, float(share)))
            except Fail as failure:
                tests.append(TestResult(check.name, False, 0.0, max_points, str(failure) + _notes(ctx),
                                        detail={"expected": failure.expected, "got": failure.got,
                                                "mistakes": failure.mistakes}, metrics=dict(ctx.metrics)))
                continue
            except NotImplementedYet as exc:
                not_implemented += 1
                tests.append(TestResult(check.name, False, 0.0, max_points, f"not implemented yet: {exc}"))
                continue
            except WorkerStopped as stop:
                if stop.status == "crashed" and maybe_not_the_student(stop.message):
                    lost.append((check.name, stop.message))
                status = _STOPPED_STATUS.get(stop.status, "error")
                message = _stop_message(stop, exercise, course)
                tests.append(TestResult(check.name, False, 0.0, max_points, message))
                continue
            except InternalError as exc:  # the grader's own fault (reference and oracle disagree): no score at all
                raise GraderInternalError(f"{exercise.id}: {exc}") from exc
            except Exception as exc:  # noqa: BLE001  student data made the check raise: a failed test, never a crash
                tests.append(could_not_examine(check.name, max_points, exc))
                continue
            tests.append(TestResult(check.name, fraction == 1.0, max_points * fraction, max_points, _notes(ctx).strip(),
                                    metrics=dict(ctx.metrics)))
        settle(ctx, tests)  # each diagnosis re-stated with every case the exercise ran
        if worker_flagged_forbidden(worker):
            status, message = "forbidden", worker_forbidden_message(worker)
    if status == "timeout" and limits.time_limit_s < full_limits.time_limit_s:  # the budget stopped it, not its limit
        return not_graded(exercise, started, "finish"), isolation
    if status is None:
        if not_implemented == len(suite.checks):
            status, message = "not_implemented", f"{exercise.id} is not implemented yet"
        else:
            status = "passed" if all(t.passed for t in tests) else "failed"
    return _result(exercise, status, started, tests, message), isolation


def _started_worker(ws: Workspace, limits: SandboxLimits, sandboxes: Sandboxes | None) -> Worker:
    """A started worker forked from the submission's sandbox for its view; should that sandbox fail to
    fork one (whatever an earlier exercise did to it), it is replaced and asked once more."""
    sandbox = sandboxes.get(limits) if sandboxes is not None else None
    worker = Worker(ws.root, package=ws.package, limits=limits, sandbox=sandbox)
    try:
        worker.start()
    except WorkerError:
        if sandbox is None:
            raise
        sandbox.close()  # no longer alive: get() starts a new one
        worker = Worker(ws.root, package=ws.package, limits=limits, sandbox=sandboxes.get(limits))
        worker.start()
    return worker


def could_not_examine(name: str, max_points: float, exc: BaseException) -> TestResult:
    """A check that raised on the student's answer: no points, a short message, the traceback for the instructor.

    Every exception but :class:`InternalError` raised inside a check is taken to come from the
    student's value (a tuple where an array was due, an array where an int was due, ...): the
    student's grade must never depend on the grader coping with a strange answer.
    """
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001  an exception whose message cannot be built
        text = "<no message>"
    text = text.replace(str(Path(__file__).resolve().parent.parent), "<grader>")  # no instructor path for the student
    text = text if len(text) <= 300 else text[:300] + "..."
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:]
    return TestResult(name, False, 0.0, max_points, f"the grader could not examine your answer: {type(exc).__name__}: {text}",
                      grader_traceback=trace)


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


def grade_submission(submission: Path, course: Course, only: Iterable[str] | None = None, skip: Iterable[str] | None = None,
                     allow_unsandboxed: bool = False, on_exercise: Callable[[ExerciseResult], None] | None = None,
                     threads: int | None = None, parallel: int = 1, deadline: float | None = None) -> GradeReport:
    """Grade a folder or zip; ``on_exercise`` is called as each exercise finishes (progress).

    One sandbox per view serves the whole submission, forking a fresh worker per exercise. Up to
    ``parallel`` exercises run at once; those marked ``runs_alone`` in course.yml (training) run
    after the others, one at a time. ``threads`` caps OMP/OpenBLAS/MKL threads in each sandbox
    (None: the sandbox's default). ``deadline`` (``time.monotonic()`` time): the time budget; an exercise
    that cannot start before it, or is stopped by it, is reported as not graded (status ``error``, no points).
    """
    started = time.monotonic()
    exercises = select(course, only, skip)
    results: dict[str, ExerciseResult] = {}
    isolations: set[str] = set()
    lock = threading.Lock()

    def run(ex: Exercise) -> None:
        if deadline is not None and time.monotonic() >= deadline - MIN_START_S:
            result, isolation = not_graded(ex, time.monotonic()), ""
        else:
            result, isolation = grade_exercise(ws, course, ex, allow_unsandboxed, threads, sandboxes, deadline)
        with lock:
            if isolation:
                isolations.add(isolation)
            results[ex.id] = result
            if on_exercise:
                on_exercise(result)

    with prepare(Path(submission), course.student_package, course.modules, module_limits(course)) as ws, \
            Sandboxes(ws.root, ws.package, prepared=True) as sandboxes:
        for ex in exercises:  # every view's fork server starts now, importing numpy or torch meanwhile
            sandboxes.get(_limits(course, ex, allow_unsandboxed, threads))
        together = [ex for ex in exercises if not ex.runs_alone]
        if parallel > 1 and len(together) > 1:  # threads: the suites' hypothesis searches are thread-safe (>= 6.136)
            _serialize_ast_parse()
            with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="exercise") as pool:
                for future in [pool.submit(run, ex) for ex in together]:
                    future.result()
        else:
            for ex in together:
                run(ex)
        alone = [ex for ex in exercises if ex.runs_alone]
        if alone:  # the other views' fork servers are done: their memory goes before training starts
            needed = {id(sandboxes.get(_limits(course, ex, allow_unsandboxed, threads))) for ex in alone}
            for ex in together:
                sandbox = sandboxes.get(_limits(course, ex, allow_unsandboxed, threads))
                if sandbox is not None and id(sandbox) not in needed:
                    sandbox.close()
        for ex in alone:
            run(ex)
        content_hash = ws.content_hash
    ordered = [results[ex.id] for ex in exercises]
    score, max_score = total(ordered)
    report = GradeReport(score=score, max_score=max_score, grader_version=__version__,
                         isolation=", ".join(sorted(isolations)) or "none needed (no student code ran)",
                         duration_s=time.monotonic() - started, exercises=ordered, submission=str(submission),
                         content_hash=content_hash)
    return report
