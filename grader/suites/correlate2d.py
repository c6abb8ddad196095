"""Hidden checks for ``conv.correlate2d`` (as ``scipy.signal.correlate2d`` computes it, mode 'valid'), by concept."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from hypothesis import strategies as st

from . import oracles
from .base import Suite
from .cases import SOBEL_X, digit_seven, make_array, with_small_inputs
from .diagnosis import compare, property_check
from .features import ANY
from .untouched import check_untouched

if TYPE_CHECKING:
    from .context import Context

suite = Suite("correlate2d")


def _inputs(image: np.ndarray, kernel: np.ndarray) -> str:
    return with_small_inputs(f"image shape {image.shape} {image.dtype}, kernel shape {kernel.shape}", image=image, kernel=kernel)


def run_case(ctx: Context, image: np.ndarray, kernel: np.ndarray, noncontiguous: bool = False, diagnosed: bool = True) -> None:
    expected = ctx.expected("correlate2d", oracles.correlate2d, image, kernel)
    sent = ctx.noncontiguous(image) if noncontiguous else image
    compare(ctx, "correlate2d", (image, kernel), {}, expected, what="correlate2d", inputs=_inputs(image, kernel),
            sent=(sent, kernel), diagnosed=diagnosed)


def sizes(dtypes=("float64", "float32")):
    return (st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4), st.sampled_from(dtypes),
                      st.integers(0, 999), st.booleans())
            .filter(lambda t: t[2] <= t[0] and t[3] <= t[1]))


@suite.check("values: an asymmetric kernel on a small image (no flipping)", weight=1, concept="values")
def asymmetric(ctx: Context) -> None:
    image = np.arange(25, dtype=np.float64).reshape(5, 5)
    run_case(ctx, image, np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0], [0.5, 0.0, -2.0]]))


@suite.check("values: a handwritten 7 through a vertical-edge (Sobel) kernel", weight=1, concept="values")
def sobel_digit(ctx: Context) -> None:
    run_case(ctx, digit_seven().astype(np.float64), SOBEL_X)


@suite.varies("non_square", "rectangular_kernel")
@property_check(suite, "values: random float images and kernels, of any sizes, match scipy", sizes(), concept="values", weight=2,
                max_examples=30)
def random_values(ctx: Context, case, diagnosed: bool) -> None:
    h, w, kh, kw, dtype, seed, _ = case
    run_case(ctx, make_array((h, w), dtype, seed), make_array((kh, kw), "float64", seed + 1), diagnosed=diagnosed)


@suite.check("shapes: kernel as large as the image, 1x1 kernel, non-square", weight=1, concept="shapes",
             varies=("non_square", "rectangular_kernel"))
def edge_shapes(ctx: Context) -> None:
    run_case(ctx, make_array((3, 4), "float64", 1), make_array((3, 4), "float64", 2))
    run_case(ctx, make_array((4, 3), "float64", 3), np.array([[2.0]]))
    run_case(ctx, make_array((6, 9), "float64", 4), make_array((2, 4), "float64", 5))


@suite.check("dtypes: a uint8 digit does not overflow; non-contiguous input", weight=1, concept="dtypes", varies=("integer_dtype", "noncontiguous"))
def uint8(ctx: Context) -> None:
    run_case(ctx, make_array((8, 8), "uint8", 6), np.ones((3, 3)))
    run_case(ctx, make_array((6, 6), "float64", 7), make_array((2, 2), "float64", 8), noncontiguous=True)


@suite.varies(*ANY)
@property_check(suite, "combined: random images, kernels, dtypes and layouts match scipy",
                sizes(("float64", "float32", "uint8", "int64")), concept="combined", weight=1)
def random_cases(ctx: Context, case, diagnosed: bool) -> None:
    h, w, kh, kw, dtype, seed, noncontiguous = case
    run_case(ctx, make_array((h, w), dtype, seed), make_array((kh, kw), "float64", seed + 1), noncontiguous, diagnosed)


@suite.check("errors: a kernel larger than the image raises ValueError", weight=1, concept="errors", varies=ANY)
def too_large(ctx: Context) -> None:
    ctx.expect_value_error("correlate2d", np.zeros((2, 5)), np.ones((3, 3)), why="a 3x3 kernel on a 2x5 image")


@suite.check("the inputs are not modified", weight=1, concept="no_mutation", varies=ANY)
def no_mutation(ctx: Context) -> None:
    pairs = [(make_array((6, 6), "float64", 9), make_array((3, 2), "float64", 10)), (make_array((5, 5), "uint8", 11), np.ones((2, 2)))]
    check_untouched(ctx, "correlate2d", [((image, kernel), {}, _inputs(image, kernel)) for image, kernel in pairs],
                    what="correlate2d")
