"""The grade of one submission: statuses, points, and its JSON form.

Rendering for people (terminal table, Markdown and HTML feedback) lives in ``feedback.py``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

#: Every status an exercise can end with.
STATUSES = ("passed", "failed", "error", "timeout", "forbidden", "missing", "not_implemented")


@dataclass
class TestResult:
    name: str
    passed: bool
    points: float
    max_points: float
    message: str = ""
    #: Arrays of the shrunk counterexample (expected, got) for pictures; never written to JSON.
    detail: Optional[dict[str, Any]] = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "points": round(self.points, 4),
                "max_points": round(self.max_points, 4), "message": self.message}


@dataclass
class ExerciseResult:
    id: str
    score: float
    max_score: float
    status: str
    duration_s: float
    tests: list[TestResult] = field(default_factory=list)
    bonus: bool = False
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def first_failure(self) -> str:
        if self.message:
            return self.message
        for t in self.tests:
            if not t.passed:
                return f"{t.name}: {t.message}"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 4), "max_score": round(self.max_score, 4),
                "status": self.status, "duration_s": round(self.duration_s, 3), "bonus": self.bonus,
                "message": self.message, "tests": [t.to_json() for t in self.tests]}


@dataclass
class GradeReport:
    score: float
    max_score: float
    grader_version: str
    isolation: str
    duration_s: float
    exercises: list[ExerciseResult]
    submission: str = ""
    content_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "max_score": round(self.max_score, 4),
                "grader_version": self.grader_version, "isolation": self.isolation,
                "duration_s": round(self.duration_s, 3), "submission": self.submission, "content_hash": self.content_hash,
                "exercises": [e.to_json() for e in self.exercises]}

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    def exercise(self, exercise_id: str) -> ExerciseResult:
        return next(e for e in self.exercises if e.id == exercise_id)


def total(exercises: list[ExerciseResult]) -> tuple[float, float]:
    """(score, max_score): bonus points count in the score but not in the maximum."""
    score = sum(e.score for e in exercises)
    max_score = sum(e.max_score for e in exercises if not e.bonus)
    return score, max_score


__all__ = ["STATUSES", "TestResult", "ExerciseResult", "GradeReport", "total", "asdict"]
