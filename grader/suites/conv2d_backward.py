"""Hidden checks for ``backprop.conv2d_backward`` (as torch autograd computes it), by concept.

dx and dw are graded in the values, stride and padding concepts; db (the sum of dout) alone in 'db'.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import oracles
from .base import Suite
from .cases import ConvCase, conv_cases, make_array, with_small_inputs
from .diagnosis import compare, property_check
from .features import ANY
from .untouched import check_untouched

if TYPE_CHECKING:
    from .context import Context

suite = Suite("conv2d_backward")


def _call(case: ConvCase) -> tuple[tuple, dict, str]:
    """The arguments (dout, x, w), keyword arguments and case line of ``case``."""
    x, w, _ = case.arrays()
    dout = make_array(oracles.conv2d(x, w, None, case.stride, case.padding).shape, "float64", case.seed + 3)
    return ((dout, x, w), {"stride": case.stride, "padding": case.padding},
            with_small_inputs(f"dout shape {dout.shape}, {case}", dout=dout, x=x, w=w))


def run_case(ctx: Context, case: ConvCase, items=None, diagnosed: bool = True) -> None:
    (dout, x, w), kwargs, inputs = _call(case)
    expected = ctx.expected("conv2d_backward", oracles.conv2d_backward, dout, x, w, **kwargs)
    compare(ctx, "conv2d_backward", (dout, x, w), kwargs, expected, what="conv2d_backward (dx, dw, db)",
            inputs=inputs, items=items, diagnosed=diagnosed)


def case(**kw) -> ConvCase:
    base = dict(n=1, c=1, h=5, w=5, f=1, kh=3, kw=3, stride=1, padding=0, dtype="float64", bias=False, seed=0)
    base.update(kw)
    return ConvCase(**base)


@suite.check("values: dx and dw, stride 1, no padding; one channel, then a batch of 2 with 2 -> 3 channels", weight=1,
             concept="values", varies=("batch", "channels"))
def plain(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, seed=8), items=(0, 1))
    run_case(ctx, case(n=2, c=2, f=3, h=6, w=6, seed=1), items=(0, 1))


@suite.check("db: the sum of dout over N, H and W (a batch of 2, 3 filters)", weight=1, concept="db", varies=("batch",))
def bias_gradient(ctx: Context) -> None:
    run_case(ctx, case(n=2, f=3, h=6, w=6, seed=4), items=(2,))


@suite.check("stride: dx and dw with strides 2 and (2, 3)", weight=1, concept="stride", varies=("stride",))
def strided(ctx: Context) -> None:
    run_case(ctx, case(h=7, w=7, stride=2, seed=2), items=(0, 1))
    run_case(ctx, case(h=8, w=8, stride=(2, 3), seed=5), items=(0, 1))


@suite.check("padding: dx and dw with padding 1 and 'same' (the gradient of the padded border is dropped)", weight=1,
             concept="padding", varies=("padding",))
def padded(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, padding=1, seed=6), items=(0, 1))
    run_case(ctx, case(h=6, w=6, kh=4, kw=4, padding="same", seed=3), items=(0, 1))


@suite.varies(*ANY)
@property_check(suite, "combined: random cases match torch autograd", conv_cases(dtypes=("float64",)), concept="combined",
                weight=1, max_examples=40)
def random_cases(ctx: Context, c: ConvCase, diagnosed: bool) -> None:
    run_case(ctx, c, diagnosed=diagnosed)


@suite.check("the inputs are not modified", weight=1, concept="no_mutation",
             varies=ANY)
def no_mutation(ctx: Context) -> None:
    check_untouched(ctx, "conv2d_backward", [_call(case(n=2, c=2, f=2, h=6, w=6, padding=1, seed=7))], what="conv2d_backward")
