"""Exercises ``correlate2d`` and ``conv2d``: the operation inside a ``Conv2D`` layer.

A convolution layer slides a small window over its input and, at every position, takes the dot
product of the window with a learned kernel. Deep-learning libraries do *not* flip the kernel
(mathematically this is a cross-correlation), and neither do we.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .padding import pad2d, same_padding
from .strides import conv_output_size

Stride = int | tuple[int, int]
Padding = int | tuple[int, int] | str


### BEGIN SOLUTION
import operator

from numpy.lib.stride_tricks import sliding_window_view


def _float_dtype(*arrays: np.ndarray) -> type[np.floating]:
    """float32 when NumPy promotes the inputs to float32, float64 otherwise (integers included)."""
    return np.float32 if np.result_type(*arrays) == np.float32 else np.float64


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair of ints >= 1."""
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
    sh, sw = (operator.index(v) for v in pair)
    if sh < 1 or sw < 1:
        raise ValueError(f"{name} must be positive, got {name}={value!r}")
    return sh, sw


def _resolve_padding(
    padding: Padding, h: int, w: int, kh: int, kw: int, sh: int, sw: int
) -> tuple[int, int, int, int]:
    """Any accepted padding form as ``(top, bottom, left, right)``."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0, 0, 0
        if mode == "same":
            return (*same_padding(h, kh, sh), *same_padding(w, kw, sw))
        raise ValueError(f"unknown padding {padding!r}: expected an int, a pair (ph, pw), 'valid' or 'same'")
    pair = tuple(padding) if isinstance(padding, tuple | list) else (padding, padding)
    if len(pair) != 2:
        raise ValueError(f"padding must be an int, a pair (ph, pw), 'valid' or 'same', got {padding!r}")
    ph, pw = (operator.index(p) for p in pair)
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got padding={padding!r}")
    return ph, ph, pw, pw


### END SOLUTION
def correlate2d(image: ArrayLike, kernel: ArrayLike) -> np.ndarray:
    """Single-channel 2-D "valid" cross-correlation.

    ``out[i, j] = sum over (a, b) of image[i + a, j + b] * kernel[a, b]``: the kernel is laid over
    the image with its top-left corner at ``(i, j)`` and *not* flipped, exactly what a Keras or
    PyTorch convolution layer computes for one input and one output channel.

    Args:
        image: 2-D array ``(H, W)``; integer dtypes are accepted.
        kernel: 2-D array ``(kh, kw)`` with ``kh <= H`` and ``kw <= W``.

    Returns:
        Floating-point array ``(H - kh + 1, W - kw + 1)`` (float32 if both inputs are float32,
        float64 otherwise), equal to ``scipy.signal.correlate2d(image, kernel, mode="valid")``.

    Raises:
        ValueError: if an input is not 2-D or the kernel is larger than the image.

    Example:
        >>> image = np.array([[1, 2, 3],
        ...                   [4, 5, 6],
        ...                   [7, 8, 9]])
        >>> correlate2d(image, np.array([[1, 0],
        ...                              [0, -1]]))   # top-left minus bottom-right
        array([[-4., -4.],
               [-4., -4.]])

    Classic mistake: flipping the kernel (``kernel[::-1, ::-1]``) gives the textbook
    *convolution* instead; on the example it returns ``+4`` everywhere.
    """
    ### BEGIN SOLUTION
    image, kernel = np.asarray(image), np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"correlate2d needs 2-D image and kernel, got shapes {image.shape} and {kernel.shape}")
    (h, w), (kh, kw) = image.shape, kernel.shape
    if kh < 1 or kw < 1 or kh > h or kw > w:
        raise ValueError(f"kernel of shape {kernel.shape} does not fit in image of shape {image.shape}")
    dtype = _float_dtype(image, kernel)
    windows = sliding_window_view(image.astype(dtype, copy=False), (kh, kw))  # (H-kh+1, W-kw+1, kh, kw)
    return np.tensordot(windows, kernel.astype(dtype, copy=False), axes=2)
    ### END SOLUTION


def conv2d(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None = None,
    stride: Stride = 1,
    padding: Padding = 0,
) -> np.ndarray:
    """Multi-channel 2-D convolution of an NCHW batch, as ``torch.nn.functional.conv2d``.

    Every output channel ``f`` has one kernel ``w[f]`` of shape ``(C, kh, kw)`` that spans *all*
    input channels, plus one bias::

        out[n, f, i, j] = b[f] + sum over c, a, d of
                          xp[n, c, i*sh + a, j*sw + d] * w[f, c, a, d]

    where ``xp`` is ``x`` padded on H and W only. Output size per axis:
    ``(H + pad_total - kh) // sh + 1`` (see ``conv_output_size``).

    Args:
        x: input batch ``(N, C, H, W)``; integer dtypes (uint8 images) are accepted.
        w: kernels ``(F, C, kh, kw)``: F output channels (filters), C must match ``x``.
        b: biases ``(F,)``, or None for no bias.
        stride: int, or ``(sh, sw)`` for different vertical and horizontal steps; ``>= 1``.
        padding: int ``p`` (p zeros on every side), ``(ph, pw)`` (ph rows top and bottom, pw
            columns left and right), ``"valid"`` (no padding) or ``"same"`` (output
            ``ceil(H / sh) × ceil(W / sw)``, padding from ``same_padding``: with an odd total the
            extra row/column goes to the bottom/right, as in Keras).

    Returns:
        ``(N, F, Ho, Wo)``, float32 if the inputs are float32, float64 otherwise. Inputs are
        never modified.

    Raises:
        ValueError: wrong number of axes, channel mismatch between ``x`` and ``w``, bias of the
            wrong shape, kernel larger than the padded input, unknown padding string,
            negative padding or non-positive stride.

    Example:
        >>> x = np.arange(16).reshape(1, 1, 4, 4)      # one 4×4 image, values 0..15
        >>> w = np.ones((2, 1, 2, 2)); w[1] *= -1      # two 2×2 filters: sum and minus sum
        >>> conv2d(x, w, b=[0, 100], stride=2)
        array([[[[10., 18.],
                 [42., 50.]],
        <BLANKLINE>
                [[90., 82.],
                 [58., 50.]]]])
        >>> conv2d(x, w, padding="same").shape         # stride 1 keeps H and W
        (1, 2, 4, 4)

    Classic mistakes: flipping the kernel; convolving each channel separately instead of
    summing over C; applying the stride on one axis only; padding the N or C axes; an
    off-by-one output size.
    """
    ### BEGIN SOLUTION
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d needs x of shape (N, C, H, W) and w of shape (F, C, kh, kw), got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    f, cw, kh, kw = w.shape
    if c != cw:
        raise ValueError(f"channel mismatch: x of shape {x.shape} has {c} channels but w of shape {w.shape} expects {cw}")
    arrays = [x, w]
    if b is not None:
        b = np.asarray(b)
        if b.shape != (f,):
            raise ValueError(f"bias must have shape ({f},) to match w of shape {w.shape}, got {b.shape}")
        arrays.append(b)
    sh, sw = _pair(stride, "stride")
    top, bottom, left, right = _resolve_padding(padding, h, wd, kh, kw, sh, sw)
    hp, wp = h + top + bottom, wd + left + right
    if kh < 1 or kw < 1 or kh > hp or kw > wp:
        raise ValueError(
            f"kernel {kh}x{kw} (w of shape {w.shape}) does not fit in the padded input {hp}x{wp} "
            f"(x of shape {x.shape}, padding (top, bottom, left, right)={(top, bottom, left, right)})"
        )
    ho, wo = conv_output_size(hp, kh, sh), conv_output_size(wp, kw, sw)
    dtype = _float_dtype(*arrays)

    xp = pad2d(x, (top, bottom, left, right)) if top or bottom or left or right else x
    xp = xp.astype(dtype, copy=False)
    # im2col: every window as a column, then one BLAS matrix product for the whole batch.
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C, Ho, Wo, kh, kw)
    cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo)  # copy: (N, C*kh*kw, Ho*Wo)
    out = np.matmul(w.reshape(f, c * kh * kw).astype(dtype, copy=False), cols)  # (N, F, Ho*Wo)
    out = out.reshape(n, f, ho, wo)
    if b is not None:
        out += b.astype(dtype, copy=False).reshape(1, f, 1, 1)
    return out
    ### END SOLUTION
