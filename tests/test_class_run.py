"""``grader grade-all``: a small class graded into a gradebook, resumed after a kill, on Dask too.

The class (fast numpy exercises only, course time limit 8 s): the reference (alice), a partly
wrong one (bob, off by one: partial credit), a syntax error (carol), a zip with a nested folder
(dave, identical code to alice), an endless loop (eve), a plain duplicate (frank) and a zip that
escapes its folder (mallory, unreadable).
"""
from __future__ import annotations

import csv
import fcntl
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import psutil
import pytest

from coursekit.course import load_course
from grader.class_run import discover, run_job
from grader.cli import main
from grader.fingerprint import code_hash, course_hash, grader_build
from grader.gradebook import Gradebook

from grading_helpers import ROOT, SOLUTIONS, course_with_limits, reference_submission

ONLY = "conv_output_size,pad2d,same_padding"
STUDENTS = ["alice", "bob", "carol", "dave", "eve", "frank", "mallory"]
OFF_BY_ONE = """
    def conv_output_size(n, k, stride=1, padding=0):
        if stride < 1 or n + 2 * padding < k:
            raise ValueError("bad sizes")
        return (n + 2 * padding - k) // stride
    """
ENDLESS = """
    def conv_output_size(n, k, stride=1, padding=0):
        while True:
            pass
    """
#: Distinct (exercise, workspace) pairs in the class: the cache is keyed on every file a worker sees, so
#: alice, dave and frank (identical modules) share their 3 results; bob, carol and eve have 3 each.
DISTINCT_KEYS = 12


def make_class(root: Path) -> Path:
    root.mkdir(parents=True)
    reference_submission(root / "alice")
    reference_submission(root / "bob", {"strides": OFF_BY_ONE})
    reference_submission(root / "carol")
    (root / "carol" / "strides.py").write_text("def conv_output_size(n, k, stride=1, padding=0):\n    return (n - k +\n")
    with zipfile.ZipFile(root / "dave.zip", "w") as zf:
        for f in sorted(SOLUTIONS.glob("*.py")):
            zf.write(f, f"handin/exercises/{f.name}")
    reference_submission(root / "eve", {"strides": ENDLESS})
    shutil.copytree(root / "alice", root / "frank")
    with zipfile.ZipFile(root / "mallory.zip", "w") as zf:
        zf.writestr("../escape.py", "print('out')\n")
    (root / "notes.txt").write_text("not a submission\n")
    return root


def run_cli(course: Path, klass: Path, out: Path, *extra: str) -> int:
    return main(["--course", str(course), "grade-all", str(klass), "--out", str(out), "--only", ONLY, *extra])


def table(out: Path) -> dict[tuple[str, str], tuple[str, float]]:
    with Gradebook(out / "gradebook.sqlite") as gb:
        return {(r.student, r.exercise): (r.status, r.score) for r in gb.all_rows()}


def last_run(gb: Gradebook) -> int:
    return gb._db.execute("SELECT MAX(run_id) FROM runs").fetchone()[0]


@pytest.fixture(scope="module")
def course_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("course")
    course_with_limits(folder, time_limit_s=8)
    return folder / "course.yml"


@pytest.fixture(scope="module")
def graded(tmp_path_factory, course_file):
    """The class graded once with two pool workers: (class folder, out folder, exit code)."""
    base = tmp_path_factory.mktemp("graded")
    klass, out = make_class(base / "class"), base / "out"
    rc = run_cli(course_file, klass, out, "--workers", "2")
    return klass, out, rc


def copy_of(graded, tmp_path: Path) -> tuple[Path, Path]:
    klass, out, _ = graded
    shutil.copytree(klass, tmp_path / "class")
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "class", tmp_path / "out"


# ------------------------------------------------------------------------------------------ one run


def test_gradebook_has_a_row_per_student_and_exercise(graded):
    _, out, rc = graded
    assert rc == 0
    t = table(out)
    assert sorted({s for s, _ in t}) == STUDENTS
    assert len(t) == len(STUDENTS) * 3
    for student in ("alice", "dave", "frank"):
        assert t[student, "conv_output_size"] == ("passed", 5) and t[student, "pad2d"] == ("passed", 10)
    status, score = t["bob", "conv_output_size"]
    assert status == "failed" and 0 < score < 5  # the ValueError check still earns its share
    assert t["bob", "pad2d"] == ("passed", 10)
    assert t["carol", "conv_output_size"] == ("error", 0) and t["carol", "same_padding"] == ("passed", 5)
    assert t["eve", "conv_output_size"] == ("timeout", 0) and t["eve", "pad2d"] == ("passed", 10)
    assert {t["mallory", e] for e in ONLY.split(",")} == {("error", 0)}
    with Gradebook(out / "gradebook.sqlite") as gb:
        rows = gb.rows("carol")
        mallory = gb.rows("mallory")
        assert "SyntaxError in strides.py, line 2" in rows["conv_output_size"].message
        assert "outside the submission folder" in mallory["pad2d"].message
        alice = gb.rows("alice")["pad2d"]
        assert alice.grader_build == grader_build() and alice.content_hash and alice.code_hash
        assert alice.max_score == 10 and alice.graded_at <= alice.recorded_at
        assert alice.tests and all(t["passed"] for t in alice.tests)


def test_identical_code_is_graded_once(graded):
    _, out, _ = graded
    with Gradebook(out / "gradebook.sqlite") as gb:
        graded_events = gb.events("graded")
        assert len(graded_events) == DISTINCT_KEYS
        assert gb.graded_twice() == []
        assert {r.origin for r in gb.rows("dave").values()} == {"dedupe"}
        assert {r.origin for r in gb.rows("frank").values()} == {"dedupe"}
        bob = gb.rows("bob")  # one module differs from alice's: every exercise is graded (the worker sees it)
        assert {r.origin for r in bob.values()} == {"graded"}
        assert bob["pad2d"].cache_key != gb.rows("alice")["pad2d"].cache_key
        recorded = Counter((e["student"], e["exercise"]) for e in gb.events("recorded"))
        assert set(recorded.values()) == {1} and len(recorded) == len(STUDENTS) * 3


def test_exports(graded):
    _, out, _ = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    header = lines[0]
    assert header[0] == "student" and header[-1] == "total" and {"pad2d", "conv_output_size"} <= set(header)
    assert "conv2d_backward (bonus)" in header and "conv2d (bonus)" not in header  # bonus columns are marked
    maxima = dict(zip(header, lines[1]))
    assert maxima["student"] == "(max points)" and maxima["conv2d"] == "20" and maxima["total"] == "100"
    rows = {line[0]: dict(zip(header, line)) for line in lines[2:]}
    assert sorted(rows) == STUDENTS
    assert rows["alice"]["total"] == "20" and rows["alice"]["conv2d"] == ""
    assert rows["eve"]["conv_output_size"] == "0" and rows["eve"]["total"] == "15"
    gs = json.loads((out / "gradescope" / "bob" / "results.json").read_text())
    assert set(gs) == {"score", "execution_time", "tests"}
    assert [t["name"] for t in gs["tests"]] == ONLY.split(",")
    for t in gs["tests"]:
        assert set(t) == {"name", "score", "max_score", "status", "output"} and t["status"] in ("passed", "failed")
    assert gs["tests"][0]["status"] == "failed" and "off by one" in gs["tests"][0]["output"]
    assert gs["score"] == pytest.approx(sum(t["score"] for t in gs["tests"]))
    carol = (out / "feedback" / "carol.html").read_text()
    assert "SyntaxError in strides.py, line 2" in carol and "15 / " in carol
    assert "timeout" in (out / "feedback" / "eve.html").read_text()
    assert sorted(p.stem for p in (out / "feedback").glob("*.html")) == STUDENTS


def test_canvas_export_has_the_gradebook_import_layout(graded):
    """Canvas's import: Student, ID, SIS User ID, SIS Login ID, Section, one column per exercise, and a
    "Points Possible" row (a bonus exercise has 0 points possible: Canvas's extra credit)."""
    _, out, _ = graded
    with open(out / "canvas.csv", newline="", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    course = load_course()
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                        *(f"{course.title}: {ex.id}" for ex in course.exercises)]
    points = dict(zip(lines[0], lines[1]))
    assert lines[1][0] == "Points Possible" and lines[1][1:5] == ["", "", "", ""]
    assert points[f"{course.title}: conv2d"] == "20" and points[f"{course.title}: conv2d_backward"] == "0"
    rows = {line[0]: dict(zip(lines[0], line)) for line in lines[2:]}
    assert sorted(rows) == STUDENTS
    assert rows["bob"]["SIS Login ID"] == "bob" and rows["alice"][f"{course.title}: pad2d"] == "10"
    assert rows["alice"][f"{course.title}: conv2d"] == ""   # not graded: blank, which Canvas leaves unchanged
    assert rows["mallory"][f"{course.title}: pad2d"] == "0"


def test_the_lock_file_is_removed_after_a_run(graded):
    _, out, rc = graded
    assert rc == 0 and not (out / ".grade-all.lock").exists()


# ------------------------------------------------------------------------------------------ reruns


def test_rerun_grades_nothing(graded, course_file, tmp_path):
    klass, out = copy_of(graded, tmp_path)
    before = table(out)
    assert run_cli(course_file, klass, out, "--workers", "2") == 0
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert last_run(gb) == 2 and gb.events(run_id=2) == []
    assert table(out) == before


def test_changed_submission_is_regraded_and_a_known_one_comes_from_the_cache(graded, course_file, tmp_path):
    klass, out = copy_of(graded, tmp_path)
    with open(klass / "alice" / "padding.py", "a") as fh:
        fh.write("\n# one more comment\n")  # new code: pad2d and same_padding regraded for alice only
    shutil.copyfile(SOLUTIONS / "strides.py", klass / "bob" / "strides.py")  # bob resubmits alice's (known) code
    assert run_cli(course_file, klass, out, "--workers", "2") == 0
    with Gradebook(out / "gradebook.sqlite") as gb:
        run = last_run(gb)
        graded_now = sorted((e["student"], e["exercise"]) for e in gb.events("graded", run))
        assert graded_now == [("alice", "conv_output_size"), ("alice", "pad2d"), ("alice", "same_padding")]
        recorded = sorted((e["student"], e["exercise"], e["detail"]) for e in gb.events("recorded", run))
        assert recorded == [("alice", "conv_output_size", "graded"), ("alice", "pad2d", "graded"),
                            ("alice", "same_padding", "graded"), ("bob", "conv_output_size", "cache"),
                            ("bob", "pad2d", "cache"), ("bob", "same_padding", "cache")]
    assert table(out)["bob", "conv_output_size"] == ("passed", 5)


def test_force_regrades_everything(graded, course_file, tmp_path):
    klass, out = copy_of(graded, tmp_path)
    assert run_cli(course_file, klass, out, "--workers", "2", "--force") == 0
    with Gradebook(out / "gradebook.sqlite") as gb:
        run = last_run(gb)
        assert len(gb.events("graded", run)) == DISTINCT_KEYS
        assert len(gb.events("recorded", run)) == len(STUDENTS) * 3
    assert table(out) == table(graded[1])


def test_changed_points_regrade_that_exercise_only(graded, tmp_path):
    klass, out = copy_of(graded, tmp_path)
    concepts = dict(getattr(load_course().exercise("pad2d"), "concepts", None) or {})
    changed = {"points": 12, **({"concepts": {**concepts, "values": concepts["values"] + 2}} if concepts else {})}
    course = course_with_limits(tmp_path, time_limit_s=8, pad2d=changed)
    assert run_cli(tmp_path / "course.yml", klass, out, "--workers", "2") == 0
    assert course.exercise("pad2d").points == 12
    with Gradebook(out / "gradebook.sqlite") as gb:
        run = last_run(gb)
        graded_now = [e["exercise"] for e in gb.events("graded", run)]
        assert graded_now == ["pad2d"] * 4  # once per distinct workspace (alice's is dave's and frank's)
        assert gb.rows("alice")["pad2d"].max_score == 12
    assert table(out)["alice", "pad2d"] == ("passed", 12)


# ------------------------------------------------------------------------------------------ kill and resume


def _graded_students(db_path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(DISTINCT student) FROM results WHERE origin='graded' "
                              "AND status != 'error'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_grading_anything_twice(graded, course_file, tmp_path):
    klass = make_class(tmp_path / "class")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader", "--course", str(course_file), "grade-all", str(klass), "--out", str(out),
           "--only", ONLY, "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while _graded_students(out / "gradebook.sqlite") < 1:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)  # the grader only: its pool and sandboxes must not outlive it
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left behind: {alive}"
    killed = table(out)
    assert 0 < len({s for s, _ in killed}) < len(STUDENTS)

    assert run_cli(course_file, klass, out, "--workers", "1") == 0
    assert table(out) == table(graded[1])
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert gb.graded_twice() == []
        assert len(gb.events("graded")) == DISTINCT_KEYS
        recorded = Counter((e["student"], e["exercise"]) for e in gb.events("recorded"))
        assert set(recorded.values()) == {1} and len(recorded) == len(STUDENTS) * 3
        for (student, exercise), (status, score) in killed.items():  # what the killed run recorded stayed as it was
            row = gb.rows(student)[exercise]
            assert (row.status, row.score) == (status, score)
    assert sorted(p.stem for p in (out / "feedback").glob("*.html")) == STUDENTS


def test_a_held_lock_is_a_usage_error(course_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "class").mkdir()
    with open(out / ".grade-all.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert run_cli(course_file, tmp_path / "class", out) == 2


def test_usage_errors(course_file, tmp_path, capsys):
    assert main(["--course", str(course_file), "grade-all", str(tmp_path), "--only", "nope"]) == 2
    assert "unknown exercise id" in capsys.readouterr().err
    assert main(["--course", str(course_file), "grade-all", str(tmp_path / "absent")]) == 2


# ------------------------------------------------------------------------------------------ internal errors


class FailFor:
    """A backend that grades in this process, except that the grader "breaks" for one student."""

    name, workers = "test", 1

    def __init__(self, student: str) -> None:
        self.student = student

    def threads(self) -> int:
        return 1

    def results(self, jobs):
        for job in jobs:
            if job["student"] == self.student:
                yield {"student": job["student"], "ok": False, "error": "GraderInternalError: boom", "build": grader_build()}
            else:
                yield run_job(job)

    def close(self, cancel: bool = False) -> None:
        pass


def test_an_internal_error_records_nothing_for_that_student(course_file, tmp_path, monkeypatch, capsys):
    klass = tmp_path / "class"
    reference_submission(klass / "alice")
    reference_submission(klass / "bob", {"strides": OFF_BY_ONE})
    shutil.copytree(klass / "alice", klass / "dave")  # identical to alice: depends on alice's result
    out = tmp_path / "out"
    monkeypatch.setattr("grader.class_run.runner.PoolBackend", lambda workers: FailFor("alice"))
    assert main(["--course", str(course_file), "grade-all", str(klass), "--out", str(out),
                 "--only", "conv_output_size"]) == 3
    err = capsys.readouterr().err
    assert "INTERNAL ERROR for alice" in err and "INTERNAL ERROR for dave" in err
    assert {s for s, _ in table(out)} == {"bob"}
    assert (out / "grades.csv").read_text().splitlines()[2].startswith("alice,,")
    monkeypatch.undo()
    assert main(["--course", str(course_file), "grade-all", str(klass), "--out", str(out), "--workers", "1",
                 "--only", "conv_output_size"]) == 0
    t = table(out)
    assert t["alice", "conv_output_size"] == t["dave", "conv_output_size"] == ("passed", 5)
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert len(gb.events("internal_error")) == 2 and gb.graded_twice() == []


# ------------------------------------------------------------------------------------------ Dask


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_gradebook(graded, course_file, tmp_path):
    from distributed import Client, LocalCluster

    klass = graded[0]
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert run_cli(course_file, klass, out, "--scheduler", cluster.scheduler_address) == 0
        with Client(cluster) as client:
            prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "grade" in prefixes  # the jobs ran on the cluster's workers
    assert table(out) == table(graded[1])
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert len(gb.events("graded")) == DISTINCT_KEYS
        assert gb._db.execute("SELECT scheduler FROM runs").fetchone()[0] == cluster.scheduler_address
    assert (out / "grades.csv").read_text() == (graded[1] / "grades.csv").read_text()


# ------------------------------------------------------------------------------------------ layouts and keys


def test_discovery_of_folders_zips_and_nbgrader(tmp_path):
    plain = tmp_path / "plain"
    for name in ("ann", "ben", ".hidden", "__MACOSX"):
        (plain / name).mkdir(parents=True)
    (plain / "cid.zip").write_bytes(b"")
    (plain / "ann.zip").write_bytes(b"")
    (plain / "readme.txt").write_text("")
    subs, notes = discover(plain)
    assert [(s.student, s.path.name) for s in subs] == [("ann", "ann"), ("ben", "ben"), ("cid", "cid.zip")]
    assert any("ann" in n and "both" in n for n in notes) and any("readme.txt" in n for n in notes)

    course = tmp_path / "course"
    for student in ("ann", "ben"):
        (course / "submitted" / student / "ps1").mkdir(parents=True)
    (course / "source" / "ps1").mkdir(parents=True)
    (course / "submitted" / "ben" / "ps0").mkdir()
    subs, _ = discover(course)
    assert [s.student for s in subs] == ["ann", "ben"]
    assert discover(course / "submitted")[0] == subs
    subs, notes = discover(course, assignment="ps0")
    assert [(s.student, s.path.name) for s in subs] == [("ben", "ps0")] and any("ann" in n for n in notes)


def test_nbgrader_course_folder_is_graded(course_file, tmp_path):
    course = tmp_path / "course"
    reference_submission(course / "submitted" / "ann" / "ps1")
    (course / "source" / "ps1").mkdir(parents=True)
    out = tmp_path / "out"
    assert main(["--course", str(course_file), "grade-all", str(course), "--out", str(out), "--workers", "1",
                 "--only", "same_padding"]) == 0
    assert table(out) == {("ann", "same_padding"): ("passed", 5)}


def test_code_hash_covers_every_module_the_worker_sees():
    src = {p.stem: p.read_bytes() for p in SOLUTIONS.glob("*.py") if p.stem != "__init__"}
    base = code_hash(src, "exercises")
    assert code_hash(dict(reversed(src.items())), "exercises") == base  # order does not matter
    assert code_hash({**src, "pooling": b"# changed"}, "exercises") != base  # conv never imports pooling: still covered
    assert code_hash({k: v for k, v in src.items() if k != "pooling"}, "exercises") != base
    assert code_hash(src, "exercises", {"pooling": "not UTF-8"}) != base
    assert code_hash(src, "other") != base


def test_course_hash_follows_points_and_limits(tmp_path):
    for name in "abc":
        (tmp_path / name).mkdir()
    base = course_with_limits(tmp_path / "a", time_limit_s=8)
    longer = course_with_limits(tmp_path / "b", time_limit_s=9)
    concepts = dict(getattr(load_course().exercise("pad2d"), "concepts", None) or {})
    points = course_with_limits(tmp_path / "c", time_limit_s=8, pad2d={
        "points": 11, **({"concepts": {**concepts, "values": concepts["values"] + 1}} if concepts else {})})
    ex = base.exercise("pad2d")
    assert course_hash(base, ex) != course_hash(longer, longer.exercise("pad2d"))
    assert course_hash(base, ex) != course_hash(points, points.exercise("pad2d"))
    assert course_hash(base, base.exercise("conv2d")) == course_hash(points, points.exercise("conv2d"))


# ------------------------------------------------------------------------------------------ integrity (issue 8 §3, §5)

#: conv_output_size reaches padding.OFFSET through pickle: no import statement, no importlib, no open().
PICKLED_SIBLING = '''
    def conv_output_size(n, k, stride=1, padding=0):
        import pickle
        offset = pickle.loads(b"cexercises.padding\\nOFFSET\\n.")
        if stride < 1 or n + 2 * padding < k:
            raise ValueError("bad sizes")
        return (n + 2 * padding - k) // stride + 1 + offset
    '''


def test_a_sibling_reached_dynamically_is_part_of_the_cache_key(course_file, tmp_path):
    """Two students share strides.py but differ in padding.py, which strides.py reads through pickle:
    each one's class-run score equals their score graded alone."""
    from grader.grade import grade_submission

    klass = tmp_path / "class"
    reference_submission(klass / "ann", {"strides": PICKLED_SIBLING, "padding": "OFFSET = 0\n"})
    reference_submission(klass / "ben", {"strides": PICKLED_SIBLING, "padding": "OFFSET = 1\n"})
    out = tmp_path / "out"
    assert main(["--course", str(course_file), "grade-all", str(klass), "--out", str(out), "--workers", "1",
                 "--only", "conv_output_size"]) == 0
    course = load_course(course_file)
    alone = {s: grade_submission(klass / s, course, only=["conv_output_size"]).exercise("conv_output_size")
             for s in ("ann", "ben")}
    assert alone["ann"].status == "passed" and alone["ben"].score < alone["ann"].score  # the attack is real
    t = table(out)
    for student in ("ann", "ben"):
        assert t[student, "conv_output_size"] == (alone[student].status, alone[student].score), student


def test_bad_submissions_are_errors_and_the_class_goes_on(course_file, tmp_path):
    """Damaged zips, links, an oversize module, clashing and unsafe ids: each such student gets status
    `error` with the reason (or is left out with a note), the others are graded, the run exits 0."""
    from test_submission_attacks import bad_zips

    klass = tmp_path / "class"
    reference_submission(klass / "alice")
    (tmp_path / "zips").mkdir()
    zips = bad_zips(tmp_path / "zips")
    expected = {}
    for n, case in enumerate(["bad CRC", "encrypted", "unsupported compression", "non-UTF-8 name",
                              "file and folder of the same name", "symlink entry", "truncated", "bomb: ratio"]):
        path, word = zips[case]
        shutil.copyfile(path, klass / f"zip{n}.zip")
        expected[f"zip{n}"] = word
    linker = klass / "linker"
    linker.mkdir()
    for f in SOLUTIONS.glob("*.py"):
        (linker / f.name).symlink_to(Path("..") / "alice" / f.name)
    expected["linker"] = "symbolic link"
    (klass / "linkdir").symlink_to(klass / "alice")
    expected["linkdir"] = "symbolic link"
    reference_submission(klass / "big", {"strides": "TABLE = " + repr(bytes(20 * 1024)) + "\n"})
    expected["big"] = "64 KB limit"
    reference_submission(klass / "Bob")
    reference_submission(klass / "bob")
    expected["Bob"] = expected["bob"] = "same id"
    reference_submission(klass / "=HYPERLINK(1)")
    reference_submission(klass / "-rf")
    out = tmp_path / "out"
    assert main(["--course", str(course_file), "grade-all", str(klass), "--out", str(out), "--workers", "1",
                 "--only", "conv_output_size"]) == 0
    t = table(out)
    assert t["alice", "conv_output_size"] == ("passed", 5)
    assert sorted(s for s, _ in t) == sorted(["alice", *expected])
    with Gradebook(out / "gradebook.sqlite") as gb:
        for student, word in expected.items():
            row = gb.rows(student)["conv_output_size"]
            assert (row.status, row.score) == ("error", 0), student
            assert word.lower() in row.message.lower(), (student, row.message)
    for name in ("grades.csv", "canvas.csv"):
        with open(out / name, newline="", encoding="utf-8") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), name
    assert not (out / ".grade-all.lock").exists()


def test_formula_cells_are_neutralised_in_every_csv(course_file, tmp_path):
    """A course title (the Canvas column names) that a spreadsheet would run as a formula is written as text."""
    import yaml

    raw = yaml.safe_load(course_file.read_text(encoding="utf-8"))
    raw["title"] = "=HYPERLINK(\"http://evil\",\"x\")"
    (tmp_path / "course.yml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    klass = tmp_path / "class"
    reference_submission(klass / "alice")
    out = tmp_path / "out"
    assert main(["--course", str(tmp_path / "course.yml"), "grade-all", str(klass), "--out", str(out),
                 "--workers", "1", "--only", "conv_output_size"]) == 0
    with open(out / "canvas.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header[5].startswith("'=HYPERLINK")


def test_the_lock_file_is_removed_after_an_error(course_file, tmp_path, monkeypatch):
    class Broken(FailFor):
        def results(self, jobs):
            raise RuntimeError("the backend broke")
            yield  # pragma: no cover

    klass = tmp_path / "class"
    reference_submission(klass / "alice")
    out = tmp_path / "out"
    monkeypatch.setattr("grader.class_run.runner.PoolBackend", lambda workers: Broken("nobody"))
    assert main(["--course", str(course_file), "grade-all", str(klass), "--out", str(out),
                 "--only", "conv_output_size"]) == 3
    assert not (out / ".grade-all.lock").exists()


def test_progress_names_failing_students_and_counts_exercises(course_file, tmp_path):
    """Without a terminal, grade-all's progress still ends with students and exercises done and the failures by name."""
    klass = tmp_path / "class"
    reference_submission(klass / "alice")
    reference_submission(klass / "eve", {"strides": ENDLESS})
    cmd = [sys.executable, "-m", "grader", "--course", str(course_file), "grade-all", str(klass), "--out",
           str(tmp_path / "out"), "--only", "conv_output_size,pad2d", "--workers", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "2/2 students, 4/4 exercises graded" in err, err
    assert "failures: 1 (eve)" in err, err
