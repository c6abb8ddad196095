"""Hidden checks for ``padding.same_padding`` (Keras/TensorFlow 'same'), by concept."""
from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import strategies as st

from .base import Suite
from .compare import as_int, type_charged
from .features import ANY
from .outcomes import Fail, StudentRaised
from .diagnosis import diagnose, property_check, with_diagnosis
from .oracles import _keras_same

if TYPE_CHECKING:
    from .context import Context

suite = Suite("same_padding")


def expect(ctx: Context, n: int, k: int, s: int, diagnosed: bool = True) -> None:
    want = _keras_same(n, k, s)
    try:
        got = ctx.student("same_padding", n, k, stride=s)
    except StudentRaised as exc:
        raise Fail(f"same_padding({n}, {k}, stride={s}) raised {exc}; expected {want}") from None
    exact = type(got) is tuple and len(got) == 2 and all(type(v) is int for v in got)
    if not exact and not type_charged() and isinstance(got, (tuple, list)) and len(got) == 2 \
            and tuple(as_int(v) for v in got) == want:
        return  # the right pads as a list or numpy ints: the type is charged by the stride-1 check alone
    if not exact:
        raise Fail(f"same_padding({n}, {k}, stride={s}) returned {got!r}; expected a tuple of two ints {want}")
    if got != want:
        failure = Fail(f"same_padding({n}, {k}, stride={s}): returned {got}, expected {want}", expected=want, got=got)
        raise with_diagnosis(failure, diagnose(ctx, "same_padding", (n, k), {"stride": s}, got, want) if diagnosed else [])


@suite.check("stride 1: odd and even kernels", weight=1, concept="stride_one")
def stride_one(ctx: Context) -> None:
    for n, k in [(28, 3), (28, 5), (5, 4), (6, 2), (1, 1)]:
        expect(ctx, n, k, 1)


@suite.check("stride 2 and 3, as Keras pads them", weight=1, concept="stride", varies=("stride",))
def strided(ctx: Context) -> None:
    for n, k, s in [(28, 3, 2), (27, 3, 2), (7, 3, 3), (5, 1, 2), (4, 4, 2), (9, 2, 3)]:
        expect(ctx, n, k, s)


@suite.varies(*ANY)
@property_check(suite, "combined: random sizes", st.tuples(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4)),
                concept="combined", weight=1)
def random_sizes(ctx: Context, case, diagnosed: bool) -> None:
    expect(ctx, *case, diagnosed=diagnosed)
