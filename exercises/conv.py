# Generated from solutions/conv.py by `grader stubs`: edit the bodies that raise
# NotImplementedError. Keep the signatures: the grader calls them as they are.
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
    raise NotImplementedError("correlate2d: replace this line with your code (conv.correlate2d)")


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
    raise NotImplementedError("conv2d: replace this line with your code (conv.conv2d)")
