"""Self-check plumbing for the public tests, as a pytest plugin (ships to students).

Loaded by the top-level ``conftest.py`` (``pytest_plugins = ["coursekit.selfcheck"]``) so that the
``--impl`` option exists before pytest reads the command line.

* ``--impl exercises`` (default) tests your stubs; ``--impl solutions`` tests the reference.
* One marker per exercise id from course.yml: ``pytest -m conv2d``.
* A test that reaches a stub's ``NotImplementedError`` is reported as *skipped: not implemented yet*,
  not as a crash, so a half-done exercise sheet reads clearly.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Callable

import pytest

from coursekit.course import load_course


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=os.environ.get("COURSE_IMPL", "exercises"),
        choices=("exercises", "solutions"),
        help="package to self-check: your stubs (exercises, default) or the reference (solutions)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for ex in load_course().exercises:
        kind = "bonus exercise" if ex.bonus else "exercise"
        config.addinivalue_line("markers", f"{ex.id}: {kind} {ex.id} ({ex.module}.py: {', '.join(ex.functions)})")


@pytest.fixture(scope="session")
def impl_package(request: pytest.FixtureRequest) -> str:
    """Name of the package under test: ``exercises`` or ``solutions``."""
    return request.config.getoption("--impl")


@pytest.fixture(scope="session")
def impl(impl_package: str) -> Callable[[str], ModuleType]:
    """``impl("conv")`` imports ``exercises.conv`` (or ``solutions.conv`` with ``--impl solutions``)."""

    def _import(module: str) -> ModuleType:
        return importlib.import_module(f"{impl_package}.{module}")

    return _import


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError) and report.failed:
        ids = [m.name for m in item.iter_markers() if m.name in {e.id for e in load_course().exercises}]
        what = ids[0] if ids else item.name
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"{what}: not implemented yet ({call.excinfo.value})")
