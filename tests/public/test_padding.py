"""Self-check for exercises pad2d and same_padding (padding.py).  Run: pytest -m pad2d -m same_padding"""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.mistakes import assert_close, self_check_hint


@pytest.mark.pad2d
def test_pad2d_pads_only_height_and_width(impl):
    x = np.ones((2, 3, 4, 5))
    got = impl("padding").pad2d(x, 1)
    assert_close("pad2d", got, np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)]), (x, 1),
                 why="one pixel of zeros on every side of H and W: (2, 3, 4, 5) becomes (2, 3, 6, 7), x in the middle.")


@pytest.mark.pad2d
def test_pad2d_tuple_is_top_bottom_left_right(impl):
    x = np.arange(6).reshape(1, 1, 2, 3)
    got = impl("padding").pad2d(x, (1, 0, 0, 2), value=-1)
    expected = np.pad(x, [(0, 0), (0, 0), (1, 0), (0, 2)], constant_values=-1)
    assert_close("pad2d", got, expected, (x, (1, 0, 0, 2)), {"value": -1},
                 why="pad=(top, bottom, left, right): (1, 0, 0, 2) adds one row on top and two columns on the right, filled with -1.")


@pytest.mark.pad2d
def test_pad2d_keeps_input_and_gives_floats(impl):
    x = np.full((2, 2), 200, dtype=np.uint8)
    copy = x.copy()
    got = impl("padding").pad2d(x, 1, value=0.5)
    np.testing.assert_array_equal(x, copy, err_msg="pad2d modified its input")
    assert np.issubdtype(got.dtype, np.floating), f"the output must be floating point, got {got.dtype}"
    assert got[0, 0] == 0.5 and got[1, 1] == 200, "value 0.5 in the border, 200 inside (is the dtype still uint8?)"


@pytest.mark.pad2d
def test_pad2d_rejects_negative_padding(impl):
    with pytest.raises(ValueError):
        impl("padding").pad2d(np.zeros((3, 3)), -1)


@pytest.mark.same_padding
@pytest.mark.parametrize(
    ("args", "expected", "why"),
    [
        ((28, 3), (1, 1), "a 3×3 kernel needs one pixel on each side"),
        ((28, 4), (1, 2), "even kernel: total 3, the extra pixel goes after (bottom/right)"),
        ((5, 3, 2), (1, 1), "out = ceil(5/2) = 3, total = (3-1)*2 + 3 - 5 = 2"),
        ((6, 3, 2), (0, 1), "out = 3, total = (3-1)*2 + 3 - 6 = 1, so (0, 1)"),
        ((6, 1, 3), (0, 0), "total = max((2-1)*3 + 1 - 6, 0) = 0: never negative"),
    ],
)
def test_same_padding_follows_keras(impl, args, expected, why):
    got = impl("padding").same_padding(*args)
    n, k, *stride = args
    hint = self_check_hint("same_padding", (n, k), {"stride": stride[0] if stride else 1}, got)  # '' when right (recorded either way)
    assert got == expected, f"same_padding{args} returned {got!r}, expected {expected}: {why}.{hint}"
