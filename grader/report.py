"""The grade of one submission: statuses, points, and its JSON form.

Rendering for people (terminal table, Markdown and HTML feedback) lives in ``feedback.py``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .text import REPORT_MESSAGE_CHARS, TRACEBACK_CHARS, student_text
from .versions import runtime_versions

#: Every status an exercise can end with. ``not_graded``: the grader could not grade it (its worker was
#: killed by something the grader did not start, twice); no score, never cached, graded again next run.
STATUSES = ("passed", "failed", "error", "timeout", "forbidden", "missing", "not_implemented", "not_graded")
NOT_GRADED = "not_graded"


@dataclass
class TestResult:
    name: str
    passed: bool
    points: float
    max_points: float
    message: str = ""
    #: Arrays of the shrunk counterexample (expected, got) for pictures; never written to JSON.
    detail: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: When a check raised on the student's answer: the grader's traceback, for the instructor (JSON only,
    #: never in the student's feedback).
    grader_traceback: str = field(default="", repr=False)
    #: Figures a check measured on the trusted side, e.g. ``{"test_accuracy": 0.9918, "train_seconds": 30.1}``
    #: (mnist_accuracy): read by insights and the Gradescope leaderboard, never parsed out of the message.
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:  # messages quote student text: safe and clipped in every report
        self.message = student_text(self.message, REPORT_MESSAGE_CHARS)
        self.grader_traceback = student_text(self.grader_traceback, TRACEBACK_CHARS + REPORT_MESSAGE_CHARS)

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "passed": self.passed, "points": round2(self.points),
               "max_points": round2(self.max_points), "message": self.message}
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        if self.grader_traceback:
            out["grader_traceback"] = self.grader_traceback
        mistakes = (self.detail or {}).get("mistakes")
        if mistakes:  # confirmed mistake ids (coursekit.mistakes), for class insights
            out["mistakes"] = list(mistakes)
        return out


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
        self.message = student_text(self.message, REPORT_MESSAGE_CHARS)

    @property
    def first_failure(self) -> str:
        if self.message:
            return self.message
        for t in self.tests:
            if not t.passed:
                return f"{t.name}: {t.message}"
        return ""

    @property
    def notes(self) -> list[str]:
        """Messages of passed tests (e.g. the accuracy reached and the training time): worth showing too."""
        return [t.message for t in self.tests if t.passed and t.message]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "score": round2(self.score), "max_score": round2(self.max_score),
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

    @property
    def bonus_score(self) -> float:
        """Points earned in bonus exercises (included in :attr:`score`, never in :attr:`max_score`)."""
        return sum(e.score for e in self.exercises if e.bonus)

    @property
    def has_bonus(self) -> bool:
        return any(e.bonus for e in self.exercises)

    def score_text(self) -> str:
        """``100 / 100 + 15 bonus``: regular points over the maximum, bonus points apart."""
        text = f"{points(self.score - self.bonus_score)} / {points(self.max_score)}"
        return text + (f" + {points(self.bonus_score)} bonus" if self.has_bonus else "")

    def to_json(self) -> dict[str, Any]:
        # the total is the sum of the exercise scores as shown (two decimals), so that they add up in every export
        score = round2(sum(round2(e.score) for e in self.exercises)) if self.exercises else round2(self.score)
        bonus = round2(sum(round2(e.score) for e in self.exercises if e.bonus))
        return {"score": score, "max_score": round2(self.max_score), "bonus_score": bonus,
                "grader_version": self.grader_version, "versions": runtime_versions(), "isolation": self.isolation,
                "duration_s": round(self.duration_s, 3), "submission": self.submission, "content_hash": self.content_hash,
                "exercises": [e.to_json() for e in self.exercises]}

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    def exercise(self, exercise_id: str) -> ExerciseResult:
        return next(e for e in self.exercises if e.id == exercise_id)


def round2(value: float) -> float:
    """Scores carry two decimals at most, everywhere (JSON, text, HTML)."""
    return round(float(value), 2) + 0.0  # + 0.0: no "-0.0"


def points(value: float) -> str:
    """``7.33``, ``2.1``, ``20``: two decimals at most, no trailing zeros."""
    return f"{round2(value):.2f}".rstrip("0").rstrip(".")


def total(exercises: list[ExerciseResult]) -> tuple[float, float]:
    """(score, max_score): bonus points count in the score but not in the maximum."""
    score = sum(e.score for e in exercises)
    max_score = sum(e.max_score for e in exercises if not e.bonus)
    return score, max_score


__all__ = ["STATUSES", "TestResult", "ExerciseResult", "GradeReport", "total", "round2", "points", "asdict"]
