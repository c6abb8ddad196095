"""Hidden checks for ``backprop.maxpool2d_backward`` (as torch autograd computes it, ties included), by concept."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import oracles
from .base import Suite
from .cases import PoolCase, make_array, pool_cases, with_small_inputs
from .diagnosis import compare, property_check
from .features import ANY
from .pooling_checks import pool_case
from .untouched import check_untouched

if TYPE_CHECKING:
    from .context import Context

suite = Suite("maxpool2d_backward")


def _call(case: PoolCase) -> tuple[tuple, dict, str]:
    """The arguments, keyword arguments and case line of ``case``."""
    x = case.array()
    kwargs = {} if case.stride is None else {"stride": case.stride}
    dout = make_array(oracles.maxpool2d(x, case.kernel_size, case.stride).shape, "float64", case.seed + 1)
    return (dout, x, case.kernel_size), kwargs, with_small_inputs(f"dout shape {dout.shape}, {case}", dout=dout, x=x)


def run_case(ctx: Context, case: PoolCase, diagnosed: bool = True) -> None:
    args, kwargs, inputs = _call(case)
    expected = ctx.expected("maxpool2d_backward", oracles.maxpool2d_backward, *args, **kwargs)
    compare(ctx, "maxpool2d_backward", args, kwargs, expected, what="maxpool2d_backward", inputs=inputs, diagnosed=diagnosed)


@suite.check("values: 2x2 windows without ties or overlap, a batch of 2 with 2 channels", weight=1, concept="values",
             varies=("batch", "channels"))
def plain(ctx: Context) -> None:
    run_case(ctx, pool_case(n=2, c=2, h=6, w=6, seed=1))


@suite.check("ties: the gradient goes to the first maximum of each window, as torch routes it", weight=1, concept="ties",
             varies=("ties",))
def ties(ctx: Context) -> None:
    run_case(ctx, pool_case(h=6, w=6, ties=True, seed=2))


@suite.check("overlap: overlapping windows (stride 1) accumulate gradient (no ties)", weight=1, concept="overlap",
             varies=("overlap", "stride"))
def overlapping(ctx: Context) -> None:
    run_case(ctx, pool_case(h=7, w=7, kernel_size=3, stride=1, seed=3))
    run_case(ctx, pool_case(h=6, w=6, kernel_size=2, stride=1, seed=4))


@suite.varies(*ANY)
@property_check(suite, "combined: random cases (ties and overlaps included) match torch autograd",
                pool_cases(dtypes=("float64",)), concept="combined", weight=1, max_examples=40)
def random_cases(ctx: Context, case: PoolCase, diagnosed: bool) -> None:
    run_case(ctx, case, diagnosed)


@suite.check("the inputs are not modified", weight=1, concept="no_mutation",
             varies=ANY)
def no_mutation(ctx: Context) -> None:
    check_untouched(ctx, "maxpool2d_backward", [_call(pool_case(n=2, c=2, h=6, w=6, seed=5))], what="maxpool2d_backward")
