"""Student text is data (issue 17 §1): any string a worker can send ends up valid and clipped everywhere.

A fake worker answers every request with a hostile string -- lone surrogates, NUL, control and bidi
characters, 10 MB -- as a result frame that crosses the real wire codec and the grader's real
decoding (:func:`grader.sandbox.results.to_result`), in an error message, a traceback and inside a
returned value (parameter names, layer types, dict keys). The grade, the class run and every file the
grader writes from them (report JSON, feedback HTML and Markdown, gradebook, grades.csv, canvas.csv,
Gradescope results.json, the class feedback pages) must come out without a crash, in valid UTF-8,
without the unsafe characters and clipped.

Hypothesis draws the strings: the grade-level test runs outside any ``@given`` (the suites run
hypothesis themselves, and hypothesis refuses nesting), so it grades a fixed list of hostile strings
plus those a property test drew; the decoding and writing test is a hypothesis property of its own.
"""
from __future__ import annotations

import csv
import functools
import json
import random
import zlib
import sqlite3
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursekit.course import load_course
from grader import grade as grade_module
from grader.class_run import GradeAllOptions, grade_all, run_job
from grader.feedback import html_page, markdown, write_feedback
from grader.gradebook import Gradebook
from grader.report import GradeReport, total
from grader.sandbox.results import CallResult, ErrorInfo, Violations, to_result
from grader.sandbox_runtime import wire
from grader.text import REPORT_MESSAGE_CHARS, TRACEBACK_CHARS, is_clean, student_text

from grading_helpers import SOLUTIONS

COURSE = load_course()
#: Strings cross the wire up to 4 M characters (wire.FrameCaps), so the worker is allowed more here.
BIG_CAPS = wire.FrameCaps(max_str_chars=64 * 2**20, max_header_bytes=64 * 2**20)
TEN_MB = 10 * 2**20

#: Code points a hostile student would pick: NUL, ESC, DEL, C1, lone surrogates, bidi controls, BOM.
NASTY = [0x0, 0x1B, 0x7, 0x8, 0xD, 0x7F, 0x85, 0x9B, 0xD800, 0xDBFF, 0xDC80, 0xDFFF, 0x202E, 0x202D, 0x2066, 0x2069,
         0x200F, 0x061C, 0xFEFF, 0x2028, 0xFFFF, 0x10FFFF]
hostile = st.lists(st.one_of(st.sampled_from(NASTY), st.integers(0, 0x10FFFF)), max_size=300).map(
    lambda cps: "".join(map(chr, cps)))

#: Graded the whole way (1 MB is past every cap; 10 MB strings are decoded in their own test, below).
FIXED = ["caf\udc80e", "\x00" * 50, "\u202eevil.exe\u202c", "\ud83d", "a\x1b[2J\x1b[31mred", "\ufeff\u2066x\u2069",
         "\udc80\x00\u202e" * (2**20 // 3)]


def reply(meta: dict, value: Any = None, has_value: bool = False) -> CallResult:
    """What the grader makes of a worker's ``result`` frame: encoded as any worker may, then read by the
    grader's own frame assembler and :func:`to_result` (the decoding choke point)."""
    data = b"".join(bytes(memoryview(c)) for c in wire.encode_frame("result", meta, value, has_value=has_value,
                                                                       caps=BIG_CAPS))
    asm = wire.FrameAssembler(wire.FrameCaps(max_body_bytes=64 * 2**20))  # as grader.sandbox.channel.Channel
    frame, pos = None, 0
    try:
        while frame is None:
            target = asm.target()
            n = min(len(target), len(data) - pos)
            target[:n] = data[pos:pos + n]
            pos += n
            frame = asm.commit(n)
    except wire.WireError as e:  # as Worker._request: the frame is refused, the worker stopped
        return CallResult(status="protocol", error=ErrorInfo("ProtocolError", f"the worker sent invalid data: {e}"))
    return to_result(frame, 0.01, Violations())


@functools.lru_cache(maxsize=4)
def error_reply(text: str) -> CallResult:
    return reply({"status": "error", "error": {"type": "ValueError", "message": text, "traceback": text,
                                               "filename": text, "text": text}})


class HostileWorker:
    """Stands in for :class:`grader.sandbox.launcher.Worker`: every answer carries ``text``."""

    isolation = "none (in-process student-text test)"
    violations: tuple[str, ...] = ()
    stderr = ""

    def __init__(self, *args: Any, text: str, **kwargs: Any) -> None:
        self.text = text
        self.stdout = text[:100_000]  # what a student printed (the capture keeps max_output_kb)
        self.calls = 0

    def __enter__(self) -> "HostileWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def start(self, wait: bool = True) -> None:
        return None

    def close(self) -> None:
        return None

    def call(self, module: str, function: str, args: Any = (), kwargs: Optional[dict] = None, **_: Any) -> CallResult:
        self.calls += 1
        if self.calls % 3 == 0:  # a value that holds the string (a list of str, a dict with a str key)
            return _value_reply(self.text)
        return error_reply(self.text)

    def describe_model(self, *args: Any, **kwargs: Any) -> CallResult:
        return _model_reply(self.text)

    def import_module(self, module: str) -> CallResult:
        return error_reply(self.text)


@functools.lru_cache(maxsize=4)
def _value_reply(text: str) -> CallResult:
    return reply({"status": "ok"}, {text[:1000]: [text, (text,)]}, has_value=True)


@functools.lru_cache(maxsize=4)
def _model_reply(text: str) -> CallResult:
    layer = {"type": text, "name": text, "params": 1, "output_shape": [1, 10]}
    return reply({"status": "ok"}, {"layers": [layer], "trainable_params": 1, "output_shape": [2, 10]}, has_value=True)


class _NoSandboxes:
    """Stands in for :class:`grader.sandbox.sandbox.Sandboxes` (no sandbox is started)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> "_NoSandboxes":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def get(self, limits: Any) -> None:
        return None


class InlineBackend:
    """Runs each job here, in this process (so the fake worker is used), as a pool process would."""

    name, workers = "inline", 1

    def threads(self) -> int:
        return 1

    def results(self, jobs: list[dict[str, Any]]):
        for job in jobs:
            yield run_job(job)

    def close(self, cancel: bool = False) -> None:
        return None


def _strings(tree: Any):
    if isinstance(tree, str):
        yield tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _strings(v)


def assert_clean_text(text: str, cap: int, where: str) -> None:
    assert is_clean(text.replace("\r\n", "\n")), f"{where}: an unsafe character survived"
    assert len(text) <= cap, f"{where}: {len(text)} characters, not clipped"


def assert_clean_file(path: Path, cap_bytes: int) -> None:
    data = path.read_bytes()
    assert len(data) <= cap_bytes, f"{path.name}: {len(data)} bytes, not clipped"
    text = data.decode("utf-8")  # strict: a lone surrogate could not have been written
    assert_clean_text(text.replace("\r\n", "\n"), cap_bytes, path.name)


def assert_clean_json(path: Path) -> None:
    assert_clean_file(path, 2 * 2**20)
    for s in _strings(json.loads(path.read_text(encoding="utf-8"))):
        assert_clean_text(s, TRACEBACK_CHARS + 2 * REPORT_MESSAGE_CHARS, path.name)


# -- the decoding choke point, as a property ------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile, repeat=st.sampled_from([1, 3, 5000]))
def test_every_string_a_worker_sends_is_decoded_safe_and_clipped(tmp_path_factory, text: str, repeat: int) -> None:
    text = text * repeat
    r = error_reply(text)
    for field in (r.error.type, r.error.message, r.error.traceback, r.error.filename or "", r.error.text or ""):
        assert is_clean(field) and len(field) <= TRACEBACK_CHARS + 100
    ok = reply({"status": "ok", "mutated": [text]}, {text: [text, {"k": (text,)}]}, has_value=True)
    for s in [*ok.mutated, *_strings(ok.value)] + [x for t in ok.value.values() for x in t[1]["k"]]:
        assert is_clean(s) and len(s) <= 1100
    # and what a report writes of it
    report = _report_with(r.error.message)
    out = tmp_path_factory.mktemp("out")
    report.write_json(out / "r.json")
    write_feedback(report, out / "f.html")
    assert_clean_json(out / "r.json")
    assert_clean_file(out / "f.html", 2 * 2**20)


def test_ten_megabytes_from_a_worker_are_clipped(tmp_path: Path) -> None:
    for text in ("x" * TEN_MB, "\udc80\x00\u202e" * (TEN_MB // 3)):
        r = error_reply(text)
        assert len(r.error.message) < 2100 and is_clean(r.error.message)
        ok = _model_reply(text)
        if ok.status == "protocol":  # escaped, the string is past the header cap: refused whole
            assert "exceeds" in ok.error.message
            continue
        layer = ok.value["layers"][0]
        assert len(layer["type"]) < 1100 and is_clean(layer["type"])
        _report_with(r.error.message + layer["type"]).write_json(tmp_path / "r.json")
        assert_clean_json(tmp_path / "r.json")


def _report_with(message: str) -> GradeReport:
    from grader.report import ExerciseResult, TestResult

    ex = ExerciseResult(id="conv_output_size", score=0.0, max_score=5.0, status="failed", duration_s=0.1,
                        tests=[TestResult("basic", False, 0.0, 5.0, "your function raised " + message)], message=message)
    return GradeReport(score=0.0, max_score=5.0, grader_version="test", isolation="none", duration_s=0.1, exercises=[ex])


def test_student_text_keeps_ordinary_text() -> None:
    assert student_text("expected 26, got 25\n\tline 3 — ünïcode ✓ 日本", 1000) == "expected 26, got 25\n\tline 3 — ünïcode ✓ 日本"
    assert student_text("x" * 20, 5).startswith("xxxxx... [15 more characters")


# -- the whole way: grade, class run, every file ----------------------------------------------------------

def _hostile_strings() -> list[str]:
    drawn = random.Random(17)
    extra = ["".join(chr(drawn.choice(NASTY) if drawn.random() < 0.5 else drawn.randrange(0x110000))
                     for _ in range(drawn.randrange(1, 200))) for _ in range(3)]
    return FIXED + extra


@pytest.mark.parametrize("text", _hostile_strings(), ids=lambda t: f"{len(t)}chars-{zlib.crc32(t.encode('utf-8', 'surrogatepass')):08x}")
def test_hostile_strings_reach_every_file_safe_and_clipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           text: str) -> None:
    monkeypatch.setattr(grade_module, "Worker", lambda *a, **k: HostileWorker(*a, text=text, **k))
    monkeypatch.setattr(grade_module, "Sandboxes", _NoSandboxes)
    monkeypatch.setenv("GRADER_CASE_CACHE", "off")
    only = ["conv_output_size", "pad2d", "convnet"]
    # one submission: report JSON, feedback HTML and Markdown
    report = grade_module.grade_submission(SOLUTIONS, COURSE, only=only)
    assert [e.status for e in report.exercises] and all(e.score < e.max_score for e in report.exercises)
    report.write_json(tmp_path / "report.json")
    write_feedback(report, tmp_path / "feedback.html")
    write_feedback(report, tmp_path / "feedback.md")
    assert_clean_json(tmp_path / "report.json")
    assert_clean_file(tmp_path / "feedback.html", 2 * 2**20)
    assert_clean_file(tmp_path / "feedback.md", 2 * 2**20)
    assert markdown(report) and html_page(report)
    # Gradescope's results.json of one submission
    from grader.gradescope import results_json

    (tmp_path / "results.json").write_text(json.dumps(results_json(report.to_json(), COURSE)), encoding="utf-8")
    assert_clean_json(tmp_path / "results.json")
    # a class run: gradebook, grades.csv, canvas.csv, gradescope/<id>/results.json, feedback/<id>.html
    subs = tmp_path / "subs"
    for student in ("eve", "good"):
        (subs / student).mkdir(parents=True)
        for f in (SOLUTIONS).glob("*.py"):
            (subs / student / f.name).write_bytes(f.read_bytes())
    (subs / "good" / "strides.py").write_text((SOLUTIONS / "strides.py").read_text() + "\n# good\n")
    out = tmp_path / "grades"
    summary = grade_all(subs, COURSE, GradeAllOptions(out=out, only=tuple(only)), backend=InlineBackend())
    assert not summary.internal_errors and summary.recorded == 2
    for student in ("eve", "good"):
        assert_clean_json(out / "gradescope" / student / "results.json")
        assert_clean_file(out / "feedback" / f"{student}.html", 2 * 2**20)
    for name in ("grades.csv", "canvas.csv"):
        assert_clean_file(out / name, 100_000)
        assert len(list(csv.reader((out / name).open(encoding="utf-8")))) == 4
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        for message, messages in db.execute("SELECT message, messages FROM results"):
            assert_clean_text(message, REPORT_MESSAGE_CHARS + 100, "gradebook message")
            for s in _strings(json.loads(messages)):
                assert_clean_text(s, TRACEBACK_CHARS + 2 * REPORT_MESSAGE_CHARS, "gradebook test message")
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert len(gb.all_rows()) == 2 * len(only)
