"""Hashes that decide whether a recorded grade is still valid: code, course and grader.

A class run reuses an exercise's result whenever the *cache key* is unchanged:

* the **code hash**: the content of every file of the submission that the exercise's worker can
  see (all the student's modules in the workspace, and why any module was left out). Not an
  import graph: a module can reach a sibling in ways no static analysis sees (pickle, importlib,
  ``__import__``, reading the sibling's source), so two students share a result only when the
  worker would see exactly the same files;
* the **course hash** of everything course.yml says about the exercise (points, functions,
  limits, forbidden lists, the MNIST scale and data checksums);
* the **grader build**: the version and a hash of the code that scores (suites, sandbox,
  grade.py, the reference solutions), so a fixed hidden suite invalidates old results.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from coursekit.course import Course, Exercise

from . import __version__

_GRADER_DIR = Path(__file__).resolve().parent


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def code_hash(sources: Mapping[str, bytes], package: str, problems: Mapping[str, str] | None = None) -> str:
    """Hash of what an exercise's worker sees: every module of the submission (name and bytes).

    ``problems`` (module -> why it was left out of the workspace) is part of the hash too, since it
    decides the status of the exercises on that module.
    """
    parts: list[str | bytes] = ["workspace", package]
    for name in sorted(sources):
        parts += ["module", name, sources[name]]
    for name in sorted(problems or {}):
        parts += ["problem", name, (problems or {})[name]]
    return _sha(*parts)


def course_hash(course: Course, exercise: Exercise) -> str:
    """Hash of what course.yml says about one exercise (a changed point value or limit regrades it)."""
    data = {"exercise": exercise.model_dump(mode="json"), "limits": course.limits(exercise.id).model_dump(mode="json"),
            "package": course.student_package, "scale": course.mnist_scale.model_dump(mode="json"),
            "mnist": dict(sorted(course.data.mnist_sha256.items()))}
    return _sha(json.dumps(data, sort_keys=True))


@lru_cache(maxsize=1)
def grader_build() -> str:
    """``<version>+<hash>`` of the code that produces scores (suites, sandbox, grade.py, the reference)."""
    files = [_GRADER_DIR / name for name in ("grade.py", "report.py", "submission.py")]
    for folder in ("suites", "sandbox", "sandbox_runtime"):
        files += sorted((_GRADER_DIR / folder).rglob("*.py"))
    solutions = _GRADER_DIR.parent / "solutions"
    if solutions.is_dir():
        files += sorted(solutions.glob("*.py"))
    parts: list[str | bytes] = [__version__]
    for f in files:
        if f.is_file():
            parts += [f.relative_to(_GRADER_DIR.parent).as_posix(), f.read_bytes()]
    return f"{__version__}+{_sha(*parts)[:12]}"


def cache_key(exercise_id: str, code: str, course_h: str, build: str) -> str:
    """The key under which an exercise's result is stored and reused."""
    return _sha("exercise-result", exercise_id, code, course_h, build)
