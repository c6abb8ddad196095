"""Reading the result (issue 9 §5-§6): the dtype rule, empty exception messages, feedback layout, score format."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from rich.console import Console

from coursekit.course import load_course
from grader.feedback import html_page, markdown, print_report
from grader.report import ExerciseResult, GradeReport, TestResult, points, total
from grader.suites.compare import DTYPE_RULE, assert_array_matches, rule_dtype
from grader.suites.messages import explain_empty, student_frame
from grader.suites.outcomes import Fail

from grading_helpers import grade, reference_submission

COURSE = load_course()
LONG_CASE = ("x shape (2, 3, 26, 26) float64, w shape (4, 3, 3, 3), bias=yes, stride=1, padding=same, "
             "x non-contiguous, dilation none, the first layer of the seed with a long description of every option")


# ------------------------------------------------------------------------------------------- dtype rule
def _failure(got, expected) -> str:
    with pytest.raises(Fail) as info:
        assert_array_matches(got, expected, what="maxpool2d", inputs="x shape (1, 1, 4, 4) uint8")
    return str(info.value)


def test_exact_integer_output_is_told_the_dtype_rule_not_truncation():
    expected = np.arange(4.0).reshape(2, 2)
    message = _failure(expected.astype(np.uint8), expected)
    assert message.startswith("maxpool2d: the values are right but the output dtype is uint8, expected float64")
    assert DTYPE_RULE in message and "truncat" not in message


def test_wrong_integer_output_is_told_integer_arithmetic_truncates():
    expected = np.array([[0.5, 1.5]])
    message = _failure(np.array([[0, 1]]), expected)
    assert "values differ" in message and "integer arithmetic truncates" in message


def test_float32_output_for_float64_input_is_charged():
    expected = np.linspace(0, 1, 6).reshape(2, 3)
    message = _failure(expected.astype(np.float32), expected)
    assert "output dtype is float32, expected float64" in message
    assert_array_matches(expected.astype(np.float32), expected.astype(np.float32), what="f")  # float32 in, float32 out
    assert_array_matches(expected.astype(np.float32), expected, what="f", check_dtype=False)  # values alone: right


def test_the_case_comes_after_the_diagnosis():
    message = _failure(np.zeros((2, 2)), np.ones((2, 2)))
    first, second = message.splitlines()[:2]
    assert "values differ" in first and "x shape" not in first and second == "case: x shape (1, 1, 4, 4) uint8"


@pytest.mark.parametrize("function, make_args", [
    ("padding.pad2d", lambda x, w: (x, 1)),
    ("conv.correlate2d", lambda x, w: (x[0, 0], w[0, 0])),
    ("conv.conv2d", lambda x, w: (x, w)),
    ("pooling.maxpool2d", lambda x, w: (x, 2)),
    ("pooling.avgpool2d", lambda x, w: (x, 2)),
])
@pytest.mark.parametrize("x_dtype, w_dtype", [("float32", "float32"), ("float64", "float32"), ("float32", "float64"),
                                              ("uint8", "float32"), ("int64", "float64"), ("uint8", "uint8")])
def test_every_reference_follows_the_one_dtype_rule(function, make_args, x_dtype, w_dtype):
    """The rule the comparison enforces is the docstrings' rule: the reference obeys it for every dtype mix."""
    import importlib

    module, name = function.split(".")
    fn = getattr(importlib.import_module(f"solutions.{module}"), name)
    x = (np.arange(2 * 2 * 4 * 4) % 7).reshape(2, 2, 4, 4).astype(x_dtype)
    w = (np.arange(3 * 2 * 3 * 3) % 5).reshape(3, 2, 3, 3).astype(w_dtype)
    args = make_args(x, w)
    out = fn(*args)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    assert out.dtype == rule_dtype(*arrays), (function, x_dtype, w_dtype, out.dtype)


def test_integer_max_pooling_loses_only_dtype_checks_with_the_right_message(tmp_path):
    sub = reference_submission(tmp_path / "sub", {"pooling": """
        _ref_max = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            out = _ref_max(x, kernel_size, stride)
            return out.astype(x.dtype) if x.dtype.kind in "iu" else out
        """})
    ex = grade(sub, only=["maxpool2d"]).exercise("maxpool2d")
    failed = [t for t in ex.tests if not t.passed]
    assert [t.name for t in failed] == ["dtypes: integer images give float output; non-contiguous input"]  # charged once
    assert "values are right but the output dtype is uint8, expected float64" in failed[0].message
    assert all("truncates" not in t.message for t in ex.tests)


def test_float32_output_for_float64_input_is_charged_once(tmp_path):
    sub = reference_submission(tmp_path / "sub", {"conv": """
        _ref_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _ref_conv2d(x, w, b, stride, padding).astype("float32")
        """})
    ex = grade(sub, only=["conv2d"]).exercise("conv2d")
    failed = [t for t in ex.tests if not t.passed]
    assert failed and all(t.name.startswith("dtypes:") for t in failed), [t.name for t in failed]
    assert any("output dtype is float32, expected float64" in t.message for t in failed)


# ------------------------------------------------------------------------------------- empty messages
TRACEBACK = '''Traceback (most recent call last):
  File "exercises/pooling.py", line 12, in maxpool2d
    assert x.ndim == 5
  File "fromnumeric.py", line 9, in sum
    return x
AssertionError: '''


def test_empty_message_names_the_students_line_and_printed_output():
    assert student_frame(TRACEBACK, "exercises") == "exercises/pooling.py, line 12, in maxpool2d: assert x.ndim == 5"
    text = explain_empty("AssertionError", "", TRACEBACK, "one\ntwo\n\nthree\n", "exercises")
    assert "raised at exercises/pooling.py, line 12" in text and text.endswith("    two\n    three")
    assert explain_empty("ValueError", "bad shape", TRACEBACK, "x", "exercises") == "bad shape"


def test_bare_assert_and_sys_exit_show_the_line_and_the_prints(tmp_path):
    sub = reference_submission(tmp_path / "sub", {"pooling": """
        def avgpool2d(x, kernel_size, stride=None):
            print("debug: shape", x.shape)
            print("debug: about to check")
            assert x.ndim == 5
        """, "strides": """
        def conv_output_size(n, k, stride=1, padding=0):
            import sys
            sys.exit()
        """})
    report = grade(sub, only=["avgpool2d", "conv_output_size"])
    pool = report.exercise("avgpool2d").tests[0].message
    assert "raised AssertionError: (no message) raised at exercises/pooling.py, line" in pool
    assert "assert x.ndim == 5" in pool and "debug: about to check" in pool
    size = report.exercise("conv_output_size").tests[0].message
    assert "SystemExit: (no message) raised at exercises/strides.py, line" in size and "sys.exit()" in size


# ---------------------------------------------------------------------------------------- scores
def _report(bonus_score: float = 15.0) -> GradeReport:
    wide = np.linspace(-1, 1, 6 * 40).reshape(1, 1, 6, 40)
    failing = TestResult("random shapes match torch", False, 0.0, 7.3333333, f"smallest failing case found: conv2d: 3 of 240 "
                         f"values differ; first at index (0, 0, 1, 2): got 1.5, expected 2\ncase: {LONG_CASE}\n"
                         f"expected array shape (1, 1, 6, 40) dtype float64",
                         detail={"expected": wide, "got": wide * 2, "mistakes": []})
    exercises = [
        ExerciseResult("conv2d", 12.6666666, 20, "failed", 1.0, [TestResult("seed", True, 12.6666666, 12.6666666), failing]),
        ExerciseResult("mnist_accuracy", 20, 20, "passed", 60.0,
                       [TestResult("accuracy", True, 20, 20, "test accuracy 0.9912; training took 41.2 s")]),
        ExerciseResult("conv2d_backward", bonus_score, 15, "passed" if bonus_score == 15 else "failed", 1.0, [], bonus=True),
    ]
    score, max_score = total(exercises)
    return GradeReport(score, max_score, "test", "none", 1.0, exercises)


def test_points_have_two_decimals_at_most():
    assert [points(v) for v in (7.3333333, 2.1, 20.0, 0.0, 1e-9, 99.999)] == ["7.33", "2.1", "20", "0", "0", "100"]
    data = _report().to_json()
    assert data["exercises"][0]["score"] == 12.67 and data["exercises"][0]["tests"][1]["max_points"] == 7.33
    assert data["bonus_score"] == 15 and data["score"] == 47.67 and data["max_score"] == 40
    for text in (markdown(_report()), html_page(_report())):
        assert "12.67 / 20" in text and "0 / 7.33" in text and "7.333" not in text and "12.666" not in text


def test_bonus_is_shown_as_bonus():
    report = _report()
    assert report.score_text() == "32.67 / 40 + 15 bonus"
    assert "32.67 / 40 + 15 bonus" in markdown(report) and "32.67 / 40 + 15 bonus" in html_page(report)
    console = Console(record=True, width=140)
    print_report(report, console)
    terminal = console.export_text()
    assert "Grade: 32.67 / 40 + 15 bonus" in terminal and "47.67 / 40" not in terminal


def test_notes_of_a_passed_exercise_are_shown():
    report = _report()
    console = Console(record=True, width=140)
    print_report(report, console)
    for text in (console.export_text(), markdown(report), html_page(report)):
        assert "test accuracy 0.9912; training took 41.2 s" in text


# -------------------------------------------------------------------------------------- HTML layout
def test_html_puts_the_case_first_then_the_wrapped_diagnosis_then_the_pictures():
    page = html_page(_report())
    assert "white-space:pre-wrap" in page and "overflow-wrap:anywhere" in page
    case = page.index(f"<div class='case'>case: {LONG_CASE}</div>")
    diagnosis = page.index("<div class='diagnosis'>smallest failing case found: conv2d: 3 of 240 values differ")
    assert case < diagnosis < page.index("<img")
    assert "case:" not in page[diagnosis:page.index("</div>", diagnosis)]
    assert "<table class='numbers'>" not in page  # a 6x40 slice is drawn, not listed


def _one_by_one_report() -> GradeReport:
    """A shrunk 1x1 counterexample: a confirmed mistake above the values line, the case below them."""
    message = ("smallest failing case found: conv2d: your kernel is flipped\n1 of 1 values differ; first at index "
               "(0, 0, 0, 0): got 1.5, expected -0.25\ncase: x shape (1, 1, 1, 1) float64, w shape (1, 1, 1, 1)\n"
               "expected array shape (1, 1, 1, 1)\ngot array shape (1, 1, 1, 1)")
    failing = TestResult("values", False, 0.0, 1.0, message,
                         detail={"expected": np.array([[[[-0.25]]]]), "got": np.array([[[[1.5]]]]), "mistakes": []})
    return GradeReport(0, 1, "t", "none", 0.1, [ExerciseResult("conv2d", 0, 1, "failed", 0.1, [failing])])


def test_a_one_by_one_case_is_shown_as_numbers_not_a_picture():
    page = html_page(_one_by_one_report())
    assert "<img" not in page
    expected = page.index("<table class='numbers'><caption>expected[0, 0]</caption><tr><td>-0.25</td></tr></table>")
    got = page.index("<table class='numbers'><caption>got[0, 0]</caption><tr><td>1.5</td></tr></table>")
    case, diagnosis = page.index("<div class='case'>case: x shape (1, 1, 1, 1)"), page.index("<div class='diagnosis'>")
    assert case < expected < got < diagnosis
    assert "your kernel is flipped\n1 of 1 values differ" in page[diagnosis:page.index("</div>", diagnosis)]


def test_markdown_puts_the_case_and_its_numbers_before_the_diagnosis():
    text = markdown(_one_by_one_report())
    case, expected = text.index("  case: x shape (1, 1, 1, 1)"), text.index("  expected[0, 0]:\n    -0.25")
    got, diagnosis = text.index("  got[0, 0]:\n    1.5"), text.index("  smallest failing case found: conv2d: your kernel")
    assert case < expected < got < diagnosis < text.index("  expected array shape")
    assert "case:" in markdown(_report()) and "expected[0, 0]" not in markdown(_report())  # 6x40: no numbers


def test_the_case_shows_its_small_inputs_as_numbers(tmp_path):
    """Through the grader: a shrunk counterexample's input values are listed under its case line, and
    the page keeps them with the case, before the diagnosis."""
    from grader.feedback import split_failure

    report = grade(reference_submission(tmp_path / "sub", {"pooling": """
        _reference_maxpool2d = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            return _reference_maxpool2d(x, kernel_size, stride) * 1.5
        """}), only=["maxpool2d"])
    ex = report.exercise("maxpool2d")
    shrunk = next(t for t in ex.tests if not t.passed and t.message.startswith("smallest failing case found"))
    case, diagnosis, _ = split_failure(shrunk.message)
    assert case.startswith("case: x shape (1, 1, 1, 1)") and "\n  x[0, 0]:\n    " in case, shrunk.message
    assert "values differ" in diagnosis and "x[0, 0]" not in diagnosis
    page = html_page(report)
    assert page.index("x[0, 0]:", page.index("<div class='case'>case: x shape (1, 1, 1, 1)")) < page.index(
        "<div class='diagnosis'>smallest failing case found")


def test_slices_up_to_eight_by_eight_are_numbers_and_larger_ones_pictures():
    from grader.feedback import _numbers_text, _worth_drawing

    small = np.arange(2 * 8 * 8, dtype=np.float64).reshape(2, 1, 8, 8)
    assert _numbers_text("got", small).startswith("got[0, 0] (the first of 2 slices):\n") and not _worth_drawing(small)
    wide = np.zeros((1, 1, 8, 9))
    assert _numbers_text("got", wide) is None and _worth_drawing(wide)
    assert _numbers_text("got", [1.0, 2.0]) is None and not _worth_drawing([1.0, 2.0])  # not an array: text only


def test_a_picture_that_cannot_be_drawn_leaves_the_text():
    report = _report()
    report.exercises[0].tests[1].detail = {"expected": np.full((4, 4), 1e308), "got": np.full((4, 4), -1e308)}
    page = html_page(report)
    assert "values differ" in page and LONG_CASE in page


@pytest.mark.browser
def test_diagnosis_is_visible_without_horizontal_scrolling_at_1280px(tmp_path):
    chromium = "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    if not os.path.exists(chromium):
        pytest.skip("chromium is not installed")
    page_file = tmp_path / "feedback.html"
    report = _report()
    report.exercises[0].tests[1].message = "smallest failing case found: " + "conv2d: " + "a long diagnosis " * 30 + \
        "\ncase: " + LONG_CASE * 3
    page_file.write_text(html_page(report), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_file.as_uri())
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            right = page.evaluate("Math.max(...[...document.querySelectorAll('.diagnosis, pre, img')]"
                                  ".map(e => e.getBoundingClientRect().right))")
            assert right <= 1280
            cut = page.evaluate("[...document.querySelectorAll('.diagnosis, pre')]"
                                ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 80))")
            assert not cut  # nothing scrolls sideways inside its box either: every line wraps
            assert page.evaluate("document.querySelector('.diagnosis').textContent").startswith("smallest failing case")
        finally:
            browser.close()


def test_syntax_error_is_one_short_message(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "pooling.py").write_text("def maxpool2d(x, kernel_size, stride=None):\n    return x[::\n")
    ex = grade(sub, only=["maxpool2d"]).exercise("maxpool2d")
    assert ex.status == "error" and len(ex.message.splitlines()) <= 3 and "Traceback" not in ex.message
    assert ex.message.startswith("SyntaxError in pooling.py, line 2")
    assert json.dumps(ex.to_json()).count("SyntaxError") == 1


def test_a_syntax_error_shared_by_several_exercises_is_printed_once():
    message = "SyntaxError in padding.py, line 2, column 13: '[' was never closed\n        return x[::"
    exercises = [ExerciseResult(i, 0, 5, "error", 0.1, [], message=message) for i in ("pad2d", "same_padding", "conv2d")]
    console = Console(record=True, width=140)
    print_report(GradeReport(0, 15, "t", "none", 0.1, exercises), console)
    text = console.export_text()
    assert text.count("SyntaxError") == 1 and "same_padding: the same as pad2d" in text
