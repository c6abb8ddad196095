"""Self-check plumbing for the public tests, as a pytest plugin (ships to students).

Loaded by the top-level ``conftest.py`` (``pytest_plugins = ["coursekit.selfcheck"]``) so that the
``--impl`` option exists before pytest reads the command line.

* ``--impl exercises`` (default) tests your stubs; ``--impl solutions`` tests the reference.
* One marker per exercise id from course.yml: ``pytest -m conv2d``.
* A test that reaches a stub's ``NotImplementedError`` is reported as *skipped: not implemented yet*,
  not as a crash, so a half-done exercise sheet reads clearly.
* A module that does not import (a syntax error, say) is reported once, in one line
  (``SyntaxError in exercises/conv.py line 12: ...``); each test that needs it fails with one line.
* A failure caused by a known numpy 2 change gets a one-line ``numpy 2`` section saying so.
* The header says which numpy and torch you run, and warns when they differ from the grader's
  (the ``==`` pins of pyproject.toml beside course.yml).
"""
from __future__ import annotations

import importlib
import os
import traceback
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from coursekit.course import load_course
from coursekit.numpy2_hints import numpy2_hint
from coursekit.pins import GRADED_WITH, exact_pins, numpy_warning_filters, torch_install


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=os.environ.get("COURSE_IMPL", "exercises"),
        choices=("exercises", "solutions"),
        help="package to self-check: your stubs (exercises, default) or the reference (solutions)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in numpy_warning_filters():  # numpy 2.4's errors under the pinned numpy, as the grader raises them
        config.addinivalue_line("filterwarnings", line)
    for ex in load_course().exercises:
        kind = "bonus exercise" if ex.bonus else "exercise"
        config.addinivalue_line("markers", f"{ex.id}: {kind} {ex.id} ({ex.module}.py: {', '.join(ex.functions)})")


@pytest.fixture(scope="session")
def impl_package(request: pytest.FixtureRequest) -> str:
    """Name of the package under test: ``exercises`` or ``solutions``."""
    return request.config.getoption("--impl")


#: Packages whose versions the grader fixes; the header compares yours with its pins.
PINNED = GRADED_WITH
#: config.stash key: module name -> the one-line reason it does not import.
_BROKEN = pytest.StashKey[dict[str, str]]()


def grader_versions(pyproject: Path | None = None) -> dict[str, str]:
    """The ``==`` pins of numpy and torch in pyproject.toml beside course.yml (empty when absent)."""
    path = pyproject or load_course().root / "pyproject.toml"
    try:
        pins = exact_pins(path)
    except (OSError, ValueError):  # no pyproject.toml, or not one pip could read either
        return {}
    return {name: pins[name] for name in PINNED if name in pins}


def installed_version(package: str) -> str | None:
    """The installed version without a local label (``2.13.0+cpu`` -> ``2.13.0``); None when not installed."""
    try:
        return metadata.version(package).split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def version_line(pins: dict[str, str], installed: dict[str, str | None]) -> str:
    """One header line: the versions in use, and a warning naming each one that differs from the grader's."""
    used = ", ".join(f"{name} {installed.get(name) or 'not installed'}" for name in PINNED)
    differ = [f"{name} {want}" for name, want in pins.items() if installed.get(name) != want]
    if not differ:
        return f"versions: {used} (as the grader)"
    fix = " && ".join(f"pip install {torch_install(pins) if name == 'torch' else f'{name}=={want}'}"
                      for name, want in pins.items() if installed.get(name) != want)  # torch: its CPU build
    return (f"WARNING: the grader runs {', '.join(differ)}; you have {used}: results may differ from your "
            f"grade ({fix})")


def pytest_report_header(config: pytest.Config) -> str:
    pins = grader_versions()
    return version_line(pins, {name: installed_version(name) for name in PINNED}) if pins else ""


def import_problem(exc: BaseException, package: str, rootdir: Path) -> str:
    """``SyntaxError in exercises/conv.py line 12: invalid syntax: def conv2d(,`` (one line)."""

    def shown(filename: str | None) -> str:
        if not filename:
            return "?"
        try:
            return Path(filename).resolve().relative_to(rootdir.resolve()).as_posix()
        except ValueError:
            return filename

    if isinstance(exc, SyntaxError):
        code = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        return f"{type(exc).__name__} in {shown(exc.filename)} line {exc.lineno}: {exc.msg}{code}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}{package}{os.sep}" in f.filename]
    where = f" in {shown(frames[-1].filename)} line {frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where} while importing: {exc}".rstrip(": ")


def _import_or_problem(config: pytest.Config, name: str) -> tuple[ModuleType | None, str | None]:
    """Import ``name`` once; (module, None), or (None, the one-line reason) -- remembered for the summary."""
    broken = config.stash.setdefault(_BROKEN, {})
    if name not in broken:
        try:
            return importlib.import_module(name), None
        except Exception as exc:  # a syntax error, a NameError at import, a missing import...
            package = name.split(".")[0]
            broken[name] = import_problem(exc, package, config.rootpath)
    return None, broken[name]


def _fail_import(name: str, problem: str) -> None:
    pytest.fail(f"{name.replace('.', '/')}.py does not import: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def impl(impl_package: str, pytestconfig: pytest.Config) -> Callable[[str], ModuleType]:
    """``impl("conv")`` imports ``exercises.conv`` (or ``solutions.conv`` with ``--impl solutions``).

    A module that fails to import fails each test that needs it with one line; the reason is
    printed once at the end of the run.
    """

    def _import(module: str) -> ModuleType:
        name = f"{impl_package}.{module}"
        loaded, problem = _import_or_problem(pytestconfig, name)
        if problem is not None:
            _fail_import(name, problem)
        return loaded

    return _import


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """Before a test of an exercise runs, import its module: a broken one fails the test in one line.

    Checked here rather than inside the test so that hypothesis does not shrink, and report as
    a falsifying example, what is an import error.
    """
    course = load_course()
    modules = {ex.module for ex in course.exercises for m in pyfuncitem.iter_markers() if m.name == ex.id}
    package = pyfuncitem.config.getoption("--impl")
    for module in sorted(modules):
        name = f"{package}.{module}"
        _loaded, problem = _import_or_problem(pyfuncitem.config, name)
        if problem is not None:
            _fail_import(name, problem)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    problems = sorted(set(config.stash.get(_BROKEN, {}).values()))
    if problems:
        terminalreporter.section("fix first: these modules do not import", sep="=", red=True, bold=True)
        for problem in problems:
            terminalreporter.line(problem, red=True)


#: Where hypothesis's pytest plugin keeps a failing example, to write it as a patch (``git apply ...``).
_HYPOTHESIS_EXAMPLES = "_hypothesis_failing_examples"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError) and report.failed:
        ids = [m.name for m in item.iter_markers() if m.name in {e.id for e in load_course().exercises}]
        what = ids[0] if ids else item.name
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"{what}: not implemented yet ({call.excinfo.value})")
        item.__dict__.pop(_HYPOTHESIS_EXAMPLES, None)  # a stub is not a counterexample worth a patch file
    elif call.excinfo is not None and report.failed:
        hint = numpy2_hint(f"{call.excinfo.typename}: {call.excinfo.value}")
        if hint:
            report.sections.append(("numpy 2", hint))
