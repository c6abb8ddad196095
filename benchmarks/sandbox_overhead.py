"""Cost of the sandbox: worker start-up and array transfer, per isolation mode.

    python benchmarks/sandbox_overhead.py              # every mode available here
    python benchmarks/sandbox_overhead.py --repeats 20 --modes bwrap

* ``start (forked)``: ``Worker.start()`` until the worker reports ready, for a numpy exercise, when
  the worker is forked from the submission's running sandbox (how ``grader grade`` starts every
  exercise): a fresh process, confinement applied, numpy already imported by the fork server.
  Goal (issue 11): <= 30 ms median.
* ``sandbox start``: a sandbox (bubblewrap or Landlock around the fork server, numpy imported) and its
  first worker, once per submission and view; the first start of a process is excluded (it computes the
  Python view once).
* ``echo 5 MB``: one ``call`` sending a 5 MB float64 array and receiving it back, minus the
  function's own time inside the worker; ``send 5 MB`` sends it and returns its shape. Goal: <= 10 ms.
* ``empty call``: the round trip of a call with no data. (Calls check by default whether the student
  mutated an input array, which copies and compares the inputs in the worker: ``--mutation-check``
  includes that cost.)

Figures are medians (and minimum) over ``--repeats``; the machine's load average is printed with
them because the CPU is shared.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.sandbox import launcher  # noqa: E402
from grader.sandbox.launcher import Sandbox, SandboxLimits, Worker  # noqa: E402

CHECK = False
STUDENT = "def echo(x):\n    return x\ndef shape(x):\n    return list(x.shape)\ndef nothing():\n    return None\n"
LIMITS = SandboxLimits(time_limit_s=600, memory_limit_mb=1024, forbidden_imports=("torch", "tensorflow", "jax", "scipy.signal"),
                       forbidden_calls=("numpy.convolve", "numpy.correlate"))


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:7.1f} ms (min {min(values) * 1e3:.1f})"


def start_seconds(make: Callable[[], Worker], repeats: int) -> list[float]:
    """Seconds of ``Worker.start()`` for ``repeats`` fresh workers (after one unmeasured start)."""
    make().__enter__().close()  # warms the view cache, the page cache, a sandbox's server
    seconds = []
    for _ in range(repeats):
        w = make()
        t0 = time.perf_counter()
        w.start()
        seconds.append(time.perf_counter() - t0)
        w.close()
    return seconds


def bench(mode: str, repeats: int, sub: Path) -> None:
    starts = start_seconds(lambda: Worker(sub, limits=LIMITS, mode=mode), repeats)
    with Sandbox(sub, limits=LIMITS, mode=mode) as sb:
        forked = start_seconds(lambda: Worker(sub, limits=LIMITS, sandbox=sb), repeats)
    x = np.random.default_rng(0).random(5 * 2**20 // 8)
    echo, send, empty = [], [], []
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = w.call("bench", "echo", [x], check_mutation=CHECK)
            echo.append(time.perf_counter() - t0 - (r.compute_s or 0.0))
            t0 = time.perf_counter()
            w.call("bench", "shape", [x], check_mutation=CHECK)
            send.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            w.call("bench", "nothing")
            empty.append(time.perf_counter() - t0)
        isolation = w.isolation
    print(f"{mode:9s} {isolation}")
    print(f"  start (forked) {ms(forked)}")
    print(f"  sandbox start  {ms(starts)}")
    print(f"  echo 5 MB    {ms(echo)}")
    print(f"  send 5 MB    {ms(send)}")
    print(f"  empty call   {ms(empty)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--modes", default="bwrap,landlock")
    p.add_argument("--mutation-check", action="store_true")
    a = p.parse_args(argv)
    global CHECK
    CHECK = a.mutation_check
    with tempfile.TemporaryDirectory() as d:
        pkg = Path(d) / "exercises"
        pkg.mkdir()
        (pkg / "bench.py").write_text(STUDENT)
        print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
        for mode in a.modes.split(","):
            if launcher.isolation_available(mode):
                bench(mode, a.repeats, Path(d))
            else:
                print(f"{mode:9s} not available here")


if __name__ == "__main__":
    main()
