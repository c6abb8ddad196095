"""The grader on honest submissions: the reference, the stubs, wrong answers, malformed code."""
from __future__ import annotations

import json
import zipfile

import pytest

from coursekit.course import load_course
from grader.cli import main

from grading_helpers import EXERCISES, SOLUTIONS, grade, reference_submission

COURSE = load_course()
FAST = [e.id for e in COURSE.exercises if e.id != "mnist_accuracy"]


@pytest.fixture(scope="module")
def reference_report():
    return grade(SOLUTIONS, only=FAST)


def test_reference_gets_full_marks(reference_report):
    bad = {e.id: (e.status, e.first_failure) for e in reference_report.exercises if e.status != "passed"}
    assert not bad
    assert reference_report.score == pytest.approx(sum(e.points for e in COURSE.exercises if e.id in FAST))
    for e in reference_report.exercises:
        assert e.score == pytest.approx(e.max_score) and all(t.passed for t in e.tests)


def test_stubs_get_zero_and_not_implemented_everywhere():
    report = grade(EXERCISES)
    assert {e.id: e.status for e in report.exercises} == {e.id: "not_implemented" for e in COURSE.exercises}
    assert report.score == 0


def wrong(tmp_path, module: str, code: str, only: list[str]):
    return grade(reference_submission(tmp_path / "sub", {module: code}), only=only)


def test_flipped_kernel_is_named(tmp_path):
    report = wrong(tmp_path, "conv", """
        def correlate2d(image, kernel):
            import numpy as np
            image = np.asarray(image, dtype=float); kernel = np.asarray(kernel, dtype=float)[::-1, ::-1]
            kh, kw = kernel.shape
            out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = (image[i:i + kh, j:j + kw] * kernel).sum()
            return out
        """, ["correlate2d", "pad2d"])
    ex = report.exercise("correlate2d")
    assert ex.status == "failed" and ex.score < ex.max_score
    assert "flip" in ex.first_failure
    assert report.exercise("pad2d").status == "passed"


def test_off_by_one_gets_partial_credit_and_a_hint(tmp_path):
    report = wrong(tmp_path, "strides", """
        def conv_output_size(n, k, stride=1, padding=0):
            if stride < 1 or n + 2 * padding < k:
                raise ValueError("bad sizes")
            return (n + 2 * padding - k) // stride
        """, ["conv_output_size"])
    ex = report.exercise("conv_output_size")
    assert ex.status == "failed" and "off by one" in ex.first_failure
    assert 0 < ex.score < ex.max_score  # the ValueError check still passes: partial credit


def test_counterexample_is_shrunk(tmp_path):
    # Wrong only when the stride differs per axis: hypothesis must find and shrink such a case.
    report = wrong(tmp_path, "pooling", """
        _ref_max = maxpool2d
        def maxpool2d(x, kernel_size, stride=None):
            if isinstance(stride, tuple) and stride[0] != stride[1]:
                stride = (stride[0], stride[0])
            return _ref_max(x, kernel_size, stride)
        """, ["maxpool2d"])
    ex = report.exercise("maxpool2d")
    prop = next(t for t in ex.tests if t.name == "random shapes, kernels and strides match torch")
    assert not prop.passed and ex.tests[0].passed  # square strides (the seed's 2x2 pooling) still earn points
    assert "smallest failing case" in prop.message and "stride=(" in prop.message
    assert "x shape (1, 1," in prop.message  # shrunk to one image, one channel


def test_mutating_the_input_loses_points(tmp_path):
    report = wrong(tmp_path, "padding", """
        _ref_pad = pad2d
        def pad2d(x, pad, value=0.0):
            out = _ref_pad(x, pad, value)
            if hasattr(x, "fill") and x.flags.writeable:
                x.fill(0)
            return out
        """, ["pad2d"])
    ex = report.exercise("pad2d")
    assert ex.status == "failed" and "in place" in ex.first_failure


@pytest.mark.parametrize("code, expected", [
    ("def conv_output_size(n, k, stride=1, padding=0):\n    return None\n", "returned None"),
    ("def conv_output_size(n, k, stride=1, padding=0):\n    return [26]\n", "returned [26]"),
    ("def conv_output_size(n, k, stride=1, padding=0):\n    return float('nan')\n", "returned nan"),
    ("def conv_output_size(n, k):\n    return (n - k) + 1\n", "unexpected keyword argument 'stride'"),
])
def test_malformed_return_values_and_signatures(tmp_path, code, expected):
    report = wrong(tmp_path, "strides", code, ["conv_output_size"])
    ex = report.exercise("conv_output_size")
    assert ex.score == 0 and ex.status == "failed"
    assert expected in ex.first_failure


def test_pool_returning_a_list_fails_cleanly(tmp_path):
    report = wrong(tmp_path, "pooling", "def avgpool2d(x, kernel_size, stride=None):\n    return [[0.0]]\n", ["avgpool2d", "maxpool2d"])
    assert report.exercise("avgpool2d").score == 0
    assert "you returned a list" in report.exercise("avgpool2d").first_failure
    assert report.exercise("maxpool2d").status == "passed"


def test_syntax_error_names_the_line_and_spares_other_modules(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "pooling.py").write_text("def maxpool2d(x, kernel_size, stride=None):\n    return x[::\n")
    report = grade(sub, only=["maxpool2d", "conv2d"])
    ex = report.exercise("maxpool2d")
    assert ex.status == "error" and ex.score == 0
    assert "SyntaxError in pooling.py, line 2" in ex.message
    assert report.exercise("conv2d").status == "passed"


def test_import_error_is_an_error_not_a_crash(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "strides.py").write_text("import numpi\n\ndef conv_output_size(n, k, stride=1, padding=0):\n    return 1\n")
    report = grade(sub, only=["conv_output_size"])
    ex = report.exercise("conv_output_size")
    assert ex.score == 0 and ex.status in ("error", "failed")
    assert "numpi" in ex.first_failure


def test_missing_module_is_missing(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "backprop.py").unlink()
    report = grade(sub, only=["conv2d_backward", "conv_output_size"])
    assert report.exercise("conv2d_backward").status == "missing"
    assert report.exercise("conv_output_size").status == "passed"


def test_zip_of_an_exercises_folder(tmp_path):
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in SOLUTIONS.glob("*.py"):
            zf.write(f, f"exercises/{f.name}")
    report = grade(archive, only=["pad2d", "same_padding"])
    assert report.score == 15


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil.py"])
def test_zip_escaping_the_folder_is_refused(tmp_path, capsys, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, "x = 1\n")
        zf.writestr("strides.py", "x = 1\n")
    assert main(["grade", str(archive)]) == 2
    assert "outside the submission" in capsys.readouterr().err
    assert not (tmp_path.parent / "evil.py").exists()


def test_link_pointing_outside_is_refused(tmp_path, capsys):
    sub = reference_submission(tmp_path / "sub")
    (sub / "conv.py").unlink()
    (sub / "conv.py").symlink_to(SOLUTIONS / "conv.py")
    assert main(["grade", str(sub), "--only", "conv2d"]) == 2
    err = capsys.readouterr().err
    assert "outside the submission" in err or "links are refused" in err


def test_non_utf8_source_is_an_error(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "strides.py").write_bytes(b"# caf\xe9\ndef conv_output_size(n, k, stride=1, padding=0):\n    return 1\n")
    ex = grade(sub, only=["conv_output_size"]).exercise("conv_output_size")
    assert ex.status == "error" and "UTF-8" in ex.message


def test_cli_json_and_feedback(tmp_path, capsys):
    out_json, out_md, out_html = tmp_path / "r.json", tmp_path / "f.md", tmp_path / "f.html"
    sub = reference_submission(tmp_path / "sub", {"conv": "def conv2d(x, w, b=None, stride=1, padding=0):\n    return _ref_conv2d_missing\n"})
    assert main(["grade", str(sub), "--only", "conv2d,pad2d", "--json", str(out_json), "--feedback", str(out_html)]) == 0
    assert main(["grade", str(sub), "--only", "conv2d", "--feedback", str(out_md)]) == 0
    data = json.loads(out_json.read_text())
    assert set(data) >= {"score", "max_score", "grader_version", "isolation", "duration_s", "exercises"}
    assert [e["id"] for e in data["exercises"]] == ["pad2d", "conv2d"]
    conv = data["exercises"][1]
    assert conv["status"] == "failed" and conv["score"] == 0
    assert set(conv["tests"][0]) == {"name", "passed", "points", "max_points", "message"}
    assert "NameError" in conv["tests"][0]["message"]
    assert "conv2d" in out_md.read_text() and "<table>" in out_html.read_text()
    printed = capsys.readouterr().out
    assert "conv2d" in printed and "pad2d" in printed


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope")]) == 2
    assert main(["grade", str(SOLUTIONS), "--only", "conv3d"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "conv3d" in err and "Traceback" not in err


def test_untrained_model_earns_no_accuracy_points(tmp_path):
    """A train() that does nothing leaves a random model: about 10 % accuracy, zero points."""
    report = wrong(tmp_path, "convnet", "def train(model, images, labels, epochs=5, batch_size=64, seed=0, **kwargs):\n    return model\n",
                   ["mnist_accuracy"])
    ex = report.exercise("mnist_accuracy")
    assert ex.score == 0 and ex.status == "failed" and "below" in ex.first_failure


def _failed(ex) -> set[str]:
    return {t.name for t in ex.tests if not t.passed}


def test_an_unforeseen_mistake_keeps_the_no_mutation_points(tmp_path):
    """A conv2d that adds its bias twice (no catalogued mistake) never mutates: it loses bias and combined only."""
    report = wrong(tmp_path, "conv", """
        _reference_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            out = _reference_conv2d(x, w, b, stride=stride, padding=padding)
            return out if b is None else out + np.asarray(b).reshape(1, -1, 1, 1)
        """, ["conv2d"])
    ex = report.exercise("conv2d")
    concepts = COURSE.exercise("conv2d").concepts
    assert _failed(ex) <= {"bias: one value added per output channel"} | {t.name for t in ex.tests if t.name.startswith("combined")}
    assert "the input arrays are not modified" not in _failed(ex)
    assert ex.score == pytest.approx(ex.max_score - concepts["bias"] - concepts["combined"])


def test_an_answer_that_earns_nothing_else_does_not_earn_no_mutation(tmp_path):
    """Right shape, every value off (it mutates nothing): the shape concept only, not no_mutation."""
    report = wrong(tmp_path, "conv", """
        _reference_conv2d = conv2d
        def conv2d(x, w, b=None, stride=1, padding=0):
            return _reference_conv2d(x, w, b, stride=stride, padding=padding) + 1.0
        """, ["conv2d"])
    ex = report.exercise("conv2d")
    untouched = next(t for t in ex.tests if t.name == "the input arrays are not modified")
    assert not untouched.passed and "credited only once it earns another concept" in untouched.message
    concepts = COURSE.exercise("conv2d").concepts
    assert ex.score == pytest.approx(concepts["shape"] + concepts["errors"])


def test_a_list_with_the_right_values_costs_the_dtypes_concept_only(tmp_path):
    report = wrong(tmp_path, "padding", """
        _reference_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            return _reference_pad2d(x, pad, value).tolist()
        """, ["pad2d"])
    ex = report.exercise("pad2d")
    assert _failed(ex) and all(t.name.startswith("dtypes") for t in ex.tests if not t.passed), _failed(ex)
    assert "expected a numpy array, got list" in ex.first_failure
    assert ex.score == pytest.approx(ex.max_score - COURSE.exercise("pad2d").concepts["dtypes"])


def test_no_mutation_runs_after_the_concepts_it_is_credited_on():
    """The no-mutation check is last in its suite: it is credited on what the checks before it earned."""
    from grader.suites import suite_for

    for exercise in COURSE.exercises:
        concepts = [c.concept for c in suite_for(exercise.id).checks]
        if "no_mutation" in concepts:
            assert concepts[-1] == "no_mutation" and concepts.count("no_mutation") == 1, exercise.id


@pytest.mark.parametrize("module, code, exercise, concept", [
    ("strides", """
        import numpy as np
        _reference_size = conv_output_size
        def conv_output_size(n, k, stride=1, padding=0):
            return float(_reference_size(n, k, stride, padding))
        """, "conv_output_size", "no_stride_padding"),
    ("padding", """
        _reference_same = same_padding
        def same_padding(n, k, stride=1):
            return list(_reference_same(n, k, stride))
        """, "same_padding", "stride_one"),
])
def test_the_right_numbers_in_the_wrong_type_cost_one_concept(tmp_path, module, code, exercise, concept):
    """A float for an int, a list for a tuple: the type is charged by the exercise's basic concept alone."""
    report = wrong(tmp_path, module, code, [exercise])
    ex = report.exercise(exercise)
    assert ex.score == pytest.approx(ex.max_score - COURSE.exercise(exercise).concepts[concept]), _failed(ex)
    assert "int" in ex.first_failure
