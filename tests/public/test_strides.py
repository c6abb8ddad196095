"""Self-check for exercise conv_output_size (strides.py).  Run: pytest -m conv_output_size"""
from __future__ import annotations

import pytest

from coursekit.mistakes import self_check_hint

pytestmark = pytest.mark.conv_output_size


@pytest.mark.parametrize(
    ("args", "expected", "why"),
    [
        ((28, 3), 26, "the chapter's first Conv2D turns 28×28 into 26×26"),
        ((26, 2, 2), 13, "2×2 max pooling with stride 2 halves 26 to 13"),
        ((13, 3), 11, "the second Conv2D turns 13×13 into 11×11"),
        ((11, 2, 2), 5, "pooling 11 with stride 2 drops the last row: floor, not ceil"),
        ((5, 3, 1, 1), 5, "padding 1 on both sides keeps a 3×3 conv's size"),
        ((5, 3, 2, 1), 3, "(5 + 2*1 - 3) // 2 + 1 = 3"),
        ((6, 3, 2, 0), 2, "(6 - 3) // 2 + 1 = 2: round down"),
    ],
)
def test_known_sizes(impl, args, expected, why):
    got = impl("strides").conv_output_size(*args)
    n, k, stride, padding = list(args) + [1, 0][len(args) - 2:]  # the defaults stride=1, padding=0 filled in
    hint = self_check_hint("conv_output_size", (n, k), {"stride": stride, "padding": padding}, got)  # '' when right
    assert got == expected, f"conv_output_size{args} returned {got!r}, expected {expected} ({why}).{hint}"
    assert isinstance(got, int), f"return a Python int, got {type(got).__name__}.{hint}"


@pytest.mark.parametrize("args", [(2, 5), (3, 3, 0), (5, 3, -1), (5, 3, 1, -1)])
def test_impossible_sizes_raise_value_error(impl, args):
    with pytest.raises(ValueError):
        impl("strides").conv_output_size(*args)
