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

WAL mode, ``synchronous=FULL``; every write goes through :meth:`Gradebook.transaction`, so a kill
(even power loss) leaves either a whole student result or none of it.
"""
from __future__ import annotations

import json
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
    """The SQLite gradebook at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS)
        with self.transaction():
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: gradebook schema {version}, this grader writes {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside happen, or none (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
