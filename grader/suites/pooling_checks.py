"""Checks shared by the max- and average-pooling suites (as torch's pooling computes it), grouped by concept.

Each concept's cases switch on that feature alone: the 'values' cases tile the input exactly
(no floor), the 'floor' cases use the default stride, the 'stride' cases avoid leftover rows...
"""
from __future__ import annotations

from typing import Callable, TYPE_CHECKING

from .base import Suite
from .cases import PoolCase, make_array, pool_cases, with_small_inputs
from .diagnosis import compare, property_check
from .features import ANY
from .untouched import check_untouched

if TYPE_CHECKING:
    from .context import Context


def pool_case(**kw) -> PoolCase:
    base = dict(n=1, c=1, h=4, w=4, kernel_size=2, stride=None, dtype="float64", seed=0)
    base.update(kw)
    return PoolCase(**base)


def add_pooling_checks(suite: Suite, function: str, oracle: Callable) -> None:
    """Register the fixed, property and error checks of ``function`` on ``suite``."""

    def run_case(ctx: Context, case: PoolCase, diagnosed: bool = True) -> None:
        x = case.array()
        kwargs = {} if case.stride is None else {"stride": case.stride}
        expected = ctx.expected(function, oracle, x, case.kernel_size, **kwargs)
        sent = ctx.noncontiguous(x) if case.noncontiguous else x
        compare(ctx, function, (x, case.kernel_size), kwargs, expected, what=function, inputs=with_small_inputs(str(case), x=x),
                sent=(sent, case.kernel_size), diagnosed=diagnosed)

    @suite.check("values: the seed's 2x2 windows (26 -> 13, a batch of 2) and 3x3 (6 -> 2); channels pooled separately",
                 weight=1, concept="values", varies=("batch", "channels"))
    def seed_sizes(ctx: Context) -> None:
        run_case(ctx, pool_case(n=2, c=3, h=26, w=26, seed=1))
        run_case(ctx, pool_case(n=1, c=2, h=6, w=6, kernel_size=3, seed=2))

    @suite.check("floor: leftover rows and columns are dropped, 11 -> 5 and 7 -> 2", weight=1, concept="floor",
                 varies=("floor",))
    def floor(ctx: Context) -> None:
        run_case(ctx, pool_case(h=11, w=11, seed=3))
        run_case(ctx, pool_case(h=7, w=7, kernel_size=3, seed=4))

    @suite.check("rectangular kernels (kh, kw)", weight=1, concept="rectangular", varies=("rectangular_kernel",))
    def rectangular(ctx: Context) -> None:
        run_case(ctx, pool_case(h=6, w=6, kernel_size=(2, 3), seed=5))
        run_case(ctx, pool_case(h=6, w=6, kernel_size=(3, 1), seed=6))

    @suite.check("stride: explicit and overlapping strides", weight=1, concept="stride", varies=("stride", "overlap"))
    def strides(ctx: Context) -> None:
        run_case(ctx, pool_case(h=7, w=7, kernel_size=3, stride=2, seed=7))
        run_case(ctx, pool_case(h=6, w=6, kernel_size=2, stride=1, seed=8))

    @suite.check("stride: (sh, sw), a different stride per axis", weight=1, concept="stride", varies=("stride",))
    def stride_per_axis(ctx: Context) -> None:
        run_case(ctx, pool_case(h=8, w=8, kernel_size=2, stride=(2, 3), seed=9))
        run_case(ctx, pool_case(h=15, w=15, kernel_size=3, stride=(3, 4), seed=10))

    @suite.check("dtypes: integer images give float output; non-contiguous input", weight=1, concept="dtypes",
                 varies=("integer_dtype", "noncontiguous"))
    def integers(ctx: Context) -> None:
        run_case(ctx, pool_case(h=6, w=6, dtype="uint8", seed=11))
        run_case(ctx, pool_case(h=4, w=4, dtype="int64", seed=12))
        run_case(ctx, pool_case(h=6, w=6, seed=13, noncontiguous=True))

    @suite.varies(*ANY)
    @property_check(suite, "random shapes, kernels and strides match torch", pool_cases(), concept="combined",
                    weight=1, max_examples=50)
    def random_cases(ctx: Context, case: PoolCase, diagnosed: bool) -> None:
        run_case(ctx, case, diagnosed)

    @suite.check("errors: impossible input raises ValueError", weight=1, concept="errors", varies=ANY)
    def errors(ctx: Context) -> None:
        x = make_array((1, 1, 3, 3), "float64", 7)
        ctx.expect_value_error(function, x, 4, why="a 4x4 window on a 3x3 input")
        ctx.expect_value_error(function, x, 2, stride=0, why="stride=0")

    @suite.check("the input is not modified", weight=1, concept="no_mutation",
                 varies=ANY)
    def no_mutation(ctx: Context) -> None:
        cases = (pool_case(n=2, c=2, h=6, w=6, seed=14), pool_case(h=7, w=7, kernel_size=3, stride=2, dtype="uint8", seed=15))
        check_untouched(ctx, function, [((c.array(), c.kernel_size), {} if c.stride is None else {"stride": c.stride}, str(c))
                                        for c in cases], what=function)
