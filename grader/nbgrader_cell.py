"""What an nbgrader autograder cell runs: grade one exercise in the sandbox, print clean feedback,
return the points (nbgrader's partial-credit rule), and write nothing to stderr.

The cells are written by :mod:`grader.nbgrader` (``grader nbgrader init``); they run in nbgrader's
kernel at ``nbgrader autograde``, with the submission folder in ``$GRADER_NBGRADER_SUBMISSION``.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

from coursekit.course import load_course

#: Environment variable naming the submission folder an autograder cell grades (set by GradingExecute).
SUBMISSION_ENV = "GRADER_NBGRADER_SUBMISSION"
MAX_MESSAGE_LINES = 12


class AutogradeError(RuntimeError):
    """The grader could not grade the exercise: the cell fails (0 points) instead of guessing."""


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Keep stderr out of the cell while grading: Python's ``sys.stderr``, warnings, and file
    descriptor 2 (which child processes inherit and ipykernel forwards). nbgrader gives 0 points
    to a cell with any stderr output, so what the grader writes there is discarded."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink, warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved_fd, 2)
    finally:
        os.close(saved_fd)


def describe(result, isolation: str) -> str:
    """The cell's printed feedback: score, status and each failed test's message."""
    lines = [f"{result.id}{' (bonus)' if result.bonus else ''}: {result.score:g} / {result.max_score:g} points, "
             f"{result.status.replace('_', ' ')}" + (f" (sandbox: {isolation})" if isolation else "")]
    if result.message:
        lines.append(_clip(result.message, "  "))
    if result.status in ("not_implemented", "missing", "forbidden", "timeout"):
        return "\n".join(lines)  # the message says it all; every test failed the same way
    for test in result.tests:
        if not test.passed and test.message and test.message != result.message and not test.message.startswith("not run:"):
            lines.append(f"  ✗ {test.name} ({test.points:g} / {test.max_points:g})")
            lines.append(_clip(test.message, "      "))
    return "\n".join(lines)


def _clip(text: str, indent: str) -> str:
    lines = text.splitlines()
    if len(lines) > MAX_MESSAGE_LINES:
        lines = lines[:MAX_MESSAGE_LINES] + ["…"]
    return "\n".join(indent + line for line in lines)


def autograde_cell(exercise_id: str, points: float | None = None) -> float:
    """Grade one exercise of the submission and return the points earned (for an autograder cell).

    The submission is ``$GRADER_NBGRADER_SUBMISSION`` (set by the autograde preprocessor), else the
    current folder. The value is nbgrader's partial credit: a cell whose result is a number between
    0 and its points scores that number. Nothing is written to stderr; a grader failure raises
    :class:`AutogradeError` (nbgrader then gives 0) rather than report a made-up score.
    """
    submission = Path(os.environ.get(SUBMISSION_ENV) or os.getcwd())
    failure = ""
    with quiet_stderr():
        try:
            from .grade import grade_submission

            course = load_course()
            exercise = course.exercise(exercise_id)
            if points is not None and float(points) != float(exercise.points):
                raise AutogradeError(f"this cell is worth {points:g} points but course.yml gives {exercise_id} "
                                     f"{exercise.points:g}: re-run `grader nbgrader init` and `nbgrader generate_assignment`")
            report = grade_submission(submission, course, only=[exercise_id])
        except Exception as exc:  # reported below, outside the redirect, without the grader's traceback
            failure = f"{type(exc).__name__}: {exc}"
    if failure:
        _short_tracebacks()
        raise AutogradeError(public_text(f"the grader could not grade {exercise_id}: {failure}", submission))
    result = report.exercise(exercise_id)
    print(public_text(describe(result, report.isolation), submission))
    return round(max(0.0, min(float(result.score), float(exercise.points))), 6)


#: An absolute path of two or more parts (not part of a word, a number or a URL).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"<>:]+/)+([^\s/'\"<>:]*)")


def public_text(text: str, submission: Path | None = None) -> str:
    """``text`` without paths of the instructor's machine: the submission folder becomes "your
    submission", any other absolute path its last part (``…/name``)."""
    if submission is not None:
        for form in {str(submission), str(Path(submission).resolve())}:
            text = text.replace(form, "your submission")
    return _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1), text)


def _short_tracebacks() -> None:
    """In an IPython kernel, show an :class:`AutogradeError` as its one-line message: the traceback
    would show the grader's files and the course folder to the student in the feedback page."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(self: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
        stb = [f"{etype.__name__}: {value}"]
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((AutogradeError,), one_line)
