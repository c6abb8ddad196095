"""Independent oracles: what torch, scipy and numpy say the answer is.

The hidden suites compare a student with the reference solution, and the reference itself with
these oracles, so a bug in the reference is caught as an internal error instead of being graded.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from .cases import pair

IntPair = Union[int, tuple[int, int]]


def _torch():
    import torch

    return torch


def _keras_same(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def explicit_padding(h: int, w: int, kh: int, kw: int, stride: IntPair, padding) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for any padding form conv2d accepts."""
    sh, sw = pair(stride)
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        return (*_keras_same(h, kh, sh), *_keras_same(w, kw, sw))
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def conv2d(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: IntPair, padding) -> np.ndarray:
    torch = _torch()
    top, bottom, left, right = explicit_padding(x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, padding)
    xt = torch.nn.functional.pad(torch.from_numpy(np.asarray(x, dtype=np.float64)), (left, right, top, bottom))
    out = torch.nn.functional.conv2d(
        xt, torch.from_numpy(np.asarray(w, dtype=np.float64)),
        None if b is None else torch.from_numpy(np.asarray(b, dtype=np.float64)), stride=pair(stride),
    )
    return out.numpy()


def conv2d_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: IntPair, padding):
    torch = _torch()
    top, bottom, left, right = explicit_padding(x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, padding)
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    wt = torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    bt = torch.zeros(w.shape[0], dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (left, right, top, bottom)), wt, bt, stride=pair(stride))
    out.backward(torch.from_numpy(np.asarray(dout, dtype=np.float64)))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def maxpool2d(x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None) -> np.ndarray:
    torch = _torch()
    return torch.nn.functional.max_pool2d(torch.from_numpy(np.asarray(x, dtype=np.float64)), pair(kernel_size), None if stride is None else pair(stride)).numpy()


def avgpool2d(x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None) -> np.ndarray:
    torch = _torch()
    return torch.nn.functional.avg_pool2d(torch.from_numpy(np.asarray(x, dtype=np.float64)), pair(kernel_size), None if stride is None else pair(stride)).numpy()


def maxpool2d_backward(dout: np.ndarray, x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None) -> np.ndarray:
    torch = _torch()
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    out = torch.nn.functional.max_pool2d(xt, pair(kernel_size), None if stride is None else pair(stride))
    out.backward(torch.from_numpy(np.asarray(dout, dtype=np.float64)))
    return xt.grad.numpy()


def correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.signal import correlate2d as scipy_correlate2d

    return scipy_correlate2d(np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64), mode="valid")


def pad2d(x: np.ndarray, pad, value: float = 0.0) -> np.ndarray:
    top, bottom, left, right = (pad,) * 4 if isinstance(pad, int) else pad
    width = [(0, 0)] * (np.ndim(x) - 2) + [(top, bottom), (left, right)]
    return np.pad(np.asarray(x, dtype=np.float64), width, constant_values=value)
