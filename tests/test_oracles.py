"""The hidden suites' numpy oracles agree with torch (autograd included) and scipy.signal.

The oracles (``grader/suites/oracles.py``) cross-check the reference during grading without
importing torch or scipy.signal; here the libraries themselves vouch for them, on the very
strategies the suites draw their random cases from, plus the suites' edge cases (ties, NaN,
overlapping windows, 'same' padding with strides).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d as scipy_correlate2d

torch = pytest.importorskip("torch")

from grader.suites import oracles  # noqa: E402
from grader.suites.cases import ConvCase, PoolCase, conv_cases, make_array, pair, pool_cases  # noqa: E402

EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def t64(a: np.ndarray, grad: bool = False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def torch_conv2d(x, w, b, stride, padding, dout=None):
    top, bottom, left, right = oracles.explicit_padding(x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, padding)
    xt, wt = t64(x, True), t64(w, True)
    bt = t64(b if b is not None else np.zeros(w.shape[0]), True)
    out = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (left, right, top, bottom)), wt, bt, stride=pair(stride))
    if dout is None:
        return out.detach().numpy()
    out.backward(t64(dout))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def torch_pool(kind: str, x, kernel_size, stride, dout=None):
    xt = t64(x, True)
    fn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    out = fn(xt, pair(kernel_size), None if stride is None else pair(stride))
    if dout is None:
        return out.detach().numpy()
    out.backward(t64(dout))
    return xt.grad.numpy()


def close(got, want) -> None:
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@EXAMPLES
@given(conv_cases())
def test_conv2d_matches_torch(case: ConvCase) -> None:
    x, w, b = case.arrays()
    close(oracles.conv2d(x, w, b, case.stride, case.padding), torch_conv2d(x, w, b, case.stride, case.padding))


@EXAMPLES
@given(conv_cases(dtypes=("float64",)))
def test_conv2d_backward_matches_torch_autograd(case: ConvCase) -> None:
    x, w, _ = case.arrays()
    dout = make_array(oracles.conv2d(x, w, None, case.stride, case.padding).shape, "float64", case.seed + 3)
    got = oracles.conv2d_backward(dout, x, w, case.stride, case.padding)
    for g, want in zip(got, torch_conv2d(x, w, None, case.stride, case.padding, dout), strict=True):
        close(g, want)


@EXAMPLES
@given(pool_cases())
def test_pooling_matches_torch(case: PoolCase) -> None:
    x = case.array()
    close(oracles.maxpool2d(x, case.kernel_size, case.stride), torch_pool("max", x, case.kernel_size, case.stride))
    close(oracles.avgpool2d(x, case.kernel_size, case.stride), torch_pool("avg", x, case.kernel_size, case.stride))


@EXAMPLES
@given(pool_cases(dtypes=("float64",)))
def test_maxpool2d_backward_matches_torch_autograd(case: PoolCase) -> None:
    x = case.array()
    dout = make_array(oracles.maxpool2d(x, case.kernel_size, case.stride).shape, "float64", case.seed + 1)
    close(oracles.maxpool2d_backward(dout, x, case.kernel_size, case.stride),
          torch_pool("max", x, case.kernel_size, case.stride, dout))


@pytest.mark.parametrize("stride", [None, 1, 2, (1, 3)])
def test_maxpool2d_nan_and_ties_route_as_torch(stride) -> None:
    x = np.random.default_rng(0).integers(0, 3, size=(2, 2, 7, 8)).astype(np.float64)
    x[0, 0, 1, 1] = x[1, 1, 0, 3] = x[1, 1, 1, 2] = np.nan
    dout = make_array(oracles.maxpool2d(x, 3, stride).shape, "float64", 5)
    close(oracles.maxpool2d(x, 3, stride), torch_pool("max", x, 3, stride))
    close(oracles.maxpool2d_backward(dout, x, 3, stride), torch_pool("max", x, 3, stride, dout))


@EXAMPLES
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 5), st.integers(1, 5), st.sampled_from(["float64", "uint8", "int64"]),
       st.integers(0, 999))
def test_correlate2d_matches_scipy(h: int, w: int, kh: int, kw: int, dtype: str, seed: int) -> None:
    kh, kw = min(kh, h), min(kw, w)
    image, kernel = make_array((h, w), dtype, seed), make_array((kh, kw), "float64", seed + 1)
    close(oracles.correlate2d(image, kernel), scipy_correlate2d(image.astype(np.float64), kernel, mode="valid"))


def test_oracles_refuse_a_window_that_does_not_fit() -> None:
    with pytest.raises(ValueError):
        oracles.correlate2d(np.zeros((2, 5)), np.ones((3, 3)))
    with pytest.raises(ValueError):
        oracles.maxpool2d(np.zeros((1, 1, 3, 3)), 4)
    with pytest.raises(ValueError):
        oracles.conv2d(np.zeros((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), None, 1, 0)
