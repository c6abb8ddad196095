"""The ``grader`` command line: argument parsing and printing only."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coursekit.course import CourseConfigError, load_course, split_ids
from .resources import available_cpus

if TYPE_CHECKING:
    from coursekit.course import Course, Exercise

    from .class_run import RunSummary




def _selected(course: Course, args: argparse.Namespace) -> list[Exercise] | None:
    """The exercises ``--only``/``--skip`` select; None (the reason printed) when an id is unknown."""
    from .grade import select

    try:
        return select(course, split_ids(args.only), split_ids(args.skip))
    except KeyError as exc:
        print(f"grader: {exc.args[0]}", file=sys.stderr)
        return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grader", description="Grade, release and maintain the convnets course.")
    p.add_argument("--course", type=Path, default=None, help="course.yml to use (default: $COURSE_YML or the packaged one)")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one submission (a folder or a .zip)")
    g.add_argument("submission", type=Path)
    g.add_argument("--only", help="comma-separated exercise ids to grade")
    g.add_argument("--skip", help="comma-separated exercise ids to leave out")
    g.add_argument("--json", type=Path, help="write the JSON report here")
    g.add_argument("--feedback", type=Path, help="write feedback here (.md or .html)")
    g.add_argument("--allow-unsandboxed", action="store_true", help="run student code without isolation when none is available")
    g.add_argument("--parallel", type=int, default=min(4, available_cpus()), metavar="N",
                   help="exercises graded at once (default: the CPUs of this container's quota, at most 4); a training "
                        "exercise runs alone")

    ga = sub.add_parser("grade-all", help="grade a class: one folder or .zip per student (or nbgrader's submitted/)")
    ga.add_argument("submissions", type=Path, help="folder of student folders / zips, or an nbgrader course folder")
    ga.add_argument("--workers", type=int, default=available_cpus(), help="local grading processes (default: the CPUs of the quota)")
    ga.add_argument("--scheduler", help="dask.distributed scheduler address (grade on that cluster instead)")
    ga.add_argument("--out", type=Path, default=Path("grades"), help="gradebook, grades.csv, gradescope/, feedback/")
    ga.add_argument("--force", action="store_true", help="regrade everything, ignoring recorded results")
    ga.add_argument("--regrade", metavar="ID[,ID]", help="regrade these students, ignoring their recorded and cached results")
    ga.add_argument("--restore-gradebook", action="store_true",
                    help="a damaged gradebook: set it aside, put back the newest backup (grades/backups/), regrade the rest")
    ga.add_argument("--only", help="comma-separated exercise ids to grade")
    ga.add_argument("--skip", help="comma-separated exercise ids to leave out")
    ga.add_argument("--assignment", help="nbgrader layout: grade <student>/<ASSIGNMENT> in each student folder")
    ga.add_argument("--allow-unsandboxed", action="store_true", help="run student code without isolation when none is available")

    s = sub.add_parser("stubs", help="regenerate exercises/ from solutions/")
    s.add_argument("--check", action="store_true", help="only report drift; exit 1 when exercises/ is out of date")
    r = sub.add_parser("release", help="write what students get (stubs, public tests, notebooks, kit) into OUT")
    r.add_argument("out", type=Path)
    r.add_argument("--with-data", action="store_true", help="bundle the four MNIST .gz files (verified) into OUT/data/mnist")
    r.add_argument("--mnist-url", help="the kit's MNIST download mirror (default: course.yml data.mnist_url, else a public mirror)")
    nb = sub.add_parser("nbgrader", help="nbgrader course set-up").add_subparsers(dest="nbgrader_command", required=True)
    ni = nb.add_parser("init", help="write an nbgrader course (config, source/NAME/) whose autograder cells use this grader")
    ni.add_argument("course_dir", type=Path)
    ni.add_argument("--assignment", default="convnets", help="assignment name (default: convnets)")
    ni.add_argument("--only", help="comma-separated exercise ids to autograde (default: all)")
    nc = nb.add_parser("check", help="list submissions nbgrader must not copy (links, pipes, devices); exit 1 if any")
    nc.add_argument("assignment", help="the assignment name, as for `nbgrader autograde`")
    nc.add_argument("--course-dir", type=Path, default=Path("."), help="the nbgrader course folder (default: .)")
    # -- instructor tools (grader/similarity.py, grader/insights.py, grader/gradescope.py)
    sim = sub.add_parser("similarity", help="pairs of students whose code is suspiciously alike (HTML + CSV)")
    sim.add_argument("submissions", type=Path, help="folder of student folders / zips (as for grade-all)")
    sim.add_argument("--out", type=Path, default=Path("similarity"), help="where similarity.html/.csv go")
    sim.add_argument("--threshold", type=float, default=None, help="flag pairs from this similarity (0-1, default 0.5)")
    ins = sub.add_parser("insights", help="class insights from a grade-all gradebook: insights.html and insights.json")
    ins.add_argument("grades", type=Path, help="the --out folder of grade-all (holds gradebook.sqlite)")
    gs = sub.add_parser("gradescope", help="Gradescope autograder bundle").add_subparsers(dest="gradescope_command", required=True)
    gsb = gs.add_parser("build", help="write the autograder zip (setup.sh, run_autograder, grader, suites, reference)")
    gsb.add_argument("zip", type=Path, help="the zip to write, e.g. autograder.zip")
    gsb.add_argument("--no-case-lists", action="store_true",
                     help="do not grade the reference to ship the kept case lists (each run then generates its cases)")
    return p


def writable_target(path: Path, *, folder: bool = False) -> str | None:
    """Make ``path``'s parent folders (or ``path`` itself when ``folder``); the problem, or None when writable.

    Called before any grading starts, so a bad ``--json``/``--feedback``/``--out`` path is a usage
    error (exit 2) instead of a lost report after minutes of grading.
    """
    path = Path(path)
    where = path if folder else path.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the folder {where}: {exc.strerror or exc}"
    if folder:
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path}: folder is not writable"
        return None
    if path.is_dir():
        return f"{path} is a folder; give a file name"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path}: file is not writable"
    if not path.exists() and not os.access(where, os.W_OK | os.X_OK):
        return f"{where}: folder is not writable"
    return None


def _usage_errors(targets: list[tuple[Path | None, bool]]) -> int:
    """Check every output target (path, is_folder); print each problem; 2 if any, else 0."""
    problems = [msg for path, folder in targets if path is not None
                for msg in [writable_target(path, folder=folder)] if msg]
    for msg in problems:
        print(f"grader: {msg}", file=sys.stderr)
    return 2 if problems else 0


def _release(args: argparse.Namespace, course) -> int:
    from .release import ReleaseError, release

    if args.out.exists() and not args.out.is_dir():
        print(f"grader: {args.out} is a file; give a new folder", file=sys.stderr)
        return 2
    if _usage_errors([(args.out.parent, True)]):
        return 2
    try:
        files = release(course, args.out, with_data=args.with_data, mnist_url=args.mnist_url)
    except FileExistsError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    except ReleaseError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.out}")
    return 0


def _grade(args: argparse.Namespace, course) -> int:
    from rich.console import Console

    from .feedback import print_report, write_feedback
    from .grade import GraderInternalError, grade_submission
    from .submission import SubmissionError

    err = Console(stderr=True)
    if _selected(course, args) is None:
        return 2
    if not args.submission.exists():
        print(f"grader: {args.submission}: no such file or folder", file=sys.stderr)
        return 2
    if _usage_errors([(args.json, False), (args.feedback, False)]):
        return 2
    # One line per finished exercise. Without a terminal (CI, a pipe) rich's spinner shows nothing,
    # so the lines are plain prints, flushed at once.
    spinner = err.status("grading...") if err.is_terminal else contextlib.nullcontext()

    def finished(result) -> None:
        if err.is_terminal:
            err.print(progress_line(result), highlight=False)
        else:
            print(progress_line(result), file=sys.stderr, flush=True)

    try:
        with spinner:
            report = grade_submission(args.submission, course, split_ids(args.only), split_ids(args.skip), args.allow_unsandboxed,
                                      on_exercise=finished, parallel=max(1, args.parallel), threads=available_cpus())
    except SubmissionError as exc:
        print(f"grader: cannot grade {args.submission}: {exc}", file=sys.stderr)
        return 2
    except GraderInternalError as exc:
        print(f"grader: INTERNAL ERROR, no score was produced: {exc}", file=sys.stderr)
        return 3
    try:
        if args.json:
            report.write_json(args.json)
        if args.feedback:
            write_feedback(report, args.feedback)
    except OSError as exc:
        print(f"grader: the grade was computed but the report could not be written: {exc}", file=sys.stderr)
        return 3
    print_report(report)
    return 0


def progress_line(result) -> str:
    """One line per finished exercise: ``graded conv2d: passed, 20 / 20 (3.1 s)``."""
    bonus = " (bonus)" if result.bonus else ""
    return (f"graded {result.id}{bonus}: {result.status}, {round(result.score, 2):g} / {result.max_score:g}"
            f" ({result.duration_s:.1f} s)")


#: grade-all's exit codes beyond 0 (done), 2 (usage) and 3 (internal error).
EXIT_GRADEBOOK = 4     # the gradebook is damaged or unusable (one line says how to recover)
EXIT_DISK_FULL = 5     # the disk is full; nothing recorded was lost


def _grade_all(args: argparse.Namespace, course) -> int:
    """``grader grade-all``: 0, usage errors 2, internal errors 3, a damaged gradebook 4, a full disk 5."""
    import shlex

    from .class_run import ClassRunError, GradeAllOptions, grade_all
    from .gradebook import DiskFull, GradebookError

    if _usage_errors([(args.out, True)]):
        return 2
    exercises = _selected(course, args)
    if exercises is None:
        return 2
    if not args.submissions.is_dir():
        print(f"grader: {args.submissions}: not a folder of submissions", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("grader: --workers must be at least 1", file=sys.stderr)
        return 2
    options = GradeAllOptions(out=args.out, workers=args.workers, scheduler=args.scheduler, force=args.force,
                              only=tuple(split_ids(args.only)), skip=tuple(split_ids(args.skip)),
                              allow_unsandboxed=args.allow_unsandboxed,
                              assignment=args.assignment, command=shlex.join(sys.argv[1:]) or "grade-all",
                              regrade=tuple(split_ids(args.regrade)), restore_gradebook=args.restore_gradebook)
    try:
        with _ClassProgress() as progress:
            summary = grade_all(args.submissions, course, options, observer=progress)
        _print_class_summary(summary, Path(args.out) / "gradebook.sqlite", course, exercises)
    except ClassRunError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    except DiskFull as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_DISK_FULL
    except GradebookError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_GRADEBOOK
    for student, why in sorted(summary.export_failures.items()):
        print(f"grader: the grade of {student} is recorded, but their feedback page and results.json could not "
              f"be written: {why}", file=sys.stderr)
    if summary.internal_errors:
        for student, why in sorted(summary.internal_errors.items()):
            print(f"grader: INTERNAL ERROR for {student}, nothing recorded: {why}", file=sys.stderr)
        print(f"grader: {len(summary.internal_errors)} students not graded; rerun the same command after fixing "
              f"the grader", file=sys.stderr)
        return 3
    return 3 if summary.export_failures else 0


class _ClassProgress:
    """grade-all's progress bar on stderr (a :class:`grader.class_run.RunObserver`)."""

    def __enter__(self) -> "_ClassProgress":
        self._bar: Any = None
        self._task: Any = None
        self._failed: list[str] = []
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def reading(self, students: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total} students, {task.fields[exercises]} exercises graded; "
                              "failures: {task.fields[failures]}"),
                   TimeElapsedColumn(), TextColumn("left:"), TimeRemainingColumn()]
        console = Console(stderr=True)
        if not console.is_terminal:  # a log file: one wide final line rather than a cut one
            console = Console(stderr=True, width=200)
        self._bar = Progress(*columns, console=console, transient=False)
        self._bar.__enter__()
        self._task = self._bar.add_task("reading submissions", total=students, failures="none", exercises="0")

    def grading(self, up_to_date: int) -> None:
        self._bar.update(self._task, description=f"grading ({up_to_date} up to date)", advance=up_to_date)

    def settled(self, student: str, failed: bool) -> None:
        if failed:
            self._failed.append(student)
        self._bar.update(self._task, advance=1, failures=self._failures_text())

    def exercises_graded(self, done: int, total: int) -> None:
        self._bar.update(self._task, exercises=f"{done}/{total}")

    def _failures_text(self) -> str:
        """The failing students by name, the last three when there are more."""
        if not self._failed:
            return "none"
        names = ", ".join(self._failed[-3:])
        return f"{len(self._failed)} ({'..., ' if len(self._failed) > 3 else ''}{names})"


def _print_class_summary(summary: RunSummary, gb_path: Path, course: Course, exercises: list[Exercise]) -> None:
    """grade-all's final table: per exercise, how the class did; then what this run did."""
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    from .exports import current_rows
    from .gradebook import Gradebook
    from .report import STATUSES

    with Gradebook(gb_path) as gb:
        rows = [r for who in summary.class_keys for r in current_rows(gb, course, who)]
        graded_now = Counter(e["exercise"] for e in gb.events("graded", summary.run_id))
    table = Table(title=f"Class grades ({summary.students} students)", title_justify="left")
    table.add_column("exercise")
    table.add_column("mean", justify="right")
    table.add_column("statuses")
    table.add_column("graded now", justify="right")
    for ex in exercises:
        mine = [r for r in rows if r.exercise == ex.id]
        counts = Counter(r.status for r in mine)
        mean = sum(r.score for r in mine) / len(mine) if mine else 0.0
        table.add_row(ex.id, f"{mean:.3g} / {ex.points:g}", ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]),
                      str(graded_now.get(ex.id, 0)))
    console = Console()
    console.print(table)
    console.print(f"{summary.recorded} students recorded, {summary.up_to_date} already up to date; "
                  f"{summary.graded} exercise results graded, {summary.copied} copied (cache or identical code); "
                  f"{len(summary.unreadable)} unreadable submissions; {summary.backend}, {summary.workers} workers; "
                  f"{summary.wall_s:.1f} s")
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)


def _stubs(args: argparse.Namespace, course) -> int:
    from .stubs import check_stubs, write_stubs

    if args.check:
        drifts = check_stubs(course)
        for d in drifts:
            print(f"{d.path}: {d.reason}")
        if drifts:
            print("exercises/ is out of date: run `grader stubs`", file=sys.stderr)
        return 1 if drifts else 0
    for path in write_stubs(course):
        print(f"wrote {path}")
    return 0


def _nbgrader(args: argparse.Namespace, course) -> int:
    from .nbgrader import command

    return command(args, course)


def _instructor_tool(args: argparse.Namespace, course) -> int:
    """similarity / insights / gradescope: each module has its own ``command(args, course)``."""
    from importlib import import_module

    return import_module(f".{args.command}", __package__).command(args, course)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        course = load_course(args.course)
    except CourseConfigError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    handlers = {"grade": _grade, "grade-all": _grade_all, "stubs": _stubs, "release": _release, "nbgrader": _nbgrader,
                "similarity": _instructor_tool, "insights": _instructor_tool, "gradescope": _instructor_tool}
    try:
        return handlers[args.command](args, course)
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
    except Exception:  # an internal error: say what happened, never print a partial score as final
        print("grader: internal error (no score was produced):", file=sys.stderr)
        traceback.print_exc()
        return 3


if __name__ == "__main__":
    sys.exit(main())
