"""What a check can end with, apart from passing: the outcomes the grading loop (grader/grade.py) tells apart."""
from __future__ import annotations

from typing import Any


class Fail(AssertionError):
    """The student's answer is wrong; the message says how."""

    def __init__(self, message: str, *, expected: Any = None, got: Any = None, inputs: Any = None,
                 mistakes: list[str] | None = None):
        super().__init__(message)
        self.expected, self.got, self.inputs = expected, got, inputs
        #: Ids of confirmed classic mistakes (coursekit.mistakes), for class insights.
        self.mistakes: list[str] = list(mistakes or [])


class StudentRaised(Exception):
    """The student's function raised; ``type_name`` is the exception class name."""

    def __init__(self, type_name: str, message: str, traceback: str = ""):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.traceback = type_name, message, traceback


class WorkerStopped(Exception):
    """The worker is gone (timeout, crash, forbidden import...): the exercise ends here."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class NotImplementedYet(Exception):
    """The student's function still raises NotImplementedError (a stub)."""


class InternalError(Exception):
    """The grader's own expectation is broken (reference disagrees with the oracle)."""
