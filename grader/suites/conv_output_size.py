"""Hidden checks for ``strides.conv_output_size``, by concept."""
from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import strategies as st

from .base import Suite
from .compare import as_int, type_charged
from .features import ANY
from .outcomes import Fail, StudentRaised
from .diagnosis import diagnose, property_check, with_diagnosis

if TYPE_CHECKING:
    from .context import Context

suite = Suite("conv_output_size")


def formula(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def expect_size(ctx: Context, n: int, k: int, s: int, p: int, diagnosed: bool = True) -> None:
    expected = formula(n, k, s, p)
    call = f"conv_output_size({n}, {k}, stride={s}, padding={p})"
    try:
        got = ctx.student("conv_output_size", n, k, stride=s, padding=p)
    except StudentRaised as exc:
        raise Fail(f"{call} raised {exc}; expected {expected}") from None
    if type(got) is int and got == expected:
        return
    if type(got) is not int and as_int(got) == expected and not type_charged():
        return  # the right size as a numpy int or 26.0: the type is charged by the seed's sizes alone
    if type(got) is not int or got != expected:
        kind = "" if type(got) is int else f" ({type(got).__name__}; expected the int {expected})"
        failure = Fail(f"{call}: returned {got!r}{kind}, expected {expected}", expected=expected, got=got)
        found = diagnose(ctx, "conv_output_size", (n, k), {"stride": s, "padding": p}, got, expected) if diagnosed else []
        raise with_diagnosis(failure, found)


@suite.check("the seed's sizes: 28 -> 26, 13 -> 11, 5 -> 3 (stride 1, no padding)", weight=1, concept="no_stride_padding")
def seed_sizes(ctx: Context) -> None:
    for n in (28, 13, 5):
        expect_size(ctx, n, 3, 1, 0)


@suite.check("stride (no padding)", weight=1, concept="stride", varies=("stride",))
def stride(ctx: Context) -> None:
    for n, k, s in [(28, 3, 2), (6, 2, 2), (4, 1, 3), (26, 2, 2), (11, 2, 2)]:
        expect_size(ctx, n, k, s, 0)


@suite.check("padding (stride 1)", weight=1, concept="padding", varies=("padding",))
def padding(ctx: Context) -> None:
    for n, k, p in [(28, 3, 1), (5, 5, 2), (1, 3, 1)]:
        expect_size(ctx, n, k, 1, p)


@suite.varies(*ANY)
@property_check(suite, "combined: random sizes match (n + 2p - k) // s + 1",
                st.tuples(st.integers(1, 64), st.integers(1, 9), st.integers(1, 5), st.integers(0, 4))
                .filter(lambda t: t[0] + 2 * t[3] >= t[1]), concept="combined", weight=1)
def random_sizes(ctx: Context, case, diagnosed: bool) -> None:
    expect_size(ctx, *case, diagnosed=diagnosed)


@suite.check("errors: impossible sizes raise ValueError", weight=1, concept="errors", varies=ANY)
def impossible(ctx: Context) -> None:
    for n, k, s, p, why in [(2, 3, 1, 0, "kernel larger than the input"), (5, 3, 0, 0, "stride 0"),
                            (5, 3, -1, 0, "negative stride"), (1, 4, 1, 1, "kernel larger than the padded input")]:
        try:
            got = ctx.student("conv_output_size", n, k, stride=s, padding=p)
        except StudentRaised as exc:
            if exc.type_name != "ValueError":
                raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) ({why}) raised {exc.type_name}, expected ValueError") from None
            continue
        raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) ({why}) returned {got!r}; expected a ValueError")
