"""A diagnosis explains every case (coursekit.mistakes.settle, grader.suites.diagnosis), blame names only
helpers that were called, and the float32 dtype is kept: the wrong confirmations of issue 18, each a test.

Unit tests run the rule on recorded cases; the end-to-end ones grade planted submissions in the sandbox.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from coursekit import mistakes as catalogue
from coursekit.course import load_course
from grader.suites.diagnosis import reference_namespace

REF = reference_namespace(load_course())


def floor_same_padding(n, k, stride=1):
    total = max((n // stride - 1) * stride + k - n, 0)
    return total // 2, total - total // 2


def floor_after(n, k, stride=1):
    total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
    return total // 2, total // 2


def run(fn, cases) -> list[catalogue.Case]:
    return [catalogue.Case((n, k), {"stride": s}, fn(n, k, s)) for n, k, s in cases]


SAME_CASES = [(28, 3, 1), (28, 5, 1), (5, 4, 1), (6, 2, 1), (1, 1, 1), (28, 3, 2), (27, 3, 2), (7, 3, 3), (1, 2, 2)]


@pytest.mark.parametrize("wrong", [floor_same_padding, floor_after], ids=["floor_not_ceil", "after_floor"])
def test_half_kernel_is_not_confirmed_when_a_passed_case_contradicts_it(wrong):
    cases = run(wrong, SAME_CASES)
    shown = next(c for c in cases if c.answer != REF.same_padding(*c.args, **c.kwargs) and c.args == (1, 2))  \
        if wrong is floor_same_padding else next(c for c in cases if c.answer != REF.same_padding(*c.args, **c.kwargs))
    found = catalogue.diagnose("same_padding", REF, shown.args, shown.kwargs, shown.answer)
    verdict = catalogue.settle("same_padding", REF, cases, shown)
    assert verdict.causes == ()
    assert "same_padding.half_kernel" not in verdict.ids
    if found:  # matched on the one case: said as a fact about it, never as the cause
        assert any("not the whole story" in line for line in verdict.lines())
        assert not any(line.startswith("Diagnosis") for line in verdict.lines())


def test_a_mistake_that_explains_every_case_is_confirmed():
    cases = run(lambda n, k, s: ((k - 1) // 2, (k - 1) // 2), SAME_CASES)
    shown = next(c for c in cases if c.answer != REF.same_padding(*c.args, **c.kwargs))
    verdict = catalogue.settle("same_padding", REF, cases, shown)
    assert verdict.ids == ["same_padding.half_kernel"]
    assert verdict.lines()[0].startswith("Diagnosis (it explains every case checked)")


def test_a_case_that_raised_is_explained_by_no_mistake():
    cases = run(lambda n, k, s: ((k - 1) // 2, (k - 1) // 2), SAME_CASES)
    cases.append(catalogue.Case((9, 2), {"stride": 3}, catalogue.RAISED))
    assert catalogue.settle("same_padding", REF, cases, cases[5]).causes == ()


def test_a_description_is_a_cause_only_when_every_failing_case_shows_it():
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((4, 5)) for _ in range(3)]
    kernel = rng.standard_normal((2, 2))
    flipped = [catalogue.Case((im, kernel), {}, REF.correlate2d(im, kernel)[::-1, ::-1].copy()) for im in images]
    verdict = catalogue.settle("correlate2d", REF, flipped, flipped[1])
    assert verdict.described and "flipped upside down and left to right" in verdict.lines()[0]
    assert verdict.lines()[0].startswith("How your answer differs, on every failing case")
    mixed = flipped[:2] + [catalogue.Case((images[2], kernel), {}, REF.correlate2d(images[2], kernel) * 3)]
    verdict = catalogue.settle("correlate2d", REF, mixed, mixed[0])
    assert not verdict.described
    assert any(line.startswith("On this case:") and "flipped" in line for line in verdict.lines())


# ---------------------------------------------------------------------------------------------
# End to end (sandboxed grading)
# ---------------------------------------------------------------------------------------------
def grade_planted(tmp_path: Path, module: str, code: str, only: list[str]):
    from grading_helpers import grade, reference_submission

    return grade(reference_submission(tmp_path / "sub", {module: code}), only=only)


def failures(ex):
    return [t for t in ex.tests if not t.passed]


def stated(ex) -> set[str]:
    return {m for t in failures(ex) for m in (t.detail or {}).get("mistakes", [])}


@pytest.mark.slow
def test_floor_instead_of_ceil_is_not_called_half_kernel(tmp_path):
    ex = grade_planted(tmp_path, "padding", """
        def same_padding(n, k, stride=1):
            total = max((n // stride - 1) * stride + k - n, 0)
            return total // 2, total - total // 2
        """, ["same_padding"]).exercise("same_padding")
    assert failures(ex) and "same_padding.half_kernel" not in stated(ex)
    assert not any("Diagnosis" in t.message or "Likely mistake" in t.message for t in failures(ex))


@pytest.mark.slow
def test_after_floor_is_not_called_half_kernel(tmp_path):
    ex = grade_planted(tmp_path, "padding", """
        import math
        def same_padding(n, k, stride=1):
            total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
            return total // 2, total // 2
        """, ["same_padding"]).exercise("same_padding")
    assert failures(ex) and stated(ex) == set()
    assert any("the first value (before) is right; the second value (after) is 1 less" in t.message for t in failures(ex))


NAIVE_CONV = """
    def conv2d(x, w, b=None, stride=1, padding=0):
        x, w = np.asarray(x), np.asarray(w)
        if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
            raise ValueError("shapes")
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        if sh < 1 or sw < 1:
            raise ValueError("stride")
        n, c, h, wd = x.shape
        f, _, kh, kw = w.shape
        if padding == "same":
            t, bo = same_padding(h, kh{stride_h})
            l, r = same_padding(wd, kw{stride_w})
        elif padding == "valid":
            t = bo = l = r = 0
        elif isinstance(padding, str):
            raise ValueError("padding")
        else:
            ph, pw = (padding, padding) if isinstance(padding, int) else padding
            t, bo, l, r = ph, ph, pw, pw
        if kh > h + t + bo or kw > wd + l + r:
            raise ValueError("kernel too large")
        xp = {pad}
        ho, wo = (h + t + bo - kh) // sh + 1, (wd + l + r - kw) // sw + 1
        out = np.zeros((n, f, ho, wo))
        for i in range(ho):
            for j in range(wo):
                out[:, :, i, j] = np.tensordot(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], w, axes=([1, 2, 3], [1, 2, 3]))
        if b is not None:
            out += np.asarray(b, dtype=float)[None, :, None, None]
        dt = np.float32 if all(np.asarray(a).dtype == np.float32 for a in (x, w) + (() if b is None else (b,))) else np.float64
        return out.astype(dt)
    """


def naive_conv(stride: bool = True, pad: str = "pad2d(x, (t, bo, l, r))") -> str:
    return NAIVE_CONV.format(stride_h=", sh" if stride else "", stride_w=", sw" if stride else "", pad=pad)


@pytest.mark.slow
def test_stride_not_passed_to_same_padding_is_not_called_a_reversed_split(tmp_path):
    ex = grade_planted(tmp_path, "conv", naive_conv(stride=False), ["conv2d"]).exercise("conv2d")
    failed = failures(ex)
    assert failed and "conv2d.same_split_reversed" not in stated(ex) and "blame.same_padding" not in stated(ex)
    assert any("called same_padding(" in t.message and "which rightly gives" in t.message for t in failed)
    assert ex.score >= 16  # the 'same' padding checks only


@pytest.mark.slow
def test_a_convolution_that_pads_by_itself_gets_no_blame_for_a_wrong_pad2d(tmp_path):
    from grading_helpers import grade, reference_submission

    sub = reference_submission(tmp_path / "sub", {
        "padding": """
            def pad2d(x, pad, value=0.0):
                return np.zeros((1, 1, 1, 1))
            """,
        # pads by itself, with its own mistake: ones around the image instead of zeros
        "conv": naive_conv(pad="np.pad(x.astype(float), [(0, 0), (0, 0), (t, bo), (l, r)], constant_values=1.0)"),
    })
    ex = grade(sub, only=["conv2d"]).exercise("conv2d")
    assert failures(ex)
    assert not any("blame" in m for m in stated(ex))
    assert not any("pad2d" in t.message for t in failures(ex))


@pytest.mark.slow
def test_blame_is_a_line_of_its_own_after_the_error(tmp_path):
    ex = grade_planted(tmp_path, "padding", """
        def pad2d(x, pad, value=0.0):
            raise ArithmeticError("Unsupported: pad2d is not finished")
        """, ["conv2d"]).exercise("conv2d")
    failed = [t for t in failures(ex) if "raised ArithmeticError" in t.message]
    assert failed
    for t in failed:
        first, *rest = t.message.split("\n")
        assert "pad2d(" not in first.split("Unsupported:", 1)[1].replace("pad2d is not finished", "")
        assert any(line.startswith("your pad2d(") and "raised ArithmeticError" in line and "fix pad2d first" in line
                   for line in rest), t.message
    assert "blame.pad2d" in stated(ex)


@pytest.mark.slow
@pytest.mark.parametrize("module, function", [("padding", "pad2d"), ("conv", "conv2d")])
def test_a_float32_input_upcast_to_float64_costs_the_dtype_concept_only(tmp_path, module, function):
    from grader.suites import suite_for

    ex = grade_planted(tmp_path, module, f"""
        _ref_{function} = {function}
        def {function}(x, *args, **kwargs):
            return _ref_{function}(np.asarray(x, dtype=np.float64), *args, **kwargs)
        """, [function]).exercise(function)
    concept = {c.name: c.concept for c in suite_for(function).checks}
    failed = failures(ex)
    assert failed and {concept[t.name] for t in failed} == {"dtypes"}
    assert any("float64, expected float32" in t.message for t in failed)


@pytest.mark.slow
def test_a_convnet_with_32_filters_is_not_told_to_check_count_parameters(tmp_path):
    ex = grade_planted(tmp_path, "convnet", """
        _ref_build = build_convnet
        def build_convnet():
            return nn.Sequential(
                nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Flatten(),
                nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
        """, ["convnet"]).exercise("convnet")
    failed = failures(ex)
    assert failed
    assert not any("count_parameters" in t.message for t in failed)
    assert any(t.name.startswith("count_parameters") and t.passed for t in ex.tests)


# ---------------------------------------------------------------------------------------------
# The self-checks say what the grader says
# ---------------------------------------------------------------------------------------------
def test_self_checks_and_grader_give_the_same_verdict_on_the_same_cases(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(catalogue, "SELF_CHECK_CASES", {})
    cases = run(floor_same_padding, [(28, 3, 1), (5, 4, 1), (1, 2, 2)])
    hints = [catalogue.self_check_hint("same_padding", c.args, c.kwargs, c.answer) for c in cases]
    assert hints[:2] == ["", ""]  # right answers: nothing to say, but recorded
    grader_lines = catalogue.settle("same_padding", REF, cases, cases[2]).lines()
    assert hints[2] == " " + " ".join(grader_lines)
    assert "not the whole story" in hints[2] and "Diagnosis" not in hints[2]


def test_a_public_self_check_describes_an_unlisted_mistake(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import importlib.util
    import sys
    import uuid

    from grading_helpers import reference_submission

    monkeypatch.setattr(catalogue, "SELF_CHECK_CASES", {})
    name = f"planted_{uuid.uuid4().hex[:8]}"
    reference_submission(tmp_path / name, {"conv": """
        _ref = correlate2d
        def correlate2d(image, kernel):
            return np.ascontiguousarray(_ref(image, kernel)[::-1, ::-1])
        """})
    monkeypatch.syspath_prepend(str(tmp_path))
    impl = lambda mod: importlib.import_module(f"{name}.{mod}")  # noqa: E731
    spec = importlib.util.spec_from_file_location("public_test_conv", Path(__file__).parent / "public" / "test_conv.py")
    public = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(public)
    with pytest.raises(AssertionError) as info:
        public.test_correlate2d_hand_computed(impl)
    assert "flipped upside down and left to right" in str(info.value)
    assert "[correlate2d." not in str(info.value)
    sys.modules.pop(name, None)


# ---------------------------------------------------------------------------------------------
# The worker's helper records are untrusted: validated, clipped, never raising
# ---------------------------------------------------------------------------------------------
def test_helper_records_are_validated_and_clipped():
    from grader.suites.helper_calls import Clipped, decode

    good = {"function": "pad2d", "args": [{"nd": ["<f8", [1, 1, 1, 2], [1.0, 2.0]]}, {"t": [1, 0, 0, 0]}], "kwargs": {},
            "value": {"nd": ["<f8", [1, 1, 2, 2], [1.0, 2.0, 0.0, 0.0]]}}
    calls = decode([good], {"pad2d"})
    assert len(calls) == 1 and calls[0].checkable
    assert calls[0].args[0].shape == (1, 1, 1, 2) and calls[0].args[1] == (1, 0, 0, 0)
    hostile = [
        "text", None, {"function": "os.system"}, {"function": "pad2d", "args": "x"},
        {"function": "pad2d", "args": [{"nd": ["<f8", [3], [1.0]]}]},            # shape and data disagree
        {"function": "pad2d", "args": [{"nd": ["O", [1], [1]]}]},                # object dtype
        {"function": "pad2d", "args": [{"nd": ["<f8", [10**9], []]}]},           # absurd shape
        {"function": "pad2d", "args": [{"big": ["<f8", [5000, 5000]]}], "value": 1},
        {"function": "pad2d", "args": [{"nd": ["<f8", [1], ["1"]]}]},            # a string among numbers
    ] + [good] * 40
    calls = decode(hostile, {"pad2d"})
    assert len(calls) <= 16
    unchecked = [c for c in calls if not c.checkable]
    assert unchecked and all(any(isinstance(a, Clipped) for a in c.args) for c in unchecked)
    assert decode(object(), {"pad2d"}) == ()
