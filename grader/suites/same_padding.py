"""Hidden checks for ``padding.same_padding`` (Keras/TensorFlow 'same')."""
from __future__ import annotations

from hypothesis import strategies as st

from .base import Fail, StudentRaised, Suite
from .oracles import _keras_same

suite = Suite("same_padding")


def expect(ctx, n: int, k: int, s: int) -> None:
    want = _keras_same(n, k, s)
    try:
        got = ctx.student("same_padding", n, k, stride=s)
    except StudentRaised as exc:
        raise Fail(f"same_padding({n}, {k}, stride={s}) raised {exc}; expected {want}") from None
    if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in got):
        raise Fail(f"same_padding({n}, {k}, stride={s}) returned {got!r}; expected a tuple of two ints {want}")
    if got != want:
        hint = ""
        if got == want[::-1]:
            hint = " (the extra pixel goes after: bottom/right, as TensorFlow does)"
        elif sum(got) == (k - 1) and s > 1:
            hint = " (with stride > 1 the output is ceil(n / s), so the total padding is max((out - 1) * s + k - n, 0))"
        raise Fail(f"same_padding({n}, {k}, stride={s}) returned {got}, expected {want}{hint}")


@suite.check("stride 1: odd and even kernels", weight=1)
def stride_one(ctx) -> None:
    for n, k in [(28, 3), (28, 5), (5, 4), (6, 2), (1, 1)]:
        expect(ctx, n, k, 1)


@suite.check("stride 2 and 3, as Keras pads them", weight=2)
def strided(ctx) -> None:
    for n, k, s in [(28, 3, 2), (27, 3, 2), (7, 3, 3), (5, 1, 2), (4, 4, 2)]:
        expect(ctx, n, k, s)


@suite.property("random sizes", weight=2, strategy=st.tuples(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4)))
def random_sizes(ctx, case) -> None:
    expect(ctx, *case)
