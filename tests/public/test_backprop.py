"""Self-check for the bonus exercises conv2d_backward and maxpool2d_backward (backprop.py)."""
from __future__ import annotations

import numpy as np
import pytest

from coursekit.mistakes import assert_close


@pytest.mark.conv2d_backward
def test_conv2d_backward_hand_computed(impl):
    x, w = np.arange(9.0).reshape(1, 1, 3, 3), np.ones((1, 1, 2, 2))
    dx, dw, db = impl("backprop").conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    assert np.shape(dx) == x.shape and np.shape(dw) == w.shape and np.shape(db) == (1,), "dx, dw, db take the shapes of x, w, b"
    if np.allclose(dx, [[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]]):
        pytest.fail("the middle pixel lies in 4 windows: accumulate (+=) where windows overlap, don't assign")
    np.testing.assert_allclose(dx, [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]], err_msg="dx counts how many windows cover each pixel here")
    np.testing.assert_allclose(dw, [[[[8, 12], [20, 24]]]], err_msg="dw[a, b] = sum of x under kernel position (a, b)")
    assert_close("conv2d_backward", db, [4.0], (np.ones((1, 1, 2, 2)), x, w), why="db = sum of dout over N, H and W.",
                 result=(dx, dw, db))


@pytest.mark.conv2d_backward
def test_conv2d_backward_matches_torch(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.conv2d(tx, tw, tb, stride=2, padding=1)
    dout = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(dout))
    got = impl("backprop").conv2d_backward(dout, x, w, stride=2, padding=1)
    for i, (name, expected) in enumerate((("dx", tx.grad), ("dw", tw.grad), ("db", tb.grad))):
        assert_close("conv2d_backward", got[i], expected.numpy(), (dout, x, w), {"stride": 2, "padding": 1},
                     why=f"{name} differs from torch autograd (stride 2, padding 1).", result=got)


@pytest.mark.maxpool2d_backward
def test_maxpool2d_backward_routes_ties_to_the_first_max(impl):
    x = np.array([[[[1, 3, 2, 2],
                    [3, 0, 2, 2]]]])
    dout = np.array([[[[10.0, 20.0]]]])
    got = impl("backprop").maxpool2d_backward(dout, x, 2)
    assert_close("maxpool2d_backward", got, [[[[0, 10, 20, 0], [0, 0, 0, 0]]]], (dout, x, 2),
                 why="dx has the shape of x; ties go to the first maximum in row-major order.")


@pytest.mark.maxpool2d_backward
def test_maxpool2d_backward_matches_torch_with_overlap(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (2, 2, 6, 7)).astype(float)  # many ties
    tx = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.max_pool2d(tx, 3, stride=1)  # windows overlap
    dout = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(dout))
    got = impl("backprop").maxpool2d_backward(dout, x, 3, stride=1)
    assert_close("maxpool2d_backward", got, tx.grad.numpy(), (dout, x, 3), {"stride": 1}, atol=1e-12,
                 why="differs from torch: with overlapping windows one pixel's gradients add up; ties go to the first max.")
