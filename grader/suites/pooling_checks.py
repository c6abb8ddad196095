"""Checks shared by the max- and average-pooling suites (oracle: torch's pooling)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Suite
from .cases import PoolCase, make_array, pair, pool_cases


def pool_case(**kw) -> PoolCase:
    base = dict(n=1, c=1, h=4, w=4, kernel_size=2, stride=None, dtype="float64", seed=0)
    base.update(kw)
    return PoolCase(**base)


def add_pooling_checks(suite: Suite, function: str, oracle: Callable) -> None:
    """Register the fixed, property and error checks of ``function`` on ``suite``."""

    def run_case(ctx, case: PoolCase) -> None:
        x = case.array()
        kwargs = {} if case.stride is None else {"stride": case.stride}
        expected = ctx.expected(function, oracle, x, case.kernel_size, **kwargs)
        kh, kw = pair(case.kernel_size)

        def hint(got: np.ndarray, want: np.ndarray):
            if case.stride is None and got.shape[2:] == (x.shape[2] - kh + 1, x.shape[3] - kw + 1):
                return "windows overlap: by default the stride equals the kernel size"
            if got.shape[2:] == (-(-x.shape[2] // pair(case.stride or case.kernel_size)[0]), -(-x.shape[3] // pair(case.stride or case.kernel_size)[1])):
                return "partial windows at the border are dropped (floor mode): out = (H - k) // s + 1"
            return None

        sent = ctx.noncontiguous(x) if case.noncontiguous else x
        ctx.compare(function, (sent, case.kernel_size), kwargs, expected, what=function, inputs=str(case), hint=hint)

    @suite.check("the seed's 2x2 pooling: 26 -> 13 and 11 -> 5 (floor)", weight=2)
    def seed_sizes(ctx) -> None:
        run_case(ctx, pool_case(n=2, c=3, h=26, w=26, seed=1))
        run_case(ctx, pool_case(n=1, c=2, h=11, w=11, seed=2))

    @suite.check("rectangular kernels, explicit and overlapping strides", weight=2)
    def shapes(ctx) -> None:
        run_case(ctx, pool_case(h=6, w=6, kernel_size=(2, 3), seed=3))
        run_case(ctx, pool_case(h=7, w=7, kernel_size=3, stride=2, seed=4))
        run_case(ctx, pool_case(h=5, w=8, kernel_size=2, stride=(1, 3), seed=5))

    @suite.check("integer images give float output", weight=1)
    def integers(ctx) -> None:
        run_case(ctx, pool_case(h=6, w=4, dtype="uint8", seed=6))

    @suite.property("random shapes, kernels and strides match torch", weight=4, strategy=pool_cases(), max_examples=50)
    def random_cases(ctx, case: PoolCase) -> None:
        run_case(ctx, case)

    @suite.check("impossible input raises ValueError", weight=1)
    def errors(ctx) -> None:
        x = make_array((1, 1, 3, 3), "float64", 7)
        ctx.expect_value_error(function, x, 4, why="a 4x4 window on a 3x3 input")
        ctx.expect_value_error(function, x, 2, stride=0, why="stride=0")
