"""The README's two commands work on a fresh clone, and CI runs them as the README states them.

* `.ci/run` holds both commands verbatim (main command first), so a break of either lands in CI;
* every path the CLI writes gets its parent folders created (a clone has no ``out/``);
* an unusable output path is a usage error (exit 2) found *before* any grading starts;
* ``grader grade`` prints one line per finished exercise even when stderr is not a terminal.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.pins import graded_pins, torch_install
from grader.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_command(heading: str) -> str:
    """The indented command that follows the paragraph starting with ``heading`` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(heading)}.*?\n\n    (\S[^\n]*)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no command after {heading!r}"
    return match.group(1).strip()


MAIN = readme_command("Main job")
TESTS = readme_command("Tests")


def test_readme_states_the_two_commands():
    torch = torch_install(graded_pins(ROOT / "pyproject.toml"))  # pyproject's pin, PyTorch's CPU index
    assert MAIN.startswith(f"pip install {torch} && pip install -e . && ") and "grader grade solutions" in MAIN
    assert f" && pip install {torch} && pip install -e '.[dev]' && " in TESTS
    assert "--json out/" in MAIN  # the folder a fresh clone lacks: the case the CLI must handle
    assert TESTS.startswith("bash .ci/install-browser") and TESTS.endswith("python -m pytest --impl solutions")


def test_ci_runs_both_readme_commands_verbatim_main_first():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert MAIN in lines, f".ci/run does not run the README's main command verbatim:\n{MAIN}"
    assert TESTS in lines, f".ci/run does not run the README's test command verbatim:\n{TESTS}"
    assert lines.index(MAIN) < lines.index(TESTS)


def test_grade_creates_missing_parent_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # as in a fresh clone: no out/
    code = main(["grade", str(ROOT / "solutions"), "--only", "conv_output_size",
                 "--json", "out/deep/reference.json", "--feedback", "out/html/reference.html"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "deep" / "reference.json").read_text())
    assert report["exercises"][0]["status"] == "passed"
    assert set(report["versions"]) >= {"python", "numpy", "torch"}
    assert report["versions"]["numpy"] == __import__("numpy").__version__
    assert (tmp_path / "out" / "html" / "reference.html").read_text().lstrip().startswith("<")


@pytest.mark.parametrize("option", ["--json", "--feedback"])
@pytest.mark.parametrize("bad", ["a_file/sub/report.x", "a_folder"])
def test_unusable_output_path_is_a_usage_error_before_grading(tmp_path, capsys, option, bad):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "a_folder").mkdir()
    target = tmp_path / bad
    code = main(["grade", str(ROOT / "solutions"), "--only", "conv_output_size", option, str(target)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "graded" not in err  # refused before any exercise ran
    assert str(target.parent if bad.startswith("a_file") else target) in err


def test_unwritable_folder_is_a_usage_error(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["grade", str(ROOT / "solutions"), "--only", "conv_output_size", "--json", str(locked / "r.json")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_release_creates_parent_folders_and_refuses_a_file(tmp_path, capsys):
    assert main(["release", str(tmp_path / "x" / "y" / "kit")]) == 0
    assert (tmp_path / "x" / "y" / "kit" / "README.md").is_file()
    (tmp_path / "f").write_text("")
    assert main(["release", str(tmp_path / "f")]) == 2
    assert main(["release", str(tmp_path / "f" / "kit")]) == 2
    assert "cannot create" in capsys.readouterr().err


def test_grade_all_out_under_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    (tmp_path / "subs").mkdir()
    assert main(["grade-all", str(tmp_path / "subs"), "--out", str(tmp_path / "f" / "grades")]) == 2
    assert "cannot create" in capsys.readouterr().err


def test_grade_prints_one_line_per_exercise_without_a_terminal(tmp_path):
    """stderr is a pipe here (as in CI): rich's spinner shows nothing, so plain lines must."""
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_YML", "FORCE_COLOR", "TERM")}
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(ROOT / "solutions"),
                           "--only", "conv_output_size,same_padding"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    progress = [line for line in proc.stderr.splitlines() if line.startswith("graded ")]
    # one line per exercise, as each finishes (two run at once: in either order)
    assert sorted(line.split(":")[0] for line in progress) == ["graded conv_output_size", "graded same_padding"], proc.stderr
    (line,) = [line for line in progress if line.startswith("graded conv_output_size:")]
    assert re.fullmatch(r"graded conv_output_size: passed, 5 / 5 \(\d+\.\d s\)", line), line
