"""The versions student code is graded with (recorded in every JSON report)."""
from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata

from coursekit.pins import GRADED_WITH

#: Packages whose version can change a student's result: the ones pinned exactly (coursekit.pins).
RECORDED = GRADED_WITH


@lru_cache(maxsize=1)
def runtime_versions() -> dict[str, str]:
    """``{"python": "3.11.7", "numpy": "2.2.6", "torch": "2.13.0+cpu"}`` of this interpreter (no torch import)."""
    versions = {"python": platform.python_version()}
    for package in RECORDED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
