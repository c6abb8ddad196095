"""Self-check for exercises correlate2d and conv2d (conv.py).  Run: pytest -m correlate2d -m conv2d"""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.mistakes import assert_close

IMAGE = np.array([[1, 2, 0], [0, 1, 3], [4, 0, 1]])
KERNEL = np.array([[1, 2], [0, -1]])  # not symmetric: flipping it changes the result
# out[i, j] = image[i, j] + 2*image[i, j+1] - image[i+1, j+1]
CORRELATION = np.array([[4.0, -1.0], [2.0, 6.0]])


@pytest.mark.correlate2d
def test_correlate2d_hand_computed(impl):
    got = np.asarray(impl("conv").correlate2d(IMAGE, KERNEL))
    assert_close("correlate2d", got, CORRELATION, (IMAGE, KERNEL),
                 why="a 2×2 kernel on a 3×3 image: out[i, j] = sum of image[i + a, j + b] * kernel[a, b], a 2×2 result.")


@pytest.mark.correlate2d
def test_correlate2d_matches_scipy_and_rejects_big_kernels(impl):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    image, kernel = rng.integers(0, 256, (6, 5)).astype(np.uint8), rng.standard_normal((3, 2))
    expected = signal.correlate2d(image.astype(float), kernel, mode="valid")
    assert_close("correlate2d", impl("conv").correlate2d(image, kernel), expected, (image, kernel),
                 why="differs from scipy.signal.correlate2d(mode='valid') on a uint8 image.")
    with pytest.raises(ValueError):
        impl("conv").correlate2d(np.zeros((2, 2)), np.zeros((3, 3)))


@pytest.mark.conv2d
def test_conv2d_sums_over_input_channels(impl):
    x = np.stack([IMAGE, 10 * IMAGE])[None]  # (1, 2, 3, 3)
    w = np.stack([KERNEL, KERNEL])[None]  # (1, 2, 2, 2): one filter spanning both channels
    b = np.array([0.5])
    got = impl("conv").conv2d(x, w, b=b)
    assert_close("conv2d", got, (11 * CORRELATION + 0.5)[None, None], (x, w, b),
                 why="x (1, 2, 3, 3) with w (1, 2, 2, 2) gives (N, F, Ho, Wo) = (1, 1, 2, 2): the sum over both channels plus the bias.")


@pytest.mark.conv2d
def test_conv2d_stride_on_both_axes(impl):
    x = np.arange(2 * 3 * 7 * 9, dtype=float).reshape(2, 3, 7, 9)
    w = np.ones((4, 3, 3, 3))
    conv2d = impl("conv").conv2d
    plain = conv2d(x, w)
    assert np.shape(plain) == (2, 4, 5, 7), f"expected (2, 4, 5, 7), got {np.shape(plain)}; output size is (n + 2p - k) // s + 1"
    got = conv2d(x, w, stride=(2, 3))
    assert_close("conv2d", got, np.asarray(plain)[:, :, ::2, ::3], (x, w), {"stride": (2, 3)},
                 why="stride (2, 3) gives (2, 4, 3, 3): every 2nd row and 3rd column of the stride-1 conv.")


@pytest.mark.conv2d
def test_conv2d_padding_forms(impl):
    conv2d = impl("conv").conv2d
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    got = conv2d(x, w, padding=1)
    assert got.shape == (1, 1, 4, 4), f"padding 1 keeps 4×4 with a 3×3 kernel, got {got.shape} (padded the N/C axes?)"
    np.testing.assert_allclose(got[0, 0, 0], [4, 6, 6, 4], err_msg="zeros outside the image: the corner sees 4 ones")
    assert conv2d(x, w, padding=(1, 0)).shape == (1, 1, 4, 2), "padding (ph, pw): ph rows top and bottom, pw columns left and right"
    assert conv2d(x, w, padding="valid").shape == (1, 1, 2, 2), "'valid' means no padding"
    np.testing.assert_allclose(conv2d(x, w, padding="same"), got, err_msg="'same' with a 3×3 kernel and stride 1 is padding 1")
    got = conv2d(x, w, stride=2, padding="same")
    assert_close("conv2d", got, [[[[9, 6], [6, 4]]]], (x, w), {"stride": 2, "padding": "same"},
                 why="'same' with stride 2 gives ceil(4/2) = 2 per axis, padding (0, 1) per axis.")


@pytest.mark.conv2d
def test_conv2d_matches_torch(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (2, 3, 9, 8)).astype(np.uint8)
    w, b = rng.standard_normal((5, 3, 3, 2)), rng.standard_normal(5)
    copy = x.copy()
    got = impl("conv").conv2d(x, w, b, stride=(2, 1), padding=(1, 2))
    np.testing.assert_array_equal(x, copy, err_msg="conv2d modified its input")
    expected = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w), torch.tensor(b),
                                          stride=(2, 1), padding=(1, 2)).numpy()
    assert_close("conv2d", got, expected, (x, w, b), {"stride": (2, 1), "padding": (1, 2)},
                 why="differs from torch.nn.functional.conv2d (uint8 image, stride (2, 1), padding (1, 2)).")


@pytest.mark.conv2d
def test_conv2d_rejects_channel_mismatch(impl):
    with pytest.raises(ValueError):
        impl("conv").conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 1, 3, 3)))
