"""``grader insights``: misconceptions, score distributions, checks, statuses, MNIST, from a gradebook.

End to end: a class from ``benchmarks/make_class.py`` plus planted misconceptions
(``benchmarks/make_class_extras.py``) graded by ``grader grade-all`` on four fast exercises. The
misconception counts are also checked on a gradebook written through :class:`grader.gradebook.Gradebook`
with test results that name their mistakes (``mistakes`` list, as TestResult.to_json writes it).
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from grader.cli import main
from grader.gradebook import Gradebook
from grader.insights import mistakes_of, read_rows

from grading_helpers import ROOT, course_with_limits

ONLY = "conv_output_size,pad2d,same_padding,correlate2d"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def _test(name: str, passed: bool, points: float, max_points: float, message: str = "", **extra) -> dict:
    return {"name": name, "passed": passed, "points": points, "max_points": max_points, "message": message, **extra}


def _row(exercise: str, status: str, tests: list[dict], max_score: float, duration_s: float = 1.0) -> dict:
    return {"exercise": exercise, "code_hash": "c", "course_hash": "h", "cache_key": f"k-{exercise}", "grader_version": "t",
            "grader_build": "t", "status": status, "score": sum(t["points"] for t in tests), "max_score": max_score,
            "bonus": False, "message": "", "tests": tests, "duration_s": duration_s, "isolation": "test", "origin": "graded",
            "graded_at": "now"}


@pytest.fixture
def synthetic_grades(tmp_path) -> Path:
    """Five students: three flip the kernel, two forget the bias."""
    out = tmp_path / "grades"
    flipped = _test("seed layer", False, 0.0, 10.0, "kernel flipped", mistakes=["conv2d.kernel_flipped"])
    flipped_too = _test("seed layer", False, 0.0, 10.0, "your result is flipped", mistakes=["conv2d.kernel_flipped"])
    bias = _test("channels", False, 5.0, 10.0, "bias", mistakes=["conv2d.bias_missing"])
    ok_seed, ok_channels = _test("seed layer", True, 10.0, 10.0), _test("channels", True, 10.0, 10.0)
    mnist = {"s1": (0.9931, 48.0), "s2": (0.9712, 20.5), "s3": (0.9905, 95.0)}
    with Gradebook(out / "gradebook.sqlite") as gb:
        run = gb.start_run("t", "test", 1, None)
        classes = {"s1": [flipped, ok_channels], "s2": [flipped, bias], "s3": [flipped_too, ok_channels],
                   "s4": [ok_seed, bias], "s5": [ok_seed, ok_channels]}
        for student, tests in classes.items():
            rows = [_row("conv2d", "passed" if all(t["passed"] for t in tests) else "failed", tests, 20.0)]
            if student in mnist:
                acc, secs = mnist[student]
                metrics = {"test_accuracy": acc, **({"train_seconds": 77.5} if student == "s3" else {})}
                rows.append(_row("mnist_accuracy", "passed", [_test("accuracy", True, 20.0 * (acc >= 0.99), 20.0,
                                                                    "test accuracy 0.1234 (text is not read)",
                                                                    metrics=metrics)],
                                 20.0, duration_s=secs + 3))
            with gb.transaction():
                gb.record(run, student, f"/subs/{student}", "h", rows)
    return out


def test_mistake_ids_are_read_from_the_list():
    assert mistakes_of({"mistakes": ["a.b", "a.c", "a.b"]}) == ["a.b", "a.c"]
    assert mistakes_of({"message": "plain failure"}) == []


def test_misconceptions_counts_students_and_points(synthetic_grades):
    assert main(["insights", str(synthetic_grades)]) == 0
    data = json.loads((synthetic_grades / "insights.json").read_text())
    mis = {m["id"]: m for m in data["misconceptions"]["conv2d"]}
    assert mis["conv2d.kernel_flipped"]["students"] == ["s1", "s2", "s3"]
    assert mis["conv2d.kernel_flipped"]["points_lost"] == 30.0 and mis["conv2d.kernel_flipped"]["label"] == "kernel flipped"
    assert mis["conv2d.bias_missing"]["students"] == ["s2", "s4"] and mis["conv2d.bias_missing"]["points_lost"] == 10.0
    assert [m["id"] for m in data["teach_again"]] == ["conv2d.kernel_flipped", "conv2d.bias_missing"]
    assert data["statuses"]["conv2d"] == {"failed": 4, "passed": 1}
    assert data["scores"]["conv2d"]["scores"] == {"s1": 10.0, "s2": 5.0, "s3": 10.0, "s4": 15.0, "s5": 20.0}
    assert {(c["check"], c["failed"]) for c in data["most_failed_checks"]} == {("seed layer", 3), ("channels", 2)}
    assert sorted((p["student"], p["accuracy"], p["training_s"]) for p in data["mnist"]) == [
        ("s1", 0.9931, 51.0), ("s2", 0.9712, 23.5), ("s3", 0.9905, 77.5)]  # s1, s2: no training time noted: the duration
    page = (synthetic_grades / "insights.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "kernel flipped" in page
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:|//)", page)  # self-contained: nothing fetched


def test_accuracy_and_training_seconds_come_from_the_checks_metrics():
    from grader.insights import Row, mnist_points

    row = Row("s", "mnist_accuracy", "passed", 20, 20, False, 99.0,
              [{"name": "a", "passed": True, "message": "test accuracy 0.5000; training took 1.0 s",
                "metrics": {"test_accuracy": 0.992, "train_seconds": 41.5}}])
    assert mnist_points([row]) == [{"student": "s", "accuracy": 0.992, "training_s": 41.5, "score": 20}]
    for bad in ({"test_accuracy": float("nan")}, {"test_accuracy": "0.99"}, "0.99", None):
        row = Row("s", "mnist_accuracy", "passed", 20, 20, False, 99.0, [{"name": "a", "passed": True, "metrics": bad}])
        assert mnist_points([row]) == []


def test_no_gradebook_is_a_usage_error(tmp_path):
    assert main(["insights", str(tmp_path)]) == 2
    (tmp_path / "gradebook.sqlite").write_bytes(b"not a database at all" * 100)
    assert main(["insights", str(tmp_path)]) == 2


def test_the_suites_confirmed_mistakes_reach_the_insights(tmp_path):
    """The hidden suites' detectors on planted mistakes, stored as the gradebook stores test results
    (``TestResult.to_json``, which carries each failing test's confirmed ``mistakes``)."""
    from coursekit.course import load_course
    from grader.grade import grade_submission

    roster = _benchmark("make_class_extras").plant_misconceptions(tmp_path / "class", per_mistake=1)
    with Gradebook(tmp_path / "grades" / "gradebook.sqlite") as gb:
        run = gb.start_run("t", "test", 1, None)
        for student, mistake in roster.items():
            exercise = mistake.split(".")[0]
            result = grade_submission(tmp_path / "class" / student, load_course(), only=[exercise]).exercises[0]
            tests = [t.to_json() for t in result.tests]
            row = _row(exercise, result.status, tests, result.max_score)
            with gb.transaction():
                gb.record(run, student, student, "h", [row])
    rows, students = read_rows(tmp_path / "grades" / "gradebook.sqlite")
    from grader.insights import build_insights

    data = build_insights(rows, students)
    found = {(m["id"], s) for items in data["misconceptions"].values() for m in items for s in m["students"]}
    assert {(why, s) for s, why in roster.items()} <= found
    assert {m["id"] for m in data["teach_again"]} >= set(roster.values())


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("insights")
    course_with_limits(base, time_limit_s=8)
    klass = base / "class"
    roster = _benchmark("make_class").make_class(klass, students=8)
    roster.update(_benchmark("make_class_extras").plant_misconceptions(klass))
    out = base / "grades"
    assert main(["--course", str(base / "course.yml"), "grade-all", str(klass), "--out", str(out), "--only", ONLY,
                 "--workers", "2"]) == 0
    assert main(["--course", str(base / "course.yml"), "insights", str(out)]) == 0
    return out, roster


def test_class_run_insights_end_to_end(graded_class):
    out, roster = graded_class
    data = json.loads((out / "insights.json").read_text())
    assert data["students"] == len(roster) == 12
    assert data["exercises"] == ONLY.split(",")
    rows, _ = read_rows(out / "gradebook.sqlite")
    assert len(rows) == 12 * 4
    statuses = data["statuses"]["conv_output_size"]
    assert statuses.get("timeout") == 1 and statuses.get("error", 0) >= 1 and statuses.get("passed", 0) >= 5
    assert sum(statuses.values()) == 12
    flipped = sorted(s for s, why in roster.items() if why == "correlate2d.kernel_flipped")
    failing_corr = {c["check"]: c["failed"] for c in data["checks"] if c["exercise"] == "correlate2d"}
    assert max(failing_corr.values()) >= len(flipped)  # every check a flipped kernel fails is failed by both
    assert data["scores"]["correlate2d"]["scores"][flipped[0]] < 10
    assert any(c["exercise"] == "conv_output_size" for c in data["most_failed_checks"])
    # once the gradebook records the confirmed mistakes (tests[].mistakes), every planted one is counted
    if any(data["misconceptions"].values()):
        found = {(m["id"], s) for items in data["misconceptions"].values() for m in items for s in m["students"]}
        planted = {(why, s) for s, why in roster.items() if why.count(".") == 1 and " " not in why}
        assert planted <= found, planted - found
        assert data["teach_again"]
    page = (out / "insights.html").read_text()
    assert page.count("<img") == 3  # histograms, statuses, pass rates (no MNIST in this run)


@pytest.mark.browser
def test_insights_page_renders_its_plots_in_chromium(synthetic_grades):
    from test_browser import CHROMIUM_ARGS, _missing_or_fail

    chromium = _missing_or_fail()
    assert main(["insights", str(synthetic_grades)]) == 0
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((synthetic_grades / "insights.html").resolve().as_uri())
            page.wait_for_load_state("load")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) == 4 and all(w > 100 for w in widths), widths
            assert page.locator("#plot-mnist").is_visible()
            assert "kernel flipped" in page.inner_text(".teach")
        finally:
            browser.close()
