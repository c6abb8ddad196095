"""Plan a class run against the gradebook and record what it produces: one transaction per finished student.

What needs grading: a row with the current cache key and content hash needs nothing (resume); a result
for the key in the gradebook's cache (an earlier run, another student) is copied; a key several
students share this run is graded by one representative and copied to the others; the rest becomes
one job per student (:func:`~grader.class_run.job.run_job`).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from coursekit.course import Course, Exercise

from .. import __version__
from ..exports import StudentKeys
from ..fingerprint import grader_build
from ..gradebook import Gradebook, now
from .discovery import StudentSubmission
from ..report import NOT_GRADED
from .reading import NO_SANDBOX, StudentPlan, error_result, read_submission


@dataclass
class RunSummary:
    run_id: int
    students: int
    up_to_date: int = 0                      # nothing to do: already recorded for the current content
    recorded: int = 0                        # students written this run
    graded: int = 0                          # exercise results produced this run (sandboxes, or no code to run)
    copied: int = 0                          # exercise rows filled from the cache or another student
    internal_errors: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    backend: str = ""
    workers: int = 0
    notes: list[str] = field(default_factory=list)
    class_keys: list[StudentKeys] = field(default_factory=list)  # the current class, for exports and the table
    export_failures: dict[str, str] = field(default_factory=dict)  # student -> why their pages were not written


@dataclass
class _Available:
    result: dict[str, Any]
    isolation: str
    graded_at: str
    graded_by: str
    this_run: bool


class ClassRun:
    """One ``grade-all``: plan against the gradebook, grade what is missing, record, export."""

    def __init__(self, course: Course, exercises: list[Exercise], gb: Gradebook, summary: RunSummary, *,
                 force: bool = False, allow_unsandboxed: bool = False,
                 on_student: Callable[[str, bool], None] | None = None, regrade: Iterable[str] = ()) -> None:
        self.course, self.exercises = course, exercises
        self.gb, self.summary, self.run_id = gb, summary, summary.run_id
        self.force, self.allow_unsandboxed = force, allow_unsandboxed
        self.regrade = frozenset(regrade)              # students regraded as with --force, and only they
        self.on_student = on_student                   # (student, failed) once per student settled
        self.build = grader_build()
        self.plans: dict[str, StudentPlan] = {}
        self.available: dict[str, _Available] = {}     # cache key -> result usable this run
        self.owner: dict[str, str] = {}                # cache key -> the student whose job grades it
        self.needed: dict[str, dict[str, str]] = {}    # student -> exercise id -> cache key still to record
        self.waiting_on: dict[str, set[str]] = defaultdict(set)  # cache key -> students waiting for it
        self.failed: dict[str, str] = {}               # student -> why nothing was recorded

    # -- planning --------------------------------------------------------------------------
    def _needs(self, plan: StudentPlan) -> dict[str, str]:
        rows = {} if self._fresh(plan.student) else self.gb.rows(plan.student)
        needs = {}
        for ex in self.exercises:
            key = plan.keys[ex.id].cache_key
            row = rows.get(ex.id)
            if row is None or row.cache_key != key or row.content_hash != plan.content_hash \
                    or row.status == NOT_GRADED:  # never up to date: the same command grades it again
                needs[ex.id] = key
        return needs

    def _fresh(self, student: str) -> bool:
        """Regrade this student whatever is recorded or cached (``--force``, ``--regrade``)."""
        return self.force or student in self.regrade

    def plan(self, subs: list[StudentSubmission]) -> list[dict[str, Any]]:
        """Read every submission, record what needs no grading, and return the jobs."""
        job_exercises: dict[str, list[str]] = defaultdict(list)
        for sub in subs:
            try:
                plan = read_submission(sub, self.course, self.build)
            except Exception as exc:  # a grader bug on this submission: no score for this student, the class goes on
                why = f"reading the submission failed: {type(exc).__name__}: {exc}"
                self.summary.internal_errors[sub.student] = why
                self.gb.log_internal_error(self.run_id, sub.student, why)
                self._settled(sub.student, True)
                continue
            self.plans[plan.student] = plan
            needs = self._needs(plan)
            if not needs:
                self.summary.up_to_date += 1
                continue
            self.needed[plan.student] = needs
            if plan.error is not None:
                self.summary.unreadable.append(plan.student)
                for ex_id, key in needs.items():
                    self.available.setdefault(key, _Available(error_result(self.course.exercise(ex_id), plan.error),
                                                              NO_SANDBOX, now(), plan.student, True))
                self._record(plan.student, store=[])
                continue
            local_store = []
            for ex_id, key in needs.items():
                if key in self.available or key in self.owner:
                    continue
                hit = None if self._fresh(plan.student) else self.gb.cached(key)
                if hit is not None and hit.result.get("status") != NOT_GRADED:
                    self.available[key] = _Available(hit.result, hit.isolation, hit.graded_at, hit.graded_by, False)
                    continue
                self.owner[key] = plan.student
                if ex_id in plan.local:
                    self.available[key] = _Available(plan.local[ex_id], NO_SANDBOX, now(), plan.student, True)
                    local_store.append(key)
                else:
                    job_exercises[plan.student].append(ex_id)
            pending = {k for k in needs.values() if k not in self.available}
            for key in pending:
                self.waiting_on[key].add(plan.student)
            if not pending:
                self._record(plan.student, store=local_store)
            elif local_store:
                with self.gb.transaction():
                    self._store(local_store)
        # longest first, for a better balance: an exercise's time limit (course.yml) is its expected weight
        weight = {ex.id: self.course.limits(ex.id).time_limit_s for ex in self.course.exercises}
        course_json = self.course.model_dump_json()
        jobs = [{"student": s, "package": self.course.student_package, "files": self.plans[s].sources,
                 "exercises": ids, "course": course_json, "content_hash": self.plans[s].content_hash,
                 "allow_unsandboxed": self.allow_unsandboxed, "threads": None}
                for s, ids in job_exercises.items()]
        jobs.sort(key=lambda j: -sum(weight[i] for i in j["exercises"]))
        return jobs

    # -- recording -------------------------------------------------------------------------
    def _store(self, keys: Iterable[str]) -> None:
        for key in keys:
            a = self.available[key]
            if a.result.get("status") == NOT_GRADED:  # never cached: no later run may reuse it
                continue
            self.gb.store_result(self.run_id, key, a.result, a.isolation, a.graded_by, a.graded_at)
            self.summary.graded += 1

    def _complete(self, student: str) -> bool:
        return student not in self.failed and all(k in self.available for k in self.needed[student].values())

    def _record(self, student: str, store: Iterable[str] = ()) -> None:
        """One transaction: results just produced (``store``) and the student's rows."""
        plan = self.plans[student]
        rows = []
        for ex_id, key in self.needed[student].items():
            a = self.available[key]
            origin = ("graded" if a.graded_by == student else "dedupe") if a.this_run else "cache"
            self.summary.copied += origin != "graded"
            k = plan.keys[ex_id]
            rows.append({"exercise": ex_id, "code_hash": k.code_hash, "course_hash": k.course_hash, "cache_key": key,
                         "grader_version": __version__, "grader_build": self.build, "status": a.result["status"],
                         "score": a.result["score"], "max_score": a.result["max_score"], "bonus": a.result["bonus"],
                         "message": a.result.get("message", ""), "tests": a.result.get("tests", []),
                         "duration_s": a.result.get("duration_s", 0.0), "isolation": a.isolation, "origin": origin,
                         "graded_at": a.graded_at})
        with self.gb.transaction():
            self._store(store)
            self.gb.record(self.run_id, student, str(plan.submission), plan.content_hash, rows, plan.error)
        self.summary.recorded += 1
        del self.needed[student]
        self._settled(student, any(r["status"] in ("error", "timeout", "forbidden") for r in rows))

    def _fail(self, student: str, why: str) -> None:
        if student in self.failed or student not in self.needed:
            return
        self.failed[student] = why
        self.summary.internal_errors[student] = why
        self.gb.log_internal_error(self.run_id, student, why)
        self._settled(student, True)

    def fail_unfinished(self) -> None:
        """Every student still waiting on a result that never came: an internal error, nothing recorded."""
        for student in list(self.needed):
            self._fail(student, "no result was produced")

    def _settled(self, student: str, failed: bool) -> None:
        if self.on_student:
            self.on_student(student, failed)

    def finish_job(self, result: dict[str, Any]) -> None:
        """Record what one job produced, and every student it completes."""
        student = result["student"]
        plan = self.plans[student]
        if result.get("ok") and result.get("build") != self.build:
            result = {**result, "ok": False, "error": f"the grading worker on {result.get('host')} runs grader "
                                                      f"{result.get('build')}, this machine {self.build}"}
        if result.get("ok") and result["report"].get("content_hash") != plan.content_hash:
            result = {**result, "ok": False, "error": "the grading worker saw different files than were sent"}
        if not result.get("ok"):
            keys = [k for k, s in self.owner.items() if s == student and k not in self.available]
            self._fail(student, result.get("error", "unknown error"))
            for key in keys:
                for other in sorted(self.waiting_on.pop(key, ())):
                    self._fail(other, f"needs the result of {student}'s identical code, which failed: "
                                      f"{result.get('error')}")
            return
        report = result["report"]
        produced = []
        for ex_result in report["exercises"]:
            key = plan.keys[ex_result["id"]].cache_key
            self.available[key] = _Available(ex_result, report["isolation"], now(), student, True)
            produced.append(key)
        if student in self.needed and self._complete(student):
            self._record(student, store=produced)
        else:
            with self.gb.transaction():
                self._store(produced)
        for key in produced:
            for other in sorted(self.waiting_on.pop(key, ())):
                if other in self.needed and self._complete(other):
                    self._record(other)
