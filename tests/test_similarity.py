"""``grader similarity``: disguised copies ranked first, independent solutions and the stubs not flagged."""
from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from coursekit.course import load_course
from grader.cli import main
from grader.exports import csv_cell
from grader.similarity import DEFAULT_THRESHOLD, find_similar

ROOT = Path(__file__).resolve().parents[1]


def _extras():
    spec = importlib.util.spec_from_file_location("make_class_extras", ROOT / "benchmarks" / "make_class_extras.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_class_extras", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def similarity_class(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("class") / "submissions"
    roster = _extras().make_similarity_class(dest)
    assert set(roster) == {"ref_writer", "loops_writer", "vector_writer", "copier_1", "copier_2"}
    return dest


def test_disguised_copies_still_work(similarity_class):
    """The generated copies are real disguises: other names, other order, and the same results."""
    import numpy as np

    orig = (similarity_class / "loops_writer" / "conv.py").read_text()
    copy = (similarity_class / "copier_1" / "conv.py").read_text()
    assert " answer = " in orig and " answer = " not in copy  # a local variable renamed
    assert orig.index("def correlate2d") < orig.index("def conv2d") and copy.index("def conv2d") < copy.index("def correlate2d")
    ns: dict = {}
    exec(compile(copy, "copy", "exec"), ns)
    x = np.arange(50.0).reshape(1, 2, 5, 5)
    w = np.ones((3, 2, 2, 2))
    from solutions.conv import conv2d

    np.testing.assert_allclose(ns["conv2d"](x, w, np.arange(3.0), stride=2, padding=1),
                               conv2d(x, w, np.arange(3.0), stride=2, padding=1))


def test_copied_pairs_rank_first_and_independent_ones_are_not_flagged(similarity_class):
    report = find_similar(similarity_class, load_course())
    top = [{p.student_a, p.student_b} for p in report.pairs[:2]]
    assert {"copier_1", "loops_writer"} in top and {"copier_2", "vector_writer"} in top
    assert all(p.flagged and p.similarity >= 0.75 for p in report.pairs[:2])
    independent = report.pairs[2:]
    assert len(independent) == 8  # 5 students: 10 pairs
    assert not any(p.flagged for p in independent)
    assert max(p.similarity for p in independent) < DEFAULT_THRESHOLD / 1.5  # a clear margin under the threshold


def test_the_released_stubs_are_boilerplate(tmp_path):
    """Two students who hand in the untouched stubs share every line, and are not flagged for it."""
    for student in ("alice", "bob"):
        shutil.copytree(ROOT / "exercises", tmp_path / student)
    report = find_similar(tmp_path, load_course())
    assert [p.flagged for p in report.pairs] == [False]
    assert report.pairs[0].similarity == 0.0
    # without the stubs as boilerplate the same two are identical: the exclusion is what keeps them apart
    assert find_similar(tmp_path, load_course(), boilerplate=[]).pairs[0].flagged


def test_cli_writes_ranked_csv_and_html(similarity_class, tmp_path):
    # an identical twin, a student id that is a spreadsheet formula, and an unreadable submission join the class
    cls = tmp_path / "cls"
    shutil.copytree(similarity_class, cls)
    shutil.copytree(cls / "loops_writer", cls / "loops_twin")
    shutil.copytree(ROOT / "exercises", cls / "=HYPERLINK(1)")
    (cls / "broken.zip").write_bytes(b"not a zip")
    out = tmp_path / "out"
    assert main(["similarity", str(cls), "--out", str(out)]) == 0
    with open(out / "similarity.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    sims = [float(r["similarity"]) for r in rows]
    assert sims == sorted(sims, reverse=True)
    assert {rows[0]["student_a"], rows[0]["student_b"]} == {"loops_twin", "loops_writer"} and sims[0] == 1.0
    ids = {r["student_a"] for r in rows} | {r["student_b"] for r in rows}
    assert not any(i.startswith(("=", "+", "-", "@")) for i in ids)
    # discovery either refuses the id (with a note) or it is compared and written neutralised
    assert len(rows) in (15, 21) and (len(rows) == 15) == ("'=HYPERLINK(1)" not in ids)
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "highlight-red" in page and "copier_1" in page and "broken: not compared" in page


def test_csv_cell_neutralises_formulas():
    assert [csv_cell(v) for v in ("=1+1", "+3", "-2", "@SUM", "s001")] == ["'=1+1", "'+3", "'-2", "'@SUM", "s001"]


def test_usage_errors(tmp_path):
    assert main(["similarity", str(tmp_path / "nope")]) == 2
    assert main(["similarity", str(tmp_path), "--threshold", "0"]) == 2
