"""Hidden checks for ``conv.conv2d`` (as ``torch.nn.functional.conv2d`` computes it; Keras rules for 'same').

Checks are grouped by concept (course.yml ``concepts``): each concept's cases switch on that feature
alone (no bias outside 'bias', one channel outside 'channels', stride 1 outside 'stride', ...), so
one mistake costs one concept's points; 'combined' mixes everything.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from hypothesis import strategies as st

from . import oracles
from .base import Suite
from .outcomes import Fail, StudentRaised
from .cases import ConvCase, conv_cases, make_array, with_small_inputs
from .compare import as_plain_array
from .diagnosis import compare, diagnose, property_check, with_diagnosis
from .features import ANY
from .untouched import check_untouched

if TYPE_CHECKING:
    from .context import Context

suite = Suite("conv2d")


def _args(ctx: Context, case: ConvCase):
    x, w, b = case.arrays()
    kwargs = {"stride": case.stride, "padding": case.padding}
    expected = ctx.expected("conv2d", oracles.conv2d, x, w, b, **kwargs)
    return x, w, b, kwargs, expected


def run_case(ctx: Context, case: ConvCase, diagnosed: bool = True) -> None:
    x, w, b, kwargs, expected = _args(ctx, case)
    args = (x, w) if b is None else (x, w, b)
    sent = (ctx.noncontiguous(x) if case.noncontiguous else x,) + args[1:]
    compare(ctx, "conv2d", args, kwargs, expected, what="conv2d", inputs=with_small_inputs(str(case), x=x, w=w, b=b), sent=sent,
            diagnosed=diagnosed)


def case(**kw) -> ConvCase:
    base = dict(n=1, c=1, h=5, w=5, f=1, kh=3, kw=3, stride=1, padding=0, dtype="float64", bias=False, seed=0)
    base.update(kw)
    return ConvCase(**base)


def one_feature_cases(square: bool = False, **fixed) -> st.SearchStrategy[ConvCase]:
    """Random sizes and seeds with the other features fixed (e.g. ``c=1, bias=False, stride=1, padding=0``);
    ``square``: one image of square size and a square kernel, so that only the ``fixed`` feature varies."""

    @st.composite
    def build(draw) -> ConvCase:
        kh = draw(st.integers(1, 4))
        kw = kh if square else draw(st.integers(1, 4))
        h = draw(st.integers(kh, 8))
        values = dict(n=1 if square else draw(st.integers(1, 2)), c=1, h=h, w=h if square else draw(st.integers(kw, 8)),
                      f=draw(st.integers(1, 3)), kh=kh, kw=kw, stride=1, padding=0,
                      dtype=draw(st.sampled_from(["float64", "float32"])), bias=False, seed=draw(st.integers(0, 2**16)))
        values.update({k: (draw(v) if isinstance(v, st.SearchStrategy) else v) for k, v in fixed.items()})
        return ConvCase(**values)

    return build()


# -- shape ------------------------------------------------------------------------------------
@suite.check("output shape (N, F, H - kh + 1, W - kw + 1)", weight=1, concept="shape",
             varies=("batch", "channels", "non_square", "rectangular_kernel"))
def shapes(ctx: Context) -> None:
    for c in (case(n=2, h=28, w=28, f=32, seed=1), case(n=2, c=3, h=6, w=7, f=4, kh=2, kw=3, seed=2)):
        x, w, b, kwargs, expected = _args(ctx, c)
        try:
            got = ctx.student("conv2d", x, w, **kwargs)
        except StudentRaised as exc:
            raise Fail(f"conv2d raised {exc.type_name}: {exc.message}\ncase: {c}", inputs=str(c)) from None
        array = got if type(got) is np.ndarray else as_plain_array(got)  # a list is graded on its shape here
        if array is None or array.shape != expected.shape:
            shape = array.shape if array is not None else type(got).__name__
            failure = Fail(f"conv2d: output shape {shape}, expected {expected.shape} = (N, F, H - kh + 1, W - kw + 1)\ncase: {c}",
                           expected=expected, got=got, inputs=str(c))
            raise with_diagnosis(failure, diagnose(ctx, "conv2d", (x, w), kwargs, got, expected))  # blame: helpers it called


# -- values: one channel, no bias, stride 1, no padding ----------------------------------------
@suite.check("values: the seed's first layer, 1 -> 32 channels, 3x3, 28x28 -> 26x26, on a batch of 2", weight=1,
             concept="values", varies=("batch",))
def seed_layer(ctx: Context) -> None:
    run_case(ctx, case(n=2, h=28, w=28, f=32, seed=1))


@suite.check("values: a non-square image and kernel, 5x6 with 2x3 -> 4x4", weight=1, concept="values",
             varies=("non_square", "rectangular_kernel"))
def non_square(ctx: Context) -> None:
    run_case(ctx, case(h=5, w=6, kh=2, kw=3, seed=3))


@suite.varies("batch", "non_square", "rectangular_kernel")
@property_check(suite, "values: random sizes, one channel, no bias, stride 1, no padding", one_feature_cases(),
                concept="values", weight=2, max_examples=30)
def random_values(ctx: Context, c: ConvCase, diagnosed: bool) -> None:
    run_case(ctx, c, diagnosed)


# -- channels ----------------------------------------------------------------------------------
@suite.check("channels: several input channels are summed", weight=2, concept="channels", varies=("channels",))
def channels(ctx: Context) -> None:
    run_case(ctx, case(c=3, h=6, w=6, f=4, seed=4))
    run_case(ctx, case(c=2, h=4, w=4, f=2, kh=2, kw=2, seed=5))


@suite.varies("channels")
@property_check(suite, "channels: random channel counts (square sizes, one image)",
                one_feature_cases(square=True, c=st.integers(2, 4)),
                concept="channels", weight=1, max_examples=25)
def random_channels(ctx: Context, c: ConvCase, diagnosed: bool) -> None:
    run_case(ctx, c, diagnosed)


# -- bias --------------------------------------------------------------------------------------
@suite.check("bias: one value added per output channel", weight=1, concept="bias", varies=("bias",))
def bias(ctx: Context) -> None:
    run_case(ctx, case(f=3, bias=True, seed=6))
    run_case(ctx, case(h=28, w=28, f=32, bias=True, seed=7))


# -- stride ------------------------------------------------------------------------------------
@suite.check("stride: one int for both axes", weight=1, concept="stride", varies=("stride",))
def stride_int(ctx: Context) -> None:
    run_case(ctx, case(h=7, w=7, stride=2, seed=8))
    run_case(ctx, case(h=8, w=8, kh=2, kw=2, stride=3, seed=9))


@suite.check("stride: (sh, sw), a different stride per axis", weight=1, concept="stride", varies=("stride",))
def stride_per_axis(ctx: Context) -> None:
    run_case(ctx, case(h=9, w=9, stride=(2, 3), seed=10))
    run_case(ctx, case(h=8, w=8, kh=2, kw=2, stride=(3, 2), seed=11))


# -- padding -----------------------------------------------------------------------------------
@suite.check("padding: an int, (ph, pw) and 'valid'", weight=1, concept="padding", varies=("padding",))
def paddings(ctx: Context) -> None:
    run_case(ctx, case(padding=1, seed=12))
    run_case(ctx, case(h=5, w=5, padding=(2, 1), seed=13))
    run_case(ctx, case(padding="valid", seed=14))


@suite.check("padding: 'same', stride 1 (odd and even kernels)", weight=1, concept="padding", varies=("padding",))
def same(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, padding="same", seed=15))
    run_case(ctx, case(h=6, w=6, kh=4, kw=4, padding="same", seed=16))
    run_case(ctx, case(h=5, w=5, kh=2, kw=2, padding="same", seed=25))


@suite.check("padding: 'same' with strides 2 and (2, 3) pads as Keras (extra pixel bottom/right)", weight=1,
             concept="padding", varies=("padding", "stride"))
def same_strided(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, stride=2, padding="same", seed=17))
    run_case(ctx, case(h=7, w=7, kh=2, kw=2, stride=(2, 3), padding="same", seed=18))


# -- dtypes and memory layouts -----------------------------------------------------------------
@suite.check("dtypes: uint8 and int64 images give float output, without overflow", weight=1, concept="dtypes",
             varies=("integer_dtype",))
def integer_input(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, dtype="uint8", seed=19))
    run_case(ctx, case(h=5, w=5, dtype="int64", seed=20))


@suite.check("dtypes: non-contiguous input (a sliced view)", weight=1, concept="dtypes", varies=("noncontiguous",))
def noncontiguous(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, f=2, seed=21, noncontiguous=True))


@suite.check("dtypes: float32 input and kernel give float32 output", weight=1, concept="dtypes")
def float32_kept(ctx: Context) -> None:
    run_case(ctx, case(h=6, w=6, dtype="float32", seed=25))


# -- everything at once ------------------------------------------------------------------------
@suite.varies(*ANY)
@property_check(suite, "combined: random shapes, channels, bias, strides, paddings and dtypes match torch", conv_cases(),
                concept="combined", weight=1, max_examples=50)
def random_cases(ctx: Context, c: ConvCase, diagnosed: bool) -> None:
    run_case(ctx, c, diagnosed)


@suite.check("errors: impossible input raises ValueError", weight=1, concept="errors", varies=ANY)
def errors(ctx: Context) -> None:
    x = make_array((1, 2, 5, 5), "float64", 16)
    ctx.expect_value_error("conv2d", x, make_array((1, 3, 3, 3), "float64", 17), why="2 input channels but a kernel for 3")
    ctx.expect_value_error("conv2d", x, make_array((1, 2, 6, 6), "float64", 18), why="a 6x6 kernel on a 5x5 input")
    ctx.expect_value_error("conv2d", x, make_array((1, 2, 3, 3), "float64", 19), padding="full", why="padding='full'")
    ctx.expect_value_error("conv2d", x, make_array((1, 2, 3, 3), "float64", 20), stride=0, why="stride=0")


# -- inputs untouched (last: credited once another concept is earned) ----------------------------
@suite.check("the input arrays are not modified", weight=1, concept="no_mutation",
             varies=ANY)
def no_mutation(ctx: Context) -> None:
    calls = []
    for c in (case(n=2, c=2, h=6, w=6, f=2, bias=True, seed=22), case(h=5, w=5, padding=1, dtype="uint8", seed=23),
              case(h=6, w=6, padding="same", stride=2, seed=24)):
        x, w, b = c.arrays()
        calls.append(((x, w) if b is None else (x, w, b), {"stride": c.stride, "padding": c.padding}, str(c)))
    check_untouched(ctx, "conv2d", calls, what="conv2d")
