"""Hidden checks for ``padding.pad2d`` (oracle: ``np.pad`` on the last two axes)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from . import oracles
from .base import Suite
from .cases import make_array

suite = Suite("pad2d")


def hint(got: np.ndarray, expected: np.ndarray):
    if got.ndim == expected.ndim and got.shape[:-2] != expected.shape[:-2]:
        return "the batch/channel axes changed size: pad only the last two axes (H and W)"
    if got.shape == expected.shape[:-2] + expected.shape[-1:] + expected.shape[-2:-1]:
        return "H and W padding look swapped: pad is (top, bottom, left, right)"
    return None


def run_case(ctx, x: np.ndarray, pad, value=None, noncontiguous: bool = False) -> None:
    kwargs = {} if value is None else {"value": value}
    expected = ctx.expected("pad2d", oracles.pad2d, x, pad, **kwargs)
    inputs = f"x shape {x.shape} {x.dtype}, pad={pad!r}" + ("" if value is None else f", value={value}")
    sent = ctx.noncontiguous(x) if noncontiguous else x
    ctx.compare("pad2d", (sent, pad), kwargs, expected, what="pad2d", inputs=inputs, hint=hint)


@suite.check("an int pads all four sides of H and W only", weight=2)
def int_pad(ctx) -> None:
    run_case(ctx, make_array((2, 3, 4, 5), "float64", 0), 1)
    run_case(ctx, make_array((1, 1, 3, 3), "float64", 1), 2)


@suite.check("(top, bottom, left, right) tuples, zero pads and a fill value", weight=2)
def tuple_pad(ctx) -> None:
    run_case(ctx, make_array((1, 2, 3, 4), "float64", 2), (1, 0, 2, 3))
    run_case(ctx, make_array((2, 1, 2, 2), "float64", 3), (0, 0, 0, 0))
    run_case(ctx, make_array((1, 1, 2, 3), "float64", 4), (0, 2, 1, 0), value=-1.5)


@suite.check("uint8 images keep their values (no overflow) and come back as floats", weight=1)
def uint8(ctx) -> None:
    run_case(ctx, make_array((1, 1, 4, 4), "uint8", 5), 1, value=255.0)


@suite.property("random shapes, pads and dtypes match np.pad", weight=3,
                strategy=st.tuples(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
                                   st.one_of(st.integers(0, 3), st.tuples(*[st.integers(0, 3)] * 4)),
                                   st.sampled_from(["float64", "float32", "uint8", "int64"]), st.integers(0, 999), st.booleans()))
def random_cases(ctx, case) -> None:
    shape, pad, dtype, seed, noncontiguous = case
    run_case(ctx, make_array(shape, dtype, seed), pad, noncontiguous=noncontiguous)


@suite.check("negative padding raises ValueError", weight=1)
def negative(ctx) -> None:
    ctx.expect_value_error("pad2d", make_array((1, 1, 3, 3), "float64", 6), -1, why="pad=-1")
    ctx.expect_value_error("pad2d", make_array((1, 1, 3, 3), "float64", 6), (1, -1, 0, 0), why="pad=(1, -1, 0, 0)")
