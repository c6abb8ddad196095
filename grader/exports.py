"""What course staff take away from a class run: grades.csv, canvas.csv, Gradescope results, feedback pages.

Everything is rendered from the gradebook, never from a run's memory, so a resumed run exports the
same files as an uninterrupted one. Only *current* rows count: a row whose cache key differs from
the submission's current key for that exercise (changed code, course.yml or grader) is left blank.
Feedback pages from the gradebook carry every message and counterexample as text; the
expected/got pictures of ``grader grade --feedback`` need the arrays, which are not stored.
"""
from __future__ import annotations

import csv
import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from coursekit.course import Course

from . import __version__
from .feedback import html_page
from .gradebook import Gradebook, ResultRow
from .report import NOT_GRADED, ExerciseResult, GradeReport, TestResult, total


@dataclass(frozen=True)
class StudentKeys:
    """A student of the current class and the cache key each exercise must have to be current."""

    student: str
    content_hash: str
    cache_keys: Mapping[str, str]


def current_rows(gb: Gradebook, course: Course, who: StudentKeys) -> list[ResultRow]:
    """The student's rows that match the submission as it is now, in course order."""
    rows = gb.rows(who.student)
    return [rows[ex.id] for ex in course.exercises
            if ex.id in rows and rows[ex.id].cache_key == who.cache_keys.get(ex.id)
            and rows[ex.id].content_hash == who.content_hash]


def report_of(rows: list[ResultRow], submission: str = "") -> GradeReport:
    """Rebuild a :class:`GradeReport` from gradebook rows (for the feedback page)."""
    exercises = [ExerciseResult(id=r.exercise, score=r.score, max_score=r.max_score, status=r.status,
                                duration_s=r.duration_s, bonus=r.bonus, message=r.message,
                                tests=[TestResult(t["name"], bool(t["passed"]), float(t["points"]), float(t["max_points"]),
                                                  t.get("message", "")) for t in r.tests])
                 for r in rows]
    score, max_score = total(exercises)
    isolations = sorted({r.isolation for r in rows if r.isolation})
    return GradeReport(score=score, max_score=max_score,
                       grader_version=rows[0].grader_build if rows else __version__,
                       isolation=", ".join(isolations) or "none", duration_s=sum(r.duration_s for r in rows),
                       exercises=exercises, submission=submission, content_hash=rows[0].content_hash if rows else "")


def gradescope_results(rows: list[ResultRow]) -> dict[str, Any]:
    """Gradescope's ``results.json``: one test per exercise, its output the status and what failed."""
    tests = []
    for r in rows:
        lines = [f"{r.status}: {r.score:.4g} / {r.max_score:g} points"]
        if r.message:
            lines.append(r.message)
        for t in r.tests:
            if not t["passed"] and t.get("message") != r.message:
                lines.append(f"- {t['name']}: {t.get('message', '')}")
        tests.append({"name": r.exercise + (" (bonus)" if r.bonus else ""), "score": round(r.score, 4),
                      "max_score": round(r.max_score, 4), "status": "passed" if r.status == "passed" else "failed",
                      "output": "\n".join(lines)})
    return {"score": round(sum(r.score for r in rows), 4), "execution_time": round(sum(r.duration_s for r in rows), 3),
            "tests": tests}


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: The first cell of the plain CSV's row of maximum points (no student id starts with "(").
MAX_ROW = "(max points)"
#: Canvas gradebook import: the identity columns before the assignment columns, and the points row.
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "Points Possible"


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``'`` neutralises formula starts."""
    text = value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(path: Path, rows: Iterable[Iterable[Any]]) -> Path:
    """Write ``rows`` atomically, every cell through :func:`csv_cell` (the one writer of the grader's CSVs)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        for row in rows:
            writer.writerow([csv_cell(c) for c in row])
    tmp.replace(path)
    return path


def _score(row: ResultRow | None) -> str:
    """A cell: blank when there is no grade (no row, or the grader could not grade it)."""
    return "" if row is None or row.status == NOT_GRADED else f"{round(row.score, 2):g}"


def grades_table(gb: Gradebook, course: Course, students: list[StudentKeys]) -> list[list[str]]:
    """``grades.csv``: a header (bonus columns marked), the maximum of each column, one row per student.

    ``total`` is every point earned, bonus included; its maximum is the course total without bonus.
    """
    header = ["student", *(f"{ex.id} (bonus)" if ex.bonus else ex.id for ex in course.exercises), "total"]
    rows = [header, [MAX_ROW, *(f"{ex.points:g}" for ex in course.exercises), f"{course.max_score:g}"]]
    for who in sorted(students, key=lambda s: s.student):
        current = [r for r in current_rows(gb, course, who) if r.status != NOT_GRADED]
        by_id = {r.exercise: r for r in current}
        rows.append([who.student, *(_score(by_id.get(i)) for i in course.ids),
                     f"{round(sum(r.score for r in current), 2):g}" if current else ""])
    return rows


def canvas_table(gb: Gradebook, course: Course, students: list[StudentKeys]) -> list[list[str]]:
    """``canvas.csv`` in the layout of Canvas's gradebook import: identity columns, one column per
    exercise, and a "Points Possible" row. The student id fills Student and SIS Login ID; a bonus
    exercise has 0 points possible, which Canvas counts as extra credit. Blank cells change nothing."""
    titles = [f"{course.title}: {ex.id}" for ex in course.exercises]
    rows = [[*CANVAS_COLUMNS, *titles],
            [CANVAS_POINTS_ROW, "", "", "", "", *("0" if ex.bonus else f"{ex.points:g}" for ex in course.exercises)]]
    for who in sorted(students, key=lambda s: s.student):
        by_id = {r.exercise: r for r in current_rows(gb, course, who)}
        rows.append([who.student, "", "", who.student, "", *(_score(by_id.get(i)) for i in course.ids)])
    return rows


@dataclass
class Exports:
    """What :func:`write_exports` wrote, and the students whose own pages could not be written (and why)."""

    csv: Path
    canvas: Path
    gradescope: Path
    feedback: Path
    failed: dict[str, str]

    def __getitem__(self, name: str) -> Path:  # exports["csv"], as before
        return getattr(self, name)


def write_exports(gb: Gradebook, course: Course, students: list[StudentKeys], out: Path) -> Exports:
    """Write ``grades.csv``, ``canvas.csv``, ``gradescope/<student>/results.json`` and ``feedback/<student>.html``.

    The class CSVs come first and are always written. A student whose pages cannot be written loses
    those pages only: the reason is in :attr:`Exports.failed`, every other student's pages are written.
    """
    out = Path(out)
    (out / "gradescope").mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(out / "grades.csv", grades_table(gb, course, students))
    canvas_path = write_csv(out / "canvas.csv", canvas_table(gb, course, students))
    failed: dict[str, str] = {}
    for who in sorted(students, key=lambda s: s.student):
        try:
            rows = current_rows(gb, course, who)
            if not rows:
                continue
            _write_atomic(out / "gradescope" / who.student / "results.json",
                          json.dumps(gradescope_results(rows), indent=2) + "\n")
            _write_atomic(out / "feedback" / f"{who.student}.html", html_page(report_of(rows, who.student)))
        except Exception as exc:  # noqa: BLE001  one student's pages, never the class's exports
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # a full disk is everyone's: one line from the caller
            failed[who.student] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return Exports(csv_path, canvas_path, out / "gradescope", out / "feedback", failed)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
