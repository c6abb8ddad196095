"""What of this machine's Python a worker may see: the interpreter, the stdlib and allowed packages.

Computed on the trusted side from the running interpreter and ``importlib.metadata``. Every
site directory in the mounted trees is *masked* as a whole - ``site-packages`` and
``dist-packages`` of every interpreter found under ``/usr``, ``/lib*`` and the interpreter's own
installation (a virtual environment's base interpreter included), the user site, and directories
that ``.pth`` files or ``PYTHONPATH`` put on ``sys.path`` - and only the files of allowed packages
(and of the distributions they require) are shown again, minus the files of forbidden subpackages
(``scipy/signal`` when ``scipy.signal`` is forbidden). A package that is not allowed is absent, not
merely refused. :func:`visible_packages` is the one rule for which packages those are;
:func:`linked_view` builds the private site directory of links that Landlock and unsandboxed workers use.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.metadata as md
import os
import re
import site
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

#: System trees a worker sees read-only (shared libraries, the dynamic loader); their site dirs are masked.
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SITE_DIR_NAMES = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class PythonView:
    """Host paths describing the interpreter a worker runs on."""

    executable: str  # the real interpreter binary
    roots: tuple[str, ...]  # installation trees to show read-only (sys.base_prefix, sys.prefix)
    site_dirs: tuple[str, ...]  # every site directory in the mounted trees (and the user site): masked as a whole
    visible: tuple[str, ...]  # entries of site_dirs shown again (allowed distributions)
    forbidden: tuple[str, ...]  # host paths of forbidden modules: left out of visible entries, never granted
    stdlib: tuple[str, ...]  # the interpreter's own sys.path entries (zip, lib/pythonX.Y, lib-dynload)
    sys_path: tuple[str, ...]  # the worker's sys.path (stdlib entries + site dirs)


def visible_packages(allowed: tuple[str, ...] | list[str],
                     forbidden_imports: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The packages a worker sees: ``allowed`` (top-level import names, course.yml ``allowed_packages``)
    minus those that ``forbidden_imports`` forbids as a whole. Forbidden *sub*packages
    (``scipy.signal``) leave their package visible; :func:`python_view` leaves their files out."""
    out: list[str] = []
    for name in allowed:
        if name not in out and not any(name == f or name.startswith(f + ".") for f in forbidden_imports):
            out.append(name)
    return tuple(out)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _distinct(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def interpreter_roots() -> tuple[str, ...]:
    """The installation trees of the running interpreter (a venv and its base interpreter)."""
    return tuple(_distinct(os.path.realpath(r) for r in (sys.base_prefix, sys.prefix)))


def mounted_trees(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Real paths of every tree a worker sees: the system trees that exist and the interpreter roots."""
    trees = [os.path.realpath(t) for t in SYSTEM_TREES if os.path.isdir(t)] + list(roots)
    trees = _distinct(trees)
    return tuple(t for t in trees if not any(o != t and _under(t, [o]) for o in trees))


def _stdlib_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return _distinct(os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib"))


@lru_cache(maxsize=8)
def _walk_site_dirs(tree: str) -> tuple[str, ...]:
    """Every ``site-packages`` / ``dist-packages`` directory under ``tree`` (not following links).

    What ``os.walk(tree, followlinks=False)`` finds, in its (top-down) order, without descending
    into the site dirs found; one ``scandir`` per directory and no ``lstat`` per subdirectory
    (the walk of ``/usr`` is most of a view's cost).
    """
    found: list[str] = []
    todo = [tree]
    while todo:
        top = todo.pop()
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError:  # unreadable or vanished: skipped, as os.walk's ignored errors do
            continue
        below: list[str] = []
        for entry in entries:
            try:
                if not entry.is_dir():
                    continue
                if entry.name in SITE_DIR_NAMES:
                    found.append(os.path.join(top, entry.name))
                elif not entry.is_symlink():
                    below.append(os.path.join(top, entry.name))
            except OSError:
                continue
        todo += reversed(below)
    return tuple(found)


def _pth_paths(site_dirs: list[str]) -> list[str]:
    """Directories that ``.pth`` files in ``site_dirs`` and ``$PYTHONPATH`` put on ``sys.path`` (real paths)."""
    out = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for d in site_dirs:
        try:
            names = sorted(n for n in os.listdir(d) if n.endswith(".pth"))
        except OSError:
            continue
        for n in names:
            try:
                with open(os.path.join(d, n), encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            out += [os.path.join(d, ln.strip()) for ln in lines
                    if ln.strip() and not ln.startswith(("#", "import ", "import\t"))]
    return [os.path.realpath(p) for p in out if os.path.isdir(p)]


def site_dirs(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Every directory whose packages must be hidden from workers (real paths, existing ones only).

    The site dirs of every interpreter installed in the mounted trees, this interpreter's site dirs
    wherever they are (user site included), and the ``sys.path`` entries that are neither the stdlib
    nor a site dir (``.pth`` files, ``PYTHONPATH``) when they lie in a mounted tree.
    """
    trees = mounted_trees(roots)
    dirs: list[str] = []
    for t in trees:
        dirs += _walk_site_dirs(t)
    own = list(site.getsitepackages()) + [site.getusersitepackages()]
    own += [p for p in sys.path if p.endswith(SITE_DIR_NAMES)]
    own = [os.path.realpath(p) for p in own]
    dirs += own
    needed = [*_stdlib_dirs(), os.path.dirname(os.path.realpath(sys.executable))]
    for p in _pth_paths(own):
        if _under(p, trees) and not any(_under(n, [p]) for n in needed):
            dirs.append(p)
    dirs = [d for d in _distinct(dirs) if os.path.isdir(d)]
    return tuple(d for d in dirs if not any(o != d and _under(d, [o]) for o in dirs))


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


def _first_parts(dist: md.Distribution) -> set[str]:
    """The first path component of every file the distribution lists (``dist.files``, read faster).

    ``dist.files`` builds a path object per RECORD line (torch lists ~20,000); only the first
    component of each is needed, which for an ordinary relative name is the text before its first
    ``/``. Other names (absolute, ``./``-prefixed) go through :class:`PurePosixPath` as before.
    """
    text = dist.read_text("RECORD")
    if not text:  # no RECORD (egg-info): the standard reader
        return {f.parts[0] for f in dist.files or [] if f.parts}
    out: set[str] = set()
    for row in csv.reader(text.splitlines()):
        if not row:
            continue
        name = row[0]
        head = name.split("/", 1)[0]
        if head and head != ".":
            out.add(head)
        else:
            parts = PurePosixPath(name).parts
            if parts:
                out.add(parts[0])
    return out


def _top_entries(dist: md.Distribution) -> set[str]:
    base = os.path.realpath(str(dist.locate_file("")))
    out = set()
    for part in _first_parts(dist):
        if part in ("..", "__pycache__") or part.endswith(".pth"):
            continue
        path = os.path.join(base, part)
        if os.path.exists(path):
            out.add(path)
    return out


def _is_forbidden(top: str, forbidden_imports: tuple[str, ...]) -> bool:
    return any(f == top for f in forbidden_imports)


def _distribution_names(packages: tuple[str, ...]) -> list[str]:
    """Distributions providing the top-level import names ``packages`` (or so named)."""
    names: list[str] = []
    providers = None
    for p in packages:
        try:
            md.distribution(p)
            names.append(p)
            continue
        except md.PackageNotFoundError:
            pass
        if providers is None:
            providers = md.packages_distributions()
        names += providers.get(p, [])
    return names


def distribution_entries(names: tuple[str, ...], forbidden_imports: tuple[str, ...]) -> tuple[str, ...]:
    """Site-dir entries of the named packages' distributions and of everything they require (if installed)."""
    seen: set[str] = set()
    entries: set[str] = set()
    todo = _distribution_names(tuple(names))
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


def forbidden_paths(forbidden_imports: tuple[str, ...], site_dirs) -> tuple[str, ...]:
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
    return tuple(_distinct(out))


@lru_cache(maxsize=32)
def python_view(packages: tuple[str, ...], forbidden_imports: tuple[str, ...]) -> PythonView:
    """The view for workers that may use ``packages`` (top-level import names) and must not import
    ``forbidden_imports``. ``packages`` is filtered by :func:`visible_packages` again here."""
    packages = visible_packages(packages, forbidden_imports)
    roots = interpreter_roots()
    sites = site_dirs(roots)
    stdlib_dirs = _stdlib_dirs()
    stdlib = []
    for p in sys.path:
        rp = os.path.realpath(p) if p else ""
        if rp and not _under(rp, sites) and (_under(rp, stdlib_dirs) or (rp.endswith(".zip") and _under(rp, roots))):
            if rp not in stdlib:
                stdlib.append(rp)
    visible = distribution_entries(packages, forbidden_imports)
    return PythonView(
        executable=os.path.realpath(sys.executable),
        roots=roots,
        site_dirs=sites,
        visible=visible,
        forbidden=_with_real_paths(forbidden_paths(forbidden_imports,
                                                   [*sites, *(os.path.dirname(v) for v in visible)])),
        stdlib=tuple(stdlib),
        sys_path=tuple(stdlib + [s for s in sites if any(v.startswith(s + os.sep) for v in visible)]),
    )


def _with_real_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    """``paths`` and, where a link leads elsewhere, their real paths (grants and binds follow links)."""
    return tuple(_distinct([*paths, *(os.path.realpath(p) for p in paths)]))


def hidden_within(entry: str, hidden: tuple[str, ...] | list[str]) -> list[str]:
    """The ``hidden`` paths at or below ``entry``."""
    return [h for h in hidden if _under(h, [entry])]


def _link_except(entry: str, link: Path, hidden: list[str]) -> None:
    """``link`` -> ``entry``; a directory holding ``hidden`` paths becomes a real directory of links
    to its other entries (recursively), so that the hidden ones are not even listed."""
    inside = hidden_within(entry, hidden)
    if entry in inside or os.path.lexists(link):
        return
    if not inside or not os.path.isdir(entry):
        os.symlink(entry, link)
        return
    link.mkdir()
    for name in sorted(os.listdir(entry)):
        _link_except(os.path.join(entry, name), link / name, inside)
    os.chmod(link, 0o755)


def linked_view(view: PythonView, site: Path) -> PythonView:
    """Landlock/none modes: a private site directory of symlinks to the visible entries only.

    The real site-packages leaves ``sys.path``, so a package that is not visible is *not found*
    (``ModuleNotFoundError``, which libraries probing for optional packages expect) rather than
    found and unreadable; a forbidden subpackage (``scipy/signal``) is not linked either.
    """
    site.mkdir(exist_ok=True)
    for entry in view.visible:
        _link_except(entry, site / os.path.basename(entry), list(view.forbidden))
    os.chmod(site, 0o755)
    return dataclasses.replace(view, sys_path=(*view.stdlib, str(site)))
