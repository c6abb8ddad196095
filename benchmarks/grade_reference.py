"""How long `grader grade` takes on the reference solutions, per exercise.

    python benchmarks/grade_reference.py                 # everything but mnist_accuracy (goal: the whole command <= 3 s)
    python benchmarks/grade_reference.py --with-mnist    # also train the convnet in the sandbox
    python benchmarks/grade_reference.py --markdown      # a table for the README
    python benchmarks/grade_reference.py --command 5     # the whole CLI command, 5 times (goal: <= 3 s wall)

``--command N`` times ``grader grade solutions --skip mnist_accuracy`` as a user runs it (a new
process: imports, course, sandboxes, grading, report), N times, with the kept case lists of the
property searches (``grader.suites.case_lists.case_cache_dir``) first emptied: the first run generates
them with hypothesis ("cold"), the others replay them ("warm").

With ``--with-mnist`` the goal is: grading time <= the reference training time + 5 s. Two figures:
the grader's overhead on its own training (mnist_accuracy's time minus the training time the worker
reports in the grader's note), and mnist_accuracy's time against the reference training alone,
measured in the same run (the reference ``train`` in this process, same data, threads chosen as the
grader chooses them). A fresh process pays 1.5-3 s inside its first ``train`` for torch's lazy import of
``torch._dynamo`` (the first optimizer built); the worker does, and the line says whether this process did.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.course import load_course  # noqa: E402
from grader.grade import grade_submission  # noqa: E402
from grader.insights import mnist_metrics  # noqa: E402


def reference_training_seconds() -> tuple[float, float, bool]:
    """(seconds, test accuracy, whether torch._dynamo was imported before) of the reference recipe run
    directly, without the sandbox."""
    import torch

    from coursekit.mnist import load_mnist
    from grader.suites.mnist_accuracy import free_cores
    from solutions import convnet

    x_train, y_train, x_test, y_test = load_mnist()
    dynamo_was_imported = "torch._dynamo" in sys.modules
    torch.set_num_threads(free_cores(torch.get_num_threads()))
    started = time.perf_counter()
    model = convnet.build_convnet()
    images, labels = convnet.preprocess(x_train, y_train)
    convnet.train(model, images, labels, seed=0)
    seconds = time.perf_counter() - started
    test_images, test_labels = convnet.preprocess(x_test, y_test)
    return seconds, convnet.evaluate(model, test_images, test_labels), dynamo_was_imported


def time_command(runs: int) -> None:
    """Wall seconds of the whole ``grader grade`` command, cold case lists first, then warm."""
    command = [sys.executable, "-m", "grader", "grade", str(ROOT / "solutions"), "--skip", "mnist_accuracy"]
    with tempfile.TemporaryDirectory(prefix="case-lists-") as cases:
        env = {**os.environ, "GRADER_CASE_CACHE": cases}
        walls = []
        for i in range(runs):
            load = os.getloadavg()[0]
            started = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            walls.append(time.perf_counter() - started)
            last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
            print(f"run {i + 1} ({'cold' if i == 0 else 'warm'} case lists): {walls[-1]:.2f} s wall, exit {done.returncode}, "
                  f"load average {load:.1f} before; {last}")
    if len(walls) > 1:
        print(f"warm runs: median {statistics.median(walls[1:]):.2f} s, best {min(walls[1:]):.2f} s (goal <= 3 s); "
              f"cold: {walls[0]:.2f} s; {os.cpu_count()} cores, load average now {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-mnist", action="store_true", help="include mnist_accuracy (trains the convnet)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--command", type=int, metavar="N", help="time the whole `grader grade` command N times instead")
    args = parser.parse_args()
    if args.command:
        time_command(args.command)
        return

    course = load_course()
    skip = [] if args.with_mnist else ["mnist_accuracy"]
    started = time.perf_counter()
    report = grade_submission(ROOT / "solutions", course, skip=skip)
    total = time.perf_counter() - started
    load = os.getloadavg()[0]

    rows = [(e.id, e.status, f"{e.score:g}/{e.max_score:g}", f"{e.duration_s:.2f}") for e in report.exercises]
    if args.markdown:
        print("| exercise | status | score | seconds |\n|---|---|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    else:
        for r in rows:
            print(f"{r[0]:<20} {r[1]:<16} {r[2]:>8} {r[3]:>8} s")
    print(f"\ngrading {'all exercises' if args.with_mnist else 'all but mnist_accuracy'}: {total:.1f} s "
          f"(score {report.score:g}/{report.max_score:g}; isolation {report.isolation}; load average {load:.1f} on {os.cpu_count()} cores)")
    if args.with_mnist:
        seconds, accuracy, dynamo_was_imported = reference_training_seconds()
        ex = report.exercise("mnist_accuracy")
        mnist = ex.duration_s
        print(f"grader's note: {' '.join(t.message for t in ex.tests).strip()}")
        found = mnist_metrics([t.to_json() for t in ex.tests], mnist)
        if found:
            print(f"mnist_accuracy in the grader: {mnist:.1f} s, of which training in the sandbox {found[1]:.1f} s: "
                  f"overhead {mnist - found[1]:+.1f} s (goal <= +5 s)")
        print(f"reference training alone: {seconds:.1f} s (test accuracy {accuracy:.4f}; torch._dynamo "
              f"{'already imported' if dynamo_was_imported else 'imported during it'}); mnist_accuracy in the grader: "
              f"{mnist:.1f} s; difference {mnist - seconds:+.1f} s (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
