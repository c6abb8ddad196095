"""coursekit.numpy2_hints: a student error caused by a numpy 2 change is named as such, and only then.

The messages are produced here by the numpy the grader runs, from code that numpy 1.26 accepted
(the three cases of the issue: ``int()`` of a 1-element array, an element assigned a ``(1,)`` array,
``np.float64`` of a ``(1, 1, 1)`` slice stored in an element).
"""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.numpy2_hints import PREFIX, moved_lib_names, numpy2_hint, with_numpy2_hint


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


def _raised(code: str) -> str:
    """The message a student's line gets under the installed numpy, as the grader and self-checks see it."""
    with pytest.raises((AttributeError, ImportError)) as info:
        exec(code, {"np": np})
    return f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("code, words", [
    ("np.lib.pad(np.ones(2), 1)", "`np.pad`"),
    ("from numpy.lib import pad", "`np.pad`"),
    ("np.float(3)", "`np.float64`"),
    ("np.product([1, 2])", "`np.prod`"),
    ("np.asscalar(np.ones(1))", ".item()"),
    ("np.float_", "`np.float64`"),
    ("from numpy import float_", "`np.float64`"),
    ("np.NaN", "`np.nan`"),
    ("np.lib.arraypad.pad(np.ones(2), 1)", "private"),
    ("import numpy.lib.stride_tricks, numpy.lib.arraypad", "private"),
    ("np.lib.emath.sqrt(-1)", "`np.emath`"),
    ("np.ones(3).ptp()", "`np.ptp(a)`"),
])
def test_a_removed_or_moved_name_gets_the_hint(code, words):
    message = _raised(code)
    hint = numpy2_hint(message)
    assert hint is not None and hint.startswith(PREFIX) and words in hint, (message, hint)


def test_every_name_on_numpys_own_list_gets_the_hint():
    """Built from numpy's list, not a hand copy: each of NumPy 2.0's expired names, looked up, is named."""
    from numpy._expired_attrs_2_0 import __expired_attributes__

    for name in __expired_attributes__:
        assert numpy2_hint(_raised(f"np.{name}")) is not None, name
    moved = moved_lib_names()
    assert {"pad", "histogram", "unique", "meshgrid", "tile"} <= moved
    for name in moved:
        assert numpy2_hint(_raised(f"np.lib.{name}")) is not None, name


@pytest.mark.parametrize("code", [
    "np.conv2d",                          # a name numpy never had
    "np.lib.no_such_function",
    "from numpy import correlate2d_fast",
    "np.ones(3).append(1)",               # a list method on an array: a plain bug
    "import numpy.lib.no_such_module",
])
def test_names_numpy_never_had_get_no_hint(code):
    message = _raised(code)
    assert numpy2_hint(message) is None, message


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


def test_the_grader_names_a_moved_numpy_name_in_the_feedback(tmp_path):
    """Through the real sandbox: a pad2d written with ``np.lib.pad`` (numpy 1) gets the numpy 2 hint."""
    from tests.grading_helpers import grade, reference_submission

    code = '''
def pad2d(x, pad, value=0.0):
    top, bottom, left, right = (pad,) * 4 if isinstance(pad, int) else pad
    width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.lib.pad(x, width, constant_values=value)
'''
    report = grade(reference_submission(tmp_path / "sub", {"padding": code}), only=["pad2d"])
    messages = "\n".join(t.message for t in report.exercise("pad2d").tests if not t.passed)
    assert "has no attribute 'pad'" in messages
    assert f"{PREFIX} `np.lib.pad` was moved in numpy 2: it is `np.pad` now." in messages


def test_the_self_checks_name_a_moved_numpy_name(tmp_path):
    """In the released kit: a pad2d written with ``np.lib.pad`` fails its self-check, which names the move."""
    import os
    import subprocess
    import sys

    from grader.cli import main

    kit = tmp_path / "course"
    assert main(["release", str(kit)]) == 0
    padding = kit / "exercises" / "padding.py"
    text = padding.read_text(encoding="utf-8")
    stub = '    raise NotImplementedError("pad2d: replace this line with your code (padding.pad2d)")'
    assert stub in text
    padding.write_text(text.replace(stub, "    import numpy as np\n    return np.lib.pad(x, pad)"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_YML", "COURSE_IMPL", "PYTHONPATH", "MNIST_DIR")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "pad2d", "-x"],
                          cwd=kit, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert f"{PREFIX} `np.lib.pad` was moved in numpy 2: it is `np.pad` now." in proc.stdout, proc.stdout[-3000:]
