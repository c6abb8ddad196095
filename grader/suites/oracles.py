"""Independent oracles in numpy: each a different algorithm from the reference solution it checks.

The hidden suites compare a student with the reference solution, and the reference itself with
these oracles, so a bug in the reference is caught as an internal error instead of being graded.
Each oracle is a different algorithm from the reference it checks, in float64: a plain loop over
the *output positions*, each element taken straight from its defining sum or maximum (pooling and
its gradient, correlate2d, the conv2d gradient), or for conv2d a sum over the kernel offsets
where the reference builds one im2col matrix product. They need numpy only,
so grading imports neither torch nor ``scipy.signal`` (seconds of start-up on the trusted side);
``tests/test_oracles.py`` checks each one against torch (autograd included) and
``scipy.signal.correlate2d`` on the suites' own random cases.
"""
from __future__ import annotations

from typing import Union

import numpy as np

from .cases import pair

IntPair = Union[int, tuple[int, int]]


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


def _windows(h: int, w: int, kh: int, kw: int, sh: int, sw: int) -> list[tuple[int, int, slice, slice]]:
    """(i, j, rows, cols) of every output position: the window ``[rows, cols]`` that output (i, j) reads."""
    if kh < 1 or kw < 1 or kh > h or kw > w or sh < 1 or sw < 1:
        raise ValueError(f"a {kh}x{kw} window with stride ({sh}, {sw}) does not fit in {h}x{w}")
    return [(i, j, slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw))
            for i in range((h - kh) // sh + 1) for j in range((w - kw) // sw + 1)]


def _out_size(h: int, w: int, kh: int, kw: int, sh: int, sw: int) -> tuple[int, int]:
    return (h - kh) // sh + 1, (w - kw) // sw + 1


def _padded(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    xp = np.zeros(x.shape[:2] + (x.shape[2] + top + bottom, x.shape[3] + left + right))
    xp[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
    return xp


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: IntPair, padding) -> np.ndarray:
    """``out[n, f, i, j] = b[f] + sum over c, a, d of xp[n, c, i*sh + a, j*sw + d] * w[f, c, a, d]``, summed
    one kernel offset (a, d) at a time: the strided slice of ``xp`` under that offset times ``w[:, :, a, d]``
    (the reference gathers every window into one matrix product instead)."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    (sh, sw), (kh, kw) = pair(stride), w.shape[2:]
    xp = _padded(x, *explicit_padding(x.shape[2], x.shape[3], kh, kw, stride, padding))
    _windows(xp.shape[2], xp.shape[3], kh, kw, sh, sw)  # the kernel fits
    oh, ow = _out_size(xp.shape[2], xp.shape[3], kh, kw, sh, sw)
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for a in range(kh):
        for d in range(kw):
            under = xp[:, :, a:a + (oh - 1) * sh + 1:sh, d:d + (ow - 1) * sw + 1:sw]  # (N, C, oh, ow)
            out += np.einsum("nchw,fc->nfhw", under, w[:, :, a, d])
    if b is not None:
        out += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out


def conv2d_backward(dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: IntPair, padding):
    """(dx, dw, db) of ``sum(conv2d(x, w, b) * dout)``: each output element sends ``dout[n, f, i, j]`` back
    to the window it read (times ``w`` for dx, times that window for dw); the padded border is dropped."""
    dout = np.asarray(dout, dtype=np.float64)
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    (sh, sw), (kh, kw) = pair(stride), w.shape[2:]
    top, bottom, left, right = explicit_padding(x.shape[2], x.shape[3], kh, kw, stride, padding)
    xp = _padded(x, top, bottom, left, right)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i, j, rows, cols in _windows(xp.shape[2], xp.shape[3], kh, kw, sh, sw):
        g = dout[:, :, i, j]  # (N, F)
        dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
        dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dxp[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def _pool(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, reduce) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    (kh, kw), (h, w) = pair(kernel_size), x.shape[2:]
    sh, sw = (kh, kw) if stride is None else pair(stride)
    windows = _windows(h, w, kh, kw, sh, sw)
    out = np.zeros(x.shape[:2] + _out_size(h, w, kh, kw, sh, sw))
    for i, j, rows, cols in windows:
        out[:, :, i, j] = reduce(x[:, :, rows, cols], axis=(2, 3))
    return out


def maxpool2d(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None) -> np.ndarray:
    """The maximum of every window (a NaN in a window gives NaN, as torch does)."""
    return _pool(x, kernel_size, stride, np.max)


def avgpool2d(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None) -> np.ndarray:
    """The mean of every window."""
    return _pool(x, kernel_size, stride, np.mean)


def maxpool2d_backward(dout: np.ndarray, x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None) -> np.ndarray:
    """Each window sends its ``dout`` to the pixel torch's scan picks: the first maximum in row-major
    order (the last NaN if the window holds one); overlapping windows add up."""
    dout, x = np.asarray(dout, dtype=np.float64), np.asarray(x, dtype=np.float64)
    (kh, kw), (h, w) = pair(kernel_size), x.shape[2:]
    sh, sw = (kh, kw) if stride is None else pair(stride)
    dx = np.zeros_like(x)
    for i, j, rows, cols in _windows(h, w, kh, kw, sh, sw):
        window = x[:, :, rows, cols].reshape(x.shape[0], x.shape[1], kh * kw)
        nan = np.isnan(window)
        pick = np.where(nan.any(axis=-1), kh * kw - 1 - nan[..., ::-1].argmax(axis=-1), window.argmax(axis=-1))
        chosen = np.arange(kh * kw) == pick[..., None]  # (N, C, kh*kw), one True per window
        dx[:, :, rows, cols] += (chosen * dout[:, :, i, j, None]).reshape(x.shape[0], x.shape[1], kh, kw)
    return dx


def correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``scipy.signal.correlate2d(image, kernel, mode="valid")``: ``out[i, j] = sum of image[i + a, j + b] * kernel[a, b]``."""
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    (h, w), (kh, kw) = image.shape, kernel.shape
    windows = _windows(h, w, kh, kw, 1, 1)
    out = np.zeros(_out_size(h, w, kh, kw, 1, 1))
    for i, j, rows, cols in windows:
        out[i, j] = np.sum(image[rows, cols] * kernel)
    return out


def pad2d(x: np.ndarray, pad, value: float = 0.0) -> np.ndarray:
    top, bottom, left, right = (pad,) * 4 if isinstance(pad, int) else pad
    width = [(0, 0)] * (np.ndim(x) - 2) + [(top, bottom), (left, right)]
    return np.pad(np.asarray(x, dtype=np.float64), width, constant_values=value)
