"""The ``grader`` command line: argument parsing and printing only."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Optional

from coursekit.course import CourseConfigError, load_course


def _ids(text: Optional[str]) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


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

    ga = sub.add_parser("grade-all", help="grade a class: one folder or .zip per student (or nbgrader's submitted/)")
    ga.add_argument("submissions", type=Path, help="folder of student folders / zips, or an nbgrader course folder")
    ga.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="local grading processes")
    ga.add_argument("--scheduler", help="dask.distributed scheduler address (grade on that cluster instead)")
    ga.add_argument("--out", type=Path, default=Path("grades"), help="gradebook, grades.csv, gradescope/, feedback/")
    ga.add_argument("--force", action="store_true", help="regrade everything, ignoring recorded results")
    ga.add_argument("--only", help="comma-separated exercise ids to grade")
    ga.add_argument("--skip", help="comma-separated exercise ids to leave out")
    ga.add_argument("--assignment", help="nbgrader layout: grade <student>/<ASSIGNMENT> in each student folder")
    ga.add_argument("--allow-unsandboxed", action="store_true", help="run student code without isolation when none is available")

    s = sub.add_parser("stubs", help="regenerate exercises/ from solutions/")
    s.add_argument("--check", action="store_true", help="only report drift; exit 1 when exercises/ is out of date")
    r = sub.add_parser("release", help="write what students get (stubs, public tests, notebooks, kit) into OUT")
    r.add_argument("out", type=Path)
    nb = sub.add_parser("nbgrader", help="nbgrader course set-up").add_subparsers(dest="nbgrader_command", required=True)
    ni = nb.add_parser("init", help="write an nbgrader course (config, source/NAME/) whose autograder cells use this grader")
    ni.add_argument("course_dir", type=Path)
    ni.add_argument("--assignment", default="convnets", help="assignment name (default: convnets)")
    ni.add_argument("--only", help="comma-separated exercise ids to autograde (default: all)")
    return p


def _release(args: argparse.Namespace, course) -> int:
    from .release import release

    try:
        files = release(course, args.out)
    except FileExistsError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.out}")
    return 0


def _grade(args: argparse.Namespace, course) -> int:
    from rich.console import Console

    from .feedback import print_report, write_feedback
    from .grade import GraderInternalError, grade_submission, select
    from .submission import SubmissionError

    err = Console(stderr=True)
    try:
        select(course, _ids(args.only), _ids(args.skip))
    except KeyError as exc:
        print(f"grader: {exc.args[0]}", file=sys.stderr)
        return 2
    if not args.submission.exists():
        print(f"grader: {args.submission}: no such file or folder", file=sys.stderr)
        return 2
    try:
        with err.status("grading...") as status:
            report = grade_submission(args.submission, course, _ids(args.only), _ids(args.skip), args.allow_unsandboxed,
                                      on_exercise=lambda r: status.update(f"graded {r.id}: {r.status}"))
    except SubmissionError as exc:
        print(f"grader: cannot grade {args.submission}: {exc}", file=sys.stderr)
        return 2
    except GraderInternalError as exc:
        print(f"grader: INTERNAL ERROR, no score was produced: {exc}", file=sys.stderr)
        return 3
    print_report(report)
    if args.json:
        report.write_json(args.json)
    if args.feedback:
        write_feedback(report, args.feedback)
    return 0


def _grade_all(args: argparse.Namespace, course) -> int:
    from .class_run import command

    return command(args, course)


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


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        course = load_course(args.course)
    except CourseConfigError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2
    handlers = {"grade": _grade, "grade-all": _grade_all, "stubs": _stubs, "release": _release, "nbgrader": _nbgrader}
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
