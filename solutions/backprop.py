"""Bonus exercises ``conv2d_backward`` and ``maxpool2d_backward``: the gradients a convnet trains with.

Given ``dout``, the gradient of the loss with respect to a layer's output, backpropagation asks
for the gradients with respect to the layer's input (to continue backwards) and its weights (to
update them). The results must equal what ``torch.autograd`` computes.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .padding import pad2d
from .strides import conv_output_size

Stride = int | tuple[int, int]
Padding = int | tuple[int, int] | str
Size = int | tuple[int, int]


### BEGIN SOLUTION
from numpy.lib.stride_tricks import sliding_window_view

from .conv import _float_dtype, _pair, _resolve_padding


### END SOLUTION
def conv2d_backward(
    dout: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    stride: Stride = 1,
    padding: Padding = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``conv2d(x, w, b, stride, padding)`` given ``dout = dL/d(output)``.

    With ``xp`` the padded input and ``out[n, f, i, j] = b[f] + sum_{c,a,d} xp[n, c, i*sh+a, j*sw+d] * w[f, c, a, d]``:

    * ``db[f] = sum over n, i, j of dout[n, f, i, j]``
    * ``dw[f, c, a, d] = sum over n, i, j of dout[n, f, i, j] * xp[n, c, i*sh + a, j*sw + d]``
    * ``dxp[n, c, i*sh + a, j*sw + d] += dout[n, f, i, j] * w[f, c, a, d]`` over all n, f, i, j, a, d
      (windows overlap, so contributions *add up*), then ``dx`` is ``dxp`` with the padding cut off.

    Args:
        dout: ``(N, F, Ho, Wo)``, the shape ``conv2d`` returns for these arguments.
        x: the forward input ``(N, C, H, W)``.
        w: the forward kernels ``(F, C, kh, kw)``.
        stride, padding: exactly as in ``conv2d`` (int, pairs, ``"valid"``, ``"same"``).

    Returns:
        ``(dx, dw, db)`` with the shapes of ``x``, ``w`` and ``(F,)``; float32 if all inputs are
        float32, float64 otherwise. The bias value is not needed: it does not change any gradient.

    Raises:
        ValueError: as ``conv2d``, and when ``dout`` does not have the output shape.

    Example:
        >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> w = np.ones((1, 1, 2, 2))
        >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
        >>> dx[0, 0]                        # how many windows cover each pixel
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
        >>> dw[0, 0], db
        (array([[ 8., 12.],
               [20., 24.]]), array([4.]))

    Classic mistakes: overwriting (``=``) instead of accumulating (``+=``) where windows
    overlap; returning the gradient of the *padded* input; forgetting the stride when
    scattering back.
    """
    ### BEGIN SOLUTION
    dout, x, w = np.asarray(dout), np.asarray(x), np.asarray(w)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_backward needs x (N, C, H, W) and w (F, C, kh, kw), got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    f, cw, kh, kw = w.shape
    if c != cw:
        raise ValueError(f"channel mismatch: x of shape {x.shape} has {c} channels but w of shape {w.shape} expects {cw}")
    sh, sw = _pair(stride, "stride")
    top, bottom, left, right = _resolve_padding(padding, h, wd, kh, kw, sh, sw)
    hp, wp = h + top + bottom, wd + left + right
    if kh < 1 or kw < 1 or kh > hp or kw > wp:
        raise ValueError(
            f"kernel {kh}x{kw} (w of shape {w.shape}) does not fit in the padded input {hp}x{wp} (x of shape {x.shape})"
        )
    ho, wo = conv_output_size(hp, kh, sh), conv_output_size(wp, kw, sw)
    if dout.shape != (n, f, ho, wo):
        raise ValueError(f"dout must have the output shape {(n, f, ho, wo)} for x {x.shape} and w {w.shape}, got {dout.shape}")
    dtype = _float_dtype(dout, x, w)
    k, p = c * kh * kw, ho * wo

    # Work channels-first, batch-last: (C, H, W, N). Every matrix below then has N as its
    # contiguous inner axis, so the im2col copy and the col2im scatter run over long rows.
    xt = np.zeros((c, hp, wp, n), dtype=dtype)  # the padded input, zeros around x
    xt[:, top : top + h, left : left + wd] = x.transpose(1, 2, 3, 0)
    windows = sliding_window_view(xt, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (C, Ho, Wo, N, kh, kw)
    cols = windows.transpose(0, 4, 5, 1, 2, 3).reshape(k, p * n)  # im2col, rows (c, a, d), columns (i, j, n)
    g = np.ascontiguousarray(dout.transpose(1, 2, 3, 0), dtype=dtype).reshape(f, p * n)  # (F, Ho*Wo*N)

    db = g.sum(axis=1)
    dw = (g @ cols.T).reshape(f, c, kh, kw)
    dcols = (w.astype(dtype, copy=False).reshape(f, k).T @ g).reshape(c, kh, kw, ho, wo, n)
    # col2im: scatter-add every kernel offset's contribution back (a loop over kh*kw offsets).
    dxp = np.zeros((c, hp, wp, n), dtype=dtype)
    for a in range(kh):
        for d in range(kw):
            dxp[:, a : a + (ho - 1) * sh + 1 : sh, d : d + (wo - 1) * sw + 1 : sw] += dcols[:, a, d]
    dx = np.ascontiguousarray(dxp[:, top : top + h, left : left + wd].transpose(3, 0, 1, 2))
    return dx, dw, db
    ### END SOLUTION


def maxpool2d_backward(
    dout: ArrayLike, x: ArrayLike, kernel_size: Size, stride: Size | None = None
) -> np.ndarray:
    """Gradient of ``maxpool2d(x, kernel_size, stride)`` with respect to ``x``.

    Each output took its value from one input pixel, the window's maximum, so its gradient
    flows back to that pixel only; every other pixel of the window gets 0. Two rules make the
    result equal to PyTorch's:

    * ties: when several pixels of a window share the maximum, the *first* one in row-major
      order (top row first, then left to right) receives the gradient;
    * overlap: when windows overlap (stride < kernel size) one pixel can be the maximum of
      several windows, and its gradients add up.

    Args:
        dout: ``(N, C, Ho, Wo)``, the shape ``maxpool2d`` returns for these arguments.
        x: the forward input ``(N, C, H, W)``.
        kernel_size, stride: as in ``maxpool2d`` (stride defaults to the kernel size).

    Returns:
        ``dx`` with the shape of ``x``; float32 if ``dout`` and ``x`` are float32, float64 otherwise.

    Raises:
        ValueError: as ``maxpool2d``, and when ``dout`` does not have the output shape.

    Example:
        >>> x = np.array([[[[1, 3, 2, 2],
        ...                 [3, 0, 2, 2]]]])        # left window: tie 3/3, right window: all 2
        >>> maxpool2d_backward(np.array([[[[10, 20]]]]), x, 2)
        array([[[[ 0., 10., 20.,  0.],
                 [ 0.,  0.,  0.,  0.]]]])

    Classic mistakes: sending the gradient to every tied maximum (it then counts twice), or
    assigning instead of adding where windows overlap.
    """
    ### BEGIN SOLUTION
    dout, x = np.asarray(dout), np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"maxpool2d_backward needs x of shape (N, C, H, W), got {x.shape}")
    n, c, h, wd = x.shape
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    if kh > h or kw > wd:
        raise ValueError(f"pooling window {kh}x{kw} is larger than the input x of shape {x.shape}")
    ho, wo = (h - kh) // sh + 1, (wd - kw) // sw + 1
    if dout.shape != (n, c, ho, wo):
        raise ValueError(f"dout must have the output shape {(n, c, ho, wo)} for x {x.shape}, got {dout.shape}")
    dtype = _float_dtype(dout, x)

    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].reshape(n, c, ho, wo, kh * kw)
    arg = windows.argmax(axis=-1)  # the first maximum in row-major order, as torch picks it
    if windows.dtype.kind in "fc":
        nan = np.isnan(windows)
        if nan.any():  # torch's scan keeps the *last* NaN of a window
            arg = np.where(nan.any(axis=-1), kh * kw - 1 - nan[..., ::-1].argmax(axis=-1), arg)
    # Flat index in x of the chosen pixel of every window, then one scatter-add (bincount).
    corner = (np.arange(n * c) * (h * wd)).reshape(n, c, 1, 1) + (np.arange(ho) * sh * wd)[:, None] + np.arange(wo) * sw
    offset = (np.arange(kh)[:, None] * wd + np.arange(kw)).ravel()  # window offset -> flat offset
    flat = corner + offset[arg]
    dx = np.bincount(flat.ravel(), weights=dout.ravel().astype(np.float64), minlength=x.size)
    return dx.reshape(x.shape).astype(dtype, copy=False)
    ### END SOLUTION
