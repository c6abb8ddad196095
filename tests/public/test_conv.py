"""Self-check for exercises correlate2d and conv2d (conv.py).  Run: pytest -m correlate2d -m conv2d"""
from __future__ import annotations

import numpy as np
import pytest

IMAGE = np.array([[1, 2, 0], [0, 1, 3], [4, 0, 1]])
KERNEL = np.array([[1, 2], [0, -1]])  # not symmetric: flipping it changes the result
# out[i, j] = image[i, j] + 2*image[i, j+1] - image[i+1, j+1]
CORRELATION = np.array([[4.0, -1.0], [2.0, 6.0]])
CONVOLUTION = np.array([[0.0, 3.0], [8.0, 0.0]])  # what a flipped kernel gives


@pytest.mark.correlate2d
def test_correlate2d_hand_computed(impl):
    got = np.asarray(impl("conv").correlate2d(IMAGE, KERNEL))
    assert got.shape == (2, 2), f"a 2×2 kernel on a 3×3 image fits in 2×2 positions, got shape {got.shape}"
    if np.allclose(got, CONVOLUTION):
        pytest.fail("output looks like a true convolution — did you flip the kernel? Layers do not flip it.")
    np.testing.assert_allclose(got, CORRELATION, err_msg="out[i, j] = sum of image[i + a, j + b] * kernel[a, b]")


@pytest.mark.correlate2d
def test_correlate2d_matches_scipy_and_rejects_big_kernels(impl):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    image, kernel = rng.integers(0, 256, (6, 5)).astype(np.uint8), rng.standard_normal((3, 2))
    expected = signal.correlate2d(image.astype(float), kernel, mode="valid")
    np.testing.assert_allclose(impl("conv").correlate2d(image, kernel), expected, atol=1e-9,
                               err_msg="differs from scipy.signal.correlate2d(mode='valid') (uint8 overflow?)")
    with pytest.raises(ValueError):
        impl("conv").correlate2d(np.zeros((2, 2)), np.zeros((3, 3)))


@pytest.mark.conv2d
def test_conv2d_sums_over_input_channels(impl):
    x = np.stack([IMAGE, 10 * IMAGE])[None]  # (1, 2, 3, 3)
    w = np.stack([KERNEL, KERNEL])[None]  # (1, 2, 2, 2): one filter spanning both channels
    got = np.asarray(impl("conv").conv2d(x, w, b=[0.5]))
    assert got.shape == (1, 1, 2, 2), f"x (1, 2, 3, 3) with w (1, 2, 2, 2) gives (N, F, Ho, Wo) = (1, 1, 2, 2), got {got.shape}"
    if np.allclose(got[0, 0], 11 * CONVOLUTION + 0.5):
        pytest.fail("output looks like a true convolution — did you flip the kernel?")
    if np.allclose(got[0, 0], CORRELATION + 0.5):
        pytest.fail("only the first channel counts: sum over all input channels")
    np.testing.assert_allclose(got[0, 0], 11 * CORRELATION + 0.5, err_msg="expected the sum over both channels plus the bias")


@pytest.mark.conv2d
def test_conv2d_stride_on_both_axes(impl):
    x = np.arange(2 * 3 * 7 * 9, dtype=float).reshape(2, 3, 7, 9)
    w = np.ones((4, 3, 3, 3))
    conv2d = impl("conv").conv2d
    got = conv2d(x, w)
    assert got.shape == (2, 4, 5, 7), f"expected (2, 4, 5, 7), got {got.shape}; output size is (n + 2p - k) // s + 1"
    got = conv2d(x, w, stride=(2, 3))
    assert got.shape != (2, 4, 3, 7) and got.shape != (2, 4, 5, 3), "stride applied on one axis only"
    assert got.shape == (2, 4, 3, 3), f"stride (2, 3) gives (2, 4, 3, 3), got {got.shape}"
    np.testing.assert_allclose(got, conv2d(x, w)[:, :, ::2, ::3], err_msg="a strided conv keeps every s-th output of the stride-1 conv")


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
    assert got.shape == (1, 1, 2, 2), f"'same' with stride 2 gives ceil(4/2) = 2 per axis, got {got.shape}"
    if np.allclose(got, [[[[4, 6], [6, 9]]]]):
        pytest.fail("the extra padding pixel went top/left; Keras puts it bottom/right (see same_padding)")
    np.testing.assert_allclose(got, [[[[9, 6], [6, 4]]]], err_msg="'same', stride 2: pad (0, 1) per axis")


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
    assert np.shape(got) == expected.shape, f"expected shape {expected.shape}, got {np.shape(got)}"
    np.testing.assert_allclose(got, expected, atol=1e-9, err_msg="differs from torch.nn.functional.conv2d (uint8 overflow?)")


@pytest.mark.conv2d
def test_conv2d_rejects_channel_mismatch(impl):
    with pytest.raises(ValueError):
        impl("conv").conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 1, 3, 3)))
