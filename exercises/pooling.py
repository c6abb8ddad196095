# Generated from solutions/pooling.py by `grader stubs`: edit the bodies that raise
# NotImplementedError. Keep the signatures: the grader calls them as they are.
"""Exercises ``maxpool2d`` and ``avgpool2d``: downsampling feature maps.

In the chapter's convnet each ``MaxPooling2D(2)`` halves the height and width of the feature maps
(26×26 → 13×13, 11×11 → 5×5). Pooling keeps the number of channels, has no weights, and works on
every channel separately. This module is self-contained: it uses no other exercise module.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

Size = int | tuple[int, int]


def maxpool2d(x: ArrayLike, kernel_size: Size, stride: Size | None = None) -> np.ndarray:
    """Max pooling of an NCHW batch, as ``torch.nn.functional.max_pool2d`` (no padding, floor mode).

    ``out[n, c, i, j] = max over (a, b) of x[n, c, i*sh + a, j*sw + b]`` for ``0 <= a < kh``,
    ``0 <= b < kw``. Output size per axis: ``(H - kh) // sh + 1``; rows or columns left over
    at the bottom/right that do not fill a whole window are dropped.

    Args:
        x: ``(N, C, H, W)``; integer dtypes are accepted.
        kernel_size: window size, int or ``(kh, kw)``.
        stride: int or ``(sh, sw)``; defaults to the kernel size, so windows tile the input
            without overlapping.

    Returns:
        ``(N, C, Ho, Wo)``, float32 if ``x`` is float32, float64 otherwise; ``x`` is not modified.
        A NaN in a window makes that output NaN.

    Raises:
        ValueError: ``x`` is not 4-D, a size or stride is not positive, or the window is
            larger than the input.

    Example:
        >>> x = np.array([[[[1, 2, 0, 5, 9],
        ...                 [3, 4, 6, 1, 9],
        ...                 [0, 0, 7, 8, 9]]]])     # (1, 1, 3, 5)
        >>> maxpool2d(x, 2)                          # last row and column are dropped
        array([[[[4., 6.]]]])

    Classic mistakes: defaulting the stride to 1 (windows then overlap and the map barely
    shrinks), pooling across channels, or rounding the output size up.
    """
    raise NotImplementedError("maxpool2d: replace this line with your code (pooling.maxpool2d)")


def avgpool2d(x: ArrayLike, kernel_size: Size, stride: Size | None = None) -> np.ndarray:
    """Average pooling of an NCHW batch, as ``torch.nn.functional.avg_pool2d`` (no padding, floor mode).

    ``out[n, c, i, j] = mean over (a, b) of x[n, c, i*sh + a, j*sw + b]``: every window has
    exactly ``kh * kw`` elements. Same output size, stride default and floor rule as ``maxpool2d``.

    Args:
        x: ``(N, C, H, W)``; integer dtypes are accepted (uint8 sums must not wrap around).
        kernel_size: window size, int or ``(kh, kw)``.
        stride: int or ``(sh, sw)``; defaults to the kernel size.

    Returns:
        ``(N, C, Ho, Wo)``, float32 if ``x`` is float32, float64 otherwise; ``x`` is not modified.

    Raises:
        ValueError: as ``maxpool2d``.

    Example:
        >>> x = np.array([[[[250, 250, 1, 2],
        ...                 [250, 250, 3, 4]]]], dtype=np.uint8)
        >>> avgpool2d(x, 2)
        array([[[[250. ,   2.5]]]])

    Classic mistake: summing in uint8, where ``250 + 250`` wraps around to 244.
    """
    raise NotImplementedError("avgpool2d: replace this line with your code (pooling.avgpool2d)")
