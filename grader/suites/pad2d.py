"""Hidden checks for ``padding.pad2d`` (oracle: ``np.pad`` on the last two axes), by concept."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from hypothesis import strategies as st

from . import oracles
from .base import Suite
from .cases import make_array, with_small_inputs
from .diagnosis import compare, property_check
from .features import ANY
from .untouched import check_untouched

if TYPE_CHECKING:
    from .context import Context

suite = Suite("pad2d")


def _inputs(x: np.ndarray, pad, value=None) -> str:
    return with_small_inputs(f"x shape {x.shape} {x.dtype}, pad={pad!r}" + ("" if value is None else f", value={value}"), x=x)


def run_case(ctx: Context, x: np.ndarray, pad, value=None, noncontiguous: bool = False, diagnosed: bool = True) -> None:
    kwargs = {} if value is None else {"value": value}
    expected = ctx.expected("pad2d", oracles.pad2d, x, pad, **kwargs)
    sent = ctx.noncontiguous(x) if noncontiguous else x
    compare(ctx, "pad2d", (x, pad), kwargs, expected, what="pad2d", inputs=_inputs(x, pad, value), sent=(sent, pad),
            diagnosed=diagnosed)


@suite.check("values: an int pads all four sides of H and W only (N and C untouched; a 2-D array too)", weight=1,
             concept="values", varies=("batch", "channels", "non_square", "other_ndim"))
def int_pad(ctx: Context) -> None:
    run_case(ctx, make_array((2, 3, 4, 5), "float64", 0), 1)
    run_case(ctx, make_array((1, 1, 3, 3), "float64", 1), 2)
    run_case(ctx, make_array((3, 4), "float64", 2), 1)


@suite.varies("batch", "channels", "non_square")
@property_check(suite, "values: random shapes and int pads match np.pad",
                st.tuples(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
                          st.integers(0, 3), st.integers(0, 999)), concept="values", weight=1, max_examples=30)
def random_int_pads(ctx: Context, case, diagnosed: bool) -> None:
    shape, pad, seed = case
    run_case(ctx, make_array(shape, "float64", seed), pad, diagnosed=diagnosed)


@suite.check("tuple: (top, bottom, left, right), zeros included", weight=1, concept="tuple", varies=("tuple_pad",))
def tuple_pad(ctx: Context) -> None:
    run_case(ctx, make_array((1, 1, 4, 4), "float64", 3), (1, 0, 2, 3))
    run_case(ctx, make_array((1, 1, 2, 2), "float64", 4), (0, 0, 0, 0))
    run_case(ctx, make_array((1, 1, 3, 3), "float64", 5), (0, 2, 1, 0))


@suite.check("value: the border holds `value`", weight=1, concept="value", varies=("fill_value",))
def fill_value(ctx: Context) -> None:
    run_case(ctx, make_array((1, 1, 3, 3), "float64", 6), 1, value=-1.5)


@suite.check("dtypes: uint8 images keep their values and come back as floats; non-contiguous input", weight=1, concept="dtypes",
             varies=("integer_dtype", "noncontiguous"))
def uint8(ctx: Context) -> None:
    run_case(ctx, make_array((1, 1, 4, 4), "uint8", 7), 1)
    run_case(ctx, make_array((1, 1, 4, 4), "float64", 8), 1, noncontiguous=True)


@suite.check("dtypes: a float32 image stays float32", weight=1, concept="dtypes")
def float32_kept(ctx: Context) -> None:
    run_case(ctx, make_array((1, 1, 4, 4), "float32", 11), 1)


@suite.varies(*ANY)
@property_check(suite, "combined: random shapes, pads and dtypes match np.pad",
                st.tuples(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
                          st.one_of(st.integers(0, 3), st.tuples(*[st.integers(0, 3)] * 4)),
                          st.sampled_from(["float64", "float32", "uint8", "int64"]), st.integers(0, 999), st.booleans()),
                concept="combined", weight=1)
def random_cases(ctx: Context, case, diagnosed: bool) -> None:
    shape, pad, dtype, seed, noncontiguous = case
    run_case(ctx, make_array(shape, dtype, seed), pad, noncontiguous=noncontiguous, diagnosed=diagnosed)


@suite.check("errors: negative padding raises ValueError", weight=1, concept="errors", varies=ANY)
def negative(ctx: Context) -> None:
    ctx.expect_value_error("pad2d", make_array((1, 1, 3, 3), "float64", 6), -1, why="pad=-1")
    ctx.expect_value_error("pad2d", make_array((1, 1, 3, 3), "float64", 6), (1, -1, 0, 0), why="pad=(1, -1, 0, 0)")


@suite.check("the input is not modified", weight=1, concept="no_mutation", varies=ANY)
def no_mutation(ctx: Context) -> None:
    calls = [(make_array((2, 3, 4, 5), "float64", 9), 1, None), (make_array((1, 1, 4, 4), "uint8", 10), (1, 0, 2, 1), 255.0)]
    check_untouched(ctx, "pad2d", [((x, pad), {} if value is None else {"value": value}, _inputs(x, pad, value))
                                   for x, pad, value in calls], what="pad2d")
