"""How long `grader grade` takes on the reference solutions, per exercise.

    python benchmarks/grade_reference.py                 # everything but mnist_accuracy (goal: the whole command <= 3 s)
    python benchmarks/grade_reference.py --with-mnist    # also train the convnet in the sandbox
    python benchmarks/grade_reference.py --markdown      # a table for the README

With ``--with-mnist`` the goal is: grading time <= the reference training time + 5 s; the
training time alone is measured in the same run (the reference ``train`` in this process, same
data, threads chosen as the grader chooses them) so both numbers come from the same machine state.
The grader's own note (test accuracy, training time inside the sandbox) is printed too.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.course import load_course  # noqa: E402
from grader.grade import grade_submission  # noqa: E402


def reference_training_seconds() -> tuple[float, float]:
    """(seconds, test accuracy) of the reference recipe run directly, without the sandbox."""
    import torch

    from coursekit.mnist import load_mnist
    from grader.suites.mnist_accuracy import free_cores
    from solutions import convnet

    x_train, y_train, x_test, y_test = load_mnist()
    torch.set_num_threads(free_cores(torch.get_num_threads()))
    started = time.perf_counter()
    model = convnet.build_convnet()
    images, labels = convnet.preprocess(x_train, y_train)
    convnet.train(model, images, labels, seed=0)
    seconds = time.perf_counter() - started
    test_images, test_labels = convnet.preprocess(x_test, y_test)
    return seconds, convnet.evaluate(model, test_images, test_labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-mnist", action="store_true", help="include mnist_accuracy (trains the convnet)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

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
        seconds, accuracy = reference_training_seconds()
        ex = report.exercise("mnist_accuracy")
        mnist = ex.duration_s
        print(f"grader's note: {' '.join(t.message for t in ex.tests).strip()}")
        print(f"reference training alone: {seconds:.1f} s (test accuracy {accuracy:.4f}); mnist_accuracy in the grader: {mnist:.1f} s; "
              f"overhead {mnist - seconds:+.1f} s (goal <= +5 s)")


if __name__ == "__main__":
    main()
