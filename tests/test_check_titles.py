"""Every check's title is true of every case it runs (issue 18 §5).

Each check declares the features its cases may switch on (``Check.varies``, see grader/suites/features.py):
a check named after a feature varies that feature alone; elsewhere images are square, one item and
one channel, stride 1, no padding, no bias. Here every check of every array suite runs against the
reference (no sandbox: a recording context answers each call with the reference's answer, so every
case of a fixed check and every case a property search draws is met), and each call's features must
be within the check's declaration.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from coursekit.course import load_course
from grader.suites import suite_for
from grader.suites.context import Context
from grader.suites.features import ANY, FEATURES, call_features
from grader.suites.outcomes import StudentRaised

COURSE = load_course()
#: Suites whose cases are models and data, not arrays with features (convnet, mnist_accuracy).
ARRAY_EXERCISES = [e.id for e in COURSE.exercises if e.id not in ("convnet", "mnist_accuracy")]


class RecordingContext(Context):
    """A grading context whose 'student' is the reference, recording every call a check makes."""

    def __init__(self, exercise_id: str):
        super().__init__(None, COURSE.exercise(exercise_id), COURSE)
        self.calls: list[tuple[str, tuple, dict[str, Any]]] = []

    def _call(self, function: str, args: tuple, kwargs: dict) -> Any:
        self.calls.append((function, tuple(args), dict(kwargs)))
        try:
            value = self.reference(function)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  an error check: the reference's ValueError, as the worker reports it
            raise StudentRaised(type(exc).__name__, str(exc)) from None
        return SimpleNamespace(value=value, mutated=())


def _checks_and_calls(exercise_id: str) -> list[tuple[Any, list[tuple[str, tuple, dict]]]]:
    ctx = RecordingContext(exercise_id)
    found = []
    for check in suite_for(exercise_id).checks:
        start = len(ctx.calls)
        check.run(ctx)  # the reference passes every check
        found.append((check, ctx.calls[start:]))
    return found


@pytest.mark.parametrize("exercise_id", ARRAY_EXERCISES)
def test_every_case_of_a_check_is_within_its_declared_features(monkeypatch, exercise_id):
    monkeypatch.setenv("GRADER_CASE_CACHE", "off")  # hypothesis draws the cases afresh: the strategies are sampled
    wrong = []
    for check, calls in _checks_and_calls(exercise_id):
        assert calls, f"{check.name}: no call recorded"
        assert check.varies <= set(FEATURES) | ANY, (check.name, check.varies)
        if check.varies == ANY:
            continue
        for function, args, kwargs in calls:
            extra = call_features(function, args, kwargs) - check.varies
            if extra:
                wrong.append(f"{check.name!r} runs a case with {sorted(extra)} "
                             f"({function} {[getattr(a, 'shape', a) for a in args]} {kwargs})")
    assert not wrong, "\n".join(dict.fromkeys(wrong))


def test_features_are_computed_from_the_case():
    """The feature function itself: each feature switches on with its case and not without."""
    import numpy as np

    x = np.zeros((1, 1, 5, 5))
    w = np.zeros((1, 1, 3, 3))
    assert call_features("conv2d", (x, w), {"stride": 1, "padding": 0}) == set()
    assert call_features("conv2d", (np.zeros((2, 3, 5, 6)), np.zeros((1, 3, 2, 3)), np.zeros(1)),
                         {"stride": (1, 2), "padding": "same"}) == {"batch", "channels", "non_square", "rectangular_kernel",
                                                                  "bias", "stride", "padding"}
    assert call_features("conv2d", (x, w), {"padding": "valid"}) == set()
    assert call_features("maxpool2d", (x, 2), {}) == {"floor"}
    assert call_features("maxpool2d", (np.zeros((1, 1, 4, 4)), 2), {}) == set()
    assert call_features("maxpool2d", (np.zeros((1, 1, 4, 4)), 2), {"stride": 1}) == {"stride", "overlap"}
    assert call_features("maxpool2d", (np.zeros((1, 1, 6, 6)), (3, 2)), {}) == {"rectangular_kernel"}
    ties = np.zeros((1, 1, 4, 4))
    assert "ties" in call_features("maxpool2d_backward", (np.zeros((1, 1, 2, 2)), ties, 2), {})
    assert "ties" not in call_features("maxpool2d_backward", (np.zeros((1, 1, 2, 2)), np.arange(16.0).reshape(1, 1, 4, 4), 2), {})
    assert call_features("pad2d", (np.zeros((3, 4), np.uint8), (1, 0, 0, 1)), {"value": 2.0}) == {
        "other_ndim", "non_square", "integer_dtype", "tuple_pad", "fill_value"}
    assert call_features("conv_output_size", (5, 3), {"stride": 2, "padding": 0}) == {"stride"}
