"""Reference numpy conv2d / maxpool2d (forward and backward) against torch CPU on the chapter's shapes.

The grader runs the reference on every hidden case, so it must be fast: goals are forward <= 2x
torch and backward <= 4x torch. Both run in this process on the same arrays; each figure is the
median wall time of ``--repeats`` calls after a warm-up.

    python benchmarks/conv_ops.py                 # table, one thread each
    python benchmarks/conv_ops.py --markdown      # the README table
    python benchmarks/conv_ops.py --threads 0     # numpy's BLAS and torch with their default threads

One thread is the default because the course machine has 2 cores shared with other jobs: there,
multi-threaded BLAS and OpenMP spin-wait for a descheduled thread and single figures swing by 10x.

Torch's conv backward is ``aten.convolution_backward`` (input, weight and output gradient, as the
numpy function). ``maxpool2d_backward`` receives ``x``, not torch's saved indices, so it must find
the maxima again: it is compared with torch's forward-with-indices plus backward, and the row
after it shows torch's backward kernel alone (given the indices), without a goal.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per operation (median reported)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=1, help="threads for numpy's BLAS and torch; 0: the libraries' defaults")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    return parser.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:  # must precede the numpy import to reach OpenBLAS
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from solutions.backprop import conv2d_backward, maxpool2d_backward  # noqa: E402
from solutions.conv import conv2d  # noqa: E402
from solutions.pooling import maxpool2d  # noqa: E402

BATCH = 64
CONV_SHAPES = [((BATCH, 1, 28, 28), (32, 1, 3, 3)), ((BATCH, 32, 13, 13), (64, 32, 3, 3))]  # the chapter's first two Conv2D
POOL_SHAPES = [(BATCH, 32, 26, 26), (BATCH, 64, 11, 11)]  # the inputs of its two MaxPooling2D(2)
GOALS = {"forward": 2.0, "backward": 4.0}


@dataclass
class Row:
    op: str
    shape: str
    numpy_ms: float
    torch_ms: float
    goal: float | None

    @property
    def ratio(self) -> float:
        return self.numpy_ms / self.torch_ms


def median_ms(*fns: Callable[[], object], repeats: int) -> list[float]:
    """Median wall time of each function in ms; the calls alternate so that all of them see the
    same load on a shared machine."""
    for fn in fns:  # warm-up: allocations, BLAS and oneDNN initialisation
        fn(), fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [1e3 * float(np.median(t)) for t in times]


def check(got: np.ndarray, expected: torch.Tensor, what: str, dtype: np.dtype) -> None:
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(got, expected.numpy(), rtol=tol, atol=tol, err_msg=f"{what}: numpy reference differs from torch")


def bench_conv(x_shape, w_shape, dtype, repeats: int) -> list[Row]:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    shape = f"{x_shape} * {w_shape}"
    out = F.conv2d(tx, tw, tb)
    dout = rng.standard_normal(tuple(out.shape)).astype(dtype)
    tdout = torch.from_numpy(dout)

    def torch_backward():
        return torch.ops.aten.convolution_backward(
            tdout, tx, tw, [w_shape[0]], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, True]
        )

    check(conv2d(x, w, b), out, "conv2d", dtype)
    for got, expected, name in zip(conv2d_backward(dout, x, w), torch_backward(), ("dx", "dw", "db")):
        check(got, expected, f"conv2d_backward {name}", dtype)
    forward = median_ms(lambda: conv2d(x, w, b), lambda: F.conv2d(tx, tw, tb), repeats=repeats)
    backward = median_ms(lambda: conv2d_backward(dout, x, w), torch_backward, repeats=repeats)
    return [
        Row("conv2d forward", shape, *forward, GOALS["forward"]),
        Row("conv2d backward", shape, *backward, GOALS["backward"]),
    ]


def bench_pool(x_shape, dtype, repeats: int) -> list[Row]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    tx = torch.from_numpy(x)
    out, indices = torch.ops.aten.max_pool2d_with_indices(tx, [2, 2], [2, 2])
    dout = rng.standard_normal(tuple(out.shape)).astype(dtype)
    tdout = torch.from_numpy(dout)

    def torch_backward(indices: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.max_pool2d_with_indices_backward(tdout, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)

    def torch_from_x() -> torch.Tensor:  # what the numpy function does: find the maxima, then scatter
        return torch_backward(torch.ops.aten.max_pool2d_with_indices(tx, [2, 2], [2, 2])[1])

    check(maxpool2d(x, 2), out, "maxpool2d", dtype)
    check(maxpool2d_backward(dout, x, 2), torch_from_x(), "maxpool2d_backward", dtype)
    shape = f"{x_shape}, 2x2"
    forward = median_ms(lambda: maxpool2d(x, 2), lambda: F.max_pool2d(tx, 2), repeats=repeats)
    numpy_backward, torch_backward_ms, torch_kernel_ms = median_ms(
        lambda: maxpool2d_backward(dout, x, 2), torch_from_x, lambda: torch_backward(indices), repeats=repeats
    )
    return [
        Row("maxpool2d forward", shape, *forward, GOALS["forward"]),
        Row("maxpool2d backward", shape, numpy_backward, torch_backward_ms, GOALS["backward"]),
        Row("  (torch: backward kernel only)", shape, numpy_backward, torch_kernel_ms, None),
    ]


def render(rows: list[Row], markdown: bool) -> str:
    header = ("operation", "shapes (batch 64)", "numpy ms", "torch ms", "ratio", "goal")
    cells = [
        (r.op, r.shape, f"{r.numpy_ms:.2f}", f"{r.torch_ms:.2f}", f"{r.ratio:.2f}x",
         "-" if r.goal is None else f"<= {r.goal:g}x {'ok' if r.ratio <= r.goal else 'MISSED'}")
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(str(row[i])) for row in [header, *cells]) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in [header, *cells])


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    dtype = np.dtype(args.dtype)
    rows: list[Row] = []
    for x_shape, w_shape in CONV_SHAPES:
        rows += bench_conv(x_shape, w_shape, dtype, args.repeats)
    for x_shape in POOL_SHAPES:
        rows += bench_pool(x_shape, dtype, args.repeats)
    print(
        f"{args.dtype}, median of {args.repeats}; numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {os.cpu_count()} CPUs"
    )
    print(render(rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
