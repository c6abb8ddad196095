"""``grader release OUT``: write exactly what students get, and nothing hidden.

The release holds the generated stubs, the public self-checks, the student kit (course.yml
loader, MNIST loader), the notebooks, course.yml, a pyproject.toml whose install brings everything the
README uses (the grader's own requirement lines: numpy and torch pinned to the grader's versions, the
same supported Pythons), a student README and, with
``--with-data``, the four MNIST files. Its course.yml holds no path of this machine. The reference
solutions and the hidden suites are never copied: the stubs are rendered from the reference
by the generator, which drops every solution block.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Iterable

import yaml
from packaging.utils import canonicalize_name

from coursekit.course import MNIST_EXERCISE, MNIST_FILES, Course
from coursekit.hints import HINTS_FILE
from coursekit.mnist import gz_name
from coursekit.pins import PinError, graded_pins, project, python_range, requirements, torch_install

from .stubs import render_stubs

#: The public mirror torchvision's MNIST loader fetches from (the same four .gz files); used as the kit's
#: download URL when course.yml names none. Every download is checked against course.yml's SHA-256 sums.
PUBLIC_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist"
#: Where ``--with-data`` puts the MNIST files inside the kit (relative to the kit's course.yml).
KIT_MNIST_DIR = "data/mnist"
#: The grader's requirements the kit installs, copied line for line from the grader's pyproject.toml (one
#: source: the same pins, the same lower bounds): what the stubs, self-checks and notebooks use.
KIT_REQUIREMENTS = ("numpy", "torch", "pyyaml", "pydantic", "pytest", "hypothesis", "scipy", "matplotlib",
                    "ipywidgets", "ipykernel", "jupyterlab", "packaging", "tomli")

STUDENT_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "convnets-course-student"
version = "0.1.0"
requires-python = {requires_python}
classifiers = [
{classifiers}
]
# numpy and torch are pinned to the versions the grader runs: your self-checks then see what the grader sees.
# Install torch first, its CPU build (pip install {torch_install}): from PyPI, pip picks a multi-gigabyte CUDA build.
dependencies = [
{dependencies}
]

[tool.setuptools.packages.find]
include = ["exercises*", "coursekit*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
addopts = "-ra --strict-markers"
markers = ["slow: long-running (MNIST training)"]
"""

STUDENT_README = """\
# {title}: your exercises

Fill in the functions in `exercises/` that raise `NotImplementedError`; each docstring explains the
shapes, the formula, a worked example and the classic mistake.

## Set up once

Python {python_range}, on Linux. In this folder (a virtual environment is a good idea: `python -m venv .venv`,
then `source .venv/bin/activate`), torch first, pinned, from PyTorch's CPU index (PyPI's Linux torch is a
multi-gigabyte CUDA build this course does not use), then the rest:

    pip install {torch_install} && pip install -e .

This brings everything below: numpy, torch, pytest, JupyterLab and its Python kernel. The grader runs
numpy {numpy} and torch {torch}; these versions are pinned here so that your self-checks behave as the
grader does (numpy 2 changed a few conversions that numpy 1 allowed). `pytest` warns in its header
when your versions differ.

## Check yourself

An unfinished exercise shows as *skipped: not implemented yet*:

    pytest                      # every exercise
    pytest -m conv2d            # one exercise

Exercises with self-checks (use the name after `-m`): {checked}.
{unchecked}
## The notebooks

    jupyter lab {notebooks}

01 convolution, 02 padding and strides, 03 max pooling, 04 the MNIST convnet. They call your own
functions: a stub shows one line, "not implemented yet", instead of a traceback.

## MNIST

{mnist}

To check the files: `python -m coursekit.mnist verify`.

## Hand in

{hand_in}

| exercise | module | points |
|---|---|---:|
{rows}
"""

HAND_IN_FOLDER = """\
Your `exercises/` folder (or a zip of it). The grader runs hidden tests against your functions; the
public ones here are only a first check."""

HAND_IN_NBGRADER = """\
Submit the whole assignment folder as your course's nbgrader asks. `grading.ipynb` is how your
instructor grades your `exercises/*.py` files with the hidden tests; the public ones here are only a
first check."""

MNIST_BUNDLED = """\
The four MNIST files are included in `data/mnist/`; the loader finds them there (course.yml's
`data.mnist_dir`, relative to course.yml). Nothing to do."""

MNIST_DOWNLOAD = """\
Download the four files once (about 11 MB, each checked against the SHA-256 sums in course.yml):

    python -m coursekit.mnist download

This fetches them from {url} into `~/.cache/convnets-course/mnist`, where the loader looks. Another
mirror: add `--url URL` (the files are fetched as `URL/<name>.gz`). Already have them? Set `MNIST_DIR`
to their folder, or copy them into `data/mnist/` here."""


class ReleaseError(Exception):
    """The release cannot be written as asked (e.g. ``--with-data`` without MNIST files)."""


def pinned_versions(root: Path) -> dict[str, str]:
    """``{"numpy": "2.2.6", "torch": "2.13.0"}`` from the ``==`` pins of ``root/pyproject.toml`` (one source)."""
    try:
        return graded_pins(root / "pyproject.toml")
    except PinError as exc:
        raise ReleaseError(str(exc)) from None


def kit_pyproject(root: Path) -> str:
    """The kit's pyproject.toml: the grader's Python range, classifiers and requirement lines, as they are there."""
    pyproject = root / "pyproject.toml"
    pins = pinned_versions(root)  # numpy and torch must be pinned exactly
    table = project(pyproject)
    lines = dict(zip((canonicalize_name(req.name) for req in requirements(pyproject)), table["dependencies"]))
    missing = [name for name in KIT_REQUIREMENTS if name not in lines]
    if missing:
        raise ReleaseError(f"{pyproject}: the kit needs {', '.join(missing)}, which the grader does not require")
    return STUDENT_PYPROJECT.format(requires_python=json.dumps(table["requires-python"]),
                                    classifiers=_toml_lines(table.get("classifiers", [])),
                                    dependencies=_toml_lines(lines[name] for name in KIT_REQUIREMENTS),
                                    torch_install=torch_install(pins))


def _toml_lines(items: Iterable[str]) -> str:
    """The items of a TOML array, one per line (JSON strings are TOML basic strings)."""
    return "\n".join(f"  {json.dumps(item)}," for item in items)


def _course_yml(course: Course, mnist_url: str | None) -> str:
    """The kit's course.yml: no path of this machine; MNIST in the kit's own data/mnist, else downloaded."""
    raw = yaml.safe_load((course.root / "course.yml").read_text(encoding="utf-8"))
    raw.setdefault("data", {})
    raw["data"]["mnist_dir"] = KIT_MNIST_DIR
    raw["data"]["mnist_url"] = mnist_url
    raw.pop("integrity", None)  # the instructor's side only: where the course secret lives
    if course.hints.max_level is not None:  # the cap the kit's hints.yml was cut to (see _write_hints)
        raw["hints"] = {**(raw.get("hints") or {}), "max_level": course.hints.max_level}
    header = "# The course as released to students (generated by `grader release`).\n"
    return header + yaml.safe_dump(raw, sort_keys=False)


def checked_ids(course: Course, public_tests: Path) -> list[str]:
    """Exercise ids that have at least one public self-check (``pytest -m <id>`` selects something)."""
    text = "\n".join(f.read_text(encoding="utf-8") for f in sorted(public_tests.glob("test_*.py")))
    return [e.id for e in course.exercises if re.search(rf"\bpytest\.mark\.{e.id}\b", text)]


def _readme(course: Course, pins: dict[str, str], checked: list[str], mnist_url: str, with_data: bool,
            nbgrader: bool = False) -> str:
    unchecked = [e.id for e in course.exercises if e.id not in checked]
    note = ""
    if unchecked:
        note = (f"\nNo self-check here for {', '.join(unchecked)}: "
                + ("notebook 04 trains your model and shows its test accuracy; the grader trains it again.\n"
                   if unchecked == [MNIST_EXERCISE] else "the grader's hidden tests check it.\n"))
    rows = "\n".join(f"| {e.id}{' (bonus)' if e.bonus else ''} | {e.module}.py | {e.points:g} |" for e in course.exercises)
    mnist = MNIST_BUNDLED if with_data else MNIST_DOWNLOAD.format(url=mnist_url)
    return STUDENT_README.format(title=course.title, rows=rows, checked=", ".join(f"`{i}`" for i in checked),
                                 unchecked=note, mnist=mnist, notebooks="." if nbgrader else "notebooks/",
                                 hand_in=HAND_IN_NBGRADER if nbgrader else HAND_IN_FOLDER,
                                 python_range=python_range(course.root / "pyproject.toml"),
                                 torch_install=torch_install(pins), **pins)


def _copy_tree(src: Path, dst: Path, patterns: tuple[str, ...]) -> list[Path]:
    written = []
    for pattern in patterns:
        for f in sorted(src.glob(pattern)):
            if f.is_file() and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts:
                target = dst / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
                written.append(target)
    return written


def release(course: Course, out: Path, *, with_data: bool = False, mnist_url: str | None = None,
            nbgrader: bool = False) -> list[Path]:
    """Write the student release into ``out`` (which must be new or empty); returns the files.

    ``nbgrader``: the README for an nbgrader assignment (notebooks beside it, handed in through nbgrader).

    ``with_data`` bundles the four MNIST ``.gz`` files (verified) into ``out/data/mnist``;
    ``mnist_url`` is the kit's download mirror (default: course.yml's, else :data:`PUBLIC_MNIST_MIRROR`).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    root = course.root
    pins = pinned_versions(root)
    pyproject = kit_pyproject(root)  # fails before anything is written, as pins and MNIST do
    mnist_url = mnist_url or course.data.mnist_url or PUBLIC_MNIST_MIRROR
    mnist_source = _mnist_source(course) if with_data else None  # fail before writing anything
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    stubs_dir = out / course.student_package
    stubs_dir.mkdir()
    for name, text in render_stubs(course).items():
        (stubs_dir / name).write_text(text, encoding="utf-8")
        written.append(stubs_dir / name)

    written += _copy_tree(root, out, ("conftest.py",))
    written += _copy_tree(root / "tests", out / "tests", ("public/*.py",))
    written += _copy_tree(root / "coursekit", out / "coursekit", ("*.py",))
    if (root / "notebooks").is_dir():
        written += _copy_tree(root / "notebooks", out / "notebooks", ("*.ipynb", "*.py"))
    written += _write_hints(course, out)
    if mnist_source is not None:
        data = out / KIT_MNIST_DIR
        data.mkdir(parents=True)
        for name in MNIST_FILES:
            shutil.copyfile(mnist_source / gz_name(name), data / gz_name(name))
            written.append(data / gz_name(name))

    (out / "course.yml").write_text(_course_yml(course, mnist_url), encoding="utf-8")
    (out / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    readme = _readme(course, pins, checked_ids(course, root / "tests" / "public"), mnist_url, mnist_source is not None,
                     nbgrader)
    (out / "README.md").write_text(readme, encoding="utf-8")
    written += [out / "course.yml", out / "pyproject.toml", out / "README.md"]
    return written


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, as hints.yml is written by hand."""


_LiteralDumper.add_representer(
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _write_hints(course: Course, out: Path) -> list[Path]:
    """The staged hints (coursekit.hints), beside the kit's course.yml, cut to course.yml's ``hints.max_level``.

    Only the levels students may reach leave the instructor's machine: the kit's own course.yml can be
    edited, so the cap must hold in the file itself. No hints.yml at all with ``max_level: 0``.
    """
    source = course.root / course.reference_package / HINTS_FILE
    cap = course.hints.max_level
    if not source.is_file() or cap == 0:
        return []
    ladders = yaml.safe_load(source.read_text(encoding="utf-8"))
    if cap is not None and isinstance(ladders, dict):
        ladders = {ex: levels[:cap] if isinstance(levels, list) else levels for ex, levels in ladders.items()}
    header = (f"# Staged hints: exercise id -> levels, smallest first (generated by `grader release`"
              f"{f', cut to the course cap of {cap} level(s)' if cap is not None else ''}).\n"
              "# Shown by `pytest --hint` and `hint(\"conv2d\")` in the notebooks.\n")
    target = out / HINTS_FILE
    target.write_text(header + yaml.dump(ladders, Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True,
                                         width=1000), encoding="utf-8")
    return [target]


def _mnist_source(course: Course) -> Path:
    """The instructor's MNIST folder (as the loader finds it), every file verified; else :class:`ReleaseError`."""
    from coursekit.mnist import MnistDataError, resolve_mnist_dir, verify_mnist

    try:
        directory = resolve_mnist_dir()
    except MnistDataError as exc:
        raise ReleaseError(f"--with-data: {exc}") from None
    problems = [p for p in verify_mnist(directory, checksums=course.data.mnist_sha256).values() if p]
    if problems:
        raise ReleaseError("--with-data: " + "; ".join(problems))
    return directory
