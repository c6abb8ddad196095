"""Memory and time of one Gradescope run: the dry run of the bundle, the whole process tree sampled.

Builds the autograder bundle (``grader gradescope build``), unpacks it into a fresh temporary
``/autograder`` (source/, submission/ holding the reference as ``exercises/*.py``, results/), and runs
``bash source/run_autograder`` as the README's dry run does (``GRADESCOPE_PYTHON`` = this Python) with
a cold ``HOME``: nothing of an earlier run is found, as in Gradescope's fresh container. Every
``--interval`` seconds the PSS of the whole process tree (``psutil``'s ``memory_full_info().pss``, the
children recursively: the grader, the sandboxes' fork servers, the workers) is summed; the peak and
the breakdown at that moment are printed, with the wall time, the score and the load average.

Goals (issue 16): peak <= 700 MB PSS with MNIST training; <= 3 s for the non-MNIST exercises.

    python benchmarks/gradescope_resources.py                 # the full grading, MNIST training included
    python benchmarks/gradescope_resources.py --skip-mnist    # the non-MNIST exercises, cold HOME
    python benchmarks/gradescope_resources.py --skip-mnist --no-case-lists   # the same without the shipped lists

On a machine shared with other work, ``nice -n -10 python benchmarks/...`` (as root) gives the run most of
the CPU, closer to a container of its own; the output says the niceness it ran at.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def role(proc: psutil.Process, tree: dict[int, psutil.Process]) -> str:
    """A short name for a process of the run: grader, bwrap, the numpy/torch fork server, a worker."""
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return "?"
    if "grader.gradescope" in cmd:
        return "grader"
    if "bwrap" in cmd.split(" ", 1)[0]:
        return "bwrap"
    if "zygote" in cmd:
        parent = tree.get(proc.ppid())
        try:  # a worker is forked by a fork server (bwrap's command line names the zygote too)
            argv = parent.cmdline() if parent is not None else []
            forked = bool(argv) and "zygote" in " ".join(argv) and "bwrap" not in Path(argv[0]).name
        except (psutil.Error, OSError):
            forked = False
        return "worker" if forked else "fork server"
    return Path(cmd.split(" ", 1)[0]).name or "?"


class Sampler(threading.Thread):
    """Sums the PSS of a process and all its descendants every ``interval`` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.peak_at, self.breakdown, self.samples = 0, 0.0, Counter(), 0
        self.timeline: list[tuple[float, int, Counter]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()

    def sample(self) -> None:
        try:
            top = psutil.Process(self.pid)
            procs = [top, *top.children(recursive=True)]
        except psutil.Error:
            return
        tree = {p.pid: p for p in procs}
        total, by_role = 0, Counter()
        for p in procs:
            try:
                pss = p.memory_full_info().pss
            except (psutil.Error, OSError):
                continue
            total += pss
            by_role[role(p, tree)] += pss
        self.samples += 1
        self.timeline.append((time.monotonic() - self.started, total, by_role))
        if total > self.peak:
            self.peak, self.peak_at, self.breakdown = total, time.monotonic() - self.started, by_role

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)


def autograder_root(where: Path, bundle: Path) -> Path:
    """A fresh /autograder: the unpacked bundle in source/, the reference as the submission."""
    root = where / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        (root / "source" / name).chmod(0o755)
    (root / "submission" / "exercises").mkdir(parents=True)
    for module in sorted((ROOT / "solutions").glob("*.py")):
        (root / "submission" / "exercises" / module.name).write_bytes(module.read_bytes())
    return root


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-mnist", action="store_true", help="grade every exercise but mnist_accuracy")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between PSS samples (default 0.5)")
    p.add_argument("--bundle", type=Path, help="an autograder zip already built (default: build one now)")
    p.add_argument("--no-case-lists", action="store_true", help="build the bundle without its case lists (cold)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--timeline", type=float, default=0, metavar="S", help="print the PSS by process every S seconds")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="gradescope-bench-") as tmp:
        tmp_path = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            bundle = tmp_path / "autograder.zip"
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "grader", "gradescope", "build", str(bundle),
                            *(["--no-case-lists"] if args.no_case_lists else [])], check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
            print(f"bundle built in {time.monotonic() - t0:.1f} s", flush=True)
        root = autograder_root(tmp_path, bundle)
        home = tmp_path / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "GRADESCOPE_ONLY", "GRADESCOPE_SKIP", "GRADER_CASE_CACHE", "XDG_CACHE_HOME")}
        env.update(GRADESCOPE_ROOT=str(root), GRADESCOPE_PYTHON=sys.executable, HOME=str(home))
        if args.skip_mnist:
            env["GRADESCOPE_SKIP"] = "mnist_accuracy"
        load_before = os.getloadavg()
        started = time.monotonic()
        proc = subprocess.Popen(["bash", str(root / "source" / "run_autograder")], env=env, cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler = Sampler(proc.pid, args.interval)
        sampler.start()
        out, _ = proc.communicate()
        wall = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        load_after = os.getloadavg()
        results_file = root / "results" / "results.json"
        results = json.loads(results_file.read_text()) if results_file.is_file() else {}
        graded = [line for line in out.splitlines() if line.startswith("graded ")]
    print(out if proc.returncode else "\n".join(graded))
    figures = {
        "what": "every exercise but mnist_accuracy" if args.skip_mnist else "every exercise, MNIST training included",
        "exit": proc.returncode, "score": results.get("score"), "wall_s": round(wall, 2),
        "execution_time_s": results.get("execution_time"), "nice": os.nice(0), "peak_pss_mb": round(sampler.peak / MB, 1),
        "peak_at_s": round(sampler.peak_at, 1), "samples": sampler.samples,
        "peak_breakdown_mb": {k: round(v / MB, 1) for k, v in sampler.breakdown.most_common()},
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }
    print(f"{figures['what']}: exit {proc.returncode}, score {figures['score']}, wall {wall:.2f} s "
          f"(results.json execution_time {figures['execution_time_s']} s); nice {os.nice(0)}")
    print(f"peak PSS of the process tree: {figures['peak_pss_mb']:.1f} MB at {figures['peak_at_s']} s "
          f"({sampler.samples} samples every {args.interval} s); at the peak: "
          + ", ".join(f"{k} {v:.1f} MB" for k, v in figures["peak_breakdown_mb"].items()))
    if args.timeline:
        every = max(1, int(args.timeline / args.interval))
        for at, total, by_role in sampler.timeline[::every]:
            print(f"  {at:6.1f} s  {total / MB:6.1f} MB  " + ", ".join(f"{k} {v / MB:.0f}" for k, v in by_role.most_common()))
    print(f"load average before {' '.join(f'{x:.2f}' for x in load_before)}, after "
          f"{' '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
