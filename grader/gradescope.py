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
``results.json`` is removed before grading and written by this process after it, atomically. The run
keeps to course.yml's ``gradescope.time_budget_s`` (exercises the budget leaves out are "not graded", not
blamed on the student; a watchdog writes results.json should the grader itself still run), and sizes its
parallelism and torch threads from the container's CPU quota (:mod:`grader.resources`). A submission that
cannot be read scores 0 with a message saying why; a sandbox that cannot start gives a results.json that
says so to staff (:func:`could_not_run_results`); any other internal error of the grader writes no
results.json (Gradescope then reports a failed autograder run to staff, and no grade).

The bundle ships ``case_lists/``: the kept case lists (:mod:`grader.suites.case_lists`) made by grading the
reference at build time, used by ``run_autograder`` through ``GRADER_CASE_CACHE``; like the hidden suites
they are staff-only and must not be readable by student code.
"""
from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from coursekit.course import GRADESCOPE_VISIBILITIES, Course, load_course, split_ids
from coursekit.course import MNIST_EXERCISE, MNIST_FILES
from coursekit.mnist import gz_name
from coursekit.pins import graded_pins, python_range, supported_pythons, torch_install

from .course_secret import course_secret
from .grade import NOT_GRADED

VISIBILITIES = GRADESCOPE_VISIBILITIES
MNIST_ID = MNIST_EXERCISE
ZEROED = ("forbidden", "missing", "not_implemented")
"""Statuses that score nothing for the whole exercise, whatever its checks earned."""
NOT_GRADED_PREFIX = NOT_GRADED.split(":")[0] + ":"
MEASURED_PEAK_MB = 671
"""Peak PSS of the whole process tree for one full grading of the reference, MNIST training included:
``python benchmarks/gradescope_resources.py`` (2 shared cores, load average 9.6-12.1; see the README)."""
TRAINING_SET_FLOAT32_MB = 188
"""One float32 copy of MNIST's 60,000 training images: what a student's training may hold beyond the reference's."""
BUNDLE_SECRET = ".course-secret"
"""The course secret's name in the bundle (grader/course_secret.py): copied from the instructor's, never made anew."""
WATCHDOG_GRACE_S = 45.0
"""After the time budget, how long the grader may still take to score and write before the watchdog writes."""
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
# the case lists `gradescope build` kept by grading the reference: warm from the first submission
[ -d "$SOURCE/case_lists" ] && export GRADER_CASE_CACHE="$SOURCE/case_lists"
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


_NOT_EACH = ("not run: ", "not implemented yet")
"""Check messages that repeat the exercise's own reason: summed up once, not listed per check."""


def _lost(t: dict[str, Any], zeroed: bool) -> float:
    """Points a check did not earn (all of them when the exercise scores nothing as a whole)."""
    return float(t["max_points"]) - (0.0 if zeroed else float(t["points"]))


def exercise_summary(ex: dict[str, Any]) -> str:
    """The visible Markdown of one exercise: its status and points, then each check that lost points with
    the points lost and its message (student text fenced), then the notes of passed checks."""
    zeroed = ex["status"] in ZEROED
    status = "not graded" if ex.get("message", "").startswith(NOT_GRADED_PREFIX) else ex["status"]
    parts = [f"**{status}**: {ex['score']:g} / {ex['max_score']:g} points"]
    if ex.get("message"):
        parts.append(_md_block(ex["message"]))
    lost = [t for t in ex.get("tests", []) if _lost(t, zeroed) > 1e-9]
    if zeroed and ex.get("message"):  # one reason for the whole exercise: said above, not once per check
        lost = []
    shown = [t for t in lost if t.get("message") and t["message"] != ex.get("message")
             and not t["message"].startswith(_NOT_EACH)]
    if shown:
        parts.append("Points lost:")
        for t in shown:
            parts.append(f"- {t['name']} (-{_lost(t, zeroed):g}):\n\n" + _md_block(t["message"]))
    rest = [t for t in lost if t not in shown]
    if rest:
        parts.append(("Also lost: " if shown else "Points lost: ")
                     + ", ".join(f"{t['name']} (-{_lost(t, zeroed):g})" for t in rest))
    notes = [t["message"] for t in ex.get("tests", []) if t.get("passed") and t.get("message")]
    if notes:
        parts.append("Notes:\n\n" + _md_block("\n".join(notes)))
    return "\n\n".join(parts)


def results_json(report: dict[str, Any], course: Course) -> dict[str, Any]:
    """Gradescope's results.json for a grade report (``GradeReport.to_json()``).

    Each point is listed once: per exercise, a summary test (``visible`` by default) carries the
    exercise's score and says why each lost point was lost; then one test per hidden check
    (``after_published`` by default) with its message and no score of its own (its points are named in
    its output). So the tests' scores add up to the top-level ``score``, the total (bonus included).
    Tags hold the exercise id.
    """
    summary_vis, check_vis = course.gradescope.summary_visibility, course.gradescope.check_visibility
    tests: list[dict[str, Any]] = []
    lines = ["| exercise | status | points |", "|---|---|---:|"]
    leaderboard: list[dict[str, Any]] = []
    for n, ex in enumerate(report["exercises"], 1):
        bonus = " (bonus)" if ex.get("bonus") else ""
        zeroed = ex["status"] in ZEROED
        tests.append({"name": f"{ex['id']}{bonus}", "number": str(n), "score": ex["score"], "max_score": ex["max_score"],
                      "status": "passed" if ex["status"] == "passed" else "failed", "output_format": "md",
                      "output": exercise_summary(ex), "visibility": summary_vis, "tags": [ex["id"]],
                      "extra_data": {"execution_time": ex.get("duration_s", 0.0)}})
        for m, t in enumerate(ex.get("tests", []), 1):
            passed = bool(t["passed"]) and not zeroed
            earned = float(t["max_points"]) - _lost(t, zeroed)
            tests.append({"name": f"{ex['id']}: {t['name']}", "number": f"{n}.{m}",
                          "status": "passed" if passed else "failed", "output_format": "md",
                          "output": f"{'passed' if passed else 'failed'}: {earned:g} / {t['max_points']:g} of the "
                                    f"exercise's points" + ("\n\n" + _md_block(t["message"]) if t.get("message") else ""),
                          "visibility": check_vis, "tags": [ex["id"]]})
        status = "not graded" if ex.get("message", "").startswith(NOT_GRADED_PREFIX) else ex["status"]
        lines.append(f"| {ex['id']}{bonus} | {status} | {ex['score']:g} / {ex['max_score']:g} |")
        if ex["id"] == MNIST_ID:
            leaderboard = mnist_leaderboard(ex)
    output = (f"**{report['score']:g} / {report['max_score']:g} points** (bonus exercises count in the score, not "
              f"in the maximum)\n\n" + "\n".join(lines))
    if any(ex.get("message", "").startswith(NOT_GRADED_PREFIX) for ex in report["exercises"]):
        output += ("\n\nSome exercises were **not graded**: the autograder's time budget ran out before they could run. "
                   "This is not your code's fault; course staff can regrade the submission.")
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


def could_not_run_results(reason: str, course: Course) -> dict[str, Any]:
    """results.json when the grading itself could not run (no sandbox could start on this machine).

    Gradescope needs a score, so it is 0; the student's output says the grading could not run and that
    this is not their fault, and a staff-only (``hidden``) test named ``AUTOGRADER FAILED`` gives the
    reason and what to do, so the failure shows in staff's view of every submission instead of a silent 0.
    """
    student = ("**Your submission was not graded: the autograder could not run.**\n\n"
               "This is a problem of the grading machine, not of your code. Course staff have the details and "
               "will regrade your submission; you do not need to resubmit. (The score of 0 shown is a placeholder.)")
    staff = ("The sandbox that runs student code could not start in this Gradescope container, so nothing was "
             "graded and the score 0 is a placeholder. Reason:\n\n" + _md_block(reason) + "\n\nFix the image or the "
             "isolation (see the README's Gradescope paragraph), then regrade all submissions.")
    return {"score": 0.0, "execution_time": 0, "output_format": "md", "visibility": "visible",
            "stdout_visibility": "hidden", "output": student,
            "tests": [{"name": "AUTOGRADER FAILED: the sandbox could not start (staff only)", "number": "0",
                       "score": 0.0, "max_score": 0.0, "status": "failed", "output_format": "md", "output": staff,
                       "visibility": "hidden", "tags": ["autograder-failed"]}]}


def not_graded_report(course: Course, done: dict[str, Any], exercises: list[Any], duration_s: float) -> dict[str, Any]:
    """A report (``GradeReport.to_json()`` form) of the exercises finished so far, every other one not graded."""
    from .grade import not_graded
    from .report import GradeReport, total

    started = time.monotonic()
    ordered = [done.get(ex.id) or not_graded(ex, started, "finish") for ex in exercises]
    score, max_score = total(ordered)
    return GradeReport(score=score, max_score=max_score, grader_version="", isolation="", duration_s=duration_s,
                       exercises=ordered).to_json()


def _write_results(results: Path, data: dict[str, Any]) -> Path:
    """results.json written atomically."""
    target = results / "results.json"
    tmp = results / ".results.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def _watchdog(seconds: float, results: Path, write_lock: threading.Lock, written: list[bool],
              partial: Callable[[], dict[str, Any]]) -> threading.Timer:
    """A timer that, should the grading still run after ``seconds``, writes what is finished (the rest not
    graded) and ends the process: results.json exists before Gradescope's timeout whatever happens."""
    def fire() -> None:
        with write_lock:
            if written[0]:
                return
            try:
                target = _write_results(results, partial())
                print(f"grader: the time budget is spent; wrote {target} with the finished exercises", file=sys.stderr,
                      flush=True)
            finally:
                os._exit(0)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    return timer


def run(root: Path, course: Course) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json``; 0, or 3 on an internal error.

    Within ``gradescope.time_budget_s`` of course.yml: exercises that cannot start or finish before it are
    not graded (no points, a message that does not blame the student), and a watchdog writes results.json
    before the platform's timeout should the grader itself still run. A sandbox that cannot start gives a
    results.json saying so (:func:`could_not_run_results`)."""
    from .grade import grade_submission, select
    from .resources import available_cpus
    from .sandbox.isolation import WorkerError
    from .submission import SubmissionError

    started = time.monotonic()
    settings = course.gradescope
    deadline = started + settings.time_budget_s
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "results.json").unlink(missing_ok=True)  # only what this run writes counts
    only, skip = split_ids(os.environ.get("GRADESCOPE_ONLY")), split_ids(os.environ.get("GRADESCOPE_SKIP"))
    cpus = available_cpus()
    print(f"grader {Path(__file__).parent}, course {course.root / 'course.yml'}; {cpus} CPU(s), time budget "
          f"{settings.time_budget_s:g} s", flush=True)
    done: dict[str, Any] = {}
    write_lock, written = threading.Lock(), [False]

    def finished(r: Any) -> None:
        done[r.id] = r
        print(f"graded {r.id}: {r.status} {r.score:g}/{r.max_score:g}", flush=True)

    def partial() -> dict[str, Any]:
        exercises = select(course, only or None, skip or None)
        return results_json(not_graded_report(course, dict(done), exercises, time.monotonic() - started), course)

    grace = min(WATCHDOG_GRACE_S, (settings.timeout_s - settings.time_budget_s) / 2)
    watchdog = _watchdog(settings.time_budget_s + grace, results, write_lock, written, partial)
    watchdog.start()
    try:
        report = grade_submission(root / "submission", course, only or None, skip or None, on_exercise=finished,
                                  parallel=min(4, cpus), threads=cpus, deadline=deadline)
        data = results_json(report.to_json(), course)
    except SubmissionError as exc:
        data = unreadable_results(str(exc))
    except WorkerError as exc:  # no sandbox here: say so to staff, never a silent 0 or a missing file
        print(f"grader: AUTOGRADER FAILED, the sandbox could not start: {exc}", flush=True)
        data = could_not_run_results(str(exc), course)
    except Exception as exc:  # GraderInternalError, a bug: no grade rather than a wrong one
        watchdog.cancel()
        print(f"grader: INTERNAL ERROR, no results written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    watchdog.cancel()
    data["execution_time"] = round(time.monotonic() - started, 1)
    with write_lock:
        target = _write_results(results, data)
        written[0] = True
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
    raw.setdefault("integrity", {})["secret_file"] = BUNDLE_SECRET
    return "# course.yml of the Gradescope bundle (generated by `grader gradescope build`)\n" + yaml.safe_dump(
        raw, sort_keys=False)


def _write(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


CASE_LISTS = "case_lists"
"""The bundle's folder of kept case lists (``GRADER_CASE_CACHE`` in run_autograder): staff only, like the
hidden suites; student code must not read it."""


def build_case_lists(course: Course, into: Path) -> tuple[list[tuple[Path, str]], str]:
    """Grade the reference (every exercise but MNIST training) with ``GRADER_CASE_CACHE=into``, so that the
    bundle ships the kept case lists; returns their (file, name in the zip) and a line saying what happened."""
    from .grade import grade_submission
    from .resources import available_cpus
    from .suites.case_lists import CASE_CACHE_ENV

    before = os.environ.get(CASE_CACHE_ENV)
    os.environ[CASE_CACHE_ENV] = str(into)
    try:
        report = grade_submission(course.root / course.reference_package, course, skip=[MNIST_ID],
                                  parallel=min(4, available_cpus()))
    except Exception as exc:  # noqa: BLE001  no sandbox here, ...: the bundle works, cold
        return [], (f"case lists not built ({type(exc).__name__}: {exc}): each Gradescope run generates its cases "
                    f"(a few seconds more per submission)")
    finally:
        if before is None:
            os.environ.pop(CASE_CACHE_ENV, None)
        else:
            os.environ[CASE_CACHE_ENV] = before
    files = [(f, f"{CASE_LISTS}/{f.relative_to(into).as_posix()}") for f in sorted(into.rglob("*.json"))]
    line = (f"case lists: {len(files)} kept by grading the reference ({report.score_text()} without {MNIST_ID}); "
            f"used where Gradescope's image has Python {sys.version_info[0]}.{sys.version_info[1]} and hypothesis "
            f"{_hypothesis_version()} as here, else each run generates its cases")
    if any(ex.status != "passed" for ex in report.exercises):
        line += "; WARNING: the reference did not pass every exercise, and a failing search keeps no list"
    return files, line


def _hypothesis_version() -> str:
    import hypothesis

    return hypothesis.__version__


def resource_advice(course: Course) -> list[str]:
    """What to set on Gradescope (CPUs, memory, timeout) where the course's grading does not fit the
    assignment's settings (course.yml ``gradescope``), each with its reason; empty when it fits."""
    g = course.gradescope
    advice: list[str] = []
    together = [ex for ex in course.exercises if not ex.runs_alone]
    alone = [ex for ex in course.exercises if ex.runs_alone]
    slots = max(1, min(4, int(g.cpus)))
    worst = sum(course.limits(ex.id).time_limit_s for ex in together) / slots + \
        sum(course.limits(ex.id).time_limit_s for ex in alone)
    if worst > g.time_budget_s:
        longest = max(course.exercises, key=lambda ex: course.limits(ex.id).time_limit_s)
        need = int(-(-(worst + WATCHDOG_GRACE_S + 60) // 60) * 60)
        advice.append(
            f"timeout: the exercises' time limits add up to {worst:.0f} s in the worst case ({longest.id} alone may run "
            f"{course.limits(longest.id).time_limit_s:g} s), over the time budget of {g.time_budget_s:g} s that fits the "
            f"{g.timeout_s:g} s timeout: a submission that runs that long has its unfinished exercises reported as not "
            f"graded (no points, not blamed on the student). To let every exercise run its full limit, set the "
            f"autograder timeout to {need} s and course.yml gradescope: {{timeout_s: {need}, time_budget_s: "
            f"{need - 120}}}")
    if g.cpus < 1:
        advice.append(
            f"CPUs: {g.cpus:g} vCPU is less than one whole CPU: exercises are graded one at a time and {MNIST_ID} trains "
            f"on one thread at {g.cpus:g} of its speed (about {1 / g.cpus:.0f}x the training time). Set 1 vCPU or more "
            f"(2 for two training threads) and course.yml gradescope.cpus to match for faster feedback")
    if g.memory_mb < MEASURED_PEAK_MB + TRAINING_SET_FLOAT32_MB:
        advice.append(
            f"memory: a full grading of the reference peaks at about {MEASURED_PEAK_MB} MB (PSS of the whole process "
            f"tree, benchmarks/gradescope_resources.py), which leaves {g.memory_mb - MEASURED_PEAK_MB} MB of the "
            f"{g.memory_mb} MB set: a student's training that holds one more float32 copy of the training set "
            f"({TRAINING_SET_FLOAT32_MB} MB, e.g. images.astype('float32') / 255) gets the container's out-of-memory "
            f"kill. Set 1536 MB (and course.yml gradescope.memory_mb) to leave room")
    return advice


def build(course: Course, out: Path, case_lists: bool = True) -> dict[str, Any]:
    """Write the autograder zip; returns what went in (names, whether MNIST is bundled, the case lists)."""
    files, mnist = bundle_files(course)
    lists_line = "case lists: not built (--no-case-lists)"
    if case_lists:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="grader-case-lists-") as tmp:
            lists, lists_line = build_case_lists(course, Path(tmp))
            files.extend(lists)
            return _build_zip(course, out, files, mnist, lists_line)
    return _build_zip(course, out, files, mnist, lists_line)


def _build_zip(course: Course, out: Path, files: list[tuple[Path, str]], mnist: Path | None, lists_line: str) -> dict[str, Any]:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    names = []
    with zipfile.ZipFile(tmp, "w") as zf:
        _write(zf, "setup.sh", setup_sh(course.root).encode(), executable=True)
        _write(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        _write(zf, "course.yml", _course_yml(course, mnist is not None).encode())
        # The course's secret, so that every run (a fresh container each time) derives the same MNIST seeds:
        # a regrade on Gradescope gives the grade the instructor's own grader gives. Staff only, like the suites.
        _write(zf, BUNDLE_SECRET, (course_secret(course).hex() + "\n").encode())
        for path, name in files:
            _write(zf, name, path.read_bytes())
            names.append(name)
    tmp.replace(out)
    return {"zip": out, "files": ["setup.sh", "run_autograder", "course.yml", BUNDLE_SECRET, *names], "mnist": mnist,
            "case_lists": lists_line}


def command(args: Any, course: Course) -> int:
    """``grader gradescope build OUT.zip``."""
    if args.zip.suffix.lower() != ".zip" or args.zip.is_dir():
        print(f"grader: {args.zip}: give a .zip file name", file=sys.stderr)
        return 2
    built = build(course, args.zip, case_lists=not args.no_case_lists)
    print(f"wrote {built['zip']} ({len(built['files'])} files)"
          + ("" if built["mnist"] else "; MNIST not found here, not bundled: set MNIST_DIR in the Gradescope image"))
    print(built["case_lists"])
    g = course.gradescope
    advice = resource_advice(course)
    print(f"Gradescope settings assumed (course.yml gradescope): {g.cpus:g} vCPU, {g.memory_mb} MB, timeout {g.timeout_s:g} s; "
          f"time budget {g.time_budget_s:g} s" + ("; they fit." if not advice else "; to set:"))
    for line in advice:
        print(f"  - {line}")
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
