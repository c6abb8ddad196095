"""``grader gradescope build``: the bundle, its run_autograder in a simulated /autograder, results.json.

The install is simulated: the packages are already installed here, so ``run_autograder`` runs with
the current Python (``GRADESCOPE_PYTHON``) and the bundle's source first on ``PYTHONPATH`` (what it
does anyway); ``setup.sh`` runs against a fake Python that records the pip commands. Exercises are
restricted with ``GRADESCOPE_ONLY`` / ``GRADESCOPE_SKIP`` (test-only switches: no MNIST training).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from coursekit.course import load_course
from coursekit.pins import graded_pins, torch_install
from grader.cli import main
from grader.gradescope import VISIBILITIES, mnist_leaderboard, results_json

ROOT = Path(__file__).resolve().parents[1]
FAST = "conv_output_size,pad2d,same_padding,correlate2d"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert main(["gradescope", "build", str(out)]) == 0
    return out


def _autograder_root(bundle: Path, tmp_path: Path, submission: dict[str, str]) -> Path:
    """A fresh /autograder: source/ (the unzipped bundle), submission/, results/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    (root / "submission").mkdir()
    for name, text in submission.items():
        path = root / "submission" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _run(root: Path, **env: str) -> tuple[dict, subprocess.CompletedProcess]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADESCOPE_ONLY", "GRADESCOPE_SKIP")}
    environ.update({"GRADESCOPE_ROOT": str(root), "GRADESCOPE_PYTHON": sys.executable, **env})
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=environ, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"grader {root / 'source' / 'grader'}" in proc.stdout  # the bundle's grader ran, not this checkout's
    return json.loads((root / "results" / "results.json").read_text()), proc


def validate(results: dict) -> None:
    """The fields of Gradescope's autograder specification that this grader writes."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["execution_time"], (int, float))
    assert isinstance(results["output"], str) and results.get("output_format", "md") == "md"
    assert results.get("visibility", "visible") in VISIBILITIES
    for t in results["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "output_format", "visibility", "tags", "number"}
        assert isinstance(t["name"], str) and isinstance(t["output"], str) and isinstance(t["number"], str)
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"] + 1e-9
        assert t["output_format"] == "md" and t["visibility"] in VISIBILITIES
        assert isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])
        assert t.get("status", "passed") in ("passed", "failed")
    for entry in results.get("leaderboard", []):
        assert set(entry) == {"name", "value", "order"} and entry["order"] in ("asc", "desc")
        assert isinstance(entry["value"], (int, float))
    json.dumps(results)


def _summaries(results: dict) -> dict[str, dict]:
    return {t["tags"][0]: t for t in results["tests"] if "." not in t["number"]}


def test_the_bundle_holds_what_gradescope_needs(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "course.yml", "pyproject.toml", "grader/gradescope.py",
            "grader/suites/conv2d.py", "grader/sandbox_runtime/worker.py", "solutions/conv.py", "coursekit/course.py"} <= names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert not any("__pycache__" in n for n in names)
    torch = torch_install(graded_pins(ROOT / "pyproject.toml"))  # the pin and the CPU index, from pyproject.toml
    assert setup.index(torch) < setup.index('pip install --no-cache-dir "$SOURCE"')
    # setup.sh against a fake python: torch first, then the bundled package
    log, fake = tmp_path / "pip.log", tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake.chmod(0o755)
    root = _autograder_root(bundle, tmp_path, {})
    subprocess.run(["bash", str(root / "source" / "setup.sh")], env={**os.environ, "GRADESCOPE_PYTHON": str(fake)},
                   check=True, timeout=60)
    calls = log.read_text().splitlines()
    assert calls[0].startswith("-c import sys")  # the Python version check (tests/test_pins.py runs it)
    assert calls[1:] == [f"-m pip install --no-cache-dir {torch}", f"-m pip install --no-cache-dir {root / 'source'}"]


def test_reference_earns_full_marks(bundle, tmp_path):
    submission = {f"exercises/{p.name}": p.read_text() for p in (ROOT / "solutions").glob("*.py")}
    root = _autograder_root(bundle, tmp_path, submission)
    results, _ = _run(root, GRADESCOPE_SKIP="mnist_accuracy")
    validate(results)
    course = load_course()
    graded = [ex for ex in course.exercises if ex.id != "mnist_accuracy"]
    assert results["score"] == pytest.approx(sum(ex.points for ex in graded))
    summaries = _summaries(results)
    assert set(summaries) == {ex.id for ex in graded}
    assert all(s["visibility"] == "visible" and s["score"] == s["max_score"] for s in summaries.values())
    details = [t for t in results["tests"] if "." in t["number"]]
    assert details and all(t["visibility"] == "after_published" for t in details)
    for ex in graded:  # each exercise's checks add up to its points
        assert sum(t["max_score"] for t in details if t["tags"] == [ex.id]) == pytest.approx(ex.points)
    assert "leaderboard" not in results  # no MNIST run: no made-up entries


def test_stubs_earn_nothing(bundle, tmp_path):
    submission = {p.name: p.read_text() for p in (ROOT / "exercises").glob("*.py")}
    root = _autograder_root(bundle, tmp_path, submission)
    results, _ = _run(root, GRADESCOPE_ONLY=FAST)
    validate(results)
    assert results["score"] == 0
    assert {t["status"] for t in results["tests"]} == {"failed"}
    assert "not_implemented" in _summaries(results)["conv2d" if "conv2d" in FAST else "pad2d"]["output"]


HOSTILE = """
import json, os, sys
ROOT = {root!r}
def _attack():
    grabbed = []
    for path in (ROOT + "/results/results.json", ROOT + "/results/pwned", ROOT + "/source/pwned"):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                json.dump({{"score": 1000, "tests": []}}, fh)
        except Exception:
            pass
    try:
        grabbed.append(open(ROOT + "/source/solutions/strides.py").read())
    except Exception:
        pass
    return grabbed
_GRABBED = _attack()
def conv_output_size(n, k, stride=1, padding=0):
    ns = {{}}
    exec(compile(_GRABBED[0], "ref", "exec"), ns)   # only works if the reference was readable
    return ns["conv_output_size"](n, k, stride, padding)
def pad2d(x, pad, value=0.0):
    sys.path.insert(0, ROOT + "/source")
    from solutions.padding import pad2d as reference
    return reference(x, pad, value)
"""


def test_hostile_submission_earns_nothing_and_cannot_write_results(bundle, tmp_path):
    root = tmp_path / "autograder"
    code = textwrap.dedent(HOSTILE.format(root=str(root)))
    submission = {"strides.py": code, "padding.py": code.replace("def conv_output_size", "def _unused"),
                  "results/results.json": json.dumps({"score": 999})}
    root = _autograder_root(bundle, tmp_path, submission)
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text(json.dumps({"score": 500, "tests": []}))  # stale: removed first
    results, _ = _run(root, GRADESCOPE_ONLY="conv_output_size,pad2d")
    validate(results)
    assert results["score"] == 0
    assert set(_summaries(results)) == {"conv_output_size", "pad2d"}
    assert not (root / "results" / "pwned").exists() and not (root / "source" / "pwned").exists()


def test_unreadable_submission_scores_zero_with_a_reason(bundle, tmp_path):
    root = _autograder_root(bundle, tmp_path, {})
    (root / "submission" / "strides.py").write_bytes(b"x = '\xff\xfe'\n")
    results, _ = _run(root, GRADESCOPE_ONLY="conv_output_size")
    validate(results)
    assert results["score"] == 0 and "UTF-8" in results["output"] + json.dumps(results["tests"])


def test_leaderboard_from_an_mnist_result():
    course = load_course()
    mnist = {"id": "mnist_accuracy", "score": 20.0, "max_score": 20.0, "status": "passed", "duration_s": 61.0, "bonus": False,
             "message": "", "tests": [{"name": "accuracy", "passed": True, "points": 20.0, "max_points": 20.0,
                                       "message": "test accuracy 0.9931 (full marks from 0.99)",
                                       "metrics": {"test_accuracy": 0.9931}}]}
    report = {"score": 20.0, "max_score": 20.0, "duration_s": 61.0, "exercises": [mnist]}
    results = results_json(report, course)
    validate(results)
    assert results["leaderboard"] == [{"name": "MNIST test accuracy", "value": 0.9931, "order": "desc"},
                                      {"name": "training seconds", "value": 61.0, "order": "asc"}]
    mnist["tests"][0]["metrics"]["train_seconds"] = 50.04
    assert mnist_leaderboard(mnist)[1]["value"] == 50.0
    # student text cannot break out of its Markdown code block
    mnist["message"] = "```\n<img src=x onerror=alert(1)>\n```"
    out = results_json(report, course)["tests"][0]["output"]
    assert "\n````\n```\n<img" in out and out.endswith("\n````")


def test_usage_error(tmp_path):
    assert main(["gradescope", "build", str(tmp_path / "bundle.tar")]) == 2
