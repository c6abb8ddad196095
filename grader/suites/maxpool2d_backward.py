"""Hidden checks for ``backprop.maxpool2d_backward`` (as torch autograd computes it, ties included), by concept."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import oracles
from .base import Suite
from .cases import PoolCase, make_array, pool_cases
from .diagnosis import compare, property_check
from .pooling_checks import pool_case

if TYPE_CHECKING:
    from .context import Context

suite = Suite("maxpool2d_backward")


def run_case(ctx: Context, case: PoolCase, diagnosed: bool = True, mutation: bool = False) -> None:
    x = case.array()
    kwargs = {} if case.stride is None else {"stride": case.stride}
    dout = make_array(oracles.maxpool2d(x, case.kernel_size, case.stride).shape, "float64", case.seed + 1)
    expected = ctx.expected("maxpool2d_backward", oracles.maxpool2d_backward, dout, x, case.kernel_size, **kwargs)
    compare(ctx, "maxpool2d_backward", (dout, x, case.kernel_size), kwargs, expected, what="maxpool2d_backward",
            inputs=f"dout shape {dout.shape}, {case}", diagnosed=diagnosed, mutation=mutation)


@suite.check("values: 2x2 windows without ties or overlap", weight=1, concept="values")
def plain(ctx: Context) -> None:
    run_case(ctx, pool_case(n=2, c=2, h=6, w=6, seed=1))


@suite.check("ties: the gradient goes to the first maximum of each window, as torch routes it", weight=1, concept="ties")
def ties(ctx: Context) -> None:
    run_case(ctx, pool_case(h=6, w=6, ties=True, seed=2))


@suite.check("overlap: overlapping windows accumulate gradient (no ties)", weight=1, concept="overlap")
def overlapping(ctx: Context) -> None:
    run_case(ctx, pool_case(h=7, w=7, kernel_size=3, stride=1, seed=3))
    run_case(ctx, pool_case(n=2, h=6, w=7, kernel_size=(3, 2), stride=(1, 1), seed=4))


@suite.check("the inputs are not modified", weight=1, concept="no_mutation")
def no_mutation(ctx: Context) -> None:
    run_case(ctx, pool_case(n=2, c=2, h=6, w=6, seed=5), mutation=True)


@property_check(suite, "combined: random cases (ties and overlaps included) match torch autograd",
                pool_cases(dtypes=("float64",)), concept="combined", weight=1, max_examples=40)
def random_cases(ctx: Context, case: PoolCase, diagnosed: bool) -> None:
    run_case(ctx, case, diagnosed)
