"""``grader gradescope build OUT.zip``: the autograder bundle Gradescope runs for each submission.

The zip (uploaded by course staff, never released to students) holds, at its root:

* ``setup.sh`` - checks that ``python3`` is one of the supported Pythons, installs the pinned torch's
  CPU build first (PyTorch's CPU index, as in the README; pins and range from pyproject.toml), then
  this package from the bundled source (grader, hidden suites, sandbox, coursekit, reference, course.yml);
* ``run_autograder`` - grades ``$GRADESCOPE_ROOT/submission`` (default ``/autograder``) with the
  sandboxed grader and writes ``$GRADESCOPE_ROOT/results/results.json`` (Gradescope's format, see
  :func:`results_json`);
* the source, and the four MNIST ``.gz`` files (``data/mnist``) when they are found here.

``run_autograder`` puts the bundle's source first on ``PYTHONPATH`` and runs ``$GRADESCOPE_PYTHON``
(default ``python3``), so it also works without ``setup.sh`` in an environment that already has the
dependencies (the tests do this). ``GRADESCOPE_ONLY`` / ``GRADESCOPE_SKIP`` (comma-separated ids)
restrict the exercises: for tests and dry runs only (e.g. ``GRADESCOPE_SKIP=mnist_accuracy`` to
skip training), never in a real assignment.

Student code runs only inside the sandbox, which sees neither the bundle nor the results folder;
``results.json`` is removed before grading and written by this process after it, atomically. A
submission that cannot be read scores 0 with a message saying why; an internal error of the grader
writes no results.json (Gradescope then reports a failed autograder run to staff, and no grade).
"""
from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

import yaml

from coursekit.course import GRADESCOPE_VISIBILITIES, Course, load_course, split_ids
from coursekit.course import MNIST_EXERCISE, MNIST_FILES
from coursekit.mnist import gz_name
from coursekit.pins import graded_pins, python_range, supported_pythons, torch_install

VISIBILITIES = GRADESCOPE_VISIBILITIES
MNIST_ID = MNIST_EXERCISE
_MNIST_FILES = tuple(gz_name(name) for name in MNIST_FILES)

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (working directory: anywhere).
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${GRADESCOPE_PYTHON:-python3}"
# the pins have wheels for Python @PYTHON_RANGE@ only (pyproject.toml's requires-python): say so before pip fails
"$PYTHON" -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(None if v in @PYTHONS@ else "setup.sh: " + sys.executable + " is Python " + v + "; this autograder needs Python @PYTHON_RANGE@ (set GRADESCOPE_PYTHON)")'
# torch first, pinned, its CPU build from PyTorch's index: from PyPI, Linux gets a multi-gigabyte CUDA build
"$PYTHON" -m pip install --no-cache-dir @TORCH_INSTALL@
"$PYTHON" -m pip install --no-cache-dir "$SOURCE"
"""


def setup_sh(root: Path) -> str:
    """setup.sh with the Python range and the torch pin of ``root/pyproject.toml`` (their one source)."""
    pyproject = root / "pyproject.toml"
    filled = {"@PYTHONS@": json.dumps(supported_pythons(pyproject)), "@PYTHON_RANGE@": python_range(pyproject),
              "@TORCH_INSTALL@": torch_install(graded_pins(pyproject))}
    return re.sub("|".join(filled), lambda m: filled[m.group(0)], SETUP_SH)

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. GRADESCOPE_ROOT (default /autograder) holds
# source/ (this bundle), submission/ and results/. Needs the bundle's dependencies (setup.sh).
set -uo pipefail
ROOT="${GRADESCOPE_ROOT:-/autograder}"
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ -f "$SOURCE/course.yml" ] || SOURCE="$ROOT/source"   # Gradescope copies this script to $ROOT/run_autograder
export PYTHONPATH="$SOURCE${PYTHONPATH:+:$PYTHONPATH}"
[ -d "$SOURCE/data/mnist" ] && export MNIST_DIR="${MNIST_DIR:-$SOURCE/data/mnist}"
cd "$ROOT"
exec "${GRADESCOPE_PYTHON:-python3}" -m grader.gradescope run --root "$ROOT" --course "$SOURCE/course.yml"
"""


# ------------------------------------------------------------------------------------------ results.json


def _md_block(text: str) -> str:
    """``text`` as a fenced Markdown block that no backticks inside it can close (student text is inert)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def mnist_leaderboard(exercise: dict[str, Any]) -> list[dict[str, Any]]:
    """The leaderboard entries of a graded ``mnist_accuracy`` result (none without an accuracy)."""
    from .insights import mnist_metrics

    found = mnist_metrics(exercise.get("tests", []), exercise.get("duration_s", 0.0))
    if found is None:
        return []
    return [{"name": "MNIST test accuracy", "value": round(found[0], 4), "order": "desc"},
            {"name": "training seconds", "value": round(found[1], 1), "order": "asc"}]


def results_json(report: dict[str, Any], course: Course) -> dict[str, Any]:
    """Gradescope's results.json for a grade report (``GradeReport.to_json()``).

    Per exercise: a summary test (``visible`` by default) carrying the exercise's points, then one
    test per hidden check (``after_published`` by default) with its share of the points and the
    message; tags hold the exercise id. The top-level ``score`` is the total (bonus included).
    """
    summary_vis, check_vis = course.gradescope.summary_visibility, course.gradescope.check_visibility
    tests: list[dict[str, Any]] = []
    lines = ["| exercise | status | points |", "|---|---|---:|"]
    leaderboard: list[dict[str, Any]] = []
    for n, ex in enumerate(report["exercises"], 1):
        bonus = " (bonus)" if ex.get("bonus") else ""
        zeroed = ex["status"] in ("forbidden", "missing", "not_implemented")
        summary = f"**{ex['status']}**: {ex['score']:g} / {ex['max_score']:g} points"
        tests.append({"name": f"{ex['id']}{bonus}", "number": str(n), "score": ex["score"], "max_score": ex["max_score"],
                      "status": "passed" if ex["status"] == "passed" else "failed", "output_format": "md",
                      "output": summary + ("\n\n" + _md_block(ex["message"]) if ex.get("message") else ""),
                      "visibility": summary_vis, "tags": [ex["id"]],
                      "extra_data": {"execution_time": ex.get("duration_s", 0.0)}})
        for m, t in enumerate(ex.get("tests", []), 1):
            score = 0.0 if zeroed else float(t["points"])
            tests.append({"name": f"{ex['id']}: {t['name']}", "number": f"{n}.{m}", "score": score,
                          "max_score": t["max_points"], "status": "passed" if t["passed"] and not zeroed else "failed",
                          "output_format": "md",
                          "output": ("passed" if t["passed"] else "failed") + ("\n\n" + _md_block(t["message"])
                                                                               if t.get("message") else ""),
                          "visibility": check_vis, "tags": [ex["id"]]})
        lines.append(f"| {ex['id']}{bonus} | {ex['status']} | {ex['score']:g} / {ex['max_score']:g} |")
        if ex["id"] == MNIST_ID:
            leaderboard = mnist_leaderboard(ex)
    output = (f"**{report['score']:g} / {report['max_score']:g} points** (bonus exercises count in the score, not "
              f"in the maximum)\n\n" + "\n".join(lines))
    result = {"score": report["score"], "execution_time": round(report.get("duration_s", 0.0), 1),
              "output": output, "output_format": "md", "visibility": summary_vis, "stdout_visibility": "hidden",
              "tests": tests}
    if leaderboard:
        result["leaderboard"] = leaderboard
    return result


def unreadable_results(message: str) -> dict[str, Any]:
    """results.json for a submission the grader cannot read: nothing earned, and what to fix."""
    return {"score": 0.0, "execution_time": 0, "output_format": "md", "visibility": "visible",
            "output": "**Your submission could not be graded**\n\n" + _md_block(message), "tests": []}




def run(root: Path, course: Course) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json``; 0, or 3 on an internal error."""
    from .grade import grade_submission
    from .submission import SubmissionError

    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    target = results / "results.json"
    target.unlink(missing_ok=True)  # only what this run writes counts
    only, skip = split_ids(os.environ.get("GRADESCOPE_ONLY")), split_ids(os.environ.get("GRADESCOPE_SKIP"))
    started = time.monotonic()
    print(f"grader {Path(__file__).parent}, course {course.root / 'course.yml'}", flush=True)
    try:
        report = grade_submission(root / "submission", course, only or None, skip or None,
                                  on_exercise=lambda r: print(f"graded {r.id}: {r.status} {r.score:g}/{r.max_score:g}",
                                                              flush=True),
                                  parallel=min(4, os.cpu_count() or 1))
        data = results_json(report.to_json(), course)
    except SubmissionError as exc:
        data = unreadable_results(str(exc))
    except Exception as exc:  # GraderInternalError, no sandbox, a bug: no grade rather than a wrong one
        print(f"grader: INTERNAL ERROR, no results written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    data["execution_time"] = round(time.monotonic() - started, 1)
    tmp = results / ".results.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    print(f"score {data['score']:g}; wrote {target}")
    return 0


# ------------------------------------------------------------------------------------------ the bundle


def _package_files(folder: Path, arc: str) -> Iterable[tuple[Path, str]]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and "__pycache__" not in rel.parts and not path.name.endswith((".pyc", ".pyo")):
            yield path, f"{arc}/{rel.as_posix()}"


def bundle_files(course: Course) -> tuple[list[tuple[Path, str]], Path | None]:
    """(file, name in the zip) of the bundled source, and the MNIST folder found (or None)."""
    import coursekit
    import grader

    root = course.root
    files: list[tuple[Path, str]] = []
    for package, folder in (("grader", Path(grader.__file__).parent), ("coursekit", Path(coursekit.__file__).parent),
                            (course.reference_package, root / course.reference_package),
                            (course.student_package, root / course.student_package)):
        files.extend(_package_files(folder, package))
    for name in ("pyproject.toml", "README.md"):
        if (root / name).is_file():
            files.append((root / name, name))
    mnist = None
    try:
        from coursekit.mnist import resolve_mnist_dir

        found = Path(resolve_mnist_dir())
        if all((found / f).is_file() for f in _MNIST_FILES):
            mnist = found
            files.extend((found / f, f"data/mnist/{f}") for f in _MNIST_FILES)
    except Exception:  # no MNIST here: the bundle then needs MNIST_DIR in the image
        mnist = None
    return files, mnist


def _course_yml(course: Course, with_mnist: bool) -> str:
    """The course.yml for the bundle: the same file, the data folder pointing inside the bundle."""
    source = course.root / "course.yml"
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    if with_mnist:
        raw.setdefault("data", {})["mnist_dir"] = "data/mnist"
    return "# course.yml of the Gradescope bundle (generated by `grader gradescope build`)\n" + yaml.safe_dump(
        raw, sort_keys=False)


def _write(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build(course: Course, out: Path) -> dict[str, Any]:
    """Write the autograder zip; returns what went in (names, whether MNIST is bundled)."""
    files, mnist = bundle_files(course)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    names = []
    with zipfile.ZipFile(tmp, "w") as zf:
        _write(zf, "setup.sh", setup_sh(course.root).encode(), executable=True)
        _write(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        _write(zf, "course.yml", _course_yml(course, mnist is not None).encode())
        for path, name in files:
            _write(zf, name, path.read_bytes())
            names.append(name)
    tmp.replace(out)
    return {"zip": out, "files": ["setup.sh", "run_autograder", "course.yml", *names], "mnist": mnist}


def command(args: Any, course: Course) -> int:
    """``grader gradescope build OUT.zip``."""
    if args.zip.suffix.lower() != ".zip" or args.zip.is_dir():
        print(f"grader: {args.zip}: give a .zip file name", file=sys.stderr)
        return 2
    built = build(course, args.zip)
    print(f"wrote {built['zip']} ({len(built['files'])} files)"
          + ("" if built["mnist"] else "; MNIST not found here, not bundled: set MNIST_DIR in the Gradescope image"))
    print("upload it as the assignment's autograder (Configure Autograder > Zip file upload)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.gradescope run --root ROOT --course COURSE``: what run_autograder calls."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m grader.gradescope")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="grade ROOT/submission into ROOT/results/results.json")
    r.add_argument("--root", type=Path, default=Path(os.environ.get("GRADESCOPE_ROOT", "/autograder")))
    r.add_argument("--course", type=Path, default=None)
    args = p.parse_args(argv)
    return run(args.root, load_course(args.course))


if __name__ == "__main__":
    sys.exit(main())
