"""What of this machine's Python a worker may see: the interpreter, the stdlib and allowed packages.

Computed on the trusted side from the running interpreter and ``importlib.metadata``. The site
directories are *masked* as a whole and only the files of allowed distributions (and their
dependencies) are shown again, so that a package that is not allowed - torch and scipy in numpy
exercises, the project's own editable install - is absent, not merely refused.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import site
import sys
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class PythonView:
    """Host paths describing the interpreter a worker runs on."""

    executable: str  # the real interpreter binary
    roots: tuple[str, ...]  # installation trees to show read-only (sys.base_prefix, sys.prefix)
    site_dirs: tuple[str, ...]  # site-packages directories, masked as a whole
    visible: tuple[str, ...]  # entries of site_dirs shown again (allowed distributions)
    forbidden: tuple[str, ...]  # host paths of forbidden packages (audit layer, and Landlock never grants them)
    stdlib: tuple[str, ...]  # the interpreter's own sys.path entries (zip, lib/pythonX.Y, lib-dynload)
    sys_path: tuple[str, ...]  # the worker's sys.path (stdlib entries + site dirs)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _site_dirs() -> list[str]:
    dirs = list(site.getsitepackages())
    user = site.getusersitepackages()
    dirs.append(user)
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    out = []
    for d in dirs:
        d = os.path.realpath(d)
        if os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def _requirement_names(dist: md.Distribution) -> list[str]:
    names = []
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging ships with pip's toolchain
        Requirement = None
    for line in dist.requires or []:
        if Requirement is not None:
            try:
                req = Requirement(line)
            except Exception:  # noqa: BLE001
                continue
            if req.marker is not None:
                try:
                    if not req.marker.evaluate({"extra": ""}):
                        continue
                except Exception:  # noqa: BLE001
                    continue
            names.append(req.name)
        elif "extra" not in line:
            names.append(re.split(r"[ ;<>=!~\[(]", line.strip(), maxsplit=1)[0])
    return names


def _top_entries(dist: md.Distribution) -> set[str]:
    base = os.path.realpath(str(dist.locate_file("")))
    out = set()
    for f in dist.files or []:
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        path = os.path.join(base, parts[0])
        if os.path.exists(path):
            out.add(path)
    return out


def _is_forbidden(top: str, forbidden_imports: tuple[str, ...]) -> bool:
    return any(f == top for f in forbidden_imports)


def distribution_entries(names: tuple[str, ...], forbidden_imports: tuple[str, ...]) -> tuple[str, ...]:
    """Site-dir entries of the named distributions and of everything they require (if installed)."""
    seen: set[str] = set()
    entries: set[str] = set()
    todo = list(names)
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        tops = _top_entries(dist)
        importable = {os.path.basename(t).split(".")[0] for t in tops if not t.endswith((".dist-info", ".egg-info"))}
        if any(_is_forbidden(t, forbidden_imports) for t in importable):
            continue
        entries |= tops
        todo += _requirement_names(dist)
    return tuple(sorted(entries))


def forbidden_paths(forbidden_imports: tuple[str, ...], site_dirs: list[str]) -> tuple[str, ...]:
    """Host paths where the forbidden modules live (directories, ``.py`` files, extension modules)."""
    out = []
    for name in forbidden_imports:
        rel = os.path.join(*name.split("."))
        for d in site_dirs:
            base = os.path.join(d, rel)
            if os.path.isdir(base):
                out.append(base)
            parent, leaf = os.path.split(base)
            if os.path.isdir(parent):
                for f in os.listdir(parent):
                    if f == leaf + ".py" or (f.startswith(leaf + ".") and f.endswith((".so", ".pyd"))):
                        out.append(os.path.join(parent, f))
    return tuple(out)


@lru_cache(maxsize=32)
def python_view(packages: tuple[str, ...], forbidden_imports: tuple[str, ...]) -> PythonView:
    """The view for workers that may use ``packages`` (distribution names) and must not import ``forbidden_imports``."""
    roots = []
    for r in (sys.base_prefix, sys.prefix):
        r = os.path.realpath(r)
        if r not in roots:
            roots.append(r)
    sites = _site_dirs()
    stdlib = []
    for p in sys.path:
        rp = os.path.realpath(p) if p else ""
        if not p or rp in sites or not any(rp == r or rp.startswith(r + os.sep) for r in roots):
            continue
        if rp not in stdlib:
            stdlib.append(rp)
    visible = distribution_entries(packages, forbidden_imports)
    return PythonView(
        executable=os.path.realpath(sys.executable),
        roots=tuple(roots),
        site_dirs=tuple(sites),
        visible=visible,
        forbidden=forbidden_paths(forbidden_imports, sites),
        stdlib=tuple(stdlib),
        sys_path=tuple(stdlib + [s for s in sites if any(v.startswith(s + os.sep) for v in visible)]),
    )
