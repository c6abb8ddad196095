"""A few entries of the realistic-mistakes catalogue (tests/mistakes_catalogue), graded end to end and
classified as benchmarks/mistake_feedback.py does: the right cause named, or an honest description, never
a wrong cause; points lost only in the mistake's concepts. The whole catalogue: the benchmark."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from coursekit.course import load_course
from mistakes_catalogue import CLASSIC, ENTRIES, UNLISTED

ROOT = Path(__file__).resolve().parents[1]


def benchmark():
    spec = importlib.util.spec_from_file_location("mistake_feedback", ROOT / "benchmarks" / "mistake_feedback.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(name: str):
    return next(e for e in ENTRIES if e.name == name)


def test_the_catalogue_is_well_formed():
    course = load_course()
    ids = {ex.id for ex in course.exercises}
    assert len(ENTRIES) >= 40 and len({e.name for e in ENTRIES}) == len(ENTRIES)
    assert all(e.accept for e in CLASSIC) and not any(e.accept for e in UNLISTED)
    for e in ENTRIES:
        assert set(e.exercises) <= ids and set(e.concepts) <= set(e.exercises), e.name
        for ex, concepts in e.concepts.items():
            assert concepts <= set(course.exercise(ex).concepts), (e.name, concepts)


@pytest.mark.slow
@pytest.mark.parametrize("name, outcome", [
    ("same_padding: (k - 1) // 2 each side", "named"),
    ("same_padding split reversed, seen through conv2d", "named"),
    ("same_padding: floor instead of ceil", "described"),
    ("conv2d: stride not passed to same_padding", "described"),
    ("correlate2d: output flipped", "described"),
    ("pad2d: float32 upcast to float64", "described"),
])
def test_an_entry_is_named_or_described_never_wrong(name, outcome):
    row = benchmark().grade_entry(entry(name), load_course())
    assert row["outcome"] == outcome, row
    assert row["proportionate"], row
