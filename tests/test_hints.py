"""Staged hints: every exercise has a ladder, no solution line leaks into a hint, the cap and
``pytest --hint`` climb the ladder one level per run."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.course import Hints, load_course
from coursekit.hints import HintError, get_hint, hint, hints_path, load_ladders

ROOT = Path(__file__).resolve().parents[1]


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def solution_lines() -> list[tuple[str, str]]:
    """(file, line) for every line inside a ``### BEGIN/END SOLUTION`` block of the reference."""
    found = []
    for path in sorted((ROOT / "solutions").glob("*.py")):
        inside = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and line.strip():
                found.append((path.name, line.strip()))
    return found


def test_every_exercise_has_a_ladder_of_up_to_three_levels():
    course = load_course()
    ladders = load_ladders(course)
    assert hints_path(course) == ROOT / "solutions" / "hints.yml"
    assert set(ladders) == set(course.ids)
    assert all(1 <= len(levels) <= 3 for levels in ladders.values())


def test_no_solution_line_appears_in_a_hint():
    hints = _normalised(" ".join(t for levels in load_ladders().values() for t in levels))
    lines = solution_lines()
    assert len(lines) > 300  # the blocks were found
    # lines too short to be anyone's code (``else:``, ``return out``, ``)``) are left out
    leaked = [(f, line) for f, line in lines if len(_normalised(line)) >= 16 and _normalised(line) in hints]
    assert leaked == []


def test_the_leak_check_catches_a_pasted_line(tmp_path, monkeypatch):
    """The check above fails when a solution line is pasted into a hint."""
    file, line = next((f, line) for f, line in solution_lines() if len(line) >= 30)
    bad = tmp_path / "hints.yml"
    bad.write_text((ROOT / "solutions" / "hints.yml").read_text() + f"\nextra:\n  - |\n    {line}\n", encoding="utf-8")
    monkeypatch.setenv("COURSE_HINTS", str(bad))
    with pytest.raises(AssertionError):
        test_no_solution_line_appears_in_a_hint()


def test_hint_climbs_the_ladder_and_can_be_asked_for_a_level():
    first, second = hint("maxpool2d"), hint("maxpool2d")
    assert (first.level, second.level) == (1, 2)
    assert "level 1 of 3 (the concept)" in str(first) and "run it again for level 2" in str(first)
    assert hint("maxpool2d", level=9).level == 3 and "pseudo-code" in hint("maxpool2d", level=3).text
    assert "```text" in first._repr_markdown_()
    with pytest.raises(HintError, match="no hints for 'nope'"):
        hint("nope")


def test_the_course_can_cap_the_level():
    """course.yml's hints.max_level: the ladder stops there; 0 turns hints off."""
    real = load_course()
    capped = real.model_copy(update={"hints": Hints(max_level=1)})
    found = get_hint("conv2d", 3, capped)
    assert (found.level, found.levels) == (1, 1)
    off = real.model_copy(update={"hints": Hints(max_level=0)})
    assert get_hint("conv2d", 1, off) is None


def _pytest_hint(tmp_path: Path, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COURSE_IMPL"}
    registered = any("hints_plugin" in (ROOT / f).read_text() for f in ("conftest.py", "coursekit/selfcheck.py"))
    plugin = [] if registered else ["-p", "coursekit.hints_plugin"]
    proc = subprocess.run([sys.executable, "-m", "pytest", *plugin, "--hint", "-m", "pad2d",
                           "-q", "-o", f"cache_dir={tmp_path / 'cache'}",
                           str(ROOT / "tests" / "public" / "test_padding.py"), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.stdout + proc.stderr


def test_pytest_hint_shows_the_next_level_per_run(tmp_path):
    """On the stubs pad2d is not implemented: each run shows one level more, then stays at the top."""
    outputs = [_pytest_hint(tmp_path) for _ in range(4)]
    for run, out in enumerate(outputs, 1):
        level = min(run, 3)
        assert f"Hint for pad2d, level {level} of 3" in out, out
        assert "same_padding" not in out.split("hints")[-1]  # not selected: no hint
    assert "Hint for pad2d, level 2 of 3" in _pytest_hint(tmp_path, "--hint-level", "2")


def _released_with_cap(tmp_path: Path, cap: int | None) -> Path:
    from grader.release import release

    course = load_course().model_copy(update={"hints": Hints(max_level=cap)})
    out = tmp_path / f"kit-{cap}"
    release(course, out)
    return out


def _kit_text(kit: Path) -> str:
    return _normalised("\n".join(p.read_text(encoding="utf-8", errors="replace")
                                 for p in sorted(kit.rglob("*")) if p.is_file()))


@pytest.mark.parametrize("cap", [0, 1, 2])
def test_the_released_kit_holds_no_hint_above_the_cap(tmp_path, cap):
    """`grader release` cuts hints.yml to course.yml's hints.max_level: no level above it is in any file of
    the kit (the kit's own course.yml is the student's to edit), and with 0 there is no hints.yml at all."""
    kit = _released_with_cap(tmp_path, cap)
    text = _kit_text(kit)
    ladders = load_ladders(load_course())
    above = [(ex, n) for ex, levels in ladders.items() for n, t in enumerate(levels, 1)
             if n > cap and _normalised(t) in text]
    assert above == []
    allowed = [(ex, n) for ex, levels in ladders.items() for n, t in enumerate(levels, 1) if n <= cap]
    assert all(_normalised(ladders[ex][n - 1]) in text for ex, n in allowed)  # the rest is shipped intact
    assert (kit / "hints.yml").is_file() == (cap > 0)
    assert load_course(kit / "course.yml").hints.max_level == cap
    kit_course = load_course(kit / "course.yml")
    for ex in ladders:
        found = get_hint(ex, 3, kit_course)
        assert (found is None) if cap == 0 else (found.level == min(cap, len(ladders[ex]))), ex


def test_the_uncapped_kit_ships_every_level(tmp_path):
    kit = _released_with_cap(tmp_path, None)
    assert load_ladders(load_course(kit / "course.yml")) == load_ladders(load_course())
