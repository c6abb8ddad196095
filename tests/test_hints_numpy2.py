"""coursekit.numpy2_hints: a student error caused by a numpy 2 change is named as such, and only then.

The messages are produced here by the numpy the grader runs, from code that numpy 1.26 accepted
(the three cases of the issue: ``int()`` of a 1-element array, an element assigned a ``(1,)`` array,
``np.float64`` of a ``(1, 1, 1)`` slice stored in an element).
"""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.numpy2_hints import PREFIX, numpy2_hint, with_numpy2_hint


def _message(action) -> str:
    with pytest.raises(Exception) as info:
        action()
    return f"conv2d raised {type(info.value).__name__}: {info.value}"


def _int_of_one_element_array():
    return int(np.array([3]))


def _element_assigned_a_1d_array():
    out = np.zeros((2, 2))
    out[0, 0] = np.ones(1)


def _float64_of_a_slice_stored():
    x = np.ones((1, 3, 3))
    out = np.zeros((2, 2))
    out[0, 0] = np.float64(x[:, :1, :1]) * 2


def _uint8_overflow():
    return np.zeros(2, np.uint8) + 300


@pytest.mark.parametrize("action, words", [(_int_of_one_element_array, ".item()"),
                                           (_element_assigned_a_1d_array, "1-element array"),
                                           (_float64_of_a_slice_stored, "np.float64(a_slice)"),
                                           (_uint8_overflow, "NEP 50")])
def test_numpy2_changes_are_named(action, words):
    message = _message(action)
    hint = numpy2_hint(message)
    assert hint is not None and hint.startswith(PREFIX) and words in hint, (message, hint)
    annotated = with_numpy2_hint(message)
    assert annotated.startswith(message) and annotated.endswith(hint) and annotated.count(PREFIX) == 1
    assert with_numpy2_hint(annotated) == annotated  # never twice


def test_removed_alias_is_named():
    with pytest.raises(AttributeError) as info:
        np.float_  # noqa: B018
    assert "removed" in numpy2_hint(str(info.value))


@pytest.mark.parametrize("action", [
    lambda: np.ones((2, 3)) @ np.ones((2, 3)),  # shape bug
    lambda: np.array([[1, 2], [3]]),  # ragged list: "setting an array element with a sequence ... inhomogeneous"
    lambda: np.ones(3)[5],
    lambda: np.pad(np.ones((2, 2)), -1),
])
def test_plain_bugs_get_no_numpy2_hint(action):
    message = _message(action)
    assert numpy2_hint(message) is None, message
    assert with_numpy2_hint(message) == message


def test_the_grader_names_the_numpy2_change_in_the_feedback(tmp_path):
    """Through the real sandbox: a correlate2d that stores a (1, 1) array in an element (fine under
    numpy 1.26) fails here, and the failing check's message names the numpy 2 change."""
    from tests.grading_helpers import grade, reference_submission

    code = '''
def correlate2d(image, kernel):
    image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel, keepdims=True)
    return out
'''
    report = grade(reference_submission(tmp_path / "sub", {"conv": code}), only=["correlate2d"])
    messages = "\n".join(t.message for t in report.exercise("correlate2d").tests if not t.passed)
    assert "setting an array element with a sequence" in messages
    assert PREFIX in messages
