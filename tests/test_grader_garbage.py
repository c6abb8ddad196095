"""The trusted side never crashes on what a student returns (issue 8 §2).

Every student function's return path is fed garbage: None, tuples, lists, bools, object and complex
arrays, 0-d arrays, NaN/inf/1e308, wrong shapes and dtypes, huge sizes, numpy scalars, torch tensors,
ndarray subclasses, and the right answer spoiled (NaN, 1e308, wrong values in an integer dtype).
Grading must always produce a report (no :class:`GraderInternalError`) and garbage earns no point.

Grading runs in-process: :class:`GarbageWorker` stands in for the sandboxed worker (no student code
runs at all). By default its answers cross the real wire codec, so the hidden suites see exactly what
a sandboxed worker could send (a value the wire refuses becomes the worker's ``InvalidReturn`` error);
``raw`` mode hands the values over untouched, to prove the suites cope even with what the wire stops.

The grade-level tests draw their garbage from a seeded generator, call by call (hypothesis cannot
drive them: the suites' own property searches run hypothesis inside, and hypothesis refuses nesting);
the comparison and rendering functions get a hypothesis property test of their own.
"""
from __future__ import annotations

import importlib
import io
import math
import random
from typing import Any, Callable, Optional

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from coursekit.course import load_course
from grader import grade as grade_module
from grader.feedback import _array_picture, html_page, markdown, print_report
from grader.grade import grade_exercise
from grader.report import GradeReport, total
from grader.sandbox_runtime import wire
from grader.sandbox.launcher import CallResult, ErrorInfo
from grader.submission import prepare
from grader.suites.compare import assert_array_matches
from grader.suites.messages import describe
from grader.suites.outcomes import Fail, InternalError

from grading_helpers import SOLUTIONS

COURSE = load_course()
EXERCISES = [e.id for e in COURSE.exercises]


class SubArray(np.ndarray):
    """A student's own ndarray subclass (could override ``__eq__``; the wire refuses it)."""


def _spoiled(correct: Any, spoil: Callable[[np.ndarray], Any]) -> Any:
    """``spoil`` applied to every array of the right answer (a tuple stays a tuple)."""
    if type(correct) is tuple:
        return tuple(_spoiled(c, spoil) for c in correct)
    if isinstance(correct, np.ndarray) and correct.size:
        return spoil(correct)
    return None


#: Garbage that does not depend on the right answer.
PLAIN: list[Any] = [
    None, True, False, 0, -1, 2**80, 1e308, -1e308, math.nan, math.inf, "", "26", "93,322", [], [1.0, 2.0], [[0.0]],
    (), (None,), (1, 2, 3), {}, {"layers": None}, {"layers": [{"type": None}], "trainable_params": "many"},
    {"layers": [{"type": "Conv2d", "params": np.array([320]), "output_shape": None}], "trainable_params": np.array(93322),
     "output_shape": "x"},
    {"names": ["w"], "params": [np.ones(3, np.float32)], "probe_logits": np.full((64, 10), np.nan, np.float32),
     "train_seconds": math.inf, "threads": -1},
    np.float32(math.nan), np.int8(-3), np.bool_(True), np.float64(1e308),
    np.array(1e308), np.array(7), np.array(True), np.zeros(0), np.zeros((0, 3)), np.full((2, 3), math.nan),
    np.full((1, 1, 3, 3), 1e308), np.arange(12, dtype=np.int8).reshape(3, 4), np.ones((4, 4), bool),
    np.zeros((1, 2**20), np.uint8), np.zeros((1, 1, 512, 512), np.float16), np.array([-math.inf, math.inf, 1e308]),
]
#: Garbage the wire refuses (object, complex, tensors, subclasses, a 10^10-element view): raw mode only.
RAW_ONLY: list[Any] = [
    np.array([None, "x"], dtype=object), np.ones((2, 2), complex), torch.ones(2, 2), torch.tensor(93322),
    torch.full((1, 1, 4, 4), 1e308, dtype=torch.float64), np.arange(4.0).view(SubArray), np.broadcast_to(np.float64(1e308), (10**5, 10**5)),
    object(),
]
#: The right answer with its shape broken: still garbage. (The right values as a list are not garbage:
#: they cost the type alone, see test_grader_honest.py.)
RESHAPERS: list[Callable[[np.ndarray], Any]] = [
    lambda c: c.reshape(-1),
    lambda c: c[None],
    lambda c: (c, c),
    lambda c: [c.tolist()],
]
#: The right answer's shape with wrong values, so that the value comparisons and pictures are reached. Such
#: an answer earns nothing: not even ``no_mutation``, which is credited only to a function that earns another
#: concept (grader.suites.base.require_a_computing_concept).
SPOILERS: list[Callable[[np.ndarray], Any]] = [
    lambda c: np.full(c.shape, math.nan),
    lambda c: np.full(c.shape, 1e308),
    lambda c: np.where(np.arange(c.size).reshape(c.shape) % 2 == 0, 1e308, -1e308),
    lambda c: (c.astype(np.float64) * 1000 + 7).astype(np.int64),
    lambda c: c.astype(np.float64) * 2 + 1,
    lambda c: np.full(c.shape, math.inf, np.float32),
]
#: Concepts that an answer of the right shape earns whatever its values: none (see SPOILERS).
#: Concepts graded on the answer's shape alone (conv2d's output-shape formula): an array of the right
#: shape earns them whatever its values, as the formula is what they grade.
SHAPE_ONLY_CONCEPTS: tuple[str, ...] = ("shape",)
RAW_SPOILERS: list[Callable[[np.ndarray], Any]] = [
    lambda c: c.astype(complex) + 1j,
    lambda c: np.where(np.ones(c.shape, bool), None, c).astype(object),
    lambda c: torch.from_numpy(np.ascontiguousarray(c, dtype=np.float64) * 2 + 1),
    lambda c: (np.asarray(c, dtype=np.float64) * 2 + 1).view(SubArray),
]


def _through_wire(value: Any) -> CallResult:
    """What a sandboxed worker would send for ``value``: the decoded value, or its InvalidReturn error."""
    try:
        chunks = wire.encode_frame("result", {}, value, has_value=True)
    except wire.InvalidValue as exc:
        return CallResult(status="error", error=ErrorInfo("InvalidReturn", f"returned {exc}"))
    data = b"".join(bytes(c) for c in chunks)
    _, head_len, _ = wire.PREFIX.unpack_from(data)
    start = wire.PREFIX.size
    frame = wire.decode_frame(data[start:start + head_len], bytearray(data[start + head_len:]))
    return CallResult(status="ok", value=frame.value)


class GarbageWorker:
    """Stands in for :class:`grader.sandbox.launcher.Worker`: every request is answered with garbage."""

    isolation = "none (in-process garbage test)"
    violations: tuple[str, ...] = ()
    stdout = "a line the student printed\n"
    stderr = ""

    def __init__(self, *args: Any, rng: random.Random, raw: bool = False, same_shape: bool = False, **kwargs: Any):
        self.rng, self.raw, self.same_shape = rng, raw, same_shape
        self.answers: list[str] = []

    def __enter__(self) -> "GarbageWorker":
        return self

    def start(self, wait: bool = True) -> None:  # as Worker.start: nothing to answer, no draw
        return None

    def __exit__(self, *exc: Any) -> None:
        return None

    def close(self) -> None:
        return None

    def call(self, module: str, function: str, args: Any = (), kwargs: Optional[dict] = None, **_: Any) -> CallResult:
        return self._answer(lambda: _reference_answer(module, function, list(args), dict(kwargs or {})))

    def __getattr__(self, op: str) -> Callable[..., CallResult]:  # describe_model, train_and_probe, ...
        if op.startswith("_"):
            raise AttributeError(op)
        return lambda *args, **kwargs: self._answer(lambda: None)

    def _answer(self, correct: Callable[[], Any]) -> CallResult:
        plain = PLAIN + (RAW_ONLY if self.raw else [])
        spoilers = (SPOILERS if self.same_shape else RESHAPERS) + (RAW_SPOILERS if self.raw else [])
        value: Any = None
        if self.rng.random() < 0.5:
            right = correct()
            if right is not None:
                value = _spoiled(right, self.rng.choice(spoilers))
        if value is None:
            value = self.rng.choice(plain)
        self.answers.append(describe(value)[:60])
        return CallResult(status="ok", value=value) if self.raw else _through_wire(value)


def _reference_answer(module: str, function: str, args: list, kwargs: dict) -> Any:
    """The reference's answer to the same call (None when it has none, e.g. for a model builder)."""
    try:
        mod = importlib.import_module(f"{COURSE.reference_package}.{module}")

        def build(v: Any) -> Any:
            return getattr(mod, v.builder)() if type(v) is wire.Build else v

        return getattr(mod, function)(*[build(a) for a in args], **{k: build(v) for k, v in kwargs.items()})
    except Exception:  # noqa: BLE001  the reference refuses these inputs (an error check): no right answer
        return None


def grade_with_garbage(monkeypatch: pytest.MonkeyPatch, exercise_id: str, seed: int, raw: bool = False,
                       same_shape: bool = False) -> GradeReport:
    rng = random.Random(f"{exercise_id}-{seed}")
    monkeypatch.setattr(grade_module, "Worker", lambda *a, **k: GarbageWorker(*a, rng=rng, raw=raw, same_shape=same_shape, **k))
    exercise = next(e for e in COURSE.exercises if e.id == exercise_id)
    with prepare(SOLUTIONS, COURSE.student_package, COURSE.modules) as ws:
        result, _ = grade_exercise(ws, COURSE, exercise)
    score, max_score = total([result])
    return GradeReport(score=score, max_score=max_score, grader_version="test", isolation="none", duration_s=0.0,
                       exercises=[result])


def _rendered(report: GradeReport) -> None:
    """Every rendering works on the report (terminal, Markdown, HTML, JSON)."""
    from rich.console import Console

    print_report(report, Console(file=io.StringIO(), width=120))
    assert markdown(report)
    assert "<html>" in html_page(report)
    assert report.to_json()["exercises"]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_garbage_through_the_wire_gets_a_report_and_no_points(monkeypatch, exercise_id, seed):
    report = grade_with_garbage(monkeypatch, exercise_id, seed)
    ex = report.exercises[0]
    assert ex.status in ("failed", "error"), (ex.status, ex.first_failure)
    assert ex.score == 0, [(t.name, t.points, t.message[:200]) for t in ex.tests if t.points]
    assert all(t.message for t in ex.tests)  # every failed check says why
    _rendered(report)


def _shape_only_points(exercise_id: str) -> float:
    concepts = next(e for e in COURSE.exercises if e.id == exercise_id).concepts or {}
    return sum(concepts.get(c, 0.0) for c in SHAPE_ONLY_CONCEPTS)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_wrong_values_of_the_right_shape_get_a_report_and_no_value_points(monkeypatch, exercise_id):
    """NaN, inf, 1e308 and wrong integers in the answer's shape: value checks and pictures cope, and earn nothing."""
    report = grade_with_garbage(monkeypatch, exercise_id, seed=3, same_shape=True)
    ex = report.exercises[0]
    assert ex.status in ("failed", "error"), (ex.status, ex.first_failure)
    assert ex.score <= _shape_only_points(exercise_id) + 1e-9, [(t.name, t.points) for t in ex.tests if t.points]
    _rendered(report)


@pytest.mark.parametrize("raw_seed", [7, 8])
@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_garbage_the_wire_refuses_still_gets_a_report(monkeypatch, exercise_id, raw_seed):
    """Object/complex arrays, tensors, subclasses and 10^10-element views handed over raw: no crash, no points."""
    report = grade_with_garbage(monkeypatch, exercise_id, seed=raw_seed, raw=True, same_shape=raw_seed % 2 == 1)
    ex = report.exercises[0]
    assert ex.status in ("failed", "error"), (ex.status, ex.first_failure)
    assert ex.score <= _shape_only_points(exercise_id) + 1e-9, [(t.name, t.points) for t in ex.tests if t.points]
    _rendered(report)


def test_a_check_that_raises_on_student_data_is_a_failed_test_not_a_crash(monkeypatch):
    """The one wrapper: an exception other than InternalError inside a check fails that check only."""
    from grader.suites import base

    suite = base.Suite("conv_output_size")

    @suite.check("raises on the student's value")
    def boom(ctx) -> None:
        if np.array([1, 2]) == 3:  # the truth value of an array is ambiguous: ValueError
            pass

    @suite.check("passes")
    def fine(ctx) -> None:
        return None

    monkeypatch.setattr(grade_module, "suite_for", lambda _id: suite)
    monkeypatch.setattr(grade_module, "Worker", lambda *a, **k: GarbageWorker(rng=random.Random(0)))
    exercise = next(e for e in COURSE.exercises if e.id == "conv_output_size").model_copy(update={"concepts": None})
    with prepare(SOLUTIONS, COURSE.student_package, COURSE.modules) as ws:
        result, _ = grade_exercise(ws, COURSE, exercise)
    first, second = result.tests
    assert not first.passed and first.points == 0
    assert first.message.startswith("the grader could not examine your answer: ValueError: The truth value")
    assert "Traceback" in first.grader_traceback and "boom" in first.grader_traceback
    assert "grader_traceback" in first.to_json() and "Traceback" not in html_page(
        GradeReport(0, 1, "t", "none", 0.0, [result]))
    assert second.passed and result.status == "failed" and 0 < result.score < result.max_score


def test_internal_error_still_stops_the_grade(monkeypatch):
    """The grader's own fault (reference and oracle disagree) is not blamed on the student."""
    from grader.suites import base

    suite = base.Suite("conv_output_size")

    @suite.check("reference broken")
    def broken(ctx) -> None:
        raise InternalError("the reference disagrees with its oracle")

    monkeypatch.setattr(grade_module, "suite_for", lambda _id: suite)
    monkeypatch.setattr(grade_module, "Worker", lambda *a, **k: GarbageWorker(rng=random.Random(0)))
    exercise = next(e for e in COURSE.exercises if e.id == "conv_output_size")
    with prepare(SOLUTIONS, COURSE.student_package, COURSE.modules) as ws:
        with pytest.raises(grade_module.GraderInternalError):
            grade_exercise(ws, COURSE, exercise)


# --------------------------------------------------------------------------- comparison and pictures
_REAL = hnp.floating_dtypes() | hnp.integer_dtypes() | hnp.unsigned_integer_dtypes() | hnp.boolean_dtypes()
_ANY_DTYPE = _REAL | hnp.complex_number_dtypes() | st.just(np.dtype(object))
_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e308, 5e-324])


def _arrays(dtypes: st.SearchStrategy) -> st.SearchStrategy:
    return dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
                                                elements=_FLOATS if dt.kind == "f" else None))


GARBAGE = (st.none() | st.booleans() | st.integers() | _FLOATS | st.text(max_size=20)
           | st.lists(st.floats(), max_size=5) | st.tuples(st.integers(), st.none())
           | _arrays(_ANY_DTYPE) | _arrays(_REAL).map(lambda a: a[()] if a.ndim == 0 else a)  # numpy scalars
           | st.sampled_from(RAW_ONLY))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(got=GARBAGE, expected=_arrays(st.sampled_from([np.dtype(np.float64), np.dtype(np.float32)])))
def test_comparison_fails_cleanly_on_any_value(got, expected):
    """assert_array_matches raises Fail (with a message) or passes only for a matching real array; never anything else."""
    try:
        assert_array_matches(got, expected, what="f", inputs="x shape (2, 3)")
    except Fail as failure:
        assert str(failure).startswith("f: ") and "\ncase: x shape (2, 3)" in str(failure)
        return
    assert type(got) is np.ndarray and got.shape == expected.shape and got.dtype == expected.dtype
    with np.errstate(all="ignore"):
        assert np.allclose(got.astype(np.float64), expected.astype(np.float64), equal_nan=True, rtol=1e-4, atol=1e-5 * max(
            1.0, float(np.nanmax(np.abs(np.where(np.isinf(expected), 0, expected)), initial=0.0))))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=GARBAGE)
def test_describe_never_raises_and_stays_short(value):
    text = describe(value)
    assert isinstance(text, str) and len(text) <= 2003


_EXTREME = st.sampled_from([0.0, 1.0, -1.0, 1e308, -1e308, math.inf, -math.inf, math.nan, 5e-324])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4),
       dtype=hnp.floating_dtypes(sizes=(16, 32, 64)) | hnp.integer_dtypes() | hnp.boolean_dtypes())
def test_feedback_picture_never_raises(data, shape, dtype):
    """Pictures of expected / got / difference with NaN, inf and 1e308 (whose difference overflows)."""
    expected = data.draw(hnp.arrays(np.float64, shape, elements=_EXTREME))
    got = data.draw(hnp.arrays(dtype, shape, elements=_EXTREME if dtype.kind == "f" else None))
    picture = _array_picture(expected, got)
    assert picture is None or picture.startswith("data:image/png;base64,")
