"""Hidden checks for ``backprop.maxpool2d_backward`` (oracle: torch autograd, ties included)."""
from __future__ import annotations

from . import oracles
from .base import Suite
from .cases import PoolCase, make_array, pool_cases
from .pooling_checks import pool_case

suite = Suite("maxpool2d_backward")


def run_case(ctx, case: PoolCase) -> None:
    x = case.array()
    kwargs = {} if case.stride is None else {"stride": case.stride}
    dout = make_array(oracles.maxpool2d(x, case.kernel_size, case.stride).shape, "float64", case.seed + 1)
    expected = ctx.expected("maxpool2d_backward", oracles.maxpool2d_backward, dout, x, case.kernel_size, **kwargs)
    ctx.compare("maxpool2d_backward", (dout, x, case.kernel_size), kwargs, expected, what="maxpool2d_backward",
                inputs=f"dout shape {dout.shape}, {case}")


@suite.check("2x2 windows without ties", weight=2)
def plain(ctx) -> None:
    run_case(ctx, pool_case(n=2, c=2, h=6, w=6, seed=1))


@suite.check("ties: the gradient goes to the first maximum of each window, as torch routes it", weight=2)
def ties(ctx) -> None:
    run_case(ctx, pool_case(h=6, w=6, ties=True, seed=2))


@suite.check("overlapping windows accumulate gradient", weight=2)
def overlapping(ctx) -> None:
    run_case(ctx, pool_case(h=7, w=7, kernel_size=3, stride=1, ties=True, seed=3))


@suite.property("random cases match torch autograd", weight=3, strategy=pool_cases(dtypes=("float64",)), max_examples=40)
def random_cases(ctx, case: PoolCase) -> None:
    run_case(ctx, case)
