"""Exercises ``pad2d`` and ``same_padding``: growing the input so the windows fit.

Without padding a 3×3 convolution shrinks a 5×5 map to 3×3. Adding a border of zeros lets the
window be centred on every input pixel, so the output keeps the input's size: Keras calls this
``padding="same"``, and no padding ``"valid"``.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


### BEGIN SOLUTION
import operator


def _float_dtype(*arrays: np.ndarray) -> type[np.floating]:
    """float32 when NumPy promotes the inputs to float32, float64 otherwise (integers included)."""
    return np.float32 if np.result_type(*arrays) == np.float32 else np.float64


### END SOLUTION
def pad2d(x: ArrayLike, pad: int | tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes (height and width) of ``x`` with a constant.

    Args:
        x: array with at least 2 axes, e.g. an NCHW batch ``(N, C, H, W)`` or one image ``(H, W)``.
            Integer dtypes (uint8 images) are accepted.
        pad: one int for the same border on all four sides, or ``(top, bottom, left, right)``;
            every amount ``>= 0``.
        value: the constant written into the border.

    Returns:
        A new floating-point array of shape ``(..., H + top + bottom, W + left + right)``:
        float32 if ``x`` is float32, float64 otherwise. Its values equal
        ``np.pad(x, [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)], constant_values=value)``.
        ``x`` itself is never modified.

    Raises:
        ValueError: if ``x`` has fewer than 2 axes, ``pad`` is not an int or a 4-tuple, or an
            amount is negative.

    Example:
        >>> pad2d(np.array([[1, 2], [3, 4]]), (1, 0, 0, 2))
        array([[0., 0., 0., 0.],
               [1., 2., 0., 0.],
               [3., 4., 0., 0.]])

    Classic mistake: padding every axis (``np.pad(x, 1)``) also pads the batch and channel
    axes of an NCHW array, turning ``(N, C, H, W)`` into ``(N+2, C+2, H+2, W+2)``.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"pad2d needs an array with at least 2 axes (..., H, W), got shape {x.shape}")
    if isinstance(pad, tuple | list):
        if len(pad) != 4:
            raise ValueError(f"pad must be an int or (top, bottom, left, right), got {pad!r}")
        top, bottom, left, right = (operator.index(p) for p in pad)
    else:
        top = bottom = left = right = operator.index(pad)
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"padding amounts must be >= 0, got (top, bottom, left, right)={(top, bottom, left, right)}")
    *lead, h, w = x.shape
    out = np.full((*lead, h + top + bottom, w + left + right), value, dtype=_float_dtype(x))
    out[..., top : top + h, left : left + w] = x
    return out
    ### END SOLUTION


def same_padding(n: int, k: int, stride: int = 1) -> tuple[int, int]:
    """Padding ``(before, after)`` of one axis for Keras/TensorFlow ``padding="same"``.

    "Same" means the output has ``ceil(n / stride)`` positions (exactly ``n`` when the stride is
    1). The total padding is the smallest amount that lets that many windows fit:
    ``total = max((out - 1) * stride + k - n, 0)``. It is split as evenly as possible with
    ``before = total // 2``; when ``total`` is odd the extra pixel goes *after* (bottom/right),
    as in TensorFlow and PyTorch.

    Args:
        n: input size along the axis, ``>= 1``.
        k: kernel size, ``>= 1``.
        stride: stride along the axis, ``>= 1``.

    Returns:
        ``(before, after)``, two ints ``>= 0``.

    Raises:
        ValueError: for a non-positive ``n``, ``k`` or ``stride``.

    Examples:
        >>> same_padding(28, 3)            # a 3×3 kernel needs one pixel on each side
        (1, 1)
        >>> same_padding(28, 4)            # even kernel: the extra pixel goes after
        (1, 2)
        >>> same_padding(5, 3, stride=2)   # out = ceil(5/2) = 3, total = 2*2 + 3 - 5 = 2
        (1, 1)
        >>> same_padding(6, 3, stride=2)   # out = 3, total = 2*2 + 3 - 6 = 1
        (0, 1)

    Classic mistakes: using ``(k - 1) // 2`` on both sides (wrong for even kernels and strides),
    putting the extra pixel before, or letting ``total`` go negative when the stride exceeds the kernel.
    """
    ### BEGIN SOLUTION
    n, k, stride = (operator.index(v) for v in (n, k, stride))
    if n < 1 or k < 1:
        raise ValueError(f"input size n={n} and kernel size k={k} must both be >= 1")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got stride={stride}")
    out = -(-n // stride)  # ceil(n / stride) in integers
    total = max((out - 1) * stride + k - n, 0)
    return total // 2, total - total // 2
    ### END SOLUTION
