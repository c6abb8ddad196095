"""Hypothesis strategies for the hidden suites' random cases.

Values are not drawn element by element: a case holds shapes, options and an integer seed, and
:func:`make_array` turns the seed into data. Shrinking then shrinks shapes and the seed, so a
counterexample comes out small and readable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
from hypothesis import strategies as st

DTYPES = ("float64", "float32", "uint8", "int64")
Padding = Union[int, tuple[int, int], str]


def make_array(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Deterministic test data of a dtype: normals for floats, the full uint8 range for uint8."""
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if dtype == "int64":
        return rng.integers(-9, 10, size=shape).astype(np.int64)
    return rng.standard_normal(shape).astype(dtype)


#: A vertical-edge (Sobel) kernel: on a digit its output is a picture a student can read.
SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def digit_seven(size: int = 28) -> np.ndarray:
    """A handwritten-looking 7 on a ``size`` x ``size`` uint8 canvas, as MNIST draws digits (white on black).

    Drawn here, not read from MNIST, so that a feedback picture is meaningful with no data set at hand.
    """
    canvas = np.zeros((size, size), dtype=np.float64)
    rows, cols = np.mgrid[0:size, 0:size] / (size - 1)
    bar = (np.abs(rows - 0.25) < 0.05) & (cols > 0.25) & (cols < 0.75)       # the top stroke
    stem = np.abs(cols - (0.75 - 0.45 * (rows - 0.25) / 0.55)) < 0.06        # the diagonal stroke
    canvas[bar | (stem & (rows > 0.22) & (rows < 0.82))] = 255.0
    return canvas.astype(np.uint8)


def pair(value: Union[int, tuple[int, int]]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class ConvCase:
    n: int
    c: int
    h: int
    w: int
    f: int
    kh: int
    kw: int
    stride: Union[int, tuple[int, int]]
    padding: Padding
    dtype: str
    bias: bool
    seed: int
    noncontiguous: bool = False

    def arrays(self) -> tuple[np.ndarray, np.ndarray, Any]:
        x = make_array((self.n, self.c, self.h, self.w), self.dtype, self.seed)
        w = make_array((self.f, self.c, self.kh, self.kw), "float64" if self.dtype in ("uint8", "int64") else self.dtype, self.seed + 1)
        b = make_array((self.f,), "float64", self.seed + 2) if self.bias else None
        return x, w, b

    def __str__(self) -> str:
        return (f"x shape {(self.n, self.c, self.h, self.w)} {self.dtype}, w shape {(self.f, self.c, self.kh, self.kw)}, "
                f"bias={'yes' if self.bias else 'None'}, stride={self.stride!r}, padding={self.padding!r}"
                + (", x non-contiguous" if self.noncontiguous else ""))


def padded_size(n: int, k: int, stride: int, padding: Padding, axis: int) -> int:
    """Size of one spatial axis after padding (Keras rules for 'same')."""
    if padding == "valid":
        return n
    if padding == "same":
        out = -(-n // stride)
        return n + max((out - 1) * stride + k - n, 0)
    return n + 2 * pair(padding)[axis]


def conv_cases(dtypes: tuple[str, ...] = DTYPES, same_strided: bool = True, max_hw: int = 9) -> st.SearchStrategy[ConvCase]:
    @st.composite
    def build(draw: st.DrawFn) -> ConvCase:
        stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
        padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.sampled_from(["valid", "same"])))
        if padding == "same" and not same_strided:
            stride = 1
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = pair(stride)
        h = draw(st.integers(1, max_hw))
        w = draw(st.integers(1, max_hw))
        if padded_size(h, kh, sh, padding, 0) < kh:
            h = kh
        if padded_size(w, kw, sw, padding, 1) < kw:
            w = kw
        return ConvCase(
            n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)), h=h, w=w, f=draw(st.integers(1, 3)), kh=kh, kw=kw,
            stride=stride, padding=padding, dtype=draw(st.sampled_from(dtypes)), bias=draw(st.booleans()),
            seed=draw(st.integers(0, 2**16)), noncontiguous=draw(st.booleans()),
        )

    return build()


@dataclass(frozen=True)
class PoolCase:
    n: int
    c: int
    h: int
    w: int
    kernel_size: Union[int, tuple[int, int]]
    stride: Union[None, int, tuple[int, int]]
    dtype: str
    seed: int
    ties: bool = False
    noncontiguous: bool = False

    def array(self) -> np.ndarray:
        if self.ties:  # few distinct values: many windows hold their maximum twice
            return np.random.default_rng(self.seed).integers(0, 3, size=(self.n, self.c, self.h, self.w)).astype(self.dtype)
        return make_array((self.n, self.c, self.h, self.w), self.dtype, self.seed)

    def __str__(self) -> str:
        return (f"x shape {(self.n, self.c, self.h, self.w)} {self.dtype}, kernel_size={self.kernel_size!r}, stride={self.stride!r}"
                + (", with ties" if self.ties else "") + (", x non-contiguous" if self.noncontiguous else ""))


def pool_cases(dtypes: tuple[str, ...] = DTYPES, ties: bool = False) -> st.SearchStrategy[PoolCase]:
    @st.composite
    def build(draw: st.DrawFn) -> PoolCase:
        kernel = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
        stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
        kh, kw = pair(kernel)
        return PoolCase(
            n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)),
            h=draw(st.integers(kh, 9)), w=draw(st.integers(kw, 9)),
            kernel_size=kernel, stride=stride, dtype=draw(st.sampled_from(dtypes)),
            seed=draw(st.integers(0, 2**16)), ties=ties or draw(st.booleans()), noncontiguous=draw(st.booleans()),
        )

    return build()


#: Input arrays whose 2-D slices fit in this many rows and columns are listed as numbers in the case.
SMALL_SIDE = 8
#: At most this many 2-D slices of one input are listed (the first ones).
SMALL_SLICES = 4


def _slice_lines(name: str, array: np.ndarray) -> list[str]:
    if array.ndim < 2:
        array = array.reshape(1, -1)
    lead = array.shape[:-2]
    slices = array.reshape(-1, *array.shape[-2:])
    shown = slices[:SMALL_SLICES]
    cells = [[f"{v:.4g}" if array.dtype.kind == "f" else str(v) for v in row] for s in shown for row in s.tolist()]
    width = max((len(c) for row in cells for c in row), default=1)
    lines: list[str] = []
    for k, s in enumerate(shown):
        index = np.unravel_index(k, lead) if lead else ()
        label = f"{name}[{', '.join(str(int(i)) for i in index)}]" if lead else name
        lines.append(f"  {label}:")
        lines += ["    " + " ".join((f"{v:.4g}" if array.dtype.kind == "f" else str(v)).rjust(width) for v in row)
                  for row in s.tolist()]
    if len(slices) > SMALL_SLICES:
        lines.append(f"  ({len(slices) - SMALL_SLICES} more slices of {name} not shown)")
    return lines


def with_small_inputs(description: str, **arrays: Any) -> str:
    """The case's description followed by its small input arrays as numbers (indented lines).

    An array is listed when every 2-D slice of it is at most :data:`SMALL_SIDE` square (a shrunk
    counterexample, typically): the student sees the very numbers their function got.
    """
    lines = [description]
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.size == 0 or value.dtype.kind not in "biuf":
            continue
        if value.ndim >= 2 and (value.shape[-2] > SMALL_SIDE or value.shape[-1] > SMALL_SIDE):
            continue
        if value.ndim < 2 and value.size > SMALL_SIDE * SMALL_SIDE:
            continue
        lines += _slice_lines(name, value)
    return "\n".join(lines)
