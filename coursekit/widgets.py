"""Interactive explorers for the course notebooks (ipywidgets + matplotlib; ships to students).

Four explorers, each a function returning a widget to display in JupyterLab:

* :func:`conv_explorer` -- slide a 3×3 kernel over an image, watch the output map fill up, and see
  the output-size formula with the numbers filled in;
* :func:`pool_explorer` -- the same for max / average pooling;
* :func:`feature_map_viewer` -- what every channel of every conv layer of a trained model responds to;
* :func:`pooling_comparison` -- the seed's model and its no-pooling variant, layer by layer.

The explorers call *your* functions (``exercises``; ``solutions`` with ``COURSE_IMPL=solutions``)
through :mod:`coursekit.notebook`; while one is a stub the explorer shows the friendly
"not implemented yet" line instead of its result. Everything they draw is computed by plain
functions (:func:`conv_frame`, :func:`pool_frame`, :func:`feature_maps`, :func:`layer_shapes`, ...),
which the project tests without a browser. Stable CSS classes (``conv-explorer-formula``, ...) let a
browser test find the parts.
"""
from __future__ import annotations

import html
import io
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from coursekit import notebook as nb

# -- inputs: kernels and images ------------------------------------------------------------------

KERNEL_PRESETS: dict[str, np.ndarray] = {
    name: np.asarray(values, dtype=np.float64)
    for name, values in {
        "vertical edges (Sobel)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "horizontal edges (Sobel)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        "outline (Laplacian)": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
        "blur (box)": np.full((3, 3), 1 / 9),
        "blur (Gaussian)": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
        "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
        "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    }.items()
}
CUSTOM = "custom (edit the 3×3 values)"
DIGIT = "MNIST test digit"


def synthetic_images(size: int = 12) -> dict[str, np.ndarray]:
    """Small float images in [0, 1] whose patterns make each kernel's effect easy to see."""
    s = size
    square = np.zeros((s, s))
    square[s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 1.0
    cross = np.zeros((s, s))
    cross[s // 2 - 1 : s // 2 + 1, :] = 1.0
    cross[:, s // 2 - 1 : s // 2 + 1] = 1.0
    edge = np.zeros((s, s))
    edge[:, s // 2 :] = 1.0
    diagonal = np.eye(s) + np.eye(s, k=1)
    checker = ((np.arange(s)[:, None] // 2 + np.arange(s)[None, :] // 2) % 2).astype(np.float64)
    return {"square": square, "cross": cross, "vertical edge": edge, "diagonal line": diagonal,
            "checkerboard": checker}


@lru_cache(maxsize=1)
def _test_digits() -> tuple[np.ndarray, np.ndarray]:
    from coursekit.mnist import load_split

    split = load_split("test")
    return split.images, split.labels


def mnist_digit(index: int) -> tuple[np.ndarray, int]:
    """Test image ``index`` as floats in [0, 1] and its label (reads MNIST on first use)."""
    images, labels = _test_digits()
    return images[index].astype(np.float64) / 255.0, int(labels[index])


# -- the output-size formula ---------------------------------------------------------------------

def window_positions(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """How many times a window of ``k`` fits along an axis (the explorers' own geometry; 0 if never)."""
    return max((n + 2 * padding - k) // stride + 1, 0)


def formula_text(n: int, k: int, stride: int, padding: int, result: Any) -> str:
    """``(28 + 2·1 − 3) // 2 + 1 = 14``; ``= ?`` while the result is unknown (a stub)."""
    shown = "?" if result is None or isinstance(result, nb.Pending) else str(result)
    grown = f"{n} + 2·{padding}" if padding else f"{n}"
    return f"({grown} − {k}) // {stride} + 1 = {shown}"


def _student_size(conv_output_size: Callable[..., Any], n: int, k: int, stride: int, padding: int,
                  messages: list[str]) -> Any:
    """The student's ``conv_output_size`` (or None), noting any problem in ``messages``."""
    result = _guarded(conv_output_size, messages, n, k, stride=stride, padding=padding)
    if result is None:
        return None
    expected = window_positions(n, k, stride, padding)
    if result != expected:
        messages.append(f"⚠ your conv_output_size({n}, {k}, stride={stride}, padding={padding}) returned "
                        f"{result}, but the window fits {expected} times")
    return result


def _guarded(func: Callable[..., Any], messages: list[str], *args: Any, **kwargs: Any) -> Any:
    """Call a student function for an explorer: its result, or None with a line in ``messages``."""
    try:
        result = nb.attempt(func, *args, **kwargs)
    except Exception as exc:  # a bug in the student's code must not break the widget
        messages.append(f"❌ {getattr(func, '__name__', func)} raised {type(exc).__name__}: {exc}")
        return None
    if isinstance(result, nb.Pending):
        if result.message not in messages:
            messages.append(result.message)
        return None
    return result


def reveal(output: np.ndarray, position: int) -> np.ndarray:
    """A float copy of ``output`` with every cell after ``position`` (row-major order) set to NaN."""
    shown = np.array(output, dtype=np.float64)
    flat = shown.reshape(-1)
    flat[position + 1 :] = np.nan
    return shown


def _position_cell(position: int, out_w: int) -> tuple[int, int]:
    return divmod(position, out_w) if out_w else (0, 0)


def centre_position(image: np.ndarray, k: int, stride: int, padding: int = 0) -> int:
    """A telling first position: the first window with high contrast (on a stroke's edge, say)."""
    from numpy.lib.stride_tricks import sliding_window_view

    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape
    out_h, out_w = window_positions(h, k, stride, padding), window_positions(w, k, stride, padding)
    if not out_h or not out_w:
        return 0
    padded = np.pad(image, padding)
    windows = sliding_window_view(padded, (k, k))[::stride, ::stride][:out_h, :out_w]
    contrast = windows.std(axis=(-2, -1)).reshape(-1)
    return int(np.flatnonzero(contrast >= 0.75 * contrast.max())[0])


# -- one frame of the convolution explorer --------------------------------------------------------

@dataclass
class ConvOps:
    """The student functions the convolution explorer calls."""

    conv_output_size: Callable[..., Any]
    pad2d: Callable[..., Any]
    conv2d: Callable[..., Any]

    @classmethod
    def student(cls) -> "ConvOps":
        strides, padding, conv = (nb.student(m, reload=False) for m in ("strides", "padding", "conv"))
        return cls(strides.conv_output_size, padding.pad2d, conv.conv2d)


@dataclass
class ConvFrame:
    """Everything one view of the convolution explorer shows."""

    image: np.ndarray  # (H, W) input
    kernel: np.ndarray  # (3, 3)
    stride: int
    padding: int
    out_shape: tuple[int, int]  # how many window positions fit (the explorer's geometry)
    position: int  # clamped to the output
    cell: tuple[int, int]  # output row, column at that position
    window: tuple[int, int, int, int]  # top, left, height, width in padded coordinates
    padded: np.ndarray | None  # your pad2d's result, or the image in a NaN border if unavailable
    output: np.ndarray | None  # your conv2d's full output map (H_out, W_out), or None
    formula: str
    messages: list[str] = field(default_factory=list)

    @property
    def revealed(self) -> np.ndarray | None:
        """The output map filled up to the current position (NaN after it)."""
        return None if self.output is None else reveal(self.output, self.position)

    @property
    def value(self) -> float | None:
        return None if self.output is None else float(self.output[self.cell])


def conv_frame(image: np.ndarray, kernel: np.ndarray, stride: int, padding: int, position: int,
               ops: ConvOps) -> ConvFrame:
    """Compute one view of the convolution explorer with the student's functions in ``ops``."""
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    (h, w), (kh, kw) = image.shape, kernel.shape
    messages: list[str] = []
    out_h, out_w = window_positions(h, kh, stride, padding), window_positions(w, kw, stride, padding)
    sizes = [_student_size(ops.conv_output_size, n, k, stride, padding, messages) for n, k in ((h, kh), (w, kw))]
    formula = formula_text(h, kh, stride, padding, sizes[0])
    if (h, kh) != (w, kw):
        formula = f"height: {formula}; width: {formula_text(w, kw, stride, padding, sizes[1])}"

    padded = _guarded(ops.pad2d, messages, image, padding) if padding else image
    if padded is not None:
        padded = np.asarray(padded, dtype=np.float64)
        if padded.shape != (h + 2 * padding, w + 2 * padding):
            messages.append(f"⚠ your pad2d returned shape {padded.shape}, expected {(h + 2 * padding, w + 2 * padding)}")
            padded = None
    if padded is None:  # show where the border would be
        padded = np.full((h + 2 * padding, w + 2 * padding), np.nan)
        padded[padding : padding + h, padding : padding + w] = image

    output = _guarded(ops.conv2d, messages, image[None, None], kernel[None, None], stride=stride, padding=padding)
    if output is not None:
        output = np.asarray(output, dtype=np.float64)
        if output.shape != (1, 1, out_h, out_w):
            messages.append(f"⚠ your conv2d returned shape {output.shape}, expected {(1, 1, out_h, out_w)}")
            output = None
        else:
            output = output[0, 0]

    position = min(max(int(position), 0), max(out_h * out_w - 1, 0))
    cell = _position_cell(position, out_w)
    window = (cell[0] * stride, cell[1] * stride, kh, kw)
    return ConvFrame(image, kernel, stride, padding, (out_h, out_w), position, cell, window, padded, output,
                     formula, messages)


# -- one frame of the pooling explorer -------------------------------------------------------------

@dataclass
class PoolOps:
    maxpool2d: Callable[..., Any]
    avgpool2d: Callable[..., Any]

    @classmethod
    def student(cls) -> "PoolOps":
        pooling = nb.student("pooling", reload=False)
        return cls(pooling.maxpool2d, pooling.avgpool2d)


@dataclass
class PoolFrame:
    image: np.ndarray
    size: int
    stride: int
    mode: str  # "max" or "average"
    out_shape: tuple[int, int]
    position: int
    cell: tuple[int, int]
    window: tuple[int, int, int, int]
    output: np.ndarray | None
    formula: str
    messages: list[str] = field(default_factory=list)

    @property
    def revealed(self) -> np.ndarray | None:
        return None if self.output is None else reveal(self.output, self.position)

    @property
    def value(self) -> float | None:
        return None if self.output is None else float(self.output[self.cell])


def pool_frame(image: np.ndarray, size: int, stride: int, mode: str, position: int, ops: PoolOps) -> PoolFrame:
    """Compute one view of the pooling explorer with the student's pooling functions."""
    if mode not in ("max", "average"):
        raise ValueError(f"mode must be 'max' or 'average', got {mode!r}")
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape
    out_h, out_w = window_positions(h, size, stride), window_positions(w, size, stride)
    messages: list[str] = []
    func = ops.maxpool2d if mode == "max" else ops.avgpool2d
    output = _guarded(func, messages, image[None, None], size, stride)
    if output is not None:
        output = np.asarray(output, dtype=np.float64)
        if output.shape != (1, 1, out_h, out_w):
            messages.append(f"⚠ your {getattr(func, '__name__', mode)} returned shape {output.shape}, "
                            f"expected {(1, 1, out_h, out_w)}")
            output = None
        else:
            output = output[0, 0]
    formula = formula_text(h, size, stride, 0, out_h)
    position = min(max(int(position), 0), max(out_h * out_w - 1, 0))
    cell = _position_cell(position, out_w)
    return PoolFrame(image, size, stride, mode, (out_h, out_w), position, cell,
                     (cell[0] * stride, cell[1] * stride, size, size), output, formula, messages)


# -- drawing ---------------------------------------------------------------------------------------

def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue()


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#f4d6d6")  # NaN: not computed (yet)


def _box(ax, top: int, left: int, height: int, width: int, color: str, **kwargs: Any) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor=color, **kwargs))


def _map_style(values: np.ndarray | None) -> dict[str, Any]:
    """Colours for an output map: diverging around 0 when it has negative values."""
    if values is None or not np.isfinite(values).any():
        return {"cmap": _cmap("magma"), "vmin": 0.0, "vmax": 1.0}
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if lo < 0:
        bound = max(abs(lo), abs(hi), 1e-9)
        return {"cmap": _cmap("RdBu_r"), "vmin": -bound, "vmax": bound}
    return {"cmap": _cmap("magma"), "vmin": lo, "vmax": max(hi, lo + 1e-9)}


def _annotate(ax, values: np.ndarray, fmt: str = "{:.2g}") -> None:
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8, color="black",
                bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "linewidth": 0})


def render_conv_input(frame: ConvFrame) -> bytes:
    """PNG: the (padded) input with the current window, and the kernel with its values."""
    fig = _figure(5.2, 3.6)
    grid = fig.add_gridspec(1, 2, width_ratios=[3, 1])
    ax, kax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    ax.imshow(frame.padded, cmap=_cmap("gray"), vmin=0, vmax=max(1.0, float(np.nanmax(frame.padded))))
    h, w = frame.image.shape
    if frame.padding:
        _box(ax, frame.padding, frame.padding, h, w, "tab:cyan", linestyle="--", linewidth=1)
    _box(ax, *frame.window, "red", linewidth=2.5)
    ax.set_title(f"input {h}×{w}" + (f", padded by {frame.padding}" if frame.padding else ""), fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    kax.imshow(frame.kernel, cmap="RdBu_r", vmin=-np.abs(frame.kernel).max() - 1e-9,
               vmax=np.abs(frame.kernel).max() + 1e-9)
    _annotate(kax, frame.kernel, "{:.3g}")
    kax.set_title("kernel", fontsize=10)
    kax.set_xticks([]), kax.set_yticks([])
    return _png(fig)


def _render_output(revealed: np.ndarray | None, full: np.ndarray | None, out_shape: tuple[int, int],
                   cell: tuple[int, int], title: str) -> bytes:
    fig = _figure(3.6, 3.6)
    ax = fig.add_subplot()
    if revealed is None:
        ax.imshow(np.full(out_shape if all(out_shape) else (1, 1), np.nan), cmap=_cmap("gray"))
        ax.text(0.5, 0.5, "not computed yet", transform=ax.transAxes, ha="center", va="center")
    else:
        ax.imshow(revealed, **_map_style(full))
        if revealed.size <= 64:
            _annotate(ax, np.nan_to_num(revealed, nan=0.0) * np.isfinite(revealed))
        _box(ax, cell[0], cell[1], 1, 1, "red", linewidth=2.5)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return _png(fig)


def render_conv_output(frame: ConvFrame) -> bytes:
    """PNG: the output map filled up to the current position, the current cell outlined."""
    (oh, ow), (i, j) = frame.out_shape, frame.cell
    title = f"output {oh}×{ow}" + ("" if frame.value is None else f" — out[{i}, {j}] = {frame.value:.3g}")
    return _render_output(frame.revealed, frame.output, frame.out_shape, frame.cell, title)


def render_pool_input(frame: PoolFrame) -> bytes:
    fig = _figure(3.6, 3.6)
    ax = fig.add_subplot()
    ax.imshow(frame.image, cmap=_cmap("gray"), vmin=0, vmax=max(1.0, float(frame.image.max())))
    _box(ax, *frame.window, "red", linewidth=2.5)
    h, w = frame.image.shape
    ax.set_title(f"input {h}×{w}, {frame.size}×{frame.size} window", fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return _png(fig)


def render_pool_output(frame: PoolFrame) -> bytes:
    (oh, ow), (i, j) = frame.out_shape, frame.cell
    title = f"{frame.mode} pooled {oh}×{ow}" + ("" if frame.value is None else f" — out[{i}, {j}] = {frame.value:.3g}")
    return _render_output(frame.revealed, frame.output, frame.out_shape, frame.cell, title)


# -- the widgets -----------------------------------------------------------------------------------

def _widgets():
    import ipywidgets

    return ipywidgets


#: the images keep their own height (a flex row would stretch them to the tallest)
_TOP = {"align_items": "flex-start"}


def _message_html(messages: Sequence[str]) -> str:
    return "<br>".join(html.escape(m) for m in messages)


def _image_choices() -> list[str]:
    return [DIGIT, *synthetic_images()]


def _load_image(choice: str, digit_index: int, messages: list[str]) -> tuple[np.ndarray, str]:
    """The chosen image and a caption; a missing MNIST falls back to a synthetic square with a message."""
    if choice == DIGIT:
        try:
            image, label = mnist_digit(digit_index)
            return image, f"test digit #{digit_index} (a {label})"
        except Exception as exc:  # MnistDataError names the file and the fix
            messages.append(f"❌ MNIST could not be read: {exc}")
            choice = "square"
    return synthetic_images()[choice], choice


class _Explorer:
    """Shared plumbing: CSS class names and one redraw at a time.

    ipykernel may deliver widget messages on more than one thread, so a slider move can arrive while
    the previous redraw is still running: redraws are serialised with a lock (none is dropped), and
    the trait changes a redraw makes itself (slider limits, kernel cells) do not start another.
    """

    css: str

    def _tag(self, widget, part: str):
        widget.add_class(f"{self.css}-{part}")
        return widget

    def _init_guard(self) -> None:
        self._lock = threading.RLock()
        self._inside = False

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Hold the redraw lock; yields False when re-entered from this redraw's own trait changes."""
        with self._lock:
            if self._inside:
                yield False
                return
            self._inside = True
            try:
                yield True
            finally:
                self._inside = False


class ConvExplorer(_Explorer):
    """The convolution explorer; ``.widget`` is what a notebook displays."""

    css = "conv-explorer"

    def __init__(self, image: str = DIGIT, digit: int = 0, kernel: str = "vertical edges (Sobel)",
                 stride: int = 1, padding: int = 0, ops: ConvOps | None = None):
        w = _widgets()
        self.ops = ops or ConvOps.student()
        slider = dict(continuous_update=False, style={"description_width": "70px"})
        self.image = self._tag(w.Dropdown(options=_image_choices(), value=image, description="image"), "image")
        self.digit = self._tag(w.BoundedIntText(value=digit, min=0, max=9999, description="digit #",
                                                layout=w.Layout(width="160px")), "digit")
        self.kernel = self._tag(w.Dropdown(options=[*KERNEL_PRESETS, CUSTOM], value=kernel, description="kernel"), "kernel")
        self.cells = [w.FloatText(value=0.0, layout=w.Layout(width="60px")) for _ in range(9)]
        self.custom = self._tag(w.GridBox(self.cells, layout=w.Layout(grid_template_columns="repeat(3, 64px)")), "custom")
        self.stride = self._tag(w.IntSlider(value=stride, min=1, max=4, description="stride", **slider), "stride")
        self.padding = self._tag(w.IntSlider(value=padding, min=0, max=3, description="padding", **slider), "padding")
        self.position = self._tag(w.IntSlider(value=0, min=0, max=0, description="position", **slider), "position")
        self.play = self._tag(w.Play(interval=250, min=0, max=0, description="slide"), "play")
        w.jslink((self.play, "value"), (self.position, "value"))
        w.jslink((self.play, "max"), (self.position, "max"))
        self.formula = self._tag(w.HTML(), "formula")
        self.value = self._tag(w.HTML(), "value")
        self.message = self._tag(w.HTML(), "message")
        self.input_view = self._tag(w.Image(format="png"), "input")
        self.output_view = self._tag(w.Image(format="png"), "output")
        controls = w.VBox([w.HBox([self.image, self.digit]), w.HBox([self.kernel]), self.custom,
                           self.stride, self.padding, w.HBox([self.position, self.play])])
        self.widget = self._tag(w.VBox([controls, self.formula, self.value, self.message,
                                        w.HBox([self.input_view, self.output_view], layout=_TOP)]), "root")
        self.widget.add_class(self.css)
        self._init_guard()
        self._set_cells(KERNEL_PRESETS.get(kernel, np.eye(3)))
        self.frame: ConvFrame | None = None
        self.update(centre=True)
        self.image.observe(lambda _: self.update(centre=True), "value")
        self.digit.observe(lambda _: self.update(), "value")
        self.kernel.observe(self._on_kernel, "value")
        for c in self.cells:
            c.observe(self._on_cell, "value")
        for s in (self.stride, self.padding):
            s.observe(self._on_geometry, "value")
        self.position.observe(lambda _: self.update(), "value")

    def _set_cells(self, values: np.ndarray) -> None:
        for c, v in zip(self.cells, np.asarray(values, dtype=float).reshape(-1)):
            c.value = round(float(v), 4)

    def kernel_values(self) -> np.ndarray:
        if self.kernel.value in KERNEL_PRESETS:
            return KERNEL_PRESETS[self.kernel.value]
        return np.array([c.value for c in self.cells], dtype=np.float64).reshape(3, 3)

    def _on_kernel(self, change) -> None:
        with self._exclusive() as fresh:
            if fresh:
                if change["new"] in KERNEL_PRESETS:
                    self._set_cells(KERNEL_PRESETS[change["new"]])
                self._redraw()

    def _on_cell(self, _change) -> None:
        with self._exclusive() as fresh:
            if fresh:  # the student typed a value: the kernel is now a custom one
                self.kernel.value = CUSTOM
                self._redraw()

    def _on_geometry(self, _change) -> None:
        with self._exclusive() as fresh:
            if fresh:
                old = self.frame
                fraction = old.position / max(old.out_shape[0] * old.out_shape[1] - 1, 1) if old else 0.0
                self._redraw(fraction=fraction)

    def update(self, centre: bool = False, fraction: float | None = None) -> None:
        """Recompute the frame from the controls and redraw."""
        with self._exclusive() as fresh:
            if fresh:
                self._redraw(centre, fraction)

    def _redraw(self, centre: bool = False, fraction: float | None = None) -> None:
        messages: list[str] = []
        image, caption = _load_image(self.image.value, self.digit.value, messages)
        self.digit.disabled = self.image.value != DIGIT
        h, w = image.shape
        out_h = window_positions(h, 3, self.stride.value, self.padding.value)
        out_w = window_positions(w, 3, self.stride.value, self.padding.value)
        last = max(out_h * out_w - 1, 0)
        self.position.max = self.play.max = last
        if centre:
            self.position.value = centre_position(image, 3, self.stride.value, self.padding.value)
        elif fraction is not None:
            self.position.value = round(fraction * last)
        frame = conv_frame(image, self.kernel_values(), self.stride.value, self.padding.value,
                           self.position.value, self.ops)
        frame.messages[:0] = messages
        self.frame = frame
        self.formula.value = f"output size per axis = <code>{html.escape(frame.formula)}</code>"
        i, j = frame.cell
        top, left = frame.window[:2]
        computed = "?" if frame.value is None else f"{frame.value:.4g}"
        self.value.value = (f"{html.escape(caption)}: window at rows {top}–{top + 2}, columns {left}–{left + 2} "
                            f"of the padded input → out[{i}, {j}] = Σ window × kernel = {computed}")
        self.message.value = _message_html(frame.messages)
        self.input_view.value = render_conv_input(frame)
        self.output_view.value = render_conv_output(frame)


def conv_explorer(**options: Any):
    """The convolution explorer widget (options: image, digit, kernel, stride, padding, ops)."""
    explorer = ConvExplorer(**options)
    explorer.widget.explorer = explorer  # keeps the controls reachable from the displayed widget
    return explorer.widget


class PoolExplorer(_Explorer):
    """The pooling explorer; ``.widget`` is what a notebook displays."""

    css = "pool-explorer"

    def __init__(self, image: str = DIGIT, digit: int = 0, size: int = 2, stride: int = 2, mode: str = "max",
                 ops: PoolOps | None = None):
        w = _widgets()
        self.ops = ops or PoolOps.student()
        slider = dict(continuous_update=False, style={"description_width": "70px"})
        self.image = self._tag(w.Dropdown(options=_image_choices(), value=image, description="image"), "image")
        self.digit = self._tag(w.BoundedIntText(value=digit, min=0, max=9999, description="digit #",
                                                layout=w.Layout(width="160px")), "digit")
        self.mode = self._tag(w.ToggleButtons(options=["max", "average"], value=mode, description="pooling"), "mode")
        self.size = self._tag(w.IntSlider(value=size, min=1, max=4, description="window", **slider), "size")
        self.stride = self._tag(w.IntSlider(value=stride, min=1, max=4, description="stride", **slider), "stride")
        self.position = self._tag(w.IntSlider(value=0, min=0, max=0, description="position", **slider), "position")
        self.formula = self._tag(w.HTML(), "formula")
        self.value = self._tag(w.HTML(), "value")
        self.message = self._tag(w.HTML(), "message")
        self.input_view = self._tag(w.Image(format="png"), "input")
        self.output_view = self._tag(w.Image(format="png"), "output")
        controls = w.VBox([w.HBox([self.image, self.digit]), self.mode, self.size, self.stride, self.position])
        self.widget = self._tag(w.VBox([controls, self.formula, self.value, self.message,
                                        w.HBox([self.input_view, self.output_view], layout=_TOP)]), "root")
        self.widget.add_class(self.css)
        self._init_guard()
        self.frame: PoolFrame | None = None
        self.update(centre=True)
        for control in (self.image, self.digit, self.mode):
            control.observe(lambda _: self.update(), "value")
        for control in (self.size, self.stride):
            control.observe(lambda _: self.update(centre=True), "value")
        self.position.observe(lambda _: self.update(), "value")

    def update(self, centre: bool = False) -> None:
        """Recompute the frame from the controls and redraw."""
        with self._exclusive() as fresh:
            if fresh:
                self._redraw(centre)

    def _redraw(self, centre: bool = False) -> None:
        messages: list[str] = []
        image, caption = _load_image(self.image.value, self.digit.value, messages)
        self.digit.disabled = self.image.value != DIGIT
        size = min(self.size.value, *image.shape)
        out_h = window_positions(image.shape[0], size, self.stride.value)
        out_w = window_positions(image.shape[1], size, self.stride.value)
        self.position.max = max(out_h * out_w - 1, 0)
        if centre:
            self.position.value = centre_position(image, size, self.stride.value)
        frame = pool_frame(image, size, self.stride.value, self.mode.value, self.position.value, self.ops)
        frame.messages[:0] = messages
        self.frame = frame
        self.formula.value = f"output size per axis = <code>{html.escape(frame.formula)}</code>"
        top, left = frame.window[:2]
        computed = "?" if frame.value is None else f"{frame.value:.4g}"
        what = "largest" if frame.mode == "max" else "mean"
        self.value.value = (f"{html.escape(caption)}: window at rows {top}–{top + size - 1}, columns "
                            f"{left}–{left + size - 1} → {what} value {computed}")
        self.message.value = _message_html(frame.messages)
        self.input_view.value = render_pool_input(frame)
        self.output_view.value = render_pool_output(frame)


def pool_explorer(**options: Any):
    """The pooling explorer widget (options: image, digit, size, stride, mode, ops)."""
    explorer = PoolExplorer(**options)
    explorer.widget.explorer = explorer
    return explorer.widget


# -- looking inside a model -----------------------------------------------------------------------

@dataclass
class LayerMaps:
    name: str  # "conv 1"
    maps: np.ndarray  # (channels, H, W) after ReLU


def _as_batch(image: np.ndarray):
    import torch

    x = np.asarray(image, dtype=np.float32)
    if x.max() > 1.0:  # uint8-style pixels
        x = x / 255.0
    return torch.from_numpy(np.ascontiguousarray(x.reshape(1, 1, *x.shape[-2:])))


def _conv_layers(model) -> list:
    import torch

    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def feature_maps(model, image: np.ndarray) -> list[LayerMaps]:
    """What each conv layer of ``model`` outputs (after ReLU) for one 28×28 image."""
    import torch

    captured: list[np.ndarray] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append(out.detach().relu()[0].numpy()))
             for layer in _conv_layers(model)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(_as_batch(image))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return [LayerMaps(f"conv {k + 1}", maps.astype(np.float64)) for k, maps in enumerate(captured)]


def predict_digit(model, image: np.ndarray) -> int:
    """The class the model's logits favour for one image."""
    import torch

    model.eval()
    with torch.no_grad():
        return int(model(_as_batch(image)).argmax(dim=1)[0])


def render_feature_maps(layer: LayerMaps, columns: int = 8) -> bytes:
    """PNG: one small panel per channel, each scaled to its own maximum."""
    channels = layer.maps.shape[0]
    rows = math.ceil(channels / columns)
    fig = _figure(columns * 0.9, rows * 0.9 + 0.4)
    c, h, w = layer.maps.shape
    fig.suptitle(f"{layer.name}: {c} channels of {h}×{w} (bright = strong response)", fontsize=10)
    for k in range(rows * columns):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.set_xticks([]), ax.set_yticks([])
        if k < channels:
            ax.imshow(layer.maps[k], cmap="viridis", vmin=0, vmax=max(float(layer.maps[k].max()), 1e-9))
        else:
            ax.axis("off")
    return _png(fig)


class FeatureMapViewer(_Explorer):
    css = "feature-maps"

    def __init__(self, model, images: np.ndarray, labels: np.ndarray | None = None):
        w = _widgets()
        self.model, self.images, self.labels = model, np.asarray(images), labels
        self.digit = self._tag(w.IntSlider(value=0, min=0, max=len(self.images) - 1, description="digit #",
                                           continuous_update=False), "digit")
        layers = _conv_layers(model)
        self.layer = self._tag(w.Dropdown(options=[f"conv {k + 1}" for k in range(len(layers))], description="layer"),
                               "layer")
        self.caption = self._tag(w.HTML(), "caption")
        self.digit_view = self._tag(w.Image(format="png"), "digit-image")
        self.maps_view = self._tag(w.Image(format="png"), "maps")
        self.widget = self._tag(w.VBox([w.HBox([self.digit, self.layer]), self.caption,
                                        w.HBox([self.digit_view, self.maps_view], layout=_TOP)]), "root")
        self.widget.add_class(self.css)
        self._init_guard()
        self.update()
        self.digit.observe(lambda _: self.update(), "value")
        self.layer.observe(lambda _: self.update(), "value")

    def update(self) -> None:
        """Recompute the maps for the chosen digit and layer and redraw."""
        with self._exclusive() as fresh:
            if fresh:
                self._redraw()

    def _redraw(self) -> None:
        image = self.images[self.digit.value]
        maps = {layer.name: layer for layer in feature_maps(self.model, image)}
        label = "" if self.labels is None else f", label {int(self.labels[self.digit.value])}"
        self.caption.value = html.escape(f"the model predicts {predict_digit(self.model, image)}{label}")
        fig = _figure(2.0, 2.0)
        ax = fig.add_subplot()
        ax.imshow(np.asarray(image, dtype=np.float64), cmap="gray")
        ax.set_xticks([]), ax.set_yticks([])
        self.digit_view.value = _png(fig)
        if self.layer.value in maps:
            self.maps_view.value = render_feature_maps(maps[self.layer.value])


def feature_map_viewer(model, images: np.ndarray, labels: np.ndarray | None = None):
    """Widget: pick a digit and a conv layer, see every channel's response map.

    ``model`` is a trained ``torch.nn.Module`` (your ``build_convnet()`` after ``train``); ``images``
    are 28×28 digits (uint8 or floats in [0, 1]). A :class:`~coursekit.notebook.Pending` model
    gives a line saying what to implement first.
    """
    if isinstance(model, nb.Pending):
        return _pending_widget(model, "feature-maps")
    viewer = FeatureMapViewer(model, images, labels)
    viewer.widget.explorer = viewer
    return viewer.widget


def _pending_widget(pending: nb.Pending, css: str):
    w = _widgets()
    box = w.HTML(html.escape(pending.message))
    box.add_class(f"{css}-message")
    return box


# -- pooling or not: shapes layer by layer --------------------------------------------------------

@dataclass(frozen=True)
class LayerShape:
    name: str  # the module's type, e.g. "Conv2d"
    shape: tuple[int, ...]  # output shape for one image, without the batch axis
    values: int  # numbers in that output
    params: int  # trainable parameters of the layer
    receptive_field: int  # side of the input patch one output unit sees (0 once the maps are flattened)


def layer_shapes(model, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[LayerShape]:
    """Run one zero batch through ``model``; one row per leaf layer, in call order."""
    import torch

    rows: list[tuple[Any, tuple[int, ...]]] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda mod, _i, out: rows.append((mod, tuple(out.shape[1:])))) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.zeros(input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    table, field_size, jump = [], 1, 1
    for module, shape in rows:
        k, s = getattr(module, "kernel_size", None), getattr(module, "stride", None)
        if k is not None and s is not None:
            k = k[0] if isinstance(k, tuple) else k
            s = s[0] if isinstance(s, tuple) else s
            field_size, jump = field_size + (k - 1) * jump, jump * s
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        spatial = field_size if len(shape) == 3 else 0
        table.append(LayerShape(type(module).__name__, shape, int(np.prod(shape)), params, spatial))
    return table


def _field_text(side: int) -> str:
    return f"{side}×{side}" if side else "—"


def _shape_table_html(title: str, rows: Sequence[LayerShape]) -> str:
    body = "".join(
        f"<tr><td>{r.name}</td><td>{' × '.join(map(str, r.shape))}</td><td style='text-align:right'>{r.values:,}</td>"
        f"<td style='text-align:right'>{r.params:,}</td><td style='text-align:right'>{_field_text(r.receptive_field)}</td></tr>"
        for r in rows)
    total = sum(r.params for r in rows)
    return (f"<table><caption><b>{html.escape(title)}</b></caption><tr><th>layer</th><th>output (C × H × W)</th>"
            f"<th>values</th><th>parameters</th><th>sees</th></tr>{body}"
            f"<tr><td colspan=3><b>total</b></td><td style='text-align:right'><b>{total:,}</b></td><td></td></tr></table>")


def comparison_summary(pooled: Sequence[LayerShape], unpooled: Sequence[LayerShape]) -> str:
    """One paragraph with the numbers that argue for pooling."""
    last_pool = [r for r in pooled if r.name == "Conv2d"][-1]
    last_free = [r for r in unpooled if r.name == "Conv2d"][-1]
    c, h, w = last_free.shape
    dense = last_free.values * 64 + 64
    return (f"Without pooling the last feature map holds {h}·{w}·{c} = {last_free.values:,} values per image "
            f"(with pooling: {last_pool.values:,}); a Dense layer of 64 units on top of it would need "
            f"{dense:,} weights instead of {last_pool.values * 64 + 64:,}. Each unit of the last conv layer sees a "
            f"{last_free.receptive_field}×{last_free.receptive_field} patch of the digit without pooling, "
            f"{last_pool.receptive_field}×{last_pool.receptive_field} with it.")


def render_value_counts(pooled: Sequence[LayerShape], unpooled: Sequence[LayerShape]) -> bytes:
    """PNG: values per image after each conv layer, with and without pooling."""
    a = [r.values for r in pooled if r.name == "Conv2d"]
    b = [r.values for r in unpooled if r.name == "Conv2d"]
    fig = _figure(4.6, 2.8)
    ax = fig.add_subplot()
    x = np.arange(max(len(a), len(b)))
    ax.bar(x[: len(a)] - 0.2, a, width=0.4, label="with max pooling")
    ax.bar(x[: len(b)] + 0.2, b, width=0.4, label="without")
    ax.set_xticks(x, [f"conv {k + 1}" for k in x])
    ax.set_ylabel("values per image")
    ax.legend(fontsize=8)
    return _png(fig)


def pooling_comparison(pooled=None, unpooled=None):
    """Widget: the seed's model and its no-pooling variant side by side (shapes, values, parameters).

    Without arguments both come from your ``build_convnet`` and ``build_convnet_no_maxpool``.
    """
    w = _widgets()
    if pooled is None or unpooled is None:
        convnet = nb.student("convnet", reload=False)
        pooled = nb.attempt(convnet.build_convnet) if pooled is None else pooled
        unpooled = nb.attempt(convnet.build_convnet_no_maxpool) if unpooled is None else unpooled
    pending = [m for m in (pooled, unpooled) if isinstance(m, nb.Pending)]
    if pending:
        box = w.HTML("<br>".join(html.escape(p.message) for p in pending))
        box.add_class("pooling-comparison-message")
        return box
    a, b = layer_shapes(pooled), layer_shapes(unpooled)
    tables = w.HBox([w.HTML(_shape_table_html("with max pooling (the chapter's model)", a)),
                     w.HTML(_shape_table_html("without max pooling (conv base only)", b))],
                    layout=w.Layout(gap="24px"))
    summary = w.HTML(f"<p>{html.escape(comparison_summary(a, b))}</p>")
    summary.add_class("pooling-comparison-summary")
    chart = w.Image(value=render_value_counts(a, b), format="png", layout=w.Layout(width="331px"))  # 4.6 in at 72 dpi
    root = w.VBox([tables, summary, chart])
    root.add_class("pooling-comparison")
    return root
