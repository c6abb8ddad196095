"""A catalogue of realistic wrong submissions, for measuring the grader's feedback on mistakes.

Each :class:`Entry` is code appended to a copy of the reference module (it redefines one function, as
a student's wrong version would), the exercises to grade it with, what may be named as its cause
(``accept``: catalogue or blame ids; empty for a mistake that no catalogue entry describes) and the
concepts (course.yml) that its mistake may cost, besides ``combined`` (the random cases that mix
every feature). ``classic`` entries are mistakes of ``coursekit/mistakes.py`` (or a wrong helper);
the others are not in it. Written independently of the catalogue's ``recompute`` functions: naive loops
and wrapped reference code with one wrong line, as students err.

Used by ``benchmarks/mistake_feedback.py`` (all of them) and ``tests/test_mistake_catalogue.py`` (a few).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    name: str
    module: str
    exercises: tuple[str, ...]
    code: str
    classic: bool
    accept: frozenset = frozenset()
    #: exercise -> concepts the mistake may cost (``combined`` always may)
    concepts: dict = field(default_factory=dict)


#: A loop convolution that uses the student's helpers, with hooks for one wrong line each.
NAIVE_CONV = '''
def _naive_conv2d(x, w, b=None, stride=1, padding=0, bug=None):
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"shapes {x.shape} and {w.shape} do not fit")
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    if sh < 1 or sw < 1:
        raise ValueError("stride must be >= 1")
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    if padding == "same":
        if bug == "same_no_stride":
            t, bo = same_padding(h, kh)
            l, r = same_padding(wd, kw)
        else:
            t, bo = same_padding(h, kh, sh)
            l, r = same_padding(wd, kw, sw)
    elif padding == "valid":
        t = bo = l = r = 0
    elif isinstance(padding, str):
        raise ValueError(f"unknown padding {padding!r}")
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        t, bo, l, r = ph, ph, pw, pw
    if bug == "pad_one_side":
        bo = r = 0
    if kh > h + t + bo or kw > wd + l + r:
        raise ValueError("kernel larger than the padded input")
    xp = pad2d(x, (t, bo, l, r)) if (t or bo or l or r) else x.astype(float)
    ho = conv_output_size(h + t + bo, kh, sh)
    wo = conv_output_size(wd + l + r, kw, sw)
    if bug == "sizes_by_hand":
        ho, wo = (h + t + bo - kh) // sh + 1, (wd + l + r - kw) // sw + 1
    dt = np.float32 if all(np.asarray(a).dtype == np.float32 for a in (x, w) + (() if b is None else (b,))) else np.float64
    out = np.zeros((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out += np.asarray(b, dtype=float)[None, :, None, None]
    return out.astype(dt)
'''

_C = "classic"


def _e(name, module, exercises, code, classic, accept=(), **concepts) -> Entry:
    code = NAIVE_CONV + textwrap.dedent(code[len(NAIVE_CONV):]) if code.startswith(NAIVE_CONV) else textwrap.dedent(code)
    return Entry(name, module, tuple(exercises.split(",")), code, classic, frozenset(accept),
                 {k: set(v.split(",")) for k, v in concepts.items()})


ENTRIES: tuple[Entry, ...] = (
    # ----------------------------------------------------------------- classic: in coursekit/mistakes.py
    _e("conv_output_size: no +1", "strides", "conv_output_size", """
        def conv_output_size(n, k, stride=1, padding=0):
            if n < 1 or k < 1 or stride < 1 or padding < 0 or k > n + 2 * padding:
                raise ValueError("bad sizes")
            return (n + 2 * padding - k) // stride
        """, True, ["conv_output_size.missing_plus_one"],
       conv_output_size="no_stride_padding,stride,padding"),
    _e("conv_output_size: padding added once", "strides", "conv_output_size", """
        def conv_output_size(n, k, stride=1, padding=0):
            if n < 1 or k < 1 or stride < 1 or padding < 0 or k > n + 2 * padding:
                raise ValueError("bad sizes")
            return (n + padding - k) // stride + 1
        """, True, ["conv_output_size.padding_once"], conv_output_size="padding"),
    _e("conv_output_size: / instead of //", "strides", "conv_output_size", """
        def conv_output_size(n, k, stride=1, padding=0):
            if n < 1 or k < 1 or stride < 1 or padding < 0 or k > n + 2 * padding:
                raise ValueError("bad sizes")
            return (n + 2 * padding - k) / stride + 1
        """, True, ["conv_output_size.true_division"], conv_output_size="no_stride_padding,stride,padding"),
    _e("same_padding: (k - 1) // 2 each side", "padding", "same_padding", """
        def same_padding(n, k, stride=1):
            return (k - 1) // 2, (k - 1) // 2
        """, True, ["same_padding.half_kernel"], same_padding="stride_one,stride"),
    _e("same_padding: extra pixel before", "padding", "same_padding", """
        import math
        def same_padding(n, k, stride=1):
            total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
            return total - total // 2, total // 2
        """, True, ["same_padding.split_reversed"], same_padding="stride_one,stride"),
    _e("same_padding: stride ignored", "padding", "same_padding", """
        def same_padding(n, k, stride=1):
            total = max(k - 1, 0)
            return total // 2, total - total // 2
        """, True, ["same_padding.stride_ignored"], same_padding="stride"),
    _e("pad2d: np.pad on every axis", "padding", "pad2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            if isinstance(pad, int):
                if pad < 0:
                    raise ValueError("negative")
                return np.pad(np.asarray(x, dtype=float), pad, constant_values=value)
            return _ref_pad2d(x, pad, value)
        """, True, ["pad2d.all_axes"], pad2d="values,value,no_mutation,dtypes"),
    _e("pad2d: top and left only", "padding", "pad2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            t, b, l, r = (pad,) * 4 if isinstance(pad, int) else pad
            _ref_pad2d(x, pad, value)
            return _ref_pad2d(x, (t, 0, l, 0), value)
        """, True, ["pad2d.one_side_only"], pad2d="values,tuple,value,dtypes,no_mutation"),
    _e("pad2d: H and W swapped", "padding", "pad2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            if isinstance(pad, int):
                return _ref_pad2d(x, pad, value)
            t, b, l, r = pad
            _ref_pad2d(x, pad, value)
            return _ref_pad2d(x, (l, r, t, b), value)
        """, True, ["pad2d.hw_swapped"], pad2d="tuple,no_mutation"),
    _e("pad2d: value ignored", "padding", "pad2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            return _ref_pad2d(x, pad, 0.0)
        """, True, ["pad2d.value_ignored"], pad2d="value,no_mutation"),
    _e("correlate2d: kernel flipped", "conv", "correlate2d", """
        _ref_correlate2d = correlate2d
        def correlate2d(image, kernel):
            return _ref_correlate2d(image, np.asarray(kernel)[::-1, ::-1])
        """, True, ["correlate2d.kernel_flipped"], correlate2d="values,shapes,dtypes"),
    _e("correlate2d: range(H - kh)", "conv", "correlate2d", """
        def correlate2d(image, kernel):
            image, kernel = np.asarray(image), np.asarray(kernel)
            if image.ndim != 2 or kernel.ndim != 2 or kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
                raise ValueError("bad shapes")
            kh, kw = kernel.shape
            ho, wo = image.shape[0] - kh, image.shape[1] - kw
            dt = np.float32 if image.dtype == np.float32 and kernel.dtype == np.float32 else np.float64
            out = np.zeros((ho, wo), dtype=dt)
            for i in range(ho):
                for j in range(wo):
                    out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
            return out
        """, True, ["correlate2d.off_by_one"], correlate2d="values,shapes,dtypes,no_mutation"),
    _e("conv2d: kernel flipped", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _ref_conv2d(x, np.asarray(w)[..., ::-1, ::-1], b, stride=stride, padding=padding)
        """, True, ["conv2d.kernel_flipped"], conv2d="values,channels,bias,stride,padding,dtypes,no_mutation"),
    _e("conv2d: bias not added", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _ref_conv2d(x, w, None, stride=stride, padding=padding)
        """, True, ["conv2d.bias_missing"], conv2d="bias,no_mutation"),
    _e("conv2d: first channel only", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            x, w = np.asarray(x), np.asarray(w)
            if x.ndim == 4 and w.ndim == 4 and x.shape[1] == w.shape[1]:
                return _ref_conv2d(x[:, :1], w[:, :1], b, stride=stride, padding=padding)
            return _ref_conv2d(x, w, b, stride=stride, padding=padding)
        """, True, ["conv2d.first_channel_only"], conv2d="channels,no_mutation"),
    _e("conv2d: stride ignored", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            _ref_conv2d(x, w, b, stride=stride, padding=padding)
            return _ref_conv2d(x, w, b, stride=1, padding=padding)
        """, True, ["conv2d.stride_ignored"], conv2d="stride,padding,no_mutation"),
    _e("conv2d: stride on rows only", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            sh = stride if isinstance(stride, int) else stride[0]
            _ref_conv2d(x, w, b, stride=stride, padding=padding)
            return _ref_conv2d(x, w, b, stride=(sh, 1), padding=padding)
        """, True, ["conv2d.stride_rows_only"], conv2d="stride,padding,no_mutation"),
    _e("maxpool2d: ceil mode", "pooling", "maxpool2d", """
        _ref_maxpool2d = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            x = np.asarray(x)
            _ref_maxpool2d(x, kernel_size, stride)
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
            h, w = x.shape[2:]
            eh = -(-(h - kh) // sh) * sh + kh - h if h >= kh else 0
            ew = -(-(w - kw) // sw) * sw + kw - w if w >= kw else 0
            xp = np.pad(x.astype(np.float32 if x.dtype == np.float32 else float), [(0, 0), (0, 0), (0, eh), (0, ew)], constant_values=-np.inf)
            return _ref_maxpool2d(xp, kernel_size, stride)
        """, True, ["maxpool2d.ceil_mode"], maxpool2d="floor,rectangular,stride,no_mutation"),
    _e("maxpool2d: windows move by 1 without a stride", "pooling", "maxpool2d", """
        _ref_maxpool2d = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            return _ref_maxpool2d(x, kernel_size, 1 if stride is None else stride)
        """, True, ["maxpool2d.overlapping_windows"], maxpool2d="values,floor,rectangular,dtypes,no_mutation"),
    _e("avgpool2d: divided by kh only", "pooling", "avgpool2d", """
        _ref_avgpool2d = avgpool2d
        def avgpool2d(x, kernel_size, stride=None):
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            return _ref_avgpool2d(x, kernel_size, stride) * kw
        """, True, ["avgpool2d.divides_by_k"], avgpool2d="values,floor,rectangular,stride,dtypes,no_mutation"),
    _e("conv2d_backward: db per sample", "backprop", "conv2d_backward", """
        _ref_conv2d_backward = conv2d_backward
        def conv2d_backward(dout, x, w, stride=1, padding=0):
            dx, dw, db = _ref_conv2d_backward(dout, x, w, stride=stride, padding=padding)
            return dx, dw, np.asarray(dout, dtype=float).sum(axis=(2, 3))
        """, True, ["conv2d_backward.db_not_summed_over_batch"], conv2d_backward="db,no_mutation"),
    _e("maxpool2d_backward: every tied max", "backprop", "maxpool2d_backward", """
        def maxpool2d_backward(dout, x, kernel_size, stride=None):
            x, dout = np.asarray(x, dtype=float), np.asarray(dout, dtype=float)
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
            dx = np.zeros_like(x)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    mask = win == win.max(axis=(2, 3), keepdims=True)
                    dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += mask * dout[:, :, i, j][:, :, None, None]
            return dx
        """, True, ["maxpool2d_backward.ties_all"], maxpool2d_backward="ties,no_mutation"),
    _e("same_padding split reversed, seen through conv2d", "padding", "conv2d", """
        import math
        def same_padding(n, k, stride=1):
            total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
            return total - total // 2, total // 2
        """, True, ["blame.same_padding", "conv2d.same_split_reversed"], conv2d="padding"),
    _e("pad2d top/left only, seen through conv2d", "padding", "conv2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            t, b, l, r = (pad,) * 4 if isinstance(pad, int) else pad
            return _ref_pad2d(x, (t, 0, l, 0), value)
        """, True, ["blame.pad2d"], conv2d="padding,no_mutation"),
    _e("conv_output_size without +1, seen through conv2d", "strides", "conv2d", """
        def conv_output_size(n, k, stride=1, padding=0):
            return (n + 2 * padding - k) // stride
        """, True, ["blame.conv_output_size"], conv2d="shape,values,channels,bias,stride,padding,dtypes,no_mutation"),
    # ----------------------------------------------------------------- not in the catalogue
    _e("same_padding: floor instead of ceil", "padding", "same_padding", """
        def same_padding(n, k, stride=1):
            out = n // stride
            total = max((out - 1) * stride + k - n, 0)
            return total // 2, total - total // 2
        """, False, same_padding="stride"),
    _e("same_padding: after = total // 2", "padding", "same_padding", """
        import math
        def same_padding(n, k, stride=1):
            total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
            return total // 2, total // 2
        """, False, same_padding="stride_one,stride"),
    _e("same_padding: a list", "padding", "same_padding", """
        _ref_same_padding = same_padding
        def same_padding(n, k, stride=1):
            return list(_ref_same_padding(n, k, stride))
        """, False, same_padding="stride_one,stride"),
    _e("conv_output_size: (n + 2p - k + 1) // s", "strides", "conv_output_size", """
        def conv_output_size(n, k, stride=1, padding=0):
            if n < 1 or k < 1 or stride < 1 or padding < 0 or k > n + 2 * padding:
                raise ValueError("bad sizes")
            return (n + 2 * padding - k + 1) // stride + (0 if stride == 1 else 1)  # "round up" by adding 1
        """, False, conv_output_size="stride"),
    _e("conv2d: stride not passed to same_padding", "conv", "conv2d", NAIVE_CONV + """
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _naive_conv2d(x, w, b, stride, padding, bug="same_no_stride")
        """, False, conv2d="padding"),
    _e("conv2d: padding only top and left", "conv", "conv2d", NAIVE_CONV + """
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _naive_conv2d(x, w, b, stride, padding, bug="pad_one_side")
        """, False, conv2d="padding"),
    _e("pad2d: float32 upcast to float64", "padding", "pad2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            return _ref_pad2d(np.asarray(x, dtype=np.float64), pad, value)
        """, False, pad2d="dtypes"),
    _e("conv2d: float32 upcast to float64", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _ref_conv2d(np.asarray(x, dtype=np.float64), w, b, stride=stride, padding=padding)
        """, False, conv2d="dtypes"),
    _e("conv2d: the first bias added to every channel", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            out = _ref_conv2d(x, w, None, stride=stride, padding=padding)
            return out if b is None else out + np.asarray(b, dtype=out.dtype)[0]
        """, False, conv2d="bias"),
    _e("conv2d: output transposed", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return np.ascontiguousarray(_ref_conv2d(x, w, b, stride=stride, padding=padding).swapaxes(-1, -2))
        """, False, conv2d="shape,values,channels,bias,stride,padding,dtypes,no_mutation"),
    _e("conv2d: kernel transposed", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            w = np.asarray(w)
            return _ref_conv2d(x, np.ascontiguousarray(w.swapaxes(-1, -2)), b, stride=stride, padding=padding) if w.shape[-1] == w.shape[-2] else _ref_conv2d(x, w, b, stride=stride, padding=padding)
        """, False, conv2d="values,channels,bias,stride,padding,dtypes,no_mutation"),
    _e("conv2d: every sample gets the first one's output", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            x = np.asarray(x)
            out = _ref_conv2d(x, w, b, stride=stride, padding=padding)
            return np.ascontiguousarray(np.broadcast_to(out[:1], out.shape))
        """, False, conv2d="values,channels,bias,stride,padding,dtypes,no_mutation"),
    _e("conv2d: stride (sw, sh) swapped", "conv", "conv2d", """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            s = stride if isinstance(stride, int) else (stride[1], stride[0])
            _ref_conv2d(x, w, b, stride=stride, padding=padding)
            return _ref_conv2d(x, w, b, stride=s, padding=padding)
        """, False, conv2d="stride,padding"),
    _e("correlate2d: output flipped", "conv", "correlate2d", """
        _ref_correlate2d = correlate2d
        def correlate2d(image, kernel):
            return np.ascontiguousarray(_ref_correlate2d(image, kernel)[::-1, ::-1])
        """, False, correlate2d="values,shapes,dtypes,no_mutation"),
    _e("correlate2d: integer accumulator", "conv", "correlate2d", """
        _ref_correlate2d = correlate2d
        def correlate2d(image, kernel):
            out = _ref_correlate2d(image, kernel)
            return np.trunc(out).astype(out.dtype)
        """, False, correlate2d="values,shapes,dtypes,no_mutation"),
    _e("correlate2d: returns a list", "conv", "correlate2d", """
        _ref_correlate2d = correlate2d
        def correlate2d(image, kernel):
            return _ref_correlate2d(image, kernel).tolist()
        """, False, correlate2d="values,shapes,dtypes,no_mutation"),
    _e("pad2d: edge values instead of a constant", "padding", "pad2d", """
        _ref_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            out = _ref_pad2d(x, pad, value)
            t, b, l, r = (pad,) * 4 if isinstance(pad, int) else pad
            x = np.asarray(x)
            if x.shape[-1] and x.shape[-2] and (t or b or l or r):
                return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)], mode="edge").astype(out.dtype)
            return out
        """, False, pad2d="values,tuple,value,dtypes,no_mutation"),
    _e("maxpool2d: last row ignored", "pooling", "maxpool2d", """
        _ref_maxpool2d = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            x = np.asarray(x)
            out = _ref_maxpool2d(x, kernel_size, stride)
            kh = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
            if x.shape[2] > kh:
                cut = _ref_maxpool2d(np.concatenate([x[:, :, :-1], np.full_like(x[:, :, -1:], x.min())], axis=2), kernel_size, stride)
                return cut
            return out
        """, False, maxpool2d="values,floor,rectangular,stride,dtypes,no_mutation"),
    _e("maxpool2d: channel 0 for every channel", "pooling", "maxpool2d", """
        _ref_maxpool2d = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            out = _ref_maxpool2d(x, kernel_size, stride)
            return np.ascontiguousarray(np.broadcast_to(out[:, :1], out.shape))
        """, False, maxpool2d="values,floor,rectangular,stride,dtypes,no_mutation"),
    _e("avgpool2d: divided by kh * kh", "pooling", "avgpool2d", """
        _ref_avgpool2d = avgpool2d
        def avgpool2d(x, kernel_size, stride=None):
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            return _ref_avgpool2d(x, kernel_size, stride) * kw / kh
        """, False, avgpool2d="rectangular,stride,no_mutation"),
    _e("conv2d_backward: dw averaged over the batch", "backprop", "conv2d_backward", """
        _ref_conv2d_backward = conv2d_backward
        def conv2d_backward(dout, x, w, stride=1, padding=0):
            dx, dw, db = _ref_conv2d_backward(dout, x, w, stride=stride, padding=padding)
            return dx, dw / np.shape(x)[0], db
        """, False, conv2d_backward="values,stride,padding,no_mutation"),
    _e("conv2d_backward: db a mean", "backprop", "conv2d_backward", """
        _ref_conv2d_backward = conv2d_backward
        def conv2d_backward(dout, x, w, stride=1, padding=0):
            dx, dw, db = _ref_conv2d_backward(dout, x, w, stride=stride, padding=padding)
            return dx, dw, np.asarray(dout, dtype=db.dtype).mean(axis=(0, 2, 3))
        """, False, conv2d_backward="db,no_mutation"),
    _e("maxpool2d_backward: gradient to the window's first pixel", "backprop", "maxpool2d_backward", """
        def maxpool2d_backward(dout, x, kernel_size, stride=None):
            x, dout = np.asarray(x, dtype=float), np.asarray(dout, dtype=float)
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
            dx = np.zeros_like(x)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[:, :, i * sh, j * sw] += dout[:, :, i, j]
            return dx
        """, False, maxpool2d_backward="values,ties,overlap,no_mutation"),
)

CLASSIC = tuple(e for e in ENTRIES if e.classic)
UNLISTED = tuple(e for e in ENTRIES if not e.classic)
