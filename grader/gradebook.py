"""The class gradebook: one SQLite file, written only by the machine that runs ``grade-all``.

Tables
  ``results``  one row per student and exercise: hashes (content, code, course, cache key), grader
               version and build, status, score, max score, the test results as JSON, timestamps,
               and where the result came from (``graded``, ``dedupe`` from another student this run,
               ``cache`` from an earlier run).
  ``students`` one row per student: the submission's content hash, path and (if it could not be
               read) the submission error.
  ``cache``    exercise results by cache key, so identical code is never graded (or trained) twice.
  ``events``   an append-only log: ``graded`` when a sandbox produced a result, ``recorded`` when a
               student's row was written, ``internal_error`` when the grader failed for a student.
  ``runs``     one row per ``grade-all`` invocation.

A ledger that survives: the rollback journal (``journal_mode=DELETE``, ``synchronous=FULL``), so every
committed record is in the main file itself and losing a side file (``-journal``, ``-wal``, ``-shm``)
loses nothing committed; every write goes through :meth:`Gradebook.transaction`, so a kill (even power
loss) leaves either a whole student result or none of it. Opening checks the file (SQLite header,
``PRAGMA quick_check``, the schema): a damaged gradebook (emptied, truncated, overwritten) raises
:class:`GradebookDamaged` -- never silently replaced by a new one -- and a full disk raises
:class:`DiskFull`. :meth:`Gradebook.backup` copies it with SQLite's backup API (one copy per run in
``backups/`` beside it); :func:`restore_latest` puts the newest good copy back.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
    grader_build TEXT NOT NULL, command TEXT NOT NULL, workers INTEGER, scheduler TEXT, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS students (
    student TEXT PRIMARY KEY, content_hash TEXT NOT NULL, submission TEXT NOT NULL,
    submission_error TEXT, recorded_at TEXT NOT NULL, run_id INTEGER);
CREATE TABLE IF NOT EXISTS results (
    student TEXT NOT NULL, exercise TEXT NOT NULL,
    content_hash TEXT NOT NULL, code_hash TEXT NOT NULL, course_hash TEXT NOT NULL, cache_key TEXT NOT NULL,
    grader_version TEXT NOT NULL, grader_build TEXT NOT NULL,
    status TEXT NOT NULL, score REAL NOT NULL, max_score REAL NOT NULL, bonus INTEGER NOT NULL,
    message TEXT NOT NULL, messages TEXT NOT NULL, duration_s REAL NOT NULL, isolation TEXT NOT NULL,
    origin TEXT NOT NULL, graded_at TEXT NOT NULL, recorded_at TEXT NOT NULL, run_id INTEGER,
    PRIMARY KEY (student, exercise));
CREATE TABLE IF NOT EXISTS cache (
    cache_key TEXT PRIMARY KEY, exercise TEXT NOT NULL, result TEXT NOT NULL, isolation TEXT NOT NULL,
    grader_build TEXT NOT NULL, graded_by TEXT NOT NULL, graded_at TEXT NOT NULL, run_id INTEGER);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER, at TEXT NOT NULL, kind TEXT NOT NULL,
    student TEXT, exercise TEXT, cache_key TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, cache_key);
"""


#: Backups kept in ``backups/`` beside the gradebook (one per run, the newest kept).
BACKUPS_KEPT = 10
_HEADER = b"SQLite format 3\x00"


class GradebookError(RuntimeError):
    """The gradebook cannot be used; the message is one line saying why and what to do."""


class GradebookDamaged(GradebookError):
    """The file is not an intact gradebook (emptied, truncated, overwritten, another schema)."""


class DiskFull(GradebookError):
    """The disk (or the gradebook's quota) is full; nothing committed is lost."""


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" and for an OSError ENOSPC/EDQUOT."""
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == 13  # SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _expected_columns() -> dict[str, list[str]]:
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        db.close()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class CachedResult:
    """An exercise result as the grader's JSON (``ExerciseResult.to_json()``) and how it was produced."""

    cache_key: str
    result: dict[str, Any]
    isolation: str
    graded_at: str
    graded_by: str


@dataclass(frozen=True)
class ResultRow:
    student: str
    exercise: str
    content_hash: str
    code_hash: str
    course_hash: str
    cache_key: str
    grader_version: str
    grader_build: str
    status: str
    score: float
    max_score: float
    bonus: bool
    message: str
    tests: list[dict[str, Any]]
    duration_s: float
    isolation: str
    origin: str
    graded_at: str
    recorded_at: str

    def as_result_json(self) -> dict[str, Any]:
        """The row as ``ExerciseResult.to_json()`` (what feedback and exports render)."""
        return {"id": self.exercise, "score": self.score, "max_score": self.max_score, "status": self.status,
                "duration_s": self.duration_s, "bonus": self.bonus, "message": self.message, "tests": self.tests}


class Gradebook:
    """The SQLite gradebook at ``path`` (created on first use, checked on every open)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = _check_file(self.path)
        if new:  # created whole beside it, then renamed: a kill never leaves an empty or half-made gradebook
            try:
                _create(self.path)
            except (sqlite3.Error, OSError) as exc:
                raise self._problem(exc) from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise self._problem(exc) from None
        try:
            self._open(new)
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._problem(exc) from None
            raise

    def _open(self, new: bool) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=30000")
        if self._db.execute("PRAGMA journal_mode=DELETE").fetchone()[0].lower() != "delete":
            raise GradebookError(f"{self.path}: the gradebook is open in another process in WAL mode; close it first")
        self._db.execute("PRAGMA synchronous=FULL")
        if not new:
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise self._damaged(f"SQLite's check fails ({str(check)[:120]})")
            self._check_schema()
        self._db.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS)
        with self.transaction():
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise GradebookError(f"{self.path}: gradebook schema {version}, this grader writes {SCHEMA_VERSION}")

    def _check_schema(self) -> None:
        have = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, columns in _expected_columns().items():
            if table not in have:
                raise self._damaged(f"its table {table!r} is missing")
            found = [c[1] for c in self._db.execute(f"PRAGMA table_info({table})")]
            if found != columns:
                raise self._damaged(f"its table {table!r} has columns {found}, expected {columns}")

    def _damaged(self, why: str) -> GradebookDamaged:
        return GradebookDamaged(damaged_message(self.path, why))

    def _problem(self, exc: BaseException) -> GradebookError:
        if is_disk_full(exc):
            return DiskFull(f"{self.path}: the disk is full ({exc}); nothing recorded was lost: free space and "
                            "rerun the same command")
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return GradebookError(f"{self.path}: the gradebook is locked by another program ({exc})")
        return self._damaged(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._db.close()

    def backup(self, keep: int = BACKUPS_KEPT) -> Path:
        """Copy the gradebook into ``backups/gradebook-<time>.sqlite`` beside it (SQLite's backup API, a
        consistent copy); keeps the newest ``keep`` copies."""
        folder = self.path.parent / "backups"
        folder.mkdir(exist_ok=True)
        target = folder / f"gradebook-{now().replace(':', '').replace('+0000', 'Z')}.sqlite"
        part = target.with_name(target.name + ".part")
        try:
            dest = sqlite3.connect(part)
            try:
                self._db.backup(dest)
            finally:
                dest.close()
            part.replace(target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        for old in sorted(folder.glob("gradebook-*.sqlite"))[:-keep]:
            old.unlink(missing_ok=True)
        return target

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside happen, or none (``BEGIN IMMEDIATE`` ... ``COMMIT``); a full disk is :class:`DiskFull`."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._problem(exc) from exc

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, build: str, command: str, workers: int | None, scheduler: str | None) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO runs (started_at, grader_build, command, workers, scheduler, status) "
                             "VALUES (?, ?, ?, ?, ?, 'running')", (now(), build, command, workers, scheduler))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished_at=?, status=? WHERE run_id=?", (now(), status, run_id))

    # -- reads -----------------------------------------------------------------------------
    def cached(self, cache_key: str) -> CachedResult | None:
        row = self._db.execute("SELECT * FROM cache WHERE cache_key=?", (cache_key,)).fetchone()
        if row is None:
            return None
        return CachedResult(row["cache_key"], json.loads(row["result"]), row["isolation"], row["graded_at"], row["graded_by"])

    def rows(self, student: str) -> dict[str, ResultRow]:
        """The student's recorded results by exercise id."""
        return {r.exercise: r for r in map(_row, self._db.execute("SELECT * FROM results WHERE student=?", (student,)))}

    def all_rows(self) -> list[ResultRow]:
        return [_row(r) for r in self._db.execute("SELECT * FROM results ORDER BY student, exercise")]

    def students(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT student FROM students ORDER BY student")]

    def events(self, kind: str | None = None, run_id: int | None = None) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM events WHERE 1=1", []
        if kind:
            sql, args = sql + " AND kind=?", [*args, kind]
        if run_id is not None:
            sql, args = sql + " AND run_id=?", [*args, run_id]
        return list(self._db.execute(sql + " ORDER BY id", args))

    def graded_twice(self) -> list[tuple[str, int]]:
        """Cache keys that a sandbox graded more than once (empty unless ``--force`` was used)."""
        return [(r[0], r[1]) for r in self._db.execute(
            "SELECT cache_key, COUNT(*) FROM events WHERE kind='graded' GROUP BY cache_key HAVING COUNT(*) > 1")]

    # -- writes (inside a transaction) -----------------------------------------------------
    def store_result(self, run_id: int, cache_key: str, result: dict[str, Any], isolation: str, graded_by: str,
                     graded_at: str) -> None:
        """A result a sandbox (or the grader's own checks) just produced: into the cache, and the event log."""
        self._db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (cache_key, result["id"], json.dumps(result), isolation, _build_of_run(self._db, run_id),
                          graded_by, graded_at, run_id))
        self._event(run_id, "graded", graded_by, result["id"], cache_key)

    def record(self, run_id: int, student: str, submission: str, content_hash: str, rows: list[dict[str, Any]],
               submission_error: str | None = None) -> None:
        """Write a student's rows (``results`` columns as a dict each) and their ``students`` entry."""
        stamp = now()
        self._db.execute("INSERT OR REPLACE INTO students VALUES (?, ?, ?, ?, ?, ?)",
                         (student, content_hash, submission, submission_error, stamp, run_id))
        for r in rows:
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (student, r["exercise"], content_hash, r["code_hash"], r["course_hash"], r["cache_key"],
                 r["grader_version"], r["grader_build"], r["status"], r["score"], r["max_score"], int(r["bonus"]),
                 r["message"], json.dumps(r["tests"]), r["duration_s"], r["isolation"], r["origin"], r["graded_at"],
                 stamp, run_id))
            self._event(run_id, "recorded", student, r["exercise"], r["cache_key"], r["origin"])

    def log_internal_error(self, run_id: int, student: str, message: str) -> None:
        with self.transaction():
            self._event(run_id, "internal_error", student, None, None, message)

    def _event(self, run_id: int, kind: str, student: str | None, exercise: str | None, cache_key: str | None,
               detail: str | None = None) -> None:
        self._db.execute("INSERT INTO events (run_id, at, kind, student, exercise, cache_key, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (run_id, now(), kind, student, exercise, cache_key, detail))


def damaged_message(path: Path, why: str) -> str:
    """One line: what is wrong with the gradebook and the way back."""
    backups = sorted((path.parent / "backups").glob("gradebook-*.sqlite"))
    how = (f"rerun with --restore-gradebook to put back the newest backup ({backups[-1].name}, in {path.parent / 'backups'}) "
           "and regrade what it lacks" if backups else
           "rerun with --restore-gradebook to set it aside and grade everything into a new gradebook")
    return f"{path}: the gradebook is damaged ({why}); it was left as it is: {how}"


def _check_file(path: Path) -> bool:
    """True when there is no gradebook yet; :class:`GradebookDamaged` when the file cannot be one.

    An empty file is damage, not a new gradebook: SQLite would silently start afresh in it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_HEADER))
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise GradebookDamaged(damaged_message(path, f"it cannot be read: {exc}")) from None
    if not head:
        raise GradebookDamaged(damaged_message(path, "the file is empty (0 bytes)"))
    if head != _HEADER:
        raise GradebookDamaged(damaged_message(path, "the file is not an SQLite database (overwritten?)"))
    return False


def _create(path: Path) -> None:
    part = path.with_name(path.name + ".creating")
    part.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(part, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=DELETE")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        finally:
            db.close()
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def restore_latest(path: Path) -> str:
    """Set a damaged gradebook aside (``<name>.damaged-<time>``) and put back the newest backup that passes
    the checks; returns one line saying what was done. Without a good backup, the next open starts anew."""
    path = Path(path)
    stamp = now().replace(":", "").replace("+0000", "Z")
    for side in ("-journal", "-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    aside = None
    if path.exists():
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        path.replace(aside)
    kept = f"; the damaged file is kept as {aside.name}" if aside else ""
    for backup in sorted((path.parent / "backups").glob("gradebook-*.sqlite"), reverse=True):
        try:
            with Gradebook(backup):
                pass
        except GradebookError:
            continue
        shutil.copyfile(backup, path)
        return f"restored {path.name} from {backup.name}{kept}"
    return f"no good backup: a new gradebook is started{kept}"


def _build_of_run(db: sqlite3.Connection, run_id: int) -> str:
    row = db.execute("SELECT grader_build FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return row[0] if row else ""


def _row(r: sqlite3.Row) -> ResultRow:
    return ResultRow(student=r["student"], exercise=r["exercise"], content_hash=r["content_hash"], code_hash=r["code_hash"],
                     course_hash=r["course_hash"], cache_key=r["cache_key"], grader_version=r["grader_version"],
                     grader_build=r["grader_build"], status=r["status"], score=r["score"], max_score=r["max_score"],
                     bonus=bool(r["bonus"]), message=r["message"], tests=json.loads(r["messages"]),
                     duration_s=r["duration_s"], isolation=r["isolation"], origin=r["origin"], graded_at=r["graded_at"],
                     recorded_at=r["recorded_at"])
