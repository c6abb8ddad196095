"""Self-check for exercises maxpool2d and avgpool2d (pooling.py).  Run: pytest -m maxpool2d -m avgpool2d"""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.mistakes import assert_close

X = np.array([[[[1, 5, 2, 0],
                [3, 2, 8, 1],
                [0, 0, 4, 4],
                [6, 1, 4, 9]]]])  # (1, 1, 4, 4)


@pytest.mark.maxpool2d
def test_maxpool2d_hand_computed(impl):
    got = impl("pooling").maxpool2d(X, 2)
    assert_close("maxpool2d", got, [[[[5, 8], [6, 9]]]], (X, 2), why="2×2 pooling of 4×4 gives 2×2, each the max of one 2×2 block.")


@pytest.mark.maxpool2d
def test_maxpool2d_floor_mode_channels_and_tuples(impl):
    maxpool2d = impl("pooling").maxpool2d
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7))
    got = maxpool2d(x, 2)
    expected = np.maximum.reduce([x[:, :, a:4:2, b:6:2] for a in range(2) for b in range(2)])
    assert_close("maxpool2d", got, expected, (x, 2), why="5×7 pooled by 2 gives 2×3 (leftover rows/columns dropped), "
                                                        "every channel pooled on its own.")
    got = maxpool2d(x, (1, 2), stride=(1, 3))
    assert_close("maxpool2d", got, np.maximum(x[..., 0:4:3], x[..., 1:5:3]), (x, (1, 2)), {"stride": (1, 3)},
                 why="kernel (1, 2) with stride (1, 3) gives 5×2.")


@pytest.mark.maxpool2d
def test_maxpool2d_matches_torch_with_overlap(impl):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 2, 7, 6))
    copy = x.copy()
    got = impl("pooling").maxpool2d(x, 3, stride=2)
    np.testing.assert_array_equal(x, copy, err_msg="maxpool2d modified its input")
    expected = torch.nn.functional.max_pool2d(torch.tensor(x), 3, stride=2).numpy()
    assert_close("maxpool2d", got, expected, (x, 3), {"stride": 2}, why="differs from torch max_pool2d(kernel 3, stride 2).")
    with pytest.raises(ValueError):
        impl("pooling").maxpool2d(x, 8)


@pytest.mark.avgpool2d
def test_avgpool2d_hand_computed_without_overflow(impl):
    avgpool2d = impl("pooling").avgpool2d
    assert_close("avgpool2d", avgpool2d(X, 2), [[[[2.75, 2.75], [1.75, 5.25]]]], (X, 2), why="each output is the mean of one 2×2 block.")
    x = np.full((1, 1, 2, 2), 250, dtype=np.uint8)
    got = avgpool2d(x, 2)
    assert_close("avgpool2d", got, [[[[250.0]]]], (x, 2), why="the mean of four 250s is 250.")
    assert np.issubdtype(np.asarray(got).dtype, np.floating), "the output must be floating point"


@pytest.mark.avgpool2d
def test_avgpool2d_matches_torch(impl):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 5))
    expected = torch.nn.functional.avg_pool2d(torch.tensor(x), (3, 2), stride=(2, 1)).numpy()
    assert_close("avgpool2d", impl("pooling").avgpool2d(x, (3, 2), stride=(2, 1)), expected, (x, (3, 2)), {"stride": (2, 1)},
                 why="differs from torch avg_pool2d(kernel (3, 2), stride (2, 1)).", atol=1e-12)
