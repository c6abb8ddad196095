"""The released kit on its own: installed into a fresh virtualenv, in a folder with no ``../shared``.

What is real and what is not (no internet here, and torch is 700 MB):

* The virtualenv is new and holds nothing of this repository. It sees the grader's third-party
  packages read-only through one ``.pth`` line naming this interpreter's site-packages; ``.pth``
  files *inside* that folder are not run, so this repository's own editable install (``grader``,
  ``coursekit``, ``exercises``, ``solutions``) is invisible there -- the test checks it.
* The kit's own install command runs for real, as ``pip install --no-index --no-build-isolation -e .``:
  pip resolves every requirement of the kit's pyproject.toml (numpy and torch pinned with ``==``,
  JupyterLab, the kernel, ...) and fails if one is missing or of another version; it only may not
  download. The README's ``pip install torch==... --index-url https://download.pytorch.org/whl/cpu`` is
  that resolution too (PyTorch's CPU index is unreachable here; tests/test_pins.py checks the command).
* ``jupyter lab`` is checked as ``python -m jupyter lab --version`` (the console script lives in the
  grader's environment, not in the venv, because pip found JupyterLab already installed).

Then, as a student would: the self-checks on the stubs (exit 0, every exercise "not implemented
yet", the version header says "as the grader"), MNIST found where the kit's README says
(``--with-data``: ``data/mnist`` beside the kit's course.yml), every notebook executed on the stubs,
and again after the reference modules are copied over the stubs (a finished student).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from coursekit.course import load_course
from grader.cli import main

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow

RUN_NOTEBOOKS = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])  # tests/: only the nbclient helpers of test_notebooks.py
from test_notebooks import _execute, _outputs, _widget_texts
results = {}
for path in sorted(Path("notebooks").glob("*.ipynb")):
    notebook = _execute(path, {}, path.parent.resolve())
    text, errors = _outputs(notebook)
    results[path.name] = {"text": text, "errors": errors, "widgets": _widget_texts(notebook)}
print(json.dumps(results))
"""


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(kit folder, venv python, student environment): the kit released with data and installed."""
    home = tmp_path_factory.mktemp("student-home")
    assert not any((p / "shared").exists() for p in (home, home.parent, home.parent.parent))
    kit = home / "convnets"
    assert main(["release", str(kit), "--with-data"]) == 0
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_grader_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("COURSE_YML", "COURSE_IMPL", "MNIST_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    hidden = run([str(python), "-c", "import importlib.util as u; print([m for m in ('grader', 'coursekit', 'exercises', "
                  "'solutions') if u.find_spec(m)])"], cwd=home, env=env)
    assert hidden.stdout.strip() == "[]", hidden.stdout + hidden.stderr  # nothing of this repository
    install = run([str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation", "-e", "."], cwd=kit, env=env)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return kit, python, env


def test_the_install_brings_what_the_readme_uses(student):
    kit, python, env = student
    where = run([str(python), "-c", "import coursekit, exercises; print(coursekit.__file__); print(exercises.__file__)"],
                cwd=kit.parent, env=env)  # outside the kit: found through the install
    assert where.returncode == 0, where.stderr
    assert all(Path(line).resolve().is_relative_to(kit.resolve()) for line in where.stdout.split()), where.stdout
    requires = run([str(python), "-c", "from importlib.metadata import requires; print(requires('convnets-course-student'))"],
                   cwd=kit.parent, env=env).stdout
    for package in ("jupyterlab", "ipykernel", "ipywidgets", "numpy==", "torch==", "pytest"):
        assert package in requires, package
    lab = run([str(python), "-m", "jupyter", "lab", "--version"], cwd=kit, env=env, timeout=300)
    assert lab.returncode == 0 and lab.stdout.strip()[:1].isdigit(), lab.stdout + lab.stderr


def test_self_checks_on_the_stubs(student):
    kit, python, env = student
    proc = run([str(python), "-m", "pytest", "-p", "no:cacheprovider"], cwd=kit, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "(as the grader)" in proc.stdout and "WARNING" not in proc.stdout
    summary = proc.stdout.strip().splitlines()[-1]
    assert "skipped" in summary and "passed" not in summary and "failed" not in summary, summary
    for ex in load_course().exercises:
        if ex.id != "mnist_accuracy":
            assert f"{ex.id}: not implemented yet" in proc.stdout, ex.id


def test_mnist_is_found_as_the_readme_says(student):
    kit, python, env = student
    assert "included in `data/mnist/`" in (kit / "README.md").read_text(encoding="utf-8")
    proc = run([str(python), "-m", "coursekit.mnist", "verify"], cwd=kit, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.count("OK") == 4, proc.stdout + proc.stderr
    where = run([str(python), "-c", "from coursekit.mnist import resolve_mnist_dir; print(resolve_mnist_dir().resolve())"],
                cwd=kit / "notebooks", env=env)
    assert where.stdout.strip() == str((kit / "data" / "mnist").resolve()), where.stdout + where.stderr


def _run_notebooks(kit: Path, python: Path, env: dict[str, str]) -> dict[str, dict]:
    proc = run([str(python), "-c", RUN_NOTEBOOKS, str(TESTS)], cwd=kit, env={**env, "COURSE_QUICK": "1"}, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    return results


def test_notebooks_on_the_stubs_then_on_the_reference(student):
    kit, python, env = student
    for name, result in _run_notebooks(kit, python, env).items():
        assert result["errors"] == [], f"{name}: {result['errors']}"
        assert "Traceback" not in result["text"]
        assert "⏳" in result["text"] and "is not implemented yet — open exercises/" in result["text"], name

    for module in (ROOT / "solutions").glob("*.py"):  # a student who finished everything
        if module.name != "__init__.py":
            shutil.copyfile(module, kit / "exercises" / module.name)
    for name, result in _run_notebooks(kit, python, env).items():
        assert result["errors"] == [], f"{name}: {result['errors']}"
        assert "❌" not in result["text"] and "⏳" not in result["text"] and "✅" in result["text"], f"{name}:\n{result['text']}"
        assert "not implemented" not in result["widgets"], name
    checks = run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=kit, env=env)
    assert checks.returncode == 0 and "skipped" not in checks.stdout.splitlines()[-1], checks.stdout[-3000:]
