"""The features a hidden check's case switches on, computed from the call the student's function gets.

A check named after a feature varies that feature alone (issue 18 §5): everywhere else the images
are square, one channel and one item, the stride 1, no padding, no bias, float input in C order. Each
check declares the features its cases may switch on (``Check.varies``); a test
(``tests/test_check_titles.py``) runs every check, property searches included, records each call
and asserts :func:`call_features` of it is within the declaration.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: What a "combined", "errors" or no-mutation check declares: any case at all.
ANY = frozenset({"any"})

#: Every feature, with what switches it on.
FEATURES: dict[str, str] = {
    "batch": "more than one item (N > 1)",
    "channels": "more than one input channel (C > 1)",
    "non_square": "an image with H != W",
    "other_ndim": "an array that is not 4-D (pad2d)",
    "rectangular_kernel": "a kernel or window with kh != kw",
    "bias": "a bias is passed",
    "stride": "a stride other than 1 (convolution) or than the window (pooling)",
    "padding": "padding other than none (an int, a tuple or 'same')",
    "tuple_pad": "pad2d's pad given as (top, bottom, left, right)",
    "fill_value": "pad2d's value is passed",
    "integer_dtype": "an integer (uint8, int64) input",
    "noncontiguous": "an input that is not C-contiguous (a sliced view)",
    "floor": "pooling windows that leave rows or columns over",
    "overlap": "pooling windows that overlap (stride < window)",
    "ties": "a pooling window whose maximum is held twice",
}


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))


def _image(x: np.ndarray) -> set[str]:
    found: set[str] = set()
    if x.ndim != 4:
        found.add("other_ndim")
    if x.ndim >= 4 and x.shape[0] > 1:
        found.add("batch")
    if x.ndim >= 3 and x.shape[-3] > 1:
        found.add("channels")
    if x.ndim >= 2 and x.shape[-2] != x.shape[-1]:
        found.add("non_square")
    if x.dtype.kind in "iub":
        found.add("integer_dtype")
    if not x.flags.c_contiguous:
        found.add("noncontiguous")
    return found


def _conv(x: np.ndarray, w: np.ndarray, bias: Any, stride: Any, padding: Any) -> set[str]:
    found = _image(x) - {"other_ndim"}
    if w.shape[-2] != w.shape[-1]:
        found.add("rectangular_kernel")
    if bias is not None:
        found.add("bias")
    if _pair(stride) != (1, 1):
        found.add("stride")
    if padding not in ("valid", 0) and (isinstance(padding, str) or _pair(padding) != (0, 0)):
        found.add("padding")
    return found


def _ties(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> bool:
    h_out, w_out = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1
    for i in range(h_out):
        for j in range(w_out):
            window = x[..., i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(*x.shape[:-2], -1)
            if ((window == window.max(axis=-1, keepdims=True)).sum(axis=-1) > 1).any():
                return True
    return False


def _pool(x: np.ndarray, kernel: Any, stride: Any, ties: bool) -> set[str]:
    found = _image(x) - {"other_ndim"}
    (kh, kw) = _pair(kernel)
    (sh, sw) = (kh, kw) if stride is None else _pair(stride)
    if kh != kw:
        found.add("rectangular_kernel")
    if (sh, sw) != (kh, kw):
        found.add("stride")
    if sh < kh or sw < kw:
        found.add("overlap")
    if (x.shape[-2] - kh) % sh or (x.shape[-1] - kw) % sw:
        found.add("floor")
    if ties and _ties(x, kh, kw, sh, sw):
        found.add("ties")
    return found


def call_features(function: str, args: tuple, kwargs: dict[str, Any]) -> set[str]:
    """The features that the call ``function(*args, **kwargs)`` of an exercise function switches on."""
    named = dict(kwargs)
    if function == "conv_output_size":
        stride, padding = named.get("stride", args[2] if len(args) > 2 else 1), named.get("padding", args[3] if len(args) > 3 else 0)
        return ({"stride"} if stride != 1 else set()) | ({"padding"} if padding != 0 else set())
    if function == "same_padding":
        return {"stride"} if named.get("stride", args[2] if len(args) > 2 else 1) != 1 else set()
    if function == "pad2d":
        found = _image(np.asarray(args[0]))
        pad = args[1] if len(args) > 1 else named["pad"]
        if not isinstance(pad, (int, np.integer)):
            found.add("tuple_pad")
        if "value" in named or len(args) > 2:
            found.add("fill_value")
        return found
    if function == "correlate2d":
        image, kernel = np.asarray(args[0]), np.asarray(args[1])
        found = _image(image) - {"other_ndim"}
        if kernel.shape[0] != kernel.shape[1]:
            found.add("rectangular_kernel")
        return found
    if function in ("conv2d", "conv2d_backward"):
        x, w = (args[0], args[1]) if function == "conv2d" else (args[1], args[2])
        bias = (args[2] if len(args) > 2 else named.get("b")) if function == "conv2d" else None
        return _conv(np.asarray(x), np.asarray(w), bias, named.get("stride", 1), named.get("padding", 0))
    if function in ("maxpool2d", "avgpool2d", "maxpool2d_backward"):
        x, kernel = (args[0], args[1]) if function != "maxpool2d_backward" else (args[1], args[2])
        return _pool(np.asarray(x), kernel, named.get("stride"), ties=function == "maxpool2d_backward")
    raise KeyError(f"no features are defined for {function}")
