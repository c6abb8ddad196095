# Generated from solutions/strides.py by `grader stubs`: edit the bodies that raise
# NotImplementedError. Keep the signatures: the grader calls them as they are.
"""Exercise ``conv_output_size``: how big is the feature map a convolution produces?

A 3×3 window slid over a 28×28 MNIST digit fits in 26 positions per axis, which is why the
first convnet layer in the chapter outputs 26×26 feature maps. Padding grows the input before
the window slides; a stride skips positions. Pooling layers obey the same formula.
"""
from __future__ import annotations


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Number of window positions along one axis.

    Args:
        n: input size along the axis (height or width), ``n >= 1``.
        k: window (kernel) size along the same axis, ``k >= 1``.
        stride: distance between two consecutive windows, ``stride >= 1``.
        padding: zeros added on *each* side of the axis, ``padding >= 0``.

    Returns:
        ``(n + 2*padding - k) // stride + 1``: the window starts at 0, stride, 2*stride, ...
        and must end inside the padded input, so the last, incomplete step is dropped (floor).

    Raises:
        ValueError: for a non-positive size, kernel or stride, a negative padding, or when the
            kernel does not fit in the padded input (the formula would give less than 1).

    Examples:
        >>> conv_output_size(28, 3)              # the chapter's first Conv2D layer
        26
        >>> conv_output_size(26, 2, stride=2)    # 2×2 max pooling halves it
        13
        >>> conv_output_size(5, 3, stride=2, padding=1)
        3
        >>> conv_output_size(6, 3, stride=2)     # floor: (6 - 3) / 2 = 1.5 -> 1, plus 1
        2

    Classic mistakes: forgetting the ``+ 1`` (off by one), adding the padding only once
    instead of on both sides, or rounding up instead of down.
    """
    raise NotImplementedError("conv_output_size: replace this line with your code (strides.conv_output_size)")
