"""The sandbox view's walk for site dirs (grader/sandbox/view.py) finds what ``os.walk`` finds, in
its order: symlinks named site-packages count when they lead to a directory, other symlinks are not
followed, a site dir's own contents are not searched."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from grader.sandbox import view


def walk_reference(tree: str) -> tuple[str, ...]:
    """The definition: os.walk, top-down, not following links, not descending into site dirs."""
    found = []
    for dirpath, dirnames, _ in os.walk(tree, onerror=lambda e: None):
        for name in [d for d in dirnames if d in view.SITE_DIR_NAMES]:
            found.append(os.path.join(dirpath, name))
            dirnames.remove(name)
    return tuple(found)


def test_the_walk_matches_os_walk_on_a_tricky_tree(tmp_path: Path) -> None:
    for d in ("a/site-packages/inner/site-packages", "a/b/dist-packages", "a/b/c/d/site-packages",
              "z/lib/python3/dist-packages", "target/site-packages", "plain/dir"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "a/file-site").write_text("x")
    (tmp_path / "z/site-packages").write_text("a file, not a site dir")
    (tmp_path / "m").mkdir()
    os.symlink(tmp_path / "target", tmp_path / "m/linked")  # a link to a tree holding a site dir: not followed
    os.symlink(tmp_path / "plain", tmp_path / "m/site-packages")  # a link named site-packages to a dir: found
    os.symlink(tmp_path / "a/file-site", tmp_path / "m/dist-packages")  # ... to a file: not a site dir
    os.symlink(tmp_path / "nowhere", tmp_path / "plain/site-packages")  # a dangling one: not a site dir
    view._walk_site_dirs.cache_clear()
    got = view._walk_site_dirs(str(tmp_path))
    assert got == walk_reference(str(tmp_path))
    assert sorted(got) == sorted(str(tmp_path / d) for d in (
        "a/site-packages", "a/b/dist-packages", "a/b/c/d/site-packages", "z/lib/python3/dist-packages",
        "target/site-packages", "m/site-packages"))


@pytest.mark.parametrize("tree", ["/usr", os.path.realpath(sys.base_prefix)])
def test_the_walk_matches_os_walk_on_this_machine(tree: str) -> None:
    view._walk_site_dirs.cache_clear()
    assert view._walk_site_dirs(tree) == walk_reference(tree)


def test_top_entries_match_the_files_importlib_metadata_lists() -> None:
    """Every installed distribution: the fast RECORD reading gives the entries ``dist.files`` gives."""
    import importlib.metadata as md

    for dist in md.distributions():
        base = os.path.realpath(str(dist.locate_file("")))
        want = set()
        for f in dist.files or []:
            if f.parts and f.parts[0] not in ("..", "__pycache__") and not f.parts[0].endswith(".pth"):
                if os.path.exists(os.path.join(base, f.parts[0])):
                    want.add(os.path.join(base, f.parts[0]))
        assert view._top_entries(dist) == want, dist.metadata["Name"]
