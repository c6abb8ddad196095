"""Read one submission on the submitting machine: its modules, every exercise's cache key, and the
results known without running student code (a missing module, an unreadable submission)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.course import Course, Exercise

from ..exports import StudentKeys
from ..fingerprint import cache_key, code_hash, course_hash
from ..report import ExerciseResult
from ..submission import SubmissionError, module_limits, prepare
from .discovery import StudentSubmission

#: The isolation recorded for a result that needed no sandbox.
NO_SANDBOX = "none needed (no student code ran)"


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
    error: str | None = None                   # the SubmissionError, if the submission cannot be read

    def student_keys(self) -> StudentKeys:
        return StudentKeys(self.student, self.content_hash, {i: k.cache_key for i, k in self.keys.items()})


def raw_fingerprint(path: Path, max_entries: int = 20_000) -> str:
    """A hash of an unreadable submission as it lies on disk (so an unchanged one is not re-read)."""
    try:
        return _raw_fingerprint(Path(path), max_entries)
    except OSError as exc:  # unreadable files: hash what can be said about them
        return hashlib.sha256(f"unreadable\0{path}\0{exc}".encode("utf-8", "backslashreplace")).hexdigest()


def _raw_fingerprint(path: Path, max_entries: int) -> str:
    h = hashlib.sha256()
    if path.is_symlink():
        return hashlib.sha256(b"link\0" + os.fsencode(os.readlink(path))).hexdigest()
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
                h.update(f"{rel}\0link\0{os.readlink(p)}\0".encode("utf-8", "surrogateescape"))
            elif p.is_file():
                st = p.stat()
                h.update(f"{rel}\0{st.st_size}\0".encode("utf-8", "surrogateescape"))
                if st.st_size <= 4 * 1024 * 1024:
                    h.update(hashlib.sha256(p.read_bytes()).digest())
                else:
                    h.update(str(st.st_mtime_ns).encode())
        if n > max_entries:
            break
    return h.hexdigest()


def read_submission(sub: StudentSubmission, course: Course, build: str) -> StudentPlan:
    """Read the student's modules, compute every exercise's cache key, settle what needs no sandbox."""
    from ..grade import grade_exercise  # heavy (suites); only the submitting side needs it here

    package = course.student_package
    try:
        if sub.refused:
            raise SubmissionError(sub.refused)
        ws = prepare(sub.path, package, course.modules, module_limits(course))
    except SubmissionError as exc:
        fp = raw_fingerprint(sub.path) if not sub.refused else hashlib.sha256(sub.refused.encode()).hexdigest()
        keys = {}
        for ex in course.exercises:
            ch = course_hash(course, ex)
            keys[ex.id] = ExerciseKey("unreadable:" + fp, ch, cache_key(ex.id, "unreadable:" + fp + str(exc), ch, build))
        return StudentPlan(sub.student, sub.path, "unreadable:" + fp, keys, error=str(exc))
    with ws:
        sources = {m: p.read_bytes() for m, p in ws.modules.items()}
        code = code_hash(sources, package, ws.problems)  # everything the worker sees: the same for every exercise
        plan = StudentPlan(sub.student, sub.path, ws.content_hash, {}, sources)
        for ex in course.exercises:
            ch = course_hash(course, ex)
            plan.keys[ex.id] = ExerciseKey(code, ch, cache_key(ex.id, code, ch, build))
            if ex.module not in ws.modules:  # missing or unreadable: graded at once, no student code runs
                plan.local[ex.id] = grade_exercise(ws, course, ex)[0].to_json()
    return plan


def error_result(ex: Exercise, message: str) -> dict[str, Any]:
    return ExerciseResult(id=ex.id, score=0.0, max_score=ex.points, status="error", duration_s=0.0, tests=[],
                          bonus=ex.bonus, message=f"the submission could not be read: {message}").to_json()
