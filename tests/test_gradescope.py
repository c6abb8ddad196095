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
        assert set(t) >= {"name", "output", "output_format", "visibility", "tags", "number"}
        assert isinstance(t["name"], str) and isinstance(t["output"], str) and isinstance(t["number"], str)
        assert ("score" in t) == ("max_score" in t)
        if "score" in t:
            assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
            assert 0 <= t["score"] <= t["max_score"] + 1e-9
        assert t["output_format"] == "md" and t["visibility"] in VISIBILITIES
        assert isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])
        assert t.get("status", "passed") in ("passed", "failed")
    for entry in results.get("leaderboard", []):
        assert set(entry) == {"name", "value", "order"} and entry["order"] in ("asc", "desc")
        assert isinstance(entry["value"], (int, float))
    json.dumps(results)
    # each point is listed once: the tests' scores add up to the score
    assert sum(t.get("score", 0) for t in results["tests"]) == pytest.approx(results["score"])


def _summaries(results: dict) -> dict[str, dict]:
    return {t["tags"][0]: t for t in results["tests"] if "." not in t["number"]}


def _reference_submission() -> dict[str, str]:
    return {f"exercises/{p.name}": p.read_text() for p in (ROOT / "solutions").glob("*.py")}


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
    assert all("score" not in t and t["status"] == "passed" for t in details)  # points are carried by the summaries
    assert sum(t["score"] for t in summaries.values()) == pytest.approx(results["score"])
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
    assert "\n````\n```\n<img src=x onerror=alert(1)>\n```\n````\n" in out


def test_usage_error(tmp_path):
    assert main(["gradescope", "build", str(tmp_path / "bundle.tar")]) == 2


# ------------------------------------------------------------------------------------------ points listed once


def _report(*exercises: dict) -> dict:
    return {"score": sum(e["score"] for e in exercises), "max_score": sum(e["max_score"] for e in exercises),
            "duration_s": 1.0, "exercises": list(exercises)}


def _check(name: str, points: float, max_points: float, message: str = "") -> dict:
    return {"name": name, "passed": points == max_points, "points": points, "max_points": max_points, "message": message}


def test_each_point_is_listed_once_and_each_lost_point_is_explained_visibly():
    course = load_course()
    conv2d = {"id": "conv2d", "score": 16.0, "max_score": 20.0, "status": "failed", "duration_s": 1.0, "bonus": False,
              "message": "", "tests": [_check("values", 3, 3), _check("bias", 0, 2, "the bias is missing [mistake: bias]"),
                                       _check("combined", 0, 2, "random cases differ: max |diff| 0.3"),
                                       _check("shape", 2, 2), _check("rest", 11, 11)]}
    missing = {"id": "pad2d", "score": 0.0, "max_score": 10.0, "status": "missing", "duration_s": 0.0, "bonus": False,
               "message": "padding.py was not found in the submission", "tests": []}
    forbidden = {"id": "maxpool2d", "score": 0.0, "max_score": 10.0, "status": "forbidden", "duration_s": 0.1,
                 "bonus": False, "message": "forbidden: import scipy.ndimage", "tests": [_check("values", 2, 2)]}
    results = results_json(_report(conv2d, missing, forbidden), course)
    validate(results)
    scored = [t for t in results["tests"] if "score" in t]
    assert [t["name"] for t in scored] == ["conv2d", "pad2d", "maxpool2d"]  # only the visible summaries carry points
    assert sum(t["max_score"] for t in scored) == 40.0 and results["score"] == 16.0
    summary = _summaries(results)["conv2d"]
    assert summary["visibility"] == "visible"
    out = summary["output"]
    assert out.startswith("**failed**: 16 / 20 points")
    assert "bias (-2)" in out and "the bias is missing" in out and "combined (-2)" in out and "max |diff| 0.3" in out
    assert "values (-" not in out  # passed checks lose nothing
    assert "forbidden: import scipy.ndimage" in _summaries(results)["maxpool2d"]["output"]
    checks = {t["name"]: t for t in results["tests"] if "." in t["number"]}
    assert checks["conv2d: bias"]["visibility"] == "after_published" and "0 / 2" in checks["conv2d: bias"]["output"]
    assert checks["maxpool2d: values"]["status"] == "failed"  # a forbidden exercise earns nothing, its checks neither


def test_a_not_graded_exercise_says_it_is_not_the_students_fault():
    from grader.grade import NOT_GRADED

    course = load_course()
    mnist = {"id": "mnist_accuracy", "score": 0.0, "max_score": 20.0, "status": "error", "duration_s": 0.0, "bonus": False,
             "message": NOT_GRADED.format(id="mnist_accuracy", what="run"), "tests": []}
    results = results_json(_report(mnist), course)
    validate(results)
    assert _summaries(results)["mnist_accuracy"]["output"].startswith("**not graded**: 0 / 20 points")
    assert "not your code's fault" in results["output"]


# ------------------------------------------------------------------------------------------ resources


def _fake_cgroup(tmp_path: Path, files: dict[str, str], own: str = "0::/\n") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc


@pytest.mark.parametrize("files, own, expected", [
    ({"cpu.max": "50000 100000\n"}, "0::/\n", 1),                       # Gradescope: half a CPU -> 1
    ({"cpu.max": "max 100000\n"}, "0::/\n", None),                     # no quota: the affinity
    ({"cpu.max": "150000 100000\n"}, "0::/\n", 1),                      # 1.5 CPUs, rounded down
    ({"kubepods/cpu.max": "100000 100000\n", "kubepods/pod7/cpu.max": "max 100000\n"}, "0::/kubepods/pod7\n", 1),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/\n", 1),                                           # cgroup v1
    ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, "4:cpu,cpuacct:/\n", None),
])
def test_available_cpus_follows_the_cgroup_quota(tmp_path, monkeypatch, files, own, expected):
    from grader import resources

    monkeypatch.setattr(resources, "affinity_cpus", lambda: 8)
    root, proc = _fake_cgroup(tmp_path, files, own)
    assert resources.available_cpus(root, proc) == (8 if expected is None else expected)


def test_available_cpus_is_what_the_grader_counts(monkeypatch):
    """--parallel's default and the class run's torch threads come from available_cpus, not os.cpu_count."""
    from grader import resources
    from grader.class_run.backends import PoolBackend

    monkeypatch.setattr(resources, "available_cpus", lambda *a, **k: 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert PoolBackend(1).threads() == 1
    import importlib

    import grader.cli as cli

    importlib.reload(cli)
    try:
        assert cli._parser().parse_args(["grade", "x"]).parallel == 1
    finally:
        monkeypatch.undo()
        importlib.reload(cli)


def test_build_says_what_to_set_where_the_defaults_do_not_fit(tmp_path, capsys):
    assert main(["gradescope", "build", str(tmp_path / "a.zip"), "--no-case-lists"]) == 0
    out = capsys.readouterr().out
    assert "0.5 vCPU, 768 MB, timeout 600 s; time budget 480 s; to set:" in out
    assert "timeout:" in out and "mnist_accuracy alone may run 900 s" in out and "time_budget_s:" in out
    assert "CPUs: 0.5 vCPU" in out


# ------------------------------------------------------------------------------------------ time budget


def _budget(course, budget_s: float, timeout_s: float):
    return course.model_copy(update={"gradescope": course.gradescope.model_copy(
        update={"time_budget_s": budget_s, "timeout_s": timeout_s})})


LOOPS = "def conv_output_size(n, k, stride=1, padding=0):\n    while True:\n        pass\n"


def test_the_time_budget_bounds_an_exercise_and_says_not_graded(tmp_path, monkeypatch):
    from grader.gradescope import run

    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "strides.py").write_text(LOOPS)
    monkeypatch.setenv("GRADESCOPE_ONLY", "conv_output_size")
    course = _budget(load_course(), 8, 30)
    assert course.limits("conv_output_size").time_limit_s > 30  # the budget, not the exercise's limit, stops it
    assert run(root, course) == 0
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    summary = _summaries(results)["conv_output_size"]
    assert summary["output"].startswith("**not graded**: 0 / 5 points") and "not your code's fault" in summary["output"]
    assert results["score"] == 0 and results["execution_time"] < 30


def test_the_watchdog_writes_results_before_the_timeout_when_grading_hangs(tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    code = textwrap.dedent(f"""
        import time, grader.grade
        from coursekit.course import load_course
        from grader import gradescope
        grader.grade.grade_submission = lambda *a, **k: time.sleep(60)   # a grader that hangs
        course = load_course()
        course = course.model_copy(update={{"gradescope": course.gradescope.model_copy(
            update={{"time_budget_s": 1, "timeout_s": 5}})}})
        gradescope.run(__import__("pathlib").Path({str(root)!r}), course)
        print("NOT REACHED")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "GRADESCOPE_ONLY": "conv_output_size,pad2d"})
    assert proc.returncode == 0 and "NOT REACHED" not in proc.stdout, proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    assert set(_summaries(results)) == {"conv_output_size", "pad2d"}
    assert all(s["output"].startswith("**not graded**") for s in _summaries(results).values())


# ------------------------------------------------------------------------------------------ no sandbox


def test_a_sandbox_that_cannot_start_writes_results_for_staff(bundle, tmp_path):
    root = _autograder_root(bundle, tmp_path, _reference_submission())
    results, proc = _run(root, GRADESCOPE_ONLY="conv_output_size", GRADER_ISOLATION="none")
    validate(results)
    assert results["score"] == 0 and "not graded" in results["output"] and "not of your code" in results["output"]
    staff = [t for t in results["tests"] if t["visibility"] == "hidden"]
    assert len(staff) == 1 and "AUTOGRADER FAILED" in staff[0]["name"] and "GRADER_ISOLATION=none" in staff[0]["output"]
    assert all(t["visibility"] == "hidden" for t in results["tests"])  # the reason is for staff
    assert "AUTOGRADER FAILED" in proc.stdout


# ------------------------------------------------------------------------------------------ warm from the first run


def test_the_bundle_ships_case_lists_and_a_cold_run_uses_them(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        lists = [n for n in zf.namelist() if n.startswith("case_lists/") and n.endswith(".json")]
    assert len(lists) >= 10
    root = _autograder_root(bundle, tmp_path, _reference_submission())
    home = tmp_path / "home"
    home.mkdir()
    before = sorted(p.relative_to(root) for p in (root / "source" / "case_lists").rglob("*"))
    results, _ = _run(root, GRADESCOPE_ONLY=FAST, HOME=str(home))
    assert results["score"] == 30
    assert not any(home.rglob("*.json"))  # nothing generated in the cold HOME: the shipped lists served
    assert sorted(p.relative_to(root) for p in (root / "source" / "case_lists").rglob("*")) == before


def test_the_bundle_carries_the_course_secret_so_every_run_derives_the_same_mnist_seed(bundle, tmp_path):
    """Each Gradescope run is a fresh container: without the instructor's secret in the bundle, each run would
    make a secret of its own and a regrade would train from other starting weights."""
    from grader.course_secret import course_secret, derive_seed

    course = load_course()
    with zipfile.ZipFile(bundle) as zf:
        shipped = zf.read(".course-secret").decode().strip()
    assert shipped == course_secret(course).hex()
    seeds = []
    for run_no in range(2):  # two fresh unpackings of the bundle, as two containers
        root = _autograder_root(bundle, tmp_path / f"run{run_no}", {})
        bundled = load_course(root / "source" / "course.yml")
        seeds.append(derive_seed(course_secret(bundled), "mnist_accuracy", "same-submission"))
    assert seeds[0] == seeds[1] == derive_seed(course_secret(course), "mnist_accuracy", "same-submission")
