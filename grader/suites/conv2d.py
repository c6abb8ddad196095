"""Hidden checks for ``conv.conv2d`` (oracle: ``torch.nn.functional.conv2d``; Keras rules for 'same')."""
from __future__ import annotations

import numpy as np

from . import oracles
from .base import Suite
from .cases import ConvCase, conv_cases, make_array, pair

suite = Suite("conv2d")


def hints_for(case: ConvCase, x: np.ndarray, w: np.ndarray, b):
    """A function naming the likely mistake, given what the student returned."""

    def hint(got: np.ndarray, expected: np.ndarray):
        if got.shape != expected.shape:
            if got.ndim == 4 and got.shape[:2] == expected.shape[:2]:
                sh, sw = pair(case.stride)
                if sh != sw and got.shape[2:] in {(expected.shape[2], oracles.conv2d(x, w, b, (sh, sh), case.padding).shape[3]),
                                                    (oracles.conv2d(x, w, b, (sw, sw), case.padding).shape[2], expected.shape[3])}:
                    return "the stride seems applied with one value on both axes: stride is (sh, sw)"
                if tuple(g - e for g, e in zip(got.shape[2:], expected.shape[2:])) in {(1, 1), (-1, -1)}:
                    return "output size off by one: it is (H + 2p - kh) // sh + 1"
            return None
        flipped = oracles.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, case.stride, case.padding)
        if not np.allclose(flipped, expected) and np.allclose(got, flipped):
            return "your result equals a convolution with a flipped kernel: conv layers cross-correlate (no flip)"
        if b is not None and np.allclose(got, expected - b.reshape(1, -1, 1, 1)):
            return "the bias was not added (one value per output channel)"
        return None

    return hint


def run_case(ctx, case: ConvCase) -> None:
    x, w, b = case.arrays()
    args = (x, w) if b is None else (x, w, b)
    expected = ctx.expected("conv2d", oracles.conv2d, *args[:2], b, stride=case.stride, padding=case.padding)
    sent = (ctx.noncontiguous(x) if case.noncontiguous else x,) + args[1:]
    ctx.compare("conv2d", sent, {"stride": case.stride, "padding": case.padding}, expected, what="conv2d",
                inputs=str(case), hint=hints_for(case, x, w, b))


def case(**kw) -> ConvCase:
    base = dict(n=1, c=1, h=5, w=5, f=1, kh=3, kw=3, stride=1, padding=0, dtype="float64", bias=True, seed=0)
    base.update(kw)
    return ConvCase(**base)


@suite.check("the seed's first layer: 1 -> 32 channels, 3x3, 28x28 -> 26x26", weight=2)
def seed_layer(ctx) -> None:
    run_case(ctx, case(n=2, c=1, h=28, w=28, f=32, seed=1))


@suite.check("several input channels are summed; bias per output channel", weight=2)
def channels(ctx) -> None:
    run_case(ctx, case(n=2, c=3, h=6, w=7, f=4, kh=2, kw=3, seed=2))
    run_case(ctx, case(n=1, c=2, h=4, w=4, f=2, bias=False, seed=3))


@suite.check("strides, including different strides per axis", weight=2)
def strides(ctx) -> None:
    run_case(ctx, case(h=7, w=7, stride=2, seed=4))
    run_case(ctx, case(h=8, w=9, c=2, f=2, stride=(1, 3), seed=5))
    run_case(ctx, case(h=9, w=6, stride=(3, 2), kh=2, kw=2, seed=6))


@suite.check("padding: int, (ph, pw), 'valid', 'same'", weight=2)
def paddings(ctx) -> None:
    run_case(ctx, case(padding=1, seed=7))
    run_case(ctx, case(h=4, w=6, padding=(2, 0), seed=8))
    run_case(ctx, case(padding="valid", seed=9))
    run_case(ctx, case(h=6, w=5, kh=4, kw=2, padding="same", seed=10))


@suite.check("'same' with stride 2 pads as Keras (extra pixel bottom/right)", weight=2)
def same_strided(ctx) -> None:
    run_case(ctx, case(h=6, w=7, stride=2, padding="same", seed=11))
    run_case(ctx, case(h=5, w=8, kh=2, kw=4, stride=(2, 3), padding="same", seed=12))


@suite.check("uint8 images do not overflow; integer input gives float output", weight=1)
def integer_input(ctx) -> None:
    run_case(ctx, case(h=6, w=6, dtype="uint8", seed=13))
    run_case(ctx, case(h=5, w=4, dtype="int64", seed=14))


@suite.check("non-contiguous input (a transposed or sliced view)", weight=1)
def noncontiguous(ctx) -> None:
    run_case(ctx, case(n=2, c=2, h=5, w=6, f=2, seed=15, noncontiguous=True))


@suite.property("random shapes, strides, paddings and dtypes match torch", weight=5, strategy=conv_cases(), max_examples=50)
def random_cases(ctx, c: ConvCase) -> None:
    run_case(ctx, c)


@suite.check("impossible input raises ValueError", weight=2)
def errors(ctx) -> None:
    x = make_array((1, 2, 5, 5), "float64", 16)
    ctx.expect_value_error("conv2d", x, make_array((1, 3, 3, 3), "float64", 17), why="2 input channels but a kernel for 3")
    ctx.expect_value_error("conv2d", x, make_array((1, 2, 6, 6), "float64", 18), why="a 6x6 kernel on a 5x5 input")
    ctx.expect_value_error("conv2d", x, make_array((1, 2, 3, 3), "float64", 19), padding="full", why="padding='full'")
    ctx.expect_value_error("conv2d", x, make_array((1, 2, 3, 3), "float64", 20), stride=0, why="stride=0")
