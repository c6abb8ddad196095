"""Hidden checks for ``backprop.conv2d_backward`` (oracle: torch autograd)."""
from __future__ import annotations

from . import oracles
from .base import Suite
from .cases import ConvCase, conv_cases, make_array

suite = Suite("conv2d_backward")


def run_case(ctx, case: ConvCase) -> None:
    x, w, _ = case.arrays()
    out_shape = oracles.conv2d(x, w, None, case.stride, case.padding).shape
    dout = make_array(out_shape, "float64", case.seed + 3)
    kwargs = {"stride": case.stride, "padding": case.padding}
    expected = ctx.expected("conv2d_backward", oracles.conv2d_backward, dout, x, w, **kwargs)
    ctx.compare("conv2d_backward", (dout, x, w), kwargs, expected, what="conv2d_backward (dx, dw, db)",
                inputs=f"dout shape {dout.shape}, {case}")


def case(**kw) -> ConvCase:
    base = dict(n=1, c=1, h=5, w=5, f=1, kh=3, kw=3, stride=1, padding=0, dtype="float64", bias=False, seed=0)
    base.update(kw)
    return ConvCase(**base)


@suite.check("stride 1, no padding, several channels", weight=2)
def plain(ctx) -> None:
    run_case(ctx, case(n=2, c=2, f=3, h=6, w=5, seed=1))


@suite.check("strides and padding (gradient of the padded border is dropped)", weight=2)
def strided_padded(ctx) -> None:
    run_case(ctx, case(h=7, w=7, stride=2, padding=1, seed=2))
    run_case(ctx, case(h=6, w=8, stride=(2, 3), padding="same", seed=3))


@suite.property("random cases match torch autograd", weight=4, strategy=conv_cases(dtypes=("float64",)), max_examples=40)
def random_cases(ctx, c: ConvCase) -> None:
    run_case(ctx, c)
