# Generated from solutions/backprop.py by `grader stubs`: edit the bodies that raise
# NotImplementedError. Keep the signatures: the grader calls them as they are.
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
    raise NotImplementedError("conv2d_backward: replace this line with your code (backprop.conv2d_backward)")


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
    raise NotImplementedError("maxpool2d_backward: replace this line with your code (backprop.maxpool2d_backward)")
