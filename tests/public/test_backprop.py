"""Self-check for the bonus exercises conv2d_backward and maxpool2d_backward (backprop.py)."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.conv2d_backward
def test_conv2d_backward_hand_computed(impl):
    x, w = np.arange(9.0).reshape(1, 1, 3, 3), np.ones((1, 1, 2, 2))
    dx, dw, db = impl("backprop").conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    assert np.shape(dx) == x.shape and np.shape(dw) == w.shape and np.shape(db) == (1,), "dx, dw, db take the shapes of x, w, b"
    if np.allclose(dx, [[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]]):
        pytest.fail("the middle pixel lies in 4 windows: accumulate (+=) where windows overlap, don't assign")
    np.testing.assert_allclose(dx, [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]], err_msg="dx counts how many windows cover each pixel here")
    np.testing.assert_allclose(dw, [[[[8, 12], [20, 24]]]], err_msg="dw[a, b] = sum of x under kernel position (a, b)")
    np.testing.assert_allclose(db, [4], err_msg="db = sum of dout over N, H and W")


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
    dx, dw, db = impl("backprop").conv2d_backward(dout, x, w, stride=2, padding=1)
    for name, got, expected in (("dx", dx, tx.grad), ("dw", dw, tw.grad), ("db", db, tb.grad)):
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-9, err_msg=f"{name} differs from torch autograd (stride 2, padding 1)")


@pytest.mark.maxpool2d_backward
def test_maxpool2d_backward_routes_ties_to_the_first_max(impl):
    x = np.array([[[[1, 3, 2, 2],
                    [3, 0, 2, 2]]]])
    got = np.asarray(impl("backprop").maxpool2d_backward(np.array([[[[10.0, 20.0]]]]), x, 2))
    assert got.shape == x.shape, f"dx has the shape of x {x.shape}, got {got.shape}"
    if np.isclose(got.sum(), 10 + 2 * 10 + 4 * 20) or got.sum() > 30:
        pytest.fail("gradient sent to every tied maximum: only the first one (row-major) gets it")
    np.testing.assert_allclose(got, [[[[0, 10, 20, 0], [0, 0, 0, 0]]]], err_msg="ties go to the first maximum in row-major order")


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
    np.testing.assert_allclose(got, tx.grad.numpy(), atol=1e-12,
                               err_msg="differs from torch: with overlapping windows one pixel's gradients add up; ties go to the first max")
