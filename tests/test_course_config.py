"""course.yml: the packaged file is valid, and a malformed one gets a message naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coursekit.course import CourseConfigError, DEFAULT_COURSE_FILE, load_course, parse_course

GOOD = DEFAULT_COURSE_FILE.read_text(encoding="utf-8")


def mutated(edit) -> str:
    raw = yaml.safe_load(GOOD)
    edit(raw)
    return yaml.safe_dump(raw)


def test_packaged_course_is_valid_and_complete():
    course = load_course()
    assert course.ids == ["conv_output_size", "pad2d", "same_padding", "correlate2d", "conv2d", "maxpool2d", "avgpool2d",
                          "conv2d_backward", "maxpool2d_backward", "convnet", "mnist_accuracy"]
    assert [e.id for e in course.exercises if e.bonus] == ["conv2d_backward", "maxpool2d_backward"]
    assert course.max_score == 100
    assert course.limits("mnist_accuracy").memory_limit_mb == 4096
    assert "torch" in course.limits("conv2d").forbidden_imports
    assert "torch" not in course.limits("convnet").forbidden_imports


def test_limits_fall_back_to_defaults():
    course = load_course()
    assert course.limits("pad2d").time_limit_s == course.defaults.time_limit_s


@pytest.mark.parametrize("accuracy, share", [(0.995, 1.0), (0.983, 1.0), (0.9715, 0.5), (0.96, 0.0), (0.5, 0.0), (float("nan"), 0.0)])
def test_mnist_scale(accuracy, share):
    assert load_course().mnist_scale.share(accuracy) == pytest.approx(share)


@pytest.mark.parametrize("edit, key, expectation", [
    (lambda r: r["exercises"][0].__setitem__("points", "ten"), "exercises.0.points", "number"),
    (lambda r: r["exercises"][1].pop("module"), "exercises.1.module", "required"),
    (lambda r: r["defaults"].__setitem__("time_limit_s", -5), "defaults.time_limit_s", "greater than 0"),
    (lambda r: r["exercises"][2].__setitem__("pointz", 3), "exercises.2.pointz", "not permitted"),
    (lambda r: r["data"]["mnist_sha256"].pop("t10k-labels-idx1-ubyte"), "data.mnist_sha256", "t10k-labels-idx1-ubyte"),
    (lambda r: r["mnist_scale"].__setitem__("zero_below", 0.999), "mnist_scale", "zero_below must be smaller"),
    (lambda r: r["exercises"].append(dict(r["exercises"][0])), "", "appears twice"),
])
def test_malformed_course_names_the_key(edit, key, expectation):
    with pytest.raises(CourseConfigError) as err:
        parse_course(mutated(edit), Path("course.yml"))
    assert key in str(err.value) and expectation in str(err.value)


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(CourseConfigError, match="not valid YAML"):
        parse_course("exercises: [\n", Path("course.yml"))
    with pytest.raises(CourseConfigError, match="expected a mapping"):
        parse_course("- just a list\n", Path("course.yml"))


def test_missing_file(tmp_path):
    with pytest.raises(CourseConfigError, match="not found"):
        load_course(tmp_path / "nope.yml")


def test_cli_reports_malformed_course(tmp_path, capsys):
    from grader.cli import main

    bad = tmp_path / "course.yml"
    bad.write_text(mutated(lambda r: r["exercises"][0].__setitem__("points", "ten")), encoding="utf-8")
    assert main(["--course", str(bad), "stubs", "--check"]) == 2
    err = capsys.readouterr().err
    assert "exercises.0.points" in err and "Traceback" not in err
