"""Hidden checks for ``conv.correlate2d`` (oracle: ``scipy.signal.correlate2d``, mode 'valid')."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from . import oracles
from .base import Suite
from .cases import make_array

suite = Suite("correlate2d")


def run_case(ctx, image: np.ndarray, kernel: np.ndarray, noncontiguous: bool = False) -> None:
    expected = ctx.expected("correlate2d", oracles.correlate2d, image, kernel)
    flipped = oracles.correlate2d(image, kernel[::-1, ::-1])

    def flip_hint(got: np.ndarray, want: np.ndarray):
        if got.shape == want.shape and not np.allclose(want, flipped) and np.allclose(got, flipped):
            return "your output is a true convolution: deep-learning layers slide the kernel without flipping it"
        if got.shape != want.shape and got.shape == (image.shape[0] + kernel.shape[0] - 1, image.shape[1] + kernel.shape[1] - 1):
            return "that is the 'full' output size; 'valid' keeps only windows that fit: H - kh + 1"
        return None

    inputs = f"image shape {image.shape} {image.dtype}, kernel shape {kernel.shape}"
    sent = ctx.noncontiguous(image) if noncontiguous else image
    ctx.compare("correlate2d", (sent, kernel), {}, expected, what="correlate2d", inputs=inputs, hint=flip_hint)


@suite.check("an asymmetric kernel on a small image (no flipping)", weight=2)
def asymmetric(ctx) -> None:
    image = np.arange(25, dtype=np.float64).reshape(5, 5)
    run_case(ctx, image, np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0], [0.5, 0.0, -2.0]]))


@suite.check("kernel as large as the image, 1x1 kernel, non-square", weight=2)
def edge_shapes(ctx) -> None:
    run_case(ctx, make_array((3, 4), "float64", 1), make_array((3, 4), "float64", 2))
    run_case(ctx, make_array((4, 3), "float64", 3), np.array([[2.0]]))
    run_case(ctx, make_array((6, 9), "float64", 4), make_array((2, 4), "float64", 5))


@suite.check("a uint8 digit does not overflow", weight=1)
def uint8(ctx) -> None:
    run_case(ctx, make_array((8, 8), "uint8", 6), np.ones((3, 3)))


@suite.property("random images and kernels match scipy", weight=3,
                strategy=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4),
                                   st.sampled_from(["float64", "float32", "uint8", "int64"]), st.integers(0, 999), st.booleans())
                .filter(lambda t: t[2] <= t[0] and t[3] <= t[1]))
def random_cases(ctx, case) -> None:
    h, w, kh, kw, dtype, seed, noncontiguous = case
    run_case(ctx, make_array((h, w), dtype, seed), make_array((kh, kw), "float64", seed + 1), noncontiguous)


@suite.check("a kernel larger than the image raises ValueError", weight=1)
def too_large(ctx) -> None:
    ctx.expect_value_error("correlate2d", np.zeros((2, 5)), np.ones((3, 3)), why="a 3x3 kernel on a 2x5 image")
