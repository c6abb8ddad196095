"""The mistake catalogue (coursekit.mistakes): every detector fires on its planted mistake, by name,
and stays silent on the reference and on every other planted mistake.

Planted mistakes are written here independently of the catalogue's ``recompute`` functions: naive
loop implementations with one wrong line each (``bug=``), so a detector cannot pass by agreeing with
itself. A few end-to-end runs then check that the hidden suites and the self-checks show them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from coursekit import mistakes as catalogue
from coursekit.course import load_course
from grader.suites import suite_for
from grader.suites.diagnosis import reference_namespace

COURSE = load_course()
REF = reference_namespace(COURSE)


def pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


# ---------------------------------------------------------------------------------------------
# Planted mistakes: naive implementations, one wrong line per bug
# ---------------------------------------------------------------------------------------------
def naive_conv_output_size(n, k, stride=1, padding=0, bug=None):
    if bug == "missing_plus_one":
        return (n + 2 * padding - k) // stride
    if bug == "padding_ignored":
        return (n - k) // stride + 1
    if bug == "padding_once":
        return (n + padding - k) // stride + 1
    if bug == "stride_ignored":
        return n + 2 * padding - k + 1
    if bug == "true_division":
        return (n + 2 * padding - k) / stride + 1
    if bug == "rounded_up":
        return math.ceil((n + 2 * padding - k) / stride) + 1
    return (n + 2 * padding - k) // stride + 1


def naive_same_padding(n, k, stride=1, bug=None):
    if bug == "half_kernel":
        return (k - 1) // 2, (k - 1) // 2
    if bug == "stride_ignored":
        stride = 1
    out = math.ceil(n / stride)
    total = (out - 1) * stride + k - n
    if bug != "negative_total":
        total = max(total, 0)
    before, after = total // 2, total - total // 2
    return (after, before) if bug == "split_reversed" else (before, after)


def naive_pad2d(x, pad, value=0.0, bug=None):
    x = np.asarray(x)
    t, b, l, r = (pad,) * 4 if isinstance(pad, int) else pad
    if bug == "tuple_order" and not isinstance(pad, int):
        t, l, b, r = pad
    if bug == "one_side_only":
        b = r = 0
    if bug == "hw_swapped":
        t, b, l, r = l, r, t, b
    if bug == "value_ignored":
        value = 0.0
    if bug == "all_axes":
        return np.pad(x.astype(float), pad, constant_values=value)
    out = np.full(x.shape[:-2] + (x.shape[-2] + t + b, x.shape[-1] + l + r), value,
                  dtype=x.dtype if bug == "kept_integer_dtype" else float)
    out[..., t:t + x.shape[-2], l:l + x.shape[-1]] = x
    return out


def naive_correlate2d(image, kernel, bug=None):
    image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    if bug == "kernel_flipped":
        kernel = kernel[::-1, ::-1]
    if bug == "full_output":
        image = np.pad(image, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    ho, wo = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    if bug == "off_by_one":
        ho, wo = ho - 1, wo - 1
    out = np.zeros((ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[i, j] = (image[i:i + kh, j:j + kw] * kernel).sum()
    return out


def naive_conv2d(x, w, b=None, stride=1, padding=0, bug=None):
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    sh, sw = pair(stride)
    sh, sw = {"stride_ignored": (1, 1), "stride_first_value_both_axes": (sh, sh), "stride_second_value_both_axes": (sw, sw),
              "stride_rows_only": (sh, 1), "stride_columns_only": (1, sw)}.get(bug, (sh, sw))
    if padding == "same":
        t, bo = naive_same_padding(h, kh, sh, bug="split_reversed" if bug == "same_split_reversed" else None)
        l, r = naive_same_padding(wd, kw, sw, bug="split_reversed" if bug == "same_split_reversed" else None)
    elif padding == "valid":
        t = bo = l = r = 0
    else:
        (t, l) = pair(padding)
        bo, r = t, l
    xp = np.pad(x, t) if bug == "padded_batch_channel_axes" and isinstance(padding, int) else np.pad(x, [(0, 0), (0, 0), (t, bo), (l, r)])
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    if bug == "output_size_off_by_one":
        ho, wo = ho - 1, wo - 1
    if bug == "kernel_flipped":
        w = w[..., ::-1, ::-1]
    out = np.zeros((xp.shape[0], f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :c, i * sh:i * sh + kh, j * sw:j * sw + kw]
            for ch in range(c):
                term = np.einsum("nhw,fhw->nf", window[:, ch], w[:, ch])
                if bug == "first_channel_only" and ch > 0:
                    continue
                if bug == "last_channel_only":
                    out[:, :, i, j] = term
                else:
                    out[:, :, i, j] += term
    if b is not None and bug != "bias_missing":
        out += np.asarray(b, dtype=float)[None, :, None, None]
    return out


def naive_pool(kind: str):
    def pool(x, kernel_size, stride=None, bug=None):
        x = np.asarray(x)
        kh, kw = pair(kernel_size)
        if stride is None:
            sh, sw = (1, 1) if bug == "overlapping_windows" else (kh, kw)
        else:
            sh, sw = (kh, kw) if bug == "stride_ignored" else pair(stride)
        sh, sw = {"stride_first_value_both_axes": (sh, sh), "stride_second_value_both_axes": (sw, sw),
                  "stride_rows_only": (sh, 1), "stride_columns_only": (1, sw)}.get(bug, (sh, sw))
        h, w = x.shape[2:]
        size = (lambda n, k, s: math.ceil((n - k) / s) + 1) if bug == "ceil_mode" else (lambda n, k, s: (n - k) // s + 1)
        ho, wo = size(h, kh, sh), size(w, kw, sw)
        out = np.zeros(x.shape[:2] + (ho, wo))
        for i in range(ho):
            for j in range(wo):
                window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                if kind == "max":
                    out[:, :, i, j] = window.max(axis=(2, 3))
                elif bug == "uint8_overflow":
                    out[:, :, i, j] = window.sum(axis=(2, 3), dtype=x.dtype) / (kh * kw)
                elif bug == "divides_by_k":
                    out[:, :, i, j] = window.astype(float).sum(axis=(2, 3)) / kh
                else:
                    out[:, :, i, j] = window.astype(float).mean(axis=(2, 3))
        return out

    return pool


def naive_conv2d_backward(dout, x, w, stride=1, padding=0, bug=None):
    dx, dw, db = REF.conv2d_backward(dout, x, w, stride=stride, padding=padding)
    dout = np.asarray(dout, dtype=float)
    db = {"db_not_summed_over_batch": dout.sum(axis=(2, 3)), "db_not_summed_over_space": dout.sum(axis=0),
          "db_first_sample_only": dout[0].sum(axis=(1, 2))}.get(bug, db)
    return dx, dw, db


def naive_maxpool2d_backward(dout, x, kernel_size, stride=None, bug=None):
    x, dout = np.asarray(x, dtype=float), np.asarray(dout, dtype=float)
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride) if stride is not None else (kh, kw)
    dx = np.zeros_like(x)
    n, c, h, wd = x.shape
    for a in range(n):
        for ch in range(c):
            for i in range((h - kh) // sh + 1):
                for j in range((wd - kw) // sw + 1):
                    window = x[a, ch, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    hits = np.argwhere(window == window.max())
                    chosen = hits if bug == "ties_all" else hits[-1:] if bug == "ties_last" else hits[:1]
                    for r, q in chosen:
                        if bug == "overlap_assigned":
                            dx[a, ch, i * sh + r, j * sw + q] = dout[a, ch, i, j]
                        else:
                            dx[a, ch, i * sh + r, j * sw + q] += dout[a, ch, i, j]
    return dx


NAIVE: dict[str, Callable[..., Any]] = {
    "conv_output_size": naive_conv_output_size, "same_padding": naive_same_padding, "pad2d": naive_pad2d,
    "correlate2d": naive_correlate2d, "conv2d": naive_conv2d, "maxpool2d": naive_pool("max"),
    "avgpool2d": naive_pool("avg"), "conv2d_backward": naive_conv2d_backward, "maxpool2d_backward": naive_maxpool2d_backward,
}


# ---------------------------------------------------------------------------------------------
# Probe cases: (args, kwargs) per exercise, chosen so that the catalogue's mistakes differ there
# ---------------------------------------------------------------------------------------------
def rng_array(shape, seed, dtype="float64", ties=False):
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(0, 3, size=shape).astype(dtype)
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(dtype)


def conv_probe(x_shape, w_shape, stride, padding, bias=True, seed=0):
    x, w = rng_array(x_shape, seed), rng_array(w_shape, seed + 1)
    args = (x, w, rng_array((w_shape[0],), seed + 2)) if bias else (x, w)
    return args, {"stride": stride, "padding": padding}


def backward_probe(x_shape, w_shape, stride, padding, seed=0):
    x, w = rng_array(x_shape, seed), rng_array(w_shape, seed + 1)
    dout = rng_array(REF.conv2d(x, w, None, stride=stride, padding=padding).shape, seed + 2)
    return (dout, x, w), {"stride": stride, "padding": padding}


def maxpool_backward_probe(x_shape, kernel_size, stride, seed=0, ties=False):
    x = rng_array(x_shape, seed, ties=ties)
    dout = rng_array(REF.maxpool2d(x, kernel_size, stride).shape, seed + 1)
    return (dout, x, kernel_size), ({} if stride is None else {"stride": stride})


def pool_probes():
    return [((rng_array((2, 2, 7, 9), 0), (2, 3)), {}),
            ((rng_array((1, 2, 9, 11), 1), (3, 4)), {"stride": (2, 3)}),
            ((rng_array((1, 2, 6, 6), 2, "uint8"), 2), {})]


PROBES: dict[str, list[tuple[tuple, dict]]] = {
    "conv_output_size": [((28, 3), {"stride": 1, "padding": 0}), ((12, 3), {"stride": 2, "padding": 4}),
                         ((9, 2), {"stride": 2, "padding": 0})],
    "same_padding": [((6, 3), {"stride": 2}), ((28, 4), {"stride": 1}), ((9, 2), {"stride": 3}), ((7, 4), {"stride": 2})],
    "pad2d": [((rng_array((2, 3, 3, 4), 0), 1), {}), ((rng_array((1, 2, 3, 4), 1), (1, 2, 3, 0)), {"value": -1.5}),
              ((rng_array((1, 1, 3, 3), 2, "uint8"), (2, 0, 1, 1)), {"value": 7.5})],
    "correlate2d": [((rng_array((5, 6), 0), rng_array((2, 3), 1)), {})],
    "conv2d": [conv_probe((2, 3, 7, 8), (2, 3, 3, 2), (2, 3), 1), conv_probe((1, 2, 6, 7), (2, 2, 2, 3), 1, "same", seed=3),
               conv_probe((1, 2, 7, 9), (1, 2, 4, 2), (2, 3), "same", seed=5)],
    "maxpool2d": pool_probes(),
    "avgpool2d": pool_probes(),
    "conv2d_backward": [backward_probe((2, 2, 5, 5), (3, 2, 3, 3), 1, 0), backward_probe((2, 1, 7, 6), (2, 1, 2, 3), 2, 1, 1)],
    "maxpool2d_backward": [maxpool_backward_probe((1, 2, 6, 6), 2, None, ties=True),
                           maxpool_backward_probe((1, 1, 7, 7), 3, 1, seed=1),
                           maxpool_backward_probe((2, 2, 7, 6), 3, (1, 2), seed=2, ties=True)],
}

ARRAY_MISTAKES = [m for m in catalogue.CATALOGUE if m.exercise in NAIVE]


def short(m: catalogue.Mistake) -> str:
    return m.id.split(".", 1)[1]


class Raised:
    """What a planted mistake returns when the mistaken code raises on a case (never equals an answer)."""


def planted(m: catalogue.Mistake, args: tuple, kwargs: dict) -> Any:
    try:
        return NAIVE[m.exercise](*args, **kwargs, bug=short(m))
    except Exception:  # noqa: BLE001  the mistaken code crashes here, as the student's would
        return Raised()


def test_every_exercise_with_a_catalogue_is_probed():
    assert {m.exercise for m in catalogue.CATALOGUE} - {"convnet"} == set(PROBES)
    assert set(catalogue.BY_ID) == {m.id for m in catalogue.CATALOGUE}, "mistake ids are unique"
    for m in catalogue.CATALOGUE:
        assert m.id.startswith(m.exercise + ".") and m.exercise in COURSE.ids and m.message


@pytest.mark.parametrize("exercise", sorted(PROBES))
def test_naive_implementations_are_right_without_a_bug(exercise):
    for args, kwargs in PROBES[exercise]:
        assert catalogue.same(NAIVE[exercise](*args, **kwargs), getattr(REF, exercise)(*args, **kwargs))


@pytest.mark.parametrize("exercise", sorted(PROBES))
def test_silent_on_the_reference(exercise):
    for args, kwargs in PROBES[exercise]:
        assert catalogue.diagnose(exercise, REF, args, kwargs, getattr(REF, exercise)(*args, **kwargs)) == []


@pytest.mark.parametrize("mistake", ARRAY_MISTAKES, ids=lambda m: m.id)
def test_detector_fires_on_its_planted_mistake_and_only_there(mistake):
    alone = 0
    for args, kwargs in PROBES[mistake.exercise]:
        got = planted(mistake, args, kwargs)
        if isinstance(got, Raised):
            continue
        expected = getattr(REF, mistake.exercise)(*args, **kwargs)
        found = [m.id for m in catalogue.diagnose(mistake.exercise, REF, args, kwargs, got)]
        if catalogue.same(got, expected):
            assert found == [], f"a diagnosis where the mistake changes nothing: {found}"
            continue
        assert mistake.id in found, f"planted {mistake.id}, diagnosed {found} on {kwargs}"
        for other in found:  # named beside it only where the other mistake gives this very output
            assert catalogue.same(planted(catalogue.BY_ID[other], args, kwargs), got), (mistake.id, other, kwargs)
        alone += found == [mistake.id]
    assert alone, f"no probe case tells {mistake.id} apart from the other mistakes: add one"


@pytest.mark.parametrize("mistake", ARRAY_MISTAKES, ids=lambda m: m.id)
def test_detector_silent_on_every_other_planted_mistake(mistake):
    """Where another mistake is planted, this detector stays silent unless both mistakes give the very
    same output on that case (then nothing can tell them apart there, and both are named)."""
    for other in ARRAY_MISTAKES:
        if other.exercise != mistake.exercise or other is mistake:
            continue
        for args, kwargs in PROBES[mistake.exercise]:
            got = planted(other, args, kwargs)
            if isinstance(got, Raised) or catalogue.same(planted(mistake, args, kwargs), got):
                continue  # both mistakes give this very output: no case can tell them apart here
            found = [m.id for m in catalogue.diagnose(mistake.exercise, REF, args, kwargs, got)]
            assert mistake.id not in found, f"{mistake.id} fired on planted {other.id} ({kwargs})"


def test_a_mistake_that_changes_nothing_confirms_nothing():
    """The 1x1-kernel case of the old conv2d hint: a flip changes nothing there, so it is no diagnosis."""
    x, w = rng_array((1, 1, 1, 1), 0), rng_array((1, 1, 1, 1), 1)
    got = np.zeros((1, 1, 1, 1))  # wrong for another reason (e.g. a helper)
    assert catalogue.diagnose("conv2d", REF, (x, w), {"stride": 1, "padding": "same"}, got) == []
    got = REF.conv2d(x, w)  # the right answer, which a flip also gives
    assert catalogue.diagnose("conv2d", REF, (x, w), {}, got) == []


def test_floor_mode_is_not_claimed_for_a_one_axis_stride_bug():
    """Issue 9: the floor-mode hint fired whenever the output shape equalled ceil(H / s)."""
    args, kwargs = (rng_array((1, 1, 8, 8), 0), 3), {"stride": (2, 1)}
    got = naive_pool("max")(*args, **kwargs, bug="stride_first_value_both_axes")
    assert [m.id for m in catalogue.diagnose("maxpool2d", REF, args, kwargs, got)] == ["maxpool2d.stride_first_value_both_axes"]


@pytest.mark.parametrize("types, expected", [
    (list(REF.layer_types) + ["Softmax"], ["convnet.softmax_before_loss"]),
    ([t for t in REF.layer_types if t != "ReLU"], ["convnet.relu_missing"]),
    (list(REF.layer_types[:1]) + list(REF.layer_types[2:]), ["convnet.relu_missing"]),
    (list(REF.layer_types), []),
    (list(REF.layer_types[:-1]), []),
])
def test_convnet_mistakes_from_layer_types(types, expected):
    assert [m.id for m in catalogue.diagnose("convnet", REF, (), {}, types, list(REF.layer_types))] == expected


def test_same_keeps_types_of_numbers_apart():
    assert not catalogue.same(13.0, 13) and catalogue.same(13, 13) and not catalogue.same(np.zeros(2), np.zeros(3))
    assert catalogue.same((1, np.ones(2)), (1, np.ones(2))) and not catalogue.same([1], 1)


@pytest.mark.parametrize("exercise", sorted(PROBES))
def test_the_self_checks_torch_reference_agrees_with_the_reference(exercise):
    pytest.importorskip("torch")
    torch_ref = catalogue.torch_reference()
    for args, kwargs in PROBES[exercise]:
        assert catalogue.same(getattr(torch_ref, exercise)(*args, **kwargs), getattr(REF, exercise)(*args, **kwargs))


# ---------------------------------------------------------------------------------------------
# Concepts and points (course.yml) against the suites
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exercise", [e for e in COURSE.exercises if e.concepts], ids=lambda e: e.id)
def test_every_suites_concepts_match_course_yml(exercise):
    suite = suite_for(exercise.id)
    used = {c.concept for c in suite.checks}
    assert used == set(exercise.concepts), f"suite concepts {sorted(used)} vs course.yml {sorted(exercise.concepts)}"
    assert sum(suite.max_points(exercise)) == pytest.approx(exercise.points)


def test_exercises_without_concepts_are_only_those_not_split():
    assert [e.id for e in COURSE.exercises if not e.concepts] == ["mnist_accuracy"]


# ---------------------------------------------------------------------------------------------
# End to end: the hidden suites and the public self-checks (sandboxed grading: slower)
# ---------------------------------------------------------------------------------------------
def grade_planted(tmp_path: Path, module: str, code: str, only: list[str]):
    from grading_helpers import grade, reference_submission

    return grade(reference_submission(tmp_path / "sub", {module: code}), only=only)


def failures(ex) -> list:
    return [t for t in ex.tests if not t.passed]


def test_conv2d_without_bias_loses_the_bias_concept_only(tmp_path):
    report = grade_planted(tmp_path, "conv", """
        _reference_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _reference_conv2d(x, w, None, stride, padding)
        """, ["conv2d"])
    ex = report.exercise("conv2d")
    assert ex.score >= 14, [(t.name, t.points) for t in ex.tests]
    assert {t.name.split(":")[0] for t in failures(ex)} == {"bias", "combined"}
    assert all("conv2d.bias_missing" in t.detail["mistakes"] and "[conv2d.bias_missing]" in t.message for t in failures(ex))
    assert [t.get("mistakes") for t in ex.to_json()["tests"] if not t["passed"]] == [["conv2d.bias_missing"]] * 2  # JSON, for insights


def test_conv2d_that_only_validates_scores_at_most_two(tmp_path):
    report = grade_planted(tmp_path, "conv", """
        _reference_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            _reference_conv2d(x, w, b, stride, padding)  # validates (raises ValueError) ...
            return np.zeros((1, 1, 1, 1))                # ... and answers nothing
        """, ["conv2d"])
    assert report.exercise("conv2d").score <= 2


def test_same_padding_bug_is_blamed_in_conv2d_not_called_a_flip(tmp_path):
    report = grade_planted(tmp_path, "padding", """
        def same_padding(n, k, stride=1):
            return (k - 1) // 2, (k - 1) // 2
        """, ["conv2d"])
    ex = report.exercise("conv2d")
    failed = failures(ex)
    assert failed and all(t.name.startswith(("padding", "no_mutation", "combined", "the input")) for t in failed)
    assert all("fix same_padding first" in t.message and "flip" not in t.message for t in failed)
    assert all("blame.same_padding" in t.detail["mistakes"] for t in failed)
    assert ex.score >= 15


def test_one_axis_stride_in_maxpool_is_named_not_floor_mode(tmp_path):
    report = grade_planted(tmp_path, "pooling", """
        _reference_maxpool2d = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            if isinstance(stride, tuple):
                stride = (stride[0], stride[0])
            return _reference_maxpool2d(x, kernel_size, stride)
        """, ["maxpool2d"])
    ex = report.exercise("maxpool2d")
    failed = failures(ex)
    assert failed and all("floor" not in t.message for t in failed)
    assert any("maxpool2d.stride_first_value_both_axes" in t.detail["mistakes"] for t in failed)
    assert ex.score >= 7


def test_overlap_check_does_not_need_ties(tmp_path):
    """An accumulating backward pass that routes ties wrongly loses 'ties' (and 'combined'), not 'overlap'."""
    report = grade_planted(tmp_path, "backprop", """
        def maxpool2d_backward(dout, x, kernel_size, stride=None):
            x, dout = np.asarray(x, dtype=float), np.asarray(dout, dtype=float)
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
            dx = np.zeros_like(x)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(x.shape[0], x.shape[1], -1)
                    last = win.shape[-1] - 1 - win[..., ::-1].argmax(axis=-1)
                    for a in range(x.shape[0]):
                        for c in range(x.shape[1]):
                            r, q = divmod(int(last[a, c]), kw)
                            dx[a, c, i * sh + r, j * sw + q] += dout[a, c, i, j]
            return dx
        """, ["maxpool2d_backward"])
    ex = report.exercise("maxpool2d_backward")
    assert {t.name.split(":")[0] for t in failures(ex)} == {"ties", "combined"}
    assert any("maxpool2d_backward.ties_last" in t.detail["mistakes"] for t in failures(ex))


# ---------------------------------------------------------------------------------------------
# The public self-checks name the confirmed mistake (and no longer guess "uint8 overflow?")
# ---------------------------------------------------------------------------------------------
def planted_package(tmp_path: Path, module: str, code: str):
    """A copy of the reference package with ``code`` appended to ``module``, importable under a fresh name."""
    import importlib
    import sys
    import uuid

    from grading_helpers import reference_submission

    name = f"planted_{uuid.uuid4().hex[:8]}"
    reference_submission(tmp_path / name, {module: code})
    sys.path.insert(0, str(tmp_path))
    try:
        return lambda mod: importlib.import_module(f"{name}.{mod}")
    finally:
        importlib.invalidate_caches()


def public_failure(test: Callable, impl: Callable) -> str:
    with pytest.raises(AssertionError) as info:
        test(impl)
    return str(info.value)


PUBLIC_CASES = [
    ("conv", "_ref = conv2d\ndef conv2d(x, w, b=None, stride=1, padding=0):\n    return _ref(x, np.asarray(w)[..., ::-1, ::-1], b, stride, padding)\n",
     "test_conv", "test_conv2d_matches_torch", "conv2d.kernel_flipped"),
    ("conv", "_ref = conv2d\ndef conv2d(x, w, b=None, stride=1, padding=0):\n    return _ref(x, w, None, stride, padding)\n",
     "test_conv", "test_conv2d_matches_torch", "conv2d.bias_missing"),
    ("conv", "_ref = conv2d\ndef conv2d(x, w, b=None, stride=1, padding=0):\n    return _ref(x, w, None, stride, padding)\n",
     "test_conv", "test_conv2d_sums_over_input_channels", "conv2d.bias_missing"),
    ("conv", "_ref = conv2d\ndef conv2d(x, w, b=None, stride=1, padding=0):\n"
             "    s = stride if isinstance(stride, int) else stride[0]\n    return _ref(x, w, b, (s, 1), padding)\n",
     "test_conv", "test_conv2d_stride_on_both_axes", "conv2d.stride_rows_only"),
    ("conv", "_ref = correlate2d\ndef correlate2d(image, kernel):\n    return _ref(image, np.asarray(kernel)[::-1, ::-1])\n",
     "test_conv", "test_correlate2d_hand_computed", "correlate2d.kernel_flipped"),
    ("pooling", "_ref = maxpool2d\ndef maxpool2d(x, kernel_size, stride=None):\n"
                "    return _ref(x, kernel_size, (stride[0], stride[0]) if isinstance(stride, tuple) else stride)\n",
     "test_pooling", "test_maxpool2d_floor_mode_channels_and_tuples", "maxpool2d.stride_first_value_both_axes"),
    ("padding", "def same_padding(n, k, stride=1):\n    total = max((-(-n // stride) - 1) * stride + k - n, 0)\n"
                "    return total - total // 2, total // 2\n",
     "test_padding", "test_same_padding_follows_keras", "same_padding.split_reversed"),
]


@pytest.mark.parametrize("module, code, test_module, test_name, mistake", PUBLIC_CASES, ids=[c[-1] + "-" + c[3] for c in PUBLIC_CASES])
def test_public_self_checks_name_the_confirmed_mistake(tmp_path, module, code, test_module, test_name, mistake):
    pytest.importorskip("torch")
    import importlib.util

    impl = planted_package(tmp_path, module, code)
    spec = importlib.util.spec_from_file_location(f"public_{test_module}", Path(__file__).parent / "public" / f"{test_module}.py")
    public = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(public)
    test = getattr(public, test_name)
    if test_name == "test_same_padding_follows_keras":
        args = (impl, (28, 4), (1, 2), "even kernel")
        with pytest.raises(AssertionError) as info:
            test(*args)
        message = str(info.value)
    else:
        message = public_failure(test, impl)
    assert f"[{mistake}]" in message and "overflow" not in message, message


def test_square_only_conv2d_keeps_the_channel_dtype_and_bias_points(tmp_path):
    """Checks named after one concept fail only for it: square-only code passes 'channels' and 'dtypes'."""
    report = grade_planted(tmp_path, "conv", """
        _reference_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            x = np.asarray(x)
            side = min(x.shape[2:])
            return _reference_conv2d(x[:, :, :side, :side], w, b, stride, padding)  # assumes H == W
        """, ["conv2d"])
    passed = {t.name.split(":")[0] for t in report.exercise("conv2d").tests if t.passed}
    assert {"channels", "bias", "dtypes", "the input arrays are not modified", "errors"} <= passed


def test_mutating_the_input_costs_the_no_mutation_concept_only(tmp_path):
    report = grade_planted(tmp_path, "padding", """
        _reference_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            out = _reference_pad2d(x, pad, value)
            if isinstance(x, np.ndarray) and x.flags.writeable:
                x[...] = 0
            return out
        """, ["pad2d"])
    ex = report.exercise("pad2d")
    [failed] = failures(ex)
    assert failed.name == "the input is not modified" and "in place" in failed.message
    assert failed.detail["mistakes"] == [catalogue.INPUT_MUTATED]
    assert ex.score == pytest.approx(ex.max_score - COURSE.exercise("pad2d").concepts["no_mutation"])


@pytest.mark.parametrize("change, error", [
    ({"concepts": {"values": 1, "errors": 1}}, "sum to 2"),
    ({"depends_on": ["nonexistent"]}, "depends_on"),
])
def test_course_yml_concepts_and_dependencies_are_validated(tmp_path, change, error):
    import yaml

    from coursekit.course import DEFAULT_COURSE_FILE, CourseConfigError, parse_course

    raw = yaml.safe_load(DEFAULT_COURSE_FILE.read_text(encoding="utf-8"))
    next(e for e in raw["exercises"] if e["id"] == "pad2d").update(change)
    with pytest.raises(CourseConfigError, match=error):
        parse_course(yaml.safe_dump(raw), tmp_path / "course.yml")
