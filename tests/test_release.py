"""`grader release`: students get stubs, public checks, the kit and notebooks, and nothing hidden."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.course import load_course
from grader.cli import main
from grader.stubs import BEGIN, END

ROOT = Path(__file__).resolve().parents[1]
COURSE = load_course()


def solution_block_lines() -> set[str]:
    """Every meaningful line inside a ### BEGIN/END SOLUTION block of the reference."""
    secret: set[str] = set()
    public: set[str] = set()
    for f in (ROOT / "solutions").glob("*.py"):
        inside = False
        for line in f.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if s == BEGIN:
                inside = True
            elif s == END:
                inside = False
            else:
                (secret if inside else public).add(s)
    return {s for s in secret - public if _meaningful(s)}


def hidden_suite_lines() -> set[str]:
    lines: set[str] = set()
    for f in (ROOT / "grader" / "suites").glob("*.py"):
        lines |= {l.strip() for l in f.read_text(encoding="utf-8").splitlines() if _meaningful(l.strip())}
    return lines


def _meaningful(s: str) -> bool:
    """Long enough to identify its source; not an import, a bare keyword or punctuation."""
    return len(s) >= 24 and not re.match(r"^(from \S+ import|import |#|\"\"\"|return$|else:|try:|\)|\])", s)


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "course"
    assert main(["release", str(out)]) == 0
    return out


def released_text(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(out.rglob("*")) if p.is_file())


def test_release_layout(released):
    for path in ["README.md", "course.yml", "pyproject.toml", "conftest.py", "coursekit/selfcheck.py", "coursekit/course.py", "coursekit/mnist.py",
                 *(f"exercises/{m}.py" for m in COURSE.modules), *(f"tests/public/test_{m}.py" for m in ("strides", "conv", "pooling"))]:
        assert (released / path).is_file(), path
    assert not (released / "solutions").exists() and not (released / "grader").exists()


def authored_public_lines() -> set[str]:
    """Lines of the files written for students (kit, public tests, notebooks, the reference outside its blocks)."""
    lines: set[str] = set()
    for f in (ROOT / "solutions").glob("*.py"):
        inside = False
        for line in f.read_text(encoding="utf-8").splitlines():
            inside = (inside or line.strip() == BEGIN) and line.strip() != END
            if not inside and line.strip() not in (BEGIN, END):
                lines.add(line.strip())
    for pattern in ("coursekit/*.py", "tests/public/*.py", "notebooks/*.ipynb"):
        for f in ROOT.glob(pattern):
            lines |= {l.strip().strip('",').replace('\\n', '').strip() for l in f.read_text(encoding="utf-8").splitlines()}
    return lines


def leaks(out: Path) -> list[str]:
    """Hidden lines (solution blocks, hidden suites) found anywhere in the release at ``out``."""
    text = released_text(out)
    secret = solution_block_lines() | hidden_suite_lines()
    # A generic line (a formula, `x_train, ... = load_mnist()`) may also have been written, independently,
    # in a public file; those few coincidences are capped and not counted as leaks of the release pipeline.
    public_text = "\n".join(authored_public_lines())
    coincidences = {s for s in secret if s in public_text}
    assert len(coincidences) <= 10, f"many hidden lines also stand in public files: {sorted(coincidences)[:10]}"
    found = sorted(s for s in secret - coincidences if s in text)
    if BEGIN in text or END in text:
        found.append(BEGIN)
    return found


def test_no_solution_line_and_no_hidden_test_in_release(released):
    assert len(solution_block_lines()) > 30 and len(hidden_suite_lines()) > 100  # the check has something to find
    assert leaks(released) == []


def test_leak_check_catches_a_copied_block_and_a_copied_suite(released, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(released, copy)
    block = (ROOT / "solutions" / "conv.py").read_text(encoding="utf-8").split(BEGIN)[2].split(END)[0]
    with open(copy / "exercises" / "conv.py", "a", encoding="utf-8") as fh:
        fh.write(block)
    assert leaks(copy) != []
    shutil.rmtree(copy)
    shutil.copytree(released, copy)
    shutil.copyfile(ROOT / "grader" / "suites" / "conv2d.py", copy / "tests" / "public" / "helper.py")
    assert leaks(copy) != []


def test_release_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    assert main(["release", str(tmp_path)]) == 2
    assert (tmp_path / "x").read_text() == "keep me"


def test_students_self_checks_run_in_the_release(released):
    """In the release, pytest reports every exercise as not implemented, and nothing crashes."""
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_YML", "COURSE_IMPL", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"], cwd=released,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary, summary
    for ex in COURSE.exercises:
        if ex.id != "mnist_accuracy":
            assert f"{ex.id}: not implemented yet" in proc.stdout, ex.id
