"""Hidden checks for ``backprop.conv2d_backward`` (as torch autograd computes it), by concept.

dx and dw are graded in the values, stride and padding concepts; db (the sum of dout) alone in 'db'.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import oracles
from .base import Suite
from .cases import ConvCase, conv_cases, make_array
from .diagnosis import compare, conv_helpers_blame, property_check

if TYPE_CHECKING:
    from .context import Context

suite = Suite("conv2d_backward")


def run_case(ctx: Context, case: ConvCase, items=None, diagnosed: bool = True, mutation: bool = False) -> None:
    x, w, _ = case.arrays()
    out_shape = oracles.conv2d(x, w, None, case.stride, case.padding).shape
    dout = make_array(out_shape, "float64", case.seed + 3)
    kwargs = {"stride": case.stride, "padding": case.padding}
    expected = ctx.expected("conv2d_backward", oracles.conv2d_backward, dout, x, w, **kwargs)
    compare(ctx, "conv2d_backward", (dout, x, w), kwargs, expected, what="conv2d_backward (dx, dw, db)",
            inputs=f"dout shape {dout.shape}, {case}", items=items, diagnosed=diagnosed, mutation=mutation,
            blame=lambda got: conv_helpers_blame(ctx, x, w, case.stride, case.padding))


def case(**kw) -> ConvCase:
    base = dict(n=1, c=1, h=5, w=5, f=1, kh=3, kw=3, stride=1, padding=0, dtype="float64", bias=False, seed=0)
    base.update(kw)
    return ConvCase(**base)


@suite.check("values: dx and dw, stride 1, no padding, several channels", weight=1, concept="values")
def plain(ctx: Context) -> None:
    run_case(ctx, case(n=2, c=2, f=3, h=6, w=5, seed=1), items=(0, 1))


@suite.check("db: the sum of dout over N, H and W", weight=1, concept="db")
def bias_gradient(ctx: Context) -> None:
    run_case(ctx, case(n=2, c=2, f=3, h=6, w=5, seed=4), items=(2,))


@suite.check("stride: dx and dw with strides (sh, sw)", weight=1, concept="stride")
def strided(ctx: Context) -> None:
    run_case(ctx, case(h=7, w=7, stride=2, seed=2), items=(0, 1))
    run_case(ctx, case(h=7, w=8, stride=(2, 3), seed=5), items=(0, 1))


@suite.check("padding: dx and dw with padding (the gradient of the padded border is dropped)", weight=1, concept="padding")
def padded(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, padding=1, seed=6), items=(0, 1))
    run_case(ctx, case(h=6, w=8, stride=(2, 3), padding="same", seed=3), items=(0, 1))


@suite.check("the inputs are not modified", weight=1, concept="no_mutation")
def no_mutation(ctx: Context) -> None:
    run_case(ctx, case(n=2, c=2, f=2, h=6, w=6, padding=1, seed=7), mutation=True)


@property_check(suite, "combined: random cases match torch autograd", conv_cases(dtypes=("float64",)), concept="combined",
                weight=1, max_examples=40)
def random_cases(ctx: Context, c: ConvCase, diagnosed: bool) -> None:
    run_case(ctx, c, diagnosed=diagnosed)
