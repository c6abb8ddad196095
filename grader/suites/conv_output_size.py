"""Hidden checks for ``strides.conv_output_size``."""
from __future__ import annotations

from hypothesis import strategies as st

from .base import Fail, StudentRaised, Suite

suite = Suite("conv_output_size")


def formula(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def expect_size(ctx, n: int, k: int, s: int, p: int) -> None:
    expected = formula(n, k, s, p)
    try:
        got = ctx.student("conv_output_size", n, k, stride=s, padding=p)
    except StudentRaised as exc:
        raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) raised {exc}; expected {expected}") from None
    if isinstance(got, bool) or not isinstance(got, int):
        raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) returned {got!r} ({type(got).__name__}); expected the int {expected}")
    if got != expected:
        hint = ""
        if got == expected - 1 or got == expected + 1:
            hint = " (off by one: the formula is (n + 2p - k) // s + 1)"
        elif got == formula(n, k, 1, p):
            hint = " (the stride was ignored)"
        elif got == formula(n, k, s, 0):
            hint = " (the padding was ignored)"
        raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) returned {got}, expected {expected}{hint}")


@suite.check("the seed's sizes: 28 -> 26, 13 -> 11, 5 -> 3", weight=1)
def seed_sizes(ctx) -> None:
    for n in (28, 13, 5):
        expect_size(ctx, n, 3, 1, 0)


@suite.check("stride and padding", weight=1)
def stride_padding(ctx) -> None:
    for n, k, s, p in [(28, 3, 2, 0), (28, 3, 1, 1), (7, 3, 2, 1), (6, 2, 2, 0), (5, 5, 1, 0), (4, 1, 3, 0)]:
        expect_size(ctx, n, k, s, p)


@suite.property("random sizes match (n + 2p - k) // s + 1", weight=2,
                strategy=st.tuples(st.integers(1, 64), st.integers(1, 9), st.integers(1, 5), st.integers(0, 4))
                .filter(lambda t: t[0] + 2 * t[3] >= t[1]))
def random_sizes(ctx, case) -> None:
    expect_size(ctx, *case)


@suite.check("impossible sizes raise ValueError", weight=1)
def impossible(ctx) -> None:
    for n, k, s, p, why in [(2, 3, 1, 0, "kernel larger than the input"), (5, 3, 0, 0, "stride 0"),
                            (5, 3, -1, 0, "negative stride"), (1, 4, 1, 1, "kernel larger than the padded input")]:
        try:
            got = ctx.student("conv_output_size", n, k, stride=s, padding=p)
        except StudentRaised as exc:
            if exc.type_name != "ValueError":
                raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) ({why}) raised {exc.type_name}, expected ValueError") from None
            continue
        raise Fail(f"conv_output_size({n}, {k}, stride={s}, padding={p}) ({why}) returned {got!r}; expected a ValueError")
