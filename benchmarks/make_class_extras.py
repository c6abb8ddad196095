"""Extra generated students for the instructor tools (similarity, insights): copied pairs and
independent solutions written differently.

    python benchmarks/make_class_extras.py OUT_DIR

Three independent styles of the numpy exercises (``strides``, ``padding``, ``conv``, ``pooling``):
the reference itself, explicit loops, and vectorised windows. ``disguise`` turns a student's code
into what a copier hands in: variables renamed, functions in another order, comments rewritten,
whitespace changed (the copy still works).
"""
from __future__ import annotations

import argparse
import ast
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
MODULES = ("strides", "padding", "conv", "pooling")

_HEADER = "import numpy as np\n"

#: Style "loops": explicit Python loops, written by one imaginary student.
LOOPS = {
    "strides": '''
def conv_output_size(n, k, stride=1, padding=0):
    # how many positions the window takes
    if stride <= 0 or k <= 0 or n <= 0 or padding < 0:
        raise ValueError("sizes must be positive")
    span = n + padding * 2
    if span < k:
        raise ValueError("kernel larger than padded input")
    count = 0
    start = 0
    while start + k <= span:
        count += 1
        start += stride
    return count
''',
    "padding": '''
def pad2d(x, pad, value=0.0):
    # build a bigger array and copy x in the middle
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError("need at least 2 axes")
    if isinstance(pad, int):
        top = bottom = left = right = pad
    elif isinstance(pad, tuple) and len(pad) == 4:
        top, bottom, left, right = pad
    else:
        raise ValueError("pad must be an int or 4 ints")
    if min(top, bottom, left, right) < 0:
        raise ValueError("negative pad")
    kind = np.float32 if arr.dtype == np.float32 else np.float64
    shape = arr.shape[:-2] + (arr.shape[-2] + top + bottom, arr.shape[-1] + left + right)
    result = np.full(shape, value, dtype=kind)
    result[..., top:top + arr.shape[-2], left:left + arr.shape[-1]] = arr
    return result


def same_padding(n, k, stride=1):
    if n < 1 or k < 1 or stride < 1:
        raise ValueError("positive sizes only")
    outputs = -(-n // stride)
    needed = (outputs - 1) * stride + k - n
    if needed < 0:
        needed = 0
    first = needed // 2
    return first, needed - first
''',
    "conv": '''
def correlate2d(image, kernel):
    img = np.asarray(image, dtype=float)
    ker = np.asarray(kernel, dtype=float)
    rows = img.shape[0] - ker.shape[0] + 1
    cols = img.shape[1] - ker.shape[1] + 1
    if rows < 1 or cols < 1:
        raise ValueError("kernel does not fit")
    answer = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            total = 0.0
            for dr in range(ker.shape[0]):
                for dc in range(ker.shape[1]):
                    total += img[r + dr, c + dc] * ker[dr, dc]
            answer[r, c] = total
    return answer


def conv2d(x, w, b=None, stride=1, padding=0):
    inp = np.asarray(x, dtype=float)
    weights = np.asarray(w, dtype=float)
    sr, sc = (stride, stride) if isinstance(stride, int) else stride
    if padding == "valid":
        padding = 0
    if isinstance(padding, int):
        inp = np.pad(inp, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    batch, chans, height, width = inp.shape
    filters, _, kr, kc = weights.shape
    out_h = (height - kr) // sr + 1
    out_w = (width - kc) // sc + 1
    out = np.zeros((batch, filters, out_h, out_w))
    for n in range(batch):
        for f in range(filters):
            for i in range(out_h):
                for j in range(out_w):
                    patch = inp[n, :, i * sr:i * sr + kr, j * sc:j * sc + kc]
                    out[n, f, i, j] = np.sum(patch * weights[f])
            if b is not None:
                out[n, f] += b[f]
    return out
''',
    "pooling": '''
def maxpool2d(x, kernel_size, stride=None):
    data = np.asarray(x, dtype=float)
    kr, kc = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if stride is None:
        sr, sc = kr, kc
    else:
        sr, sc = (stride, stride) if isinstance(stride, int) else stride
    oh = (data.shape[2] - kr) // sr + 1
    ow = (data.shape[3] - kc) // sc + 1
    res = np.empty(data.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            res[:, :, i, j] = data[:, :, i * sr:i * sr + kr, j * sc:j * sc + kc].max(axis=(2, 3))
    return res


def avgpool2d(x, kernel_size, stride=None):
    data = np.asarray(x, dtype=float)
    kr, kc = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if stride is None:
        sr, sc = kr, kc
    else:
        sr, sc = (stride, stride) if isinstance(stride, int) else stride
    oh = (data.shape[2] - kr) // sr + 1
    ow = (data.shape[3] - kc) // sc + 1
    res = np.empty(data.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            res[:, :, i, j] = data[:, :, i * sr:i * sr + kr, j * sc:j * sc + kc].mean(axis=(2, 3))
    return res
''',
}

#: Style "vector": sliding_window_view and einsum, written by another imaginary student.
VECTOR = {
    "strides": '''
def conv_output_size(n, k, stride=1, padding=0):
    """(n + 2p - k) // s + 1 with checks."""
    bad = stride < 1 or k < 1 or n < 1 or padding < 0 or k > n + 2 * padding
    if bad:
        raise ValueError(f"invalid sizes n={n} k={k} stride={stride} padding={padding}")
    return 1 + (n - k + 2 * padding) // stride
''',
    "padding": '''
from numpy.lib.stride_tricks import sliding_window_view  # noqa: F401  (used in conv)


def _four(p):
    return (p,) * 4 if isinstance(p, int) else tuple(p)


def pad2d(x, pad, value=0.0):
    a = np.asarray(x)
    sides = _four(pad)
    if a.ndim < 2 or len(sides) != 4 or any(s < 0 for s in sides):
        raise ValueError(f"bad input {a.shape} or pad {pad}")
    widths = [(0, 0)] * (a.ndim - 2) + [sides[:2], sides[2:]]
    target = np.float32 if a.dtype == np.float32 else np.float64
    return np.pad(a.astype(target), widths, mode="constant", constant_values=value)


def same_padding(n, k, stride=1):
    if min(n, k, stride) < 1:
        raise ValueError("n, k and stride must be >= 1")
    total = max(0, (int(np.ceil(n / stride)) - 1) * stride + k - n)
    return total // 2, total - total // 2
''',
    "conv": '''
from numpy.lib.stride_tricks import sliding_window_view


def correlate2d(image, kernel):
    im, ke = np.asarray(image, float), np.asarray(kernel, float)
    windows = sliding_window_view(im, ke.shape)
    return np.einsum("ijab,ab->ij", windows, ke)


def conv2d(x, w, b=None, stride=1, padding=0):
    xs, ws = np.asarray(x, float), np.asarray(w, float)
    st = (stride,) * 2 if isinstance(stride, int) else tuple(stride)
    if isinstance(padding, int) and padding:
        xs = np.pad(xs, [(0, 0), (0, 0), (padding,) * 2, (padding,) * 2])
    views = sliding_window_view(xs, ws.shape[2:], axis=(2, 3))[:, :, ::st[0], ::st[1]]
    y = np.einsum("ncijab,fcab->nfij", views, ws)
    return y if b is None else y + np.asarray(b, float)[None, :, None, None]
''',
    "pooling": '''
from numpy.lib.stride_tricks import sliding_window_view


def _pool(x, kernel_size, stride, reduce):
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else tuple(stride))
    v = sliding_window_view(np.asarray(x, float), k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    return reduce(v, axis=(-2, -1))


def maxpool2d(x, kernel_size, stride=None):
    return _pool(x, kernel_size, stride, np.max)


def avgpool2d(x, kernel_size, stride=None):
    return _pool(x, kernel_size, stride, np.mean)
''',
}


def reference_modules() -> dict[str, str]:
    """The reference modules with the solution markers removed (a student who wrote it that way)."""
    return {m: re.sub(r"^\s*### (BEGIN|END) SOLUTION\n", "", (SOLUTIONS / f"{m}.py").read_text(encoding="utf-8"),
                      flags=re.M) for m in MODULES}


def style_modules(style: dict[str, str]) -> dict[str, str]:
    return {m: _HEADER + style[m].lstrip("\n") for m in MODULES}


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.names.get(node.arg, node.arg)
        return node


def _local_names(tree: ast.Module, keep: set[str]) -> list[str]:
    """Variables assigned inside functions (never parameters: the grader passes some by keyword)."""
    names: set[str] = set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return sorted(names - keep)


def disguise(source: str, seed: int = 0) -> str:
    """A working copy of ``source`` that a copier would hand in: renamed, reordered, recommented."""
    rng = random.Random(seed)
    tree = ast.parse(source)
    keep = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    keep |= {a.arg for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) for a in fn.args.args + fn.args.kwonlyargs}
    names = {old: f"my_{old}_{rng.randrange(100)}" for old in _local_names(tree, keep)}
    tree = _Rename(names).visit(tree)
    head = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    funcs.reverse()  # another order (helpers defined later are fine: called at run time)
    parts = [ast.unparse(ast.Module(body=head, type_ignores=[]))]
    for fn in funcs:
        parts.append(f"# my own version of {fn.name}, I worked on this for hours\n" + ast.unparse(fn))
    return "\n\n\n".join(parts) + "\n"


def write_student(dest: Path, student: str, modules: dict[str, str]) -> None:
    folder = dest / student
    folder.mkdir(parents=True)
    for name, src in modules.items():
        (folder / f"{name}.py").write_text(src, encoding="utf-8")


def make_similarity_class(dest: Path) -> dict[str, str]:
    """Five students: two disguised copies (of ``loops_writer`` and ``vector_writer``), three independent.

    Returns student id -> what they are.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    loops, vector, ref = style_modules(LOOPS), style_modules(VECTOR), reference_modules()
    write_student(dest, "ref_writer", ref)
    write_student(dest, "loops_writer", loops)
    write_student(dest, "vector_writer", vector)
    write_student(dest, "copier_1", {m: disguise(src, seed=i) for i, (m, src) in enumerate(loops.items())})
    write_student(dest, "copier_2", {m: disguise(src, seed=10 + i) for i, (m, src) in enumerate(vector.items())})
    return {"ref_writer": "independent (reference style)", "loops_writer": "independent (loops)",
            "vector_writer": "independent (vectorised)", "copier_1": "copied loops_writer, disguised",
            "copier_2": "copied vector_writer, disguised"}


#: Classic mistakes planted in copies of the reference (mistake id as coursekit.mistakes names it ->
#: module, code appended to it, redefining a function).
MISCONCEPTIONS = {
    "correlate2d.kernel_flipped": ("conv", """
def correlate2d(image, kernel):
    # textbook convolution: the kernel is flipped (the classic mistake)
    img = np.asarray(image, dtype=float)
    ker = np.asarray(kernel, dtype=float)[::-1, ::-1]
    rows, cols = img.shape[0] - ker.shape[0] + 1, img.shape[1] - ker.shape[1] + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = np.sum(img[i:i + ker.shape[0], j:j + ker.shape[1]] * ker)
    return out
"""),
    "conv_output_size.missing_plus_one": ("strides", """
def conv_output_size(n, k, stride=1, padding=0):
    if stride < 1 or n + 2 * padding < k:
        raise ValueError("bad sizes")
    return (n + 2 * padding - k) // stride
"""),
}


def plant_misconceptions(dest: Path, per_mistake: int = 2) -> dict[str, str]:
    """``per_mistake`` students per classic mistake of :data:`MISCONCEPTIONS`; returns id -> mistake."""
    dest = Path(dest)
    ref = {f.stem: f.read_text(encoding="utf-8") for f in SOLUTIONS.glob("*.py") if f.stem != "__init__"}
    roster = {}
    for m, (mistake, (module, code)) in enumerate(MISCONCEPTIONS.items()):
        for i in range(per_mistake):
            student = f"m{m}{i}_{mistake.split('.')[1]}"
            modules = dict(ref)
            modules[module] += f"\n\nimport numpy as np\n{code}\n# {student}\n"
            write_student(dest, student, modules)
            roster[student] = mistake
    return roster


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    args = p.parse_args()
    print(json.dumps(make_similarity_class(args.out), indent=1))


if __name__ == "__main__":
    main()
