"""One supported Python range and one set of pins, true everywhere the package is installed.

pyproject.toml states them once (``requires-python``, the ``==`` pins); the README, the student kit,
Gradescope's ``setup.sh`` and CI say the same, and every ``pip install torch`` takes the CPU build from
PyTorch's index. The slow test asks the package registry whether each exact pin has a wheel for each
CPython of the range (pip's dry run for another ``--python-version``: wheels only, no install).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.pins import (TORCH_CPU_INDEX, exact_pins, graded_pins, project, python_range, supported_pythons,
                            torch_install)
from grader.cli import main
from grader.gradescope import setup_sh

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
PINS = graded_pins(PYPROJECT)
TORCH_LINE = re.compile(r"pip install[^\n]*?\btorch==[^\n]*")


def test_requires_python_is_a_closed_range_its_classifiers_list():
    versions = supported_pythons(PYPROJECT)
    assert "3.10" in versions  # Gradescope's default image: Ubuntu 22.04, python3 3.10
    classifiers = {c.rsplit(" :: ", 1)[1] for c in project(PYPROJECT)["classifiers"]
                   if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert sorted(classifiers, key=lambda v: int(v.split(".")[1])) == versions


def _torch_installs(text: str) -> list[str]:
    return TORCH_LINE.findall(text)


def test_every_torch_install_takes_the_pinned_cpu_build(tmp_path):
    """README (both commands, students, nbgrader), CI, the kit's README and setup.sh: the CPU index, pyproject's pin."""
    assert main(["release", str(tmp_path / "kit")]) == 0
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8"),
             ".ci/run": (ROOT / ".ci" / "run").read_text(encoding="utf-8"),
             "kit README.md": (tmp_path / "kit" / "README.md").read_text(encoding="utf-8"),
             "setup.sh": setup_sh(ROOT)}
    found = {name: _torch_installs(text) for name, text in texts.items()}
    assert [len(found[name]) for name in texts] == [4, 2, 1, 1], found  # main, tests, students, nbgrader; CI twice
    wanted = f"pip install {torch_install(PINS)}"
    for name, lines in found.items():
        for line in lines:
            assert wanted in line.replace("pip install --no-cache-dir ", "pip install "), f"{name}: {line}"
    assert TORCH_CPU_INDEX == "https://download.pytorch.org/whl/cpu" and "--extra-index-url" not in str(found)


def test_the_readmes_state_the_range_of_requires_python(tmp_path):
    stated = python_range(PYPROJECT)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"Everything on a fresh machine \(Python ([^,]+), Linux\)", readme) == [stated]
    students = readme.split("## For students")[1].split("\n## ")[0]
    assert f"# Python {stated};" in students  # the kit's install line
    assert main(["release", str(tmp_path / "kit")]) == 0
    assert f"Python {stated}, on Linux" in (tmp_path / "kit" / "README.md").read_text(encoding="utf-8")
    assert project(tmp_path / "kit" / "pyproject.toml")["requires-python"] == project(PYPROJECT)["requires-python"]


def _setup_check(script: str) -> str:
    """setup.sh's Python check, alone (the line before the first pip install)."""
    (line,) = [line for line in script.splitlines() if line.startswith('"$PYTHON" -c ')]
    return line


def test_setup_sh_states_the_range_and_refuses_another_python(tmp_path):
    script = setup_sh(ROOT)
    assert f"Python {python_range(PYPROJECT)}" in script
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    here = subprocess.run(["bash", "-c", _setup_check(script)], env=env, capture_output=True, text=True, timeout=60)
    assert here.returncode == 0, here.stderr  # this interpreter is in the range (else the pins would not be here)
    # the same check built from a range that leaves this interpreter out
    minor = sys.version_info[1]
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text(encoding="utf-8").replace(
        project(PYPROJECT)["requires-python"], f">=3.{minor + 1},<3.{minor + 3}"), encoding="utf-8")
    other = subprocess.run(["bash", "-c", _setup_check(setup_sh(tmp_path))], env=env, capture_output=True, text=True,
                           timeout=60)
    assert other.returncode == 1
    assert f"is Python 3.{minor}; this autograder needs Python 3.{minor + 1} to 3.{minor + 2}" in other.stderr


@pytest.mark.slow
@pytest.mark.parametrize("python", supported_pythons(PYPROJECT))
def test_every_exact_pin_has_a_wheel_for_each_supported_python(python, tmp_path):
    """pip resolves numpy, torch and pyseccomp at their exact versions for ``python`` (the registry's wheels).

    ``--no-deps``: the pins themselves (their own requirements are open ranges pip resolves per Python).
    Torch comes from PyPI here: PyTorch's CPU index, which publishes the same Python versions, is not
    reachable from the test machines.
    """
    pins = exact_pins(PYPROJECT)
    assert set(pins) >= {"numpy", "torch", "pyseccomp"}
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
                           "--only-binary=:all:", "--python-version", python, "--target", str(tmp_path / "target"),
                           "--report", str(report), *(f"{name}=={version}" for name, version in pins.items())],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    resolved = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert {name: resolved.get(name, "").split("+")[0] for name in pins} == pins


def test_numpy_2_4_errors_are_raised_under_the_pin(tmp_path):
    """The pinned numpy only warns where numpy 2.4 raises: the self-checks and the worker raise, from one list."""
    import numpy as np

    from coursekit.pins import NUMPY_ERRORS
    from grader.sandbox_runtime import worker

    assert worker.NUMPY_ERRORS == NUMPY_ERRORS  # the sandbox's copy (it cannot import coursekit)
    with pytest.raises((DeprecationWarning, TypeError), match="0-d|ndim > 0|only"):  # this run is a pytest run
        int(np.array([[3]]))
    out = np.zeros((2, 2))
    with pytest.raises(ValueError, match="setting an array element with a sequence"):
        out[0, 0] = np.ones(1)
