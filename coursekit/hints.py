"""Staged hints for a stuck student (ships to students).

    from coursekit.hints import hint
    hint("conv2d")          # the next level: 1 (the concept), then 2 (the shapes), then 3 (pseudo-code)
    hint("conv2d", level=2) # a given level

The ladders live in ``hints.yml`` (written with the exercises, next to the reference solutions;
released beside course.yml). The course can cap the level students reach with ``hints.max_level``
in course.yml (0 turns hints off); without it every level is available. ``pytest --hint``
(:mod:`coursekit.hints_plugin`) shows the next level for each failing exercise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from coursekit.course import Course, load_course

HINTS_FILE = "hints.yml"
LEVEL_NAMES = {1: "the concept", 2: "the shape arithmetic", 3: "the loop structure"}
_shown: dict[str, int] = {}  # exercise id -> highest level shown in this session (notebooks)


class HintError(ValueError):
    """No ladder for that exercise, or an unreadable hints file; the message says which."""


@dataclass(frozen=True)
class Hint:
    exercise: str
    level: int
    levels: int          # levels the student may see (after the course's cap)
    text: str

    @property
    def title(self) -> str:
        name = LEVEL_NAMES.get(self.level, f"level {self.level}")
        return f"Hint for {self.exercise}, level {self.level} of {self.levels} ({name})"

    def __str__(self) -> str:
        more = "" if self.level >= self.levels else f"\n(run it again for level {self.level + 1})"
        return f"{self.title}\n{self.text.rstrip()}{more}"

    def _repr_markdown_(self) -> str:
        return f"**{self.title}**\n\n```text\n{self.text.rstrip()}\n```"


def hints_path(course: Course | None = None) -> Path:
    """``$COURSE_HINTS``, else hints.yml beside course.yml, else in the reference package."""
    if os.environ.get("COURSE_HINTS"):
        return Path(os.environ["COURSE_HINTS"])
    course = course or load_course()
    for candidate in (course.root / HINTS_FILE, course.root / course.reference_package / HINTS_FILE):
        if candidate.is_file():
            return candidate
    return course.root / HINTS_FILE


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int) -> dict[str, tuple[str, ...]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise HintError(f"cannot read the hints file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise HintError(f"{path}: expected exercise ids mapped to lists of hints")
    ladders = {}
    for exercise, levels in raw.items():
        if not isinstance(levels, list) or not levels or not all(isinstance(t, str) and t.strip() for t in levels):
            raise HintError(f"{path}: {exercise} needs a non-empty list of hint texts")
        ladders[str(exercise)] = tuple(levels)
    return ladders


def load_ladders(course: Course | None = None) -> dict[str, tuple[str, ...]]:
    """Every exercise's ladder, as written (no cap applied)."""
    path = hints_path(course)
    if not path.is_file():
        raise HintError(f"no hints file at {path}")
    return _read(path, path.stat().st_mtime_ns)


def max_level(course: Course | None = None) -> int | None:
    """The course's cap (course.yml ``hints.max_level``), or None for no cap."""
    return (course or load_course()).hints.max_level


def available_levels(exercise: str, course: Course | None = None) -> int:
    course = course or load_course()
    cap = max_level(course)
    if cap == 0:  # hints off: a released kit then holds no hints.yml at all
        return 0
    ladders = load_ladders(course)
    if exercise not in ladders:
        raise HintError(f"no hints for {exercise!r}; exercises with hints: {', '.join(ladders)}")
    return len(ladders[exercise]) if cap is None else min(cap, len(ladders[exercise]))


def get_hint(exercise: str, level: int, course: Course | None = None) -> Hint | None:
    """Level ``level`` (1-based, clipped to what the course allows) of ``exercise``; None when hints are off."""
    course = course or load_course()
    levels = available_levels(exercise, course)
    if levels == 0:
        return None
    level = max(1, min(int(level), levels))
    return Hint(exercise, level, levels, load_ladders(course)[exercise][level - 1])


def hint(exercise: str, level: int | None = None, course: Course | None = None) -> Hint | None:
    """The next hint for ``exercise`` in this session (or ``level``); shown in a notebook, returned too."""
    course = course or load_course()
    wanted = level if level is not None else _shown.get(exercise, 0) + 1
    found = get_hint(exercise, wanted, course)
    if found is None:
        print(f"hints are turned off for this course ({exercise})")
        return None
    _shown[exercise] = max(_shown.get(exercise, 0), found.level)
    return found
