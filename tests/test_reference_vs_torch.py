"""The numpy reference solutions agree with torch (and scipy / np.pad) on randomized inputs.

Hypothesis draws small shapes, strides, paddings, dtypes and memory layouts; values come from a
numpy generator seeded by hypothesis so that a failure shrinks to a reproducible case. In float64
the reference must match torch to 1e-9.
"""
from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d as scipy_correlate2d

from solutions.backprop import conv2d_backward, maxpool2d_backward
from solutions.conv import conv2d, correlate2d
from solutions.padding import pad2d, same_padding
from solutions.pooling import avgpool2d, maxpool2d
from solutions.strides import conv_output_size

EXAMPLES = settings(max_examples=50, deadline=None)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
ATOL64 = 1e-9
DTYPES = ("float64", "float32", "int64", "uint8")
LAYOUTS = ("contiguous", "transposed", "sliced", "fortran")


# ---------------------------------------------------------------- input generation
def make_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, layout: str = "contiguous", ties: bool = False) -> np.ndarray:
    """Random values of ``dtype`` and ``shape``, laid out in memory as ``layout`` describes."""
    if ties or dtype in ("int64", "uint8"):
        values = rng.integers(0, 4 if ties else 256, size=shape)
    else:
        values = rng.standard_normal(shape)
    values = values.astype(dtype)
    if layout == "transposed":  # a view whose last two axes are swapped in memory
        return np.ascontiguousarray(np.swapaxes(values, -1, -2)).swapaxes(-1, -2)
    if layout == "sliced":  # every other element of a larger buffer
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=dtype)
        big[..., ::2] = values
        return big[..., ::2]
    if layout == "fortran":
        return np.asfortranarray(values)
    return values


def t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a, dtype=np.float64), requires_grad=grad)


def assert_matches(got: np.ndarray, expected: torch.Tensor | np.ndarray, dtype: str) -> None:
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    assert got.shape == expected.shape
    assert got.dtype == (np.float32 if dtype == "float32" else np.float64)
    if dtype == "float32":
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL64 * max(1.0, float(np.abs(expected).max(initial=0))))


def unchanged(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.copy() for a in arrays]


def assert_unchanged(before: list[np.ndarray], after: tuple[np.ndarray, ...]) -> None:
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b, err_msg="an input array was modified")


pair = st.integers(1, 3) | st.tuples(st.integers(1, 3), st.integers(1, 3))
paddings = st.integers(0, 2) | st.tuples(st.integers(0, 2), st.integers(0, 2)) | st.sampled_from(["valid", "same"])


def as_pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


def torch_padding(padding, h: int, w: int, kh: int, kw: int, sh: int, sw: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), computed independently of the reference (Keras formula)."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        def split(n: int, k: int, s: int) -> tuple[int, int]:
            total = max((int(np.ceil(n / s)) - 1) * s + k - n, 0)
            return total // 2, total - total // 2
        return (*split(h, kh, sh), *split(w, kw, sw))
    ph, pw = as_pair(padding)
    return ph, ph, pw, pw


@st.composite
def conv_cases(draw):
    n, c, f = draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding = draw(pair), draw(paddings)
    sh, sw = as_pair(stride)
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    top, bottom, left, right = torch_padding(padding, h, w, kh, kw, sh, sw)
    # keep the kernel inside the padded input (the error path is tested separately)
    h, w = max(h, kh - top - bottom), max(w, kw - left - right)
    top, bottom, left, right = torch_padding(padding, h, w, kh, kw, sh, sw)
    return dict(
        x_shape=(n, c, h, w), w_shape=(f, c, kh, kw), stride=stride, padding=padding,
        pads=(top, bottom, left, right), bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(DTYPES)), layout=draw(st.sampled_from(LAYOUTS)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def torch_conv(x: torch.Tensor, w: torch.Tensor, b, stride, padding, pads) -> torch.Tensor:
    """torch's conv2d; 'same' with stride > 1 (which torch refuses) as explicit asymmetric padding."""
    if padding == "same" and as_pair(stride) != (1, 1):
        top, bottom, left, right = pads
        return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=stride)
    return F.conv2d(x, w, b, stride=stride, padding=padding)


# ---------------------------------------------------------------- conv2d and its backward
@EXAMPLES
@given(case=conv_cases())
def test_conv2d_matches_torch(case):
    rng = np.random.default_rng(case["seed"])
    x = make_array(rng, case["x_shape"], case["dtype"], case["layout"])
    w = make_array(rng, case["w_shape"], case["dtype"], case["layout"])
    b = make_array(rng, case["w_shape"][:1], case["dtype"]) if case["bias"] else None
    before = unchanged(x, w)
    got = conv2d(x, w, b, stride=case["stride"], padding=case["padding"])
    assert_unchanged(before, (x, w))
    expected = torch_conv(t64(x), t64(w), None if b is None else t64(b), case["stride"], case["padding"], case["pads"])
    assert_matches(got, expected, case["dtype"])


@EXAMPLES
@given(case=conv_cases())
def test_conv2d_backward_matches_autograd(case):
    rng = np.random.default_rng(case["seed"])
    x = make_array(rng, case["x_shape"], case["dtype"], case["layout"])
    w = make_array(rng, case["w_shape"], case["dtype"], case["layout"])
    tx, tw, tb = t64(x, grad=True), t64(w, grad=True), torch.zeros(case["w_shape"][0], dtype=torch.float64, requires_grad=True)
    out = torch_conv(tx, tw, tb, case["stride"], case["padding"], case["pads"])
    dout = make_array(rng, tuple(out.shape), case["dtype"], case["layout"])
    out.backward(t64(dout))
    before = unchanged(dout, x, w)
    dx, dw, db = conv2d_backward(dout, x, w, stride=case["stride"], padding=case["padding"])
    assert_unchanged(before, (dout, x, w))
    for got, expected in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        assert_matches(got, expected, case["dtype"])


# ---------------------------------------------------------------- pooling and its backward
@st.composite
def pool_cases(draw):
    kernel = draw(pair)
    stride = draw(st.none() | pair)  # stride < kernel gives overlapping windows
    kh, kw = as_pair(kernel)
    shape = (draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(kh, 9)), draw(st.integers(kw, 9)))
    return dict(
        shape=shape, kernel=kernel, stride=stride, dtype=draw(st.sampled_from(DTYPES)),
        layout=draw(st.sampled_from(LAYOUTS)), ties=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)),
    )


@EXAMPLES
@given(case=pool_cases())
def test_pooling_matches_torch(case):
    rng = np.random.default_rng(case["seed"])
    x = make_array(rng, case["shape"], case["dtype"], case["layout"], ties=case["ties"])
    before = unchanged(x)
    got_max = maxpool2d(x, case["kernel"], case["stride"])
    got_avg = avgpool2d(x, case["kernel"], case["stride"])
    assert_unchanged(before, (x,))
    assert_matches(got_max, F.max_pool2d(t64(x), case["kernel"], case["stride"]), case["dtype"])
    assert_matches(got_avg, F.avg_pool2d(t64(x), case["kernel"], case["stride"]), case["dtype"])


@EXAMPLES
@given(case=pool_cases())
def test_maxpool2d_backward_matches_autograd_including_ties(case):
    rng = np.random.default_rng(case["seed"])
    x = make_array(rng, case["shape"], case["dtype"], case["layout"], ties=case["ties"])
    tx = t64(x, grad=True)
    out = F.max_pool2d(tx, case["kernel"], case["stride"])
    dout = make_array(rng, tuple(out.shape), case["dtype"], case["layout"])
    out.backward(t64(dout))
    before = unchanged(dout, x)
    got = maxpool2d_backward(dout, x, case["kernel"], case["stride"])
    assert_unchanged(before, (dout, x))
    assert_matches(got, tx.grad, case["dtype"])


def test_maxpool_nan_routing_matches_torch():
    x = np.array([[[[np.nan, 1.0, np.nan, 2.0], [0.0, 5.0, 1.0, np.nan]]]])
    tx = t64(x, grad=True)
    out = F.max_pool2d(tx, 2, 1)
    out.backward(torch.ones_like(out))
    np.testing.assert_array_equal(maxpool2d(x, 2, 1), out.detach().numpy())
    np.testing.assert_array_equal(maxpool2d_backward(np.ones(out.shape), x, 2, 1), tx.grad.numpy())


# ---------------------------------------------------------------- the small helpers
@EXAMPLES
@given(
    shape=st.tuples(st.integers(1, 7), st.integers(1, 7)), kshape=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**32 - 1),
)
def test_correlate2d_matches_scipy(shape, kshape, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    image = make_array(rng, shape, dtype, layout)
    kernel = make_array(rng, kshape, dtype, layout)
    if kshape[0] > shape[0] or kshape[1] > shape[1]:
        with pytest.raises(ValueError, match=r"\(\d+, \d+\)"):
            correlate2d(image, kernel)
        return
    expected = scipy_correlate2d(image.astype(np.float64), kernel.astype(np.float64), mode="valid")
    assert_matches(correlate2d(image, kernel), expected, dtype)


@EXAMPLES
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),
    pad=st.integers(0, 3) | st.tuples(*[st.integers(0, 3)] * 4),
    value=st.sampled_from([0.0, -1.5, 7]), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
    seed=st.integers(0, 2**32 - 1),
)
def test_pad2d_matches_np_pad(shape, pad, value, dtype, layout, seed):
    x = make_array(np.random.default_rng(seed), shape, dtype, layout)
    before = unchanged(x)
    top, bottom, left, right = (pad,) * 4 if isinstance(pad, int) else pad
    got = pad2d(x, pad, value)
    assert_unchanged(before, (x,))
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    assert_matches(got, np.pad(x.astype(np.float64), widths, constant_values=value), dtype)


@EXAMPLES
@given(n=st.integers(1, 40), k=st.integers(1, 8), s=st.integers(1, 5), p=st.integers(0, 3))
def test_output_size_and_same_padding_match_torch(n, k, s, p):
    if n + 2 * p < k:
        with pytest.raises(ValueError):
            conv_output_size(n, k, s, p)
    else:
        expected = F.conv2d(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, k, 1), stride=(s, 1), padding=(p, 0)).shape[2]
        assert conv_output_size(n, k, s, p) == expected
    before, after = same_padding(n, k, s)
    assert (n + before + after - k) // s + 1 == -(-n // s)  # "same": ceil(n / s) outputs
    assert 0 <= after - before <= 1
    if s == 1:  # torch's own padding='same' splits the same way
        out = F.conv2d(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, k, 1), padding="same")
        assert out.shape[2] == n and before + after == k - 1


def test_integer_inputs_do_not_overflow():
    x = np.full((1, 1, 4, 4), 255, dtype=np.uint8)
    assert conv2d(x, np.ones((1, 1, 3, 3), dtype=np.uint8)).max() == 9 * 255
    assert avgpool2d(x, 2).max() == 255
    assert correlate2d(x[0, 0], np.full((2, 2), 255, dtype=np.uint8)).max() == 4 * 255 * 255


def test_array_likes_are_accepted():
    x = [[[[1, 2], [3, 4]]]]
    np.testing.assert_array_equal(conv2d(x, [[[[1]]]], [1]), [[[[2.0, 3.0], [4.0, 5.0]]]])
    np.testing.assert_array_equal(maxpool2d(x, (2, 2)), [[[[4.0]]]])
    np.testing.assert_array_equal(pad2d(x, 0), np.array(x, dtype=float))


# ---------------------------------------------------------------- the ValueError contract
x4 = np.zeros((2, 3, 5, 5))
w_ok = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: conv2d(x4, np.zeros((4, 2, 3, 3))), "(2, 3, 5, 5)"),  # channel mismatch
        (lambda: conv2d(x4, np.zeros((4, 3, 6, 3))), "(4, 3, 6, 3)"),  # kernel larger than the input
        (lambda: conv2d(x4, np.zeros((4, 3, 8, 8)), padding=1), "(2, 3, 5, 5)"),  # ... than the padded input
        (lambda: conv2d(x4, w_ok, padding="full"), "full"),  # unknown padding string
        (lambda: conv2d(x4, w_ok, stride=0), "stride"),
        (lambda: conv2d(x4, w_ok, stride=(1, -1)), "stride"),
        (lambda: conv2d(x4, w_ok, padding=-1), "padding"),
        (lambda: conv2d(x4, w_ok, b=np.zeros(3)), "(3,)"),
        (lambda: conv2d(x4[0], w_ok), "(3, 5, 5)"),
        (lambda: conv2d_backward(np.zeros((2, 4, 2, 2)), x4, w_ok), "(2, 4, 3, 3)"),  # dout of the wrong shape
        (lambda: conv2d_backward(np.zeros((2, 4, 3, 3)), x4, np.zeros((4, 2, 3, 3))), "(2, 3, 5, 5)"),
        (lambda: maxpool2d(x4, 6), "(2, 3, 5, 5)"),
        (lambda: avgpool2d(x4, 2, stride=0), "stride"),
        (lambda: maxpool2d_backward(np.zeros((2, 3, 3, 3)), x4, 2), "(2, 3, 2, 2)"),
        (lambda: correlate2d(np.zeros((2, 2)), np.zeros((3, 1))), "(3, 1)"),
        (lambda: pad2d(x4, (1, 2)), "(1, 2)"),
        (lambda: pad2d(x4, -1), "-1"),
        (lambda: pad2d(np.zeros(3), 1), "(3,)"),
        (lambda: conv_output_size(2, 5), "5"),
        (lambda: conv_output_size(5, 3, stride=0), "stride"),
        (lambda: conv_output_size(5, 3, padding=-1), "padding"),
        (lambda: same_padding(5, 3, stride=0), "stride"),
    ],
)
def test_impossible_input_raises_value_error_naming_it(call, needle):
    with pytest.raises(ValueError) as info:
        call()
    assert needle in str(info.value)


# ---------------------------------------------------------------- the docstrings' worked examples
@pytest.mark.parametrize("module", ["strides", "padding", "conv", "pooling", "backprop"])
def test_docstring_examples_are_correct(module):
    result = doctest.testmod(importlib.import_module(f"solutions.{module}"), extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
