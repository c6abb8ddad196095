"""Helpers for the grader's own tests: build submissions from the reference, grade them fast."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Iterable, Optional

import yaml

from coursekit.course import Course, DEFAULT_COURSE_FILE, load_course
from grader.grade import grade_submission
from grader.report import GradeReport

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


def course_with_limits(tmp_path: Path, time_limit_s: float = 20, **per_exercise: dict) -> Course:
    """A copy of course.yml with a shorter time limit (absolute data dir, same exercises)."""
    raw = yaml.safe_load(DEFAULT_COURSE_FILE.read_text(encoding="utf-8"))
    raw["defaults"]["time_limit_s"] = time_limit_s
    real = load_course()
    raw["data"]["mnist_dir"] = str(real.resolve(real.data.mnist_dir).resolve())
    for ex in raw["exercises"]:
        ex.update(per_exercise.get(ex["id"], {}))
    path = tmp_path / "course.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_course(path)


def reference_submission(dest: Path, overrides: Optional[dict[str, str]] = None) -> Path:
    """A copy of the reference modules, with ``overrides`` (module -> code appended) applied.

    Appended code redefines a function, so the attack fires only when that function is called
    and sibling modules keep importing cleanly.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for f in SOLUTIONS.glob("*.py"):
        shutil.copyfile(f, dest / f.name)
    for module, code in (overrides or {}).items():
        with open(dest / f"{module}.py", "a", encoding="utf-8") as fh:
            fh.write("\n\n" + textwrap.dedent(code))
    return dest


def grade(submission: Path, course: Optional[Course] = None, only: Optional[Iterable[str]] = None,
          parallel: int = 2) -> GradeReport:
    """Grade as ``grader grade`` does on a two-core machine: two exercises at a time (class runs: one)."""
    return grade_submission(submission, course or load_course(), only=only, parallel=parallel)
