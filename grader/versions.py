"""The versions student code is graded with (recorded in every JSON report)."""
from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata

#: Packages whose version can change a student's result (numpy 2 vs 1, torch kernels).
RECORDED = ("numpy", "torch")


@lru_cache(maxsize=1)
def runtime_versions() -> dict[str, str]:
    """``{"python": "3.11.7", "numpy": "2.4.6", "torch": "2.13.0+cpu"}`` of this interpreter (no torch import)."""
    versions = {"python": platform.python_version()}
    for package in RECORDED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
