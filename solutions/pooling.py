"""Exercises ``maxpool2d`` and ``avgpool2d``: downsampling feature maps.

In the chapter's convnet each ``MaxPooling2D(2)`` halves the height and width of the feature maps
(26×26 → 13×13, 11×11 → 5×5). Pooling keeps the number of channels, has no weights, and works on
every channel separately. This module is self-contained: it uses no other exercise module.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

Size = int | tuple[int, int]


### BEGIN SOLUTION
import operator


def _float_dtype(*arrays: np.ndarray) -> type[np.floating]:
    """float32 when NumPy promotes the inputs to float32, float64 otherwise (integers included)."""
    return np.float32 if np.result_type(*arrays) == np.float32 else np.float64


def _pair(value: Size, name: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair of ints >= 1."""
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
    a, b = (operator.index(v) for v in pair)
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be positive, got {name}={value!r}")
    return a, b


def _window_tiles(x: ArrayLike, kernel_size: Size, stride: Size | None, name: str):
    """Validate the arguments; yield, for each offset (a, b) inside the window, the strided view
    ``x[:, :, a + i*sh, b + j*sw]`` over all output positions (i, j)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} needs x of shape (N, C, H, W), got {x.shape}")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    h, w = x.shape[2:]
    if kh > h or kw > w:
        raise ValueError(f"pooling window {kh}x{kw} is larger than the input x of shape {x.shape}")
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    xf = x.astype(_float_dtype(x), copy=False)
    # A loop over the kh*kw offsets of the window (4 for 2×2 pooling), never over pixels.
    tiles = (
        xf[:, :, a : a + (ho - 1) * sh + 1 : sh, b : b + (wo - 1) * sw + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    )
    return tiles, kh * kw


### END SOLUTION
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
    ### BEGIN SOLUTION
    tiles, _ = _window_tiles(x, kernel_size, stride, "maxpool2d")
    out = next(tiles).copy()
    for tile in tiles:
        np.maximum(out, tile, out=out)
    return out
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    tiles, count = _window_tiles(x, kernel_size, stride, "avgpool2d")
    out = next(tiles).copy()
    for tile in tiles:
        out += tile
    out /= count
    return out
    ### END SOLUTION
