"""The pinned versions and the supported Pythons, read from ``pyproject.toml``: their one source.

The grader's pyproject.toml states them once; the student kit's pyproject.toml (written by
``grader release``) copies the grader's requirement lines. Everything else reads them here: the
kit's README and self-check header, Gradescope's ``setup.sh``, the JSON report and the tests.

Torch is installed from PyTorch's CPU wheel index (:data:`TORCH_CPU_INDEX`), never from PyPI, whose
Linux wheel is the CUDA build, with several GB of ``nvidia-*`` CUDA libraries. ``--index-url``
(not ``--extra-index-url``) makes that index the only one pip asks for torch, so a network failure
there is an error, never a silent fall-back to the CUDA build.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib

#: Packages whose exact versions can change a student's result (numpy 2 vs 1, torch kernels): pinned
#: with ``==``, copied into the kit, recorded in every report, compared in the self-check header.
GRADED_WITH = ("numpy", "torch")
#: PyTorch's own index of CPU-only wheels (``torch==X`` there is ``X+cpu``).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: numpy deprecations that numpy 2.4 turned into errors. The pin (numpy 2.2.6, the newest numpy with wheels
#: for Python 3.10) only warns, so the self-checks (coursekit.selfcheck) and the grader's worker
#: (grader/sandbox_runtime/worker.py, which cannot import this package) raise them: student code meets
#: numpy 2.4's rule on every supported Python (``int()`` of a 1-element array, such an array stored in an
#: element: "setting an array element with a sequence").
NUMPY_ERRORS = ("Conversion of an array with ndim > 0 to a scalar",)
#: CPython minor versions considered when listing the range (only those requires-python admits count).
_MINORS = range(6, 40)


class PinError(ValueError):
    """pyproject.toml lacks a pin or a Python range that the package needs."""


def project(pyproject: Path) -> dict[str, Any]:
    """The ``[project]`` table of ``pyproject``."""
    with open(pyproject, "rb") as f:
        return tomllib.load(f).get("project", {})


def requirements(pyproject: Path) -> list[Requirement]:
    """Every requirement of ``[project] dependencies``, parsed."""
    return [Requirement(line) for line in project(pyproject).get("dependencies", [])]


def exact_version(req: Requirement) -> str | None:
    """``"2.2.6"`` for ``numpy==2.2.6``; None unless the requirement is one ``==`` pin."""
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def exact_pins(pyproject: Path) -> dict[str, str]:
    """Every ``==`` pin of ``pyproject`` (``{"numpy": "2.2.6", "torch": "2.13.0", "pyseccomp": "0.1.2"}``)."""
    return {req.name: version for req in requirements(pyproject) if (version := exact_version(req))}


def graded_pins(pyproject: Path) -> dict[str, str]:
    """The pins of :data:`GRADED_WITH`; :class:`PinError` naming any that is not pinned with ``==``."""
    pins = exact_pins(pyproject)
    missing = [name for name in GRADED_WITH if name not in pins]
    if missing:
        raise PinError(f"{pyproject}: no exact pin (==) for {', '.join(missing)}")
    return {name: pins[name] for name in GRADED_WITH}


def supported_pythons(pyproject: Path) -> list[str]:
    """The CPython minor versions ``requires-python`` admits (``["3.10", "3.11", "3.12", "3.13"]``).

    The range must be closed (an upper bound): a Python newer than the pins' wheels is not supported.
    """
    text = project(pyproject).get("requires-python")
    if not text:
        raise PinError(f"{pyproject}: no requires-python")
    spec = SpecifierSet(text)
    found = [f"3.{minor}" for minor in _MINORS if spec.contains(f"3.{minor}.0")]
    if not found or spec.contains(f"3.{_MINORS[-1] + 1}.0"):
        raise PinError(f"{pyproject}: requires-python {text!r} names no closed range of CPython 3 versions")
    return found


def python_range(pyproject: Path) -> str:
    """The supported Pythons in words, as the READMEs state them: ``"3.10 to 3.13"``."""
    versions = supported_pythons(pyproject)
    return versions[0] if len(versions) == 1 else f"{versions[0]} to {versions[-1]}"


def numpy_warning_filters() -> list[str]:
    """:data:`NUMPY_ERRORS` as pytest ``filterwarnings`` lines (``error:<message>:DeprecationWarning``)."""
    return [f"error:{message}:DeprecationWarning" for message in NUMPY_ERRORS]


def torch_install(pins: dict[str, str]) -> str:
    """The pip arguments that install the pinned torch's CPU build: ``torch==2.13.0 --index-url ...``."""
    return f"torch=={pins['torch']} --index-url {TORCH_CPU_INDEX}"
