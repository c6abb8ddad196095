"""Faults never cost anyone anything (issue 17 §2-5): exports per student, a grader fault is not a grade,
temp hygiene, and the gradebook as a ledger that survives damage, a lost journal and a full disk.

The fast tests use a fake worker (no student code runs) or the gradebook alone; the ones marked
``slow`` run real sandboxes and kill real processes.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from coursekit.course import load_course
from grader import grade as grade_module
from grader.class_run import GradeAllOptions, grade_all, runner
from grader.cli import EXIT_DISK_FULL, EXIT_GRADEBOOK, main
from grader.exports import StudentKeys, write_exports
from grader.gradebook import DiskFull, Gradebook, GradebookDamaged, restore_latest
from grader.grade import grade_exercise
from grader.sandbox.results import CallResult, ErrorInfo
from grader.submission import prepare

from grading_helpers import ROOT, SOLUTIONS, course_with_limits, reference_submission
from test_grader_garbage import _through_wire
from test_student_text import InlineBackend, _NoSandboxes

COURSE = load_course()
KILLED = ErrorInfo("WorkerCrashed", "the worker was killed by SIGKILL (out of memory or CPU time?)")
SEGV = ErrorInfo("WorkerCrashed", "the worker was killed by SIGSEGV")


# -- a worker that answers right, or dies -------------------------------------------------------------------

class FateWorker:
    """Stands in for the sandboxed worker: answers as the reference does, or dies as ``fates`` says.

    ``fates`` is shared by every worker of a test: each new worker takes the next fate (None: healthy,
    an ErrorInfo: every call ends in ``crashed`` with it)."""

    isolation = "none (in-process fault test)"
    violations: tuple[str, ...] = ()
    stdout = stderr = ""

    def __init__(self, *args: Any, fates: list, **kwargs: Any) -> None:
        self.fate = fates.pop(0) if fates else None

    def __enter__(self) -> "FateWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def start(self, wait: bool = True) -> None:
        return None

    def close(self) -> None:
        return None

    def call(self, module: str, function: str, args: Any = (), kwargs: dict | None = None, **_: Any) -> CallResult:
        if self.fate is not None:
            return CallResult(status="crashed", error=self.fate)
        import importlib

        try:
            value = getattr(importlib.import_module(f"{COURSE.reference_package}.{module}"), function)(*args, **(kwargs or {}))
        except Exception as exc:  # noqa: BLE001  as the worker reports a student's exception
            return CallResult(status="error", error=ErrorInfo(type(exc).__name__, str(exc)))
        return _through_wire(value)


def _fates(monkeypatch: pytest.MonkeyPatch, fates: list) -> None:
    monkeypatch.setattr(grade_module, "Worker", lambda *a, **k: FateWorker(*a, fates=fates, **k))
    monkeypatch.setattr(grade_module, "Sandboxes", _NoSandboxes)


def _grade_one(exercise_id: str = "conv_output_size"):
    exercise = COURSE.exercise(exercise_id)
    with prepare(SOLUTIONS, COURSE.student_package, COURSE.modules) as ws:
        return grade_exercise(ws, COURSE, exercise)[0]


def test_a_worker_killed_from_outside_is_graded_again_in_a_fresh_worker(monkeypatch):
    fates = [KILLED, None]
    _fates(monkeypatch, fates)
    result = _grade_one()
    assert (result.status, result.score, result.max_score) == ("passed", 5.0, 5.0)
    assert not fates


def test_twice_lost_is_not_graded_and_does_not_blame_the_student(monkeypatch):
    _fates(monkeypatch, [KILLED, ErrorInfo("WorkerExited", "the worker exited during the call (exit status unknown)")])
    result = _grade_one()
    assert result.status == "not_graded" and result.score == 0.0
    assert "not of your code" in result.message and "your code ran" not in result.message


def test_the_students_own_crash_stays_the_students(monkeypatch):
    _fates(monkeypatch, [SEGV, None])  # a segfault is the code's own: no second try
    assert _grade_one().status == "error"
    _fates(monkeypatch, [KILLED, KILLED])  # killed at the same point twice: the code kills itself
    result = _grade_one()
    assert result.status == "error" and "SIGKILL" in result.message


def _class(root: Path, students=("alice", "bob")) -> Path:
    for s in students:
        reference_submission(root / s)
    return root


def test_not_graded_is_never_cached_nor_up_to_date_and_regrade_names_students(tmp_path, monkeypatch):
    klass, out = _class(tmp_path / "class"), tmp_path / "out"
    options = GradeAllOptions(out=out, only=("conv_output_size",))
    fates: list = [KILLED, ErrorInfo("WorkerExited", "the worker exited during the call (exit status unknown)")]
    _fates(monkeypatch, fates)  # alice and bob share code: one job, lost twice
    summary = grade_all(klass, COURSE, options, backend=InlineBackend())
    assert summary.recorded == 2
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert {r.status for r in gb.all_rows()} == {"not_graded"}
        assert gb._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 0
    rows = [line.split(",") for line in (out / "grades.csv").read_text().splitlines()]
    column = rows[0].index("conv_output_size")
    assert [(r[0], r[column], r[-1]) for r in rows[2:]] == [("alice", "", ""), ("bob", "", "")]  # blank: no grade
    # the same command grades it again (healthy workers now)
    summary = grade_all(klass, COURSE, options, backend=InlineBackend())
    assert summary.up_to_date == 0
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert {(r.student, r.status, r.score) for r in gb.all_rows()} == {("alice", "passed", 5.0), ("bob", "passed", 5.0)}
    # now up to date; --regrade bob regrades bob only, without --force
    summary = grade_all(klass, COURSE, options, backend=InlineBackend())
    assert summary.up_to_date == 2
    summary = grade_all(klass, COURSE, GradeAllOptions(out=out, only=("conv_output_size",), regrade=("bob",)),
                        backend=InlineBackend())
    assert summary.up_to_date == 1 and summary.graded == 1
    with Gradebook(out / "gradebook.sqlite") as gb:
        last = gb._db.execute("SELECT MAX(run_id) FROM runs").fetchone()[0]
        assert [r["student"] for r in gb.events("recorded", last)] == ["bob"]
    from grader.class_run import ClassRunError

    with pytest.raises(ClassRunError, match="no submission here: bobby"):  # a typo regrades nobody silently
        grade_all(klass, COURSE, GradeAllOptions(out=out, only=("conv_output_size",), regrade=("bobby",)),
                  backend=InlineBackend())


# -- exports per student ----------------------------------------------------------------------------------------

def test_one_students_pages_failing_costs_only_that_student(tmp_path, monkeypatch):
    klass, out = _class(tmp_path / "class", ("alice", "bob", "carol")), tmp_path / "out"
    (klass / "bob" / "strides.py").write_text((klass / "bob" / "strides.py").read_text() + "\n# bob\n")
    _fates(monkeypatch, [])
    from grader import exports

    real = exports.html_page

    def html_page(report):
        if report.submission == "bob":
            raise UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed")
        return real(report)

    monkeypatch.setattr(exports, "html_page", html_page)
    summary = grade_all(klass, COURSE, GradeAllOptions(out=out, only=("conv_output_size",)), backend=InlineBackend())
    assert list(summary.export_failures) == ["bob"] and "UnicodeEncodeError" in summary.export_failures["bob"]
    assert sorted(p.stem for p in (out / "feedback").glob("*.html")) == ["alice", "carol"]
    assert (out / "gradescope" / "carol" / "results.json").is_file()
    assert [line.split(",")[0] for line in (out / "grades.csv").read_text().splitlines()] == \
        ["student", "(max points)", "alice", "bob", "carol"]
    assert (out / "canvas.csv").read_text().count("\n") == 5
    assert not list(out.rglob("*.tmp"))


# -- the gradebook: damage, backups, a lost journal, a full disk --------------------------------------------------

def _recorded_gradebook(out: Path, students: int = 3) -> None:
    with Gradebook(out / "gradebook.sqlite") as gb:
        run = gb.start_run("b", "test", 1, None)
        for i in range(students):
            _record(gb, run, f"s{i}")
        gb.finish_run(run, "finished")
        gb.backup()


def _record(gb: Gradebook, run: int, student: str) -> None:
    row = {"exercise": "conv_output_size", "code_hash": "c", "course_hash": "k", "cache_key": f"key-{student}",
           "grader_version": "v", "grader_build": "b", "status": "passed", "score": 5.0, "max_score": 5.0,
           "bonus": False, "message": "", "tests": [], "duration_s": 0.1, "isolation": "none", "origin": "graded",
           "graded_at": "now"}
    with gb.transaction():
        gb.record(run, student, "sub", "hash", [row])


DAMAGE = {
    "emptied": lambda p: p.write_bytes(b""),
    "half-truncated": lambda p: os.truncate(p, p.stat().st_size // 2),
    "overwritten": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "pages overwritten": lambda p: p.write_bytes(p.read_bytes()[:4096] + os.urandom(p.stat().st_size - 4096)),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_gradebook_is_one_line_its_own_exit_code_and_a_way_back(tmp_path, capsys, damage):
    out, klass = tmp_path / "out", tmp_path / "class"
    klass.mkdir()
    _recorded_gradebook(out)
    path = out / "gradebook.sqlite"
    DAMAGE[damage](path)
    before = path.read_bytes()
    with pytest.raises(GradebookDamaged):
        Gradebook(path)
    capsys.readouterr()
    assert main(["grade-all", str(klass), "--out", str(out)]) == EXIT_GRADEBOOK
    err = capsys.readouterr().err.strip().splitlines()  # no progress line: the run stops before it
    assert len(err) == 1 and "damaged" in err[0] and "--restore-gradebook" in err[0] and "Traceback" not in err[0]
    assert path.read_bytes() == before, "a damaged gradebook must be left as it is"
    assert main(["grade-all", str(klass), "--out", str(out), "--restore-gradebook"]) == 0
    with Gradebook(path) as gb:
        assert gb.students() == ["s0", "s1", "s2"]
    assert list(out.glob("gradebook.sqlite.damaged-*"))


def test_restore_without_a_backup_starts_anew_and_keeps_the_damaged_file(tmp_path):
    path = tmp_path / "gradebook.sqlite"
    path.write_bytes(b"")
    assert "no good backup" in restore_latest(path)
    assert not path.exists() and list(tmp_path.glob("gradebook.sqlite.damaged-*"))
    with Gradebook(path) as gb:
        assert gb.students() == []


def test_losing_a_side_file_mid_run_with_a_reader_open_loses_no_record(tmp_path):
    """The issue's trial: with WAL, deleting ``-wal`` mid-run while a reader (another process) is open lost
    every record of the run, and later opens failed with "disk I/O error"."""
    path = tmp_path / "gradebook.sqlite"
    Gradebook(path).close()
    reader = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(path)!r}, timeout=30)\n"
        "print('open', flush=True)\n"
        "while True:\n"
        "    db.execute('SELECT COUNT(*) FROM students').fetchone()\n"
        "    time.sleep(0.01)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        with Gradebook(path) as gb:
            run = gb.start_run("b", "test", 1, None)
            for i in range(20):
                _record(gb, run, f"s{i:02}")
                for side in ("-wal", "-shm", "-journal"):
                    Path(f"{path}{side}").unlink(missing_ok=True)
            gb.finish_run(run, "finished")
    finally:
        reader.kill()  # the reader never closes cleanly either
        reader.wait()
    with Gradebook(path) as gb:
        assert gb.students() == [f"s{i:02}" for i in range(20)]
        assert gb._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (as root), else None."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    yield mnt if done.returncode == 0 else None
    if done.returncode == 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_loses_nothing_recorded(tmp_path, small_disk):
    folder = small_disk or tmp_path
    path = folder / "gradebook.sqlite"
    with Gradebook(path) as gb:
        run = gb.start_run("b", "test", 1, None)
        _record(gb, run, "s0")
        if small_disk is None:  # no tmpfs to fill: SQLite's own page limit gives the same SQLITE_FULL
            gb._db.execute(f"PRAGMA max_page_count={gb._db.execute('PRAGMA page_count').fetchone()[0]}")
        else:
            with open(folder / "filler", "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        with pytest.raises(DiskFull) as caught:
            for i in range(1, 200):
                _record(gb, run, f"s{i}" + "x" * 2000)
        assert "\n" not in str(caught.value) and "nothing recorded was lost" in str(caught.value)
        kept = gb.students()
    (folder / "filler").unlink(missing_ok=True)
    with Gradebook(path) as gb:
        assert gb.students() == kept and "s0" in kept
        assert gb._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_disk_is_one_line_and_its_own_exit_code(tmp_path, capsys, monkeypatch):
    out, klass = tmp_path / "out", tmp_path / "class"
    klass.mkdir()
    _recorded_gradebook(out)

    def full(*args: Any, **kwargs: Any):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "write_exports", full)
    assert main(["grade-all", str(klass), "--out", str(out)]) == EXIT_DISK_FULL
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("grader:")]
    assert len(err) == 1 and "disk is full" in err[0]
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert gb.students() == ["s0", "s1", "s2"]
    assert not (out / ".grade-all.lock").exists()


def test_every_run_leaves_a_backup(tmp_path, monkeypatch):
    klass, out = _class(tmp_path / "class", ("alice",)), tmp_path / "out"
    _fates(monkeypatch, [])
    for _ in range(2):
        grade_all(klass, COURSE, GradeAllOptions(out=out, only=("conv_output_size",)), backend=InlineBackend())
    backups = sorted((out / "backups").glob("gradebook-*.sqlite"))
    assert len(backups) == 2
    with Gradebook(backups[-1]) as gb:
        assert gb.students() == ["alice"]


# -- temp hygiene and coordinator kills (real sandboxes) -----------------------------------------------------------

STUDENT_MARK = "# student-file-marker-17"


def _student_files(*roots: Path) -> list[Path]:
    """Student modules under ``roots``; a running coordinator may remove a folder while it is walked
    (os.walk skips what vanished, where Path.rglob raises)."""
    found = []
    for root in roots:
        walked = (Path(d) / f for d, _, files in os.walk(root) for f in files if f.endswith(".py"))
        for p in walked:
            try:
                if STUDENT_MARK in p.read_text(errors="replace"):
                    found.append(p)
            except OSError:
                pass
    return found


def _temp_entries(*roots: Path) -> int:
    return sum(1 for root in roots if root.exists() for _ in root.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["reading", "grading", "recorded"])
def test_a_killed_coordinator_leaves_no_student_file_after_the_next_run(tmp_path, moment):
    course = course_with_limits(tmp_path, time_limit_s=8)
    klass = tmp_path / "class"
    for s in ("alice", "bob", "carol", "dave"):
        reference_submission(klass / s)
        (klass / s / "strides.py").write_text((klass / s / "strides.py").read_text() + f"\n{STUDENT_MARK} {s}\n")
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "grader", "--course", str(tmp_path / "course.yml"), "grade-all", str(klass), "--out",
           str(out), "--only", "conv_output_size,pad2d", "--workers", "2"]
    before = _temp_entries(tmp)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240

    def ready() -> bool:
        if moment == "reading":
            return (out / runner.TMP_DIR).exists()
        if moment == "grading":
            return bool(_student_files(out / runner.TMP_DIR))
        if not (out / "gradebook.sqlite").exists():  # (connecting would create an empty file)
            return False
        try:
            with sqlite3.connect(f"file:{out / 'gradebook.sqlite'}?mode=ro", uri=True, timeout=5) as db:
                return db.execute("SELECT COUNT(*) FROM students").fetchone()[0] >= 1
        except sqlite3.Error:
            return False

    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and everything it started
    proc.wait()
    time.sleep(1)
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _student_files(tmp, out / runner.TMP_DIR) == []
    assert _temp_entries(tmp) == before and not (out / runner.TMP_DIR).exists()
    with Gradebook(out / "gradebook.sqlite") as gb:
        rows = gb.all_rows()
    assert len(rows) == 8 and {r.status for r in rows} == {"passed"}


@pytest.mark.slow
def test_a_student_killing_their_own_worker_is_their_crash_and_an_outside_kill_is_not(tmp_path):
    """Real sandboxes: ``os.kill(os.getpid(), SIGKILL)`` in student code stays the student's error."""
    sub = tmp_path / "sub"
    reference_submission(sub, {"strides": """
        import os, signal
        def conv_output_size(n, k, stride=1, padding=0):
            os.kill(os.getpid(), signal.SIGKILL)
        """})
    course = course_with_limits(tmp_path, time_limit_s=8)
    report = grade_module.grade_submission(sub, course, only=["conv_output_size"])
    result = report.exercises[0]
    assert result.status == "error" and "SIGKILL" in result.message


# -- two runs at once, a stale lock ----------------------------------------------------------------------------

def test_a_second_run_is_refused_and_sweeps_nothing_of_the_first(tmp_path, monkeypatch):
    import fcntl

    from grader.class_run import ClassRunError

    klass, out = _class(tmp_path / "class", ("alice",)), tmp_path / "out"
    (out / runner.TMP_DIR).mkdir(parents=True)
    working = out / runner.TMP_DIR / "grade-all-x" / "strides.py"  # the first run's student copy
    working.parent.mkdir()
    working.write_text("# in use\n")
    with open(out / runner.LOCK_FILE, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ClassRunError, match="another grade-all"):
            grade_all(klass, COURSE, GradeAllOptions(out=out, only=("conv_output_size",)), backend=InlineBackend())
        assert working.exists()
    # the holder is gone (a killed run: its lock file stays, unlocked): the next run goes ahead and sweeps
    _fates(monkeypatch, [])
    summary = grade_all(klass, COURSE, GradeAllOptions(out=out, only=("conv_output_size",)), backend=InlineBackend())
    assert summary.recorded == 1
    assert not working.exists() and not (out / runner.TMP_DIR).exists() and not (out / runner.LOCK_FILE).exists()


@pytest.mark.slow
def test_a_worker_killed_from_outside_is_regraded_with_real_sandboxes(tmp_path):
    """An operator's ``kill -9`` of a real worker mid-exercise: graded again in a fresh worker, full marks."""
    import threading

    import psutil

    sub = reference_submission(tmp_path / "sub", {"strides": """
        import time as _time
        _slept = []
        _reference = conv_output_size
        def conv_output_size(n, k, stride=1, padding=0):
            if not _slept:  # the first call of each fresh worker takes a while: time to be killed
                _slept.append(1)
                _time.sleep(2)
            return _reference(n, k, stride, padding)
        """})
    course = course_with_limits(tmp_path, time_limit_s=20)
    killed: list[int] = []

    def kill_the_first_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for p in psutil.Process().children(recursive=True):
                try:
                    parent = p.parent()  # a worker: the fork server's child, both named by "--ctl" (not bwrap)
                    line, above = p.cmdline(), parent.cmdline() if parent is not None else []
                    if "--ctl" in line and "--ctl" in above and not any("bwrap" in a for a in above[:1] + line[:1]):
                        time.sleep(0.5)
                        os.kill(p.pid, signal.SIGKILL)
                        killed.append(p.pid)
                        return
                except (psutil.Error, ProcessLookupError):
                    continue
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_worker)
    killer.start()
    report = grade_module.grade_submission(sub, course, only=["conv_output_size"])
    killer.join()
    assert killed, "no worker was found to kill"
    result = report.exercises[0]
    assert (result.status, result.score) == ("passed", 5.0), result.message


# -- a Dask worker or scheduler killed ---------------------------------------------------------------------------

def _dask_class(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    course_with_limits(tmp_path, time_limit_s=8)
    klass = tmp_path / "class"
    students = ["alice", "bob", "carol", "dave"]
    for s in students:
        reference_submission(klass / s)
        (klass / s / "strides.py").write_text((klass / s / "strides.py").read_text() + f"\n# {s}\n")
    return tmp_path / "course.yml", klass, students


def _grade_all_cmd(course: Path, klass: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "--course", str(course), "grade-all", str(klass), "--out", str(out),
            "--only", "conv_output_size,pad2d", *extra]


def _all_passed(out: Path, students: list[str]) -> None:
    with Gradebook(out / "gradebook.sqlite") as gb:
        rows = gb.all_rows()
        assert sorted({r.student for r in rows}) == students and len(rows) == 2 * len(students)
        assert {r.status for r in rows} == {"passed"}
        assert gb.graded_twice() == []


@pytest.mark.slow
def test_a_killed_dask_worker_costs_nothing(tmp_path):
    from distributed import Client, LocalCluster

    course, klass, students = _dask_class(tmp_path)
    out = tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        proc = subprocess.Popen(_grade_all_cmd(course, klass, out, "--scheduler", cluster.scheduler_address), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not client.processing() or not any(client.processing().values()):
            assert proc.poll() is None and time.monotonic() < deadline, "no task reached the worker"
            time.sleep(0.05)
        time.sleep(1.0)
        for pid in client.run(os.getpid).values():
            os.kill(pid, signal.SIGKILL)  # its nanny starts a new one
        rc = proc.wait(timeout=400)
        assert rc in (0, 3), proc.stderr.read()[-2000:]  # retried by Dask, or reported and left unrecorded
        client.wait_for_workers(1, timeout=60)
        again = subprocess.run(_grade_all_cmd(course, klass, out, "--scheduler", cluster.scheduler_address), cwd=ROOT,
                               capture_output=True, text=True, timeout=400)
        assert again.returncode == 0, again.stderr[-2000:]
    _all_passed(out, students)


@pytest.mark.slow
def test_a_killed_dask_scheduler_is_reported_and_the_rerun_grades_the_rest(tmp_path):
    course, klass, students = _dask_class(tmp_path)
    out = tmp_path / "out"

    def cluster(port: int) -> tuple[subprocess.Popen, subprocess.Popen]:
        sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port),
                                  "--dashboard-address", ":0", "--host", "127.0.0.1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                   "--nthreads", "1", "--nworkers", "1", "--no-dashboard"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return sched, worker

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sched, worker = cluster(port)
    try:
        proc = subprocess.Popen(_grade_all_cmd(course, klass, out, "--scheduler", f"tcp://127.0.0.1:{port}"),
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while not (out / runner.TMP_DIR).exists() or not (out / "gradebook.sqlite").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(3)
        os.killpg(sched.pid, signal.SIGKILL)
        rc = proc.wait(timeout=300)
        err = proc.stderr.read()
        assert rc in (0, 3), err[-2000:]
        assert rc == 0 or "rerun the same command" in err  # what was not graded is named, nothing recorded
    finally:
        for p in (sched, worker):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    sched, worker = cluster(port)
    try:
        time.sleep(3)
        again = subprocess.run(_grade_all_cmd(course, klass, out, "--scheduler", f"tcp://127.0.0.1:{port}"), cwd=ROOT,
                               capture_output=True, text=True, timeout=400)
        assert again.returncode == 0, again.stderr[-2000:]
    finally:
        for p in (sched, worker):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    _all_passed(out, students)
