"""Find the class: one submission per student folder or ``<student>.zip``, and the rules for student ids."""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..submission import shown

#: Folders of an nbgrader course directory that are not the submissions.
_NBGRADER_DIRS = ("source", "release", "autograded", "feedback")


@dataclass(frozen=True)
class StudentSubmission:
    student: str
    path: Path
    refused: str | None = None     # why this submission is not read at all (a link, a clashing id)


#: A plain student id: starts with a letter or digit, then letters, digits, ``. _ - @ +`` (no formula
#: starts, no path separators, no control characters), at most 100 characters.
_PLAIN_ID = re.compile(r"[^\W_][\w.@+-]{0,99}")


def id_problem(student: str) -> str | None:
    """Why ``student`` cannot be used as an id in the gradebook, file names and CSVs; None if it can."""
    if not _PLAIN_ID.fullmatch(student) or student.endswith("."):
        return ("not a plain student id (letters, digits and . _ - @ +, starting with a letter or digit, "
                "at most 100 characters); rename it to grade it")
    return None


def id_key(student: str) -> str:
    """The id as a case-insensitive file system or a spreadsheet sees it (Unicode NFKC, case folded)."""
    return unicodedata.normalize("NFKC", student).casefold()


def discover(root: Path, assignment: str | None = None) -> tuple[list[StudentSubmission], list[str]]:
    """One submission per student folder or ``<student>.zip``; notes say what was ignored and why.

    ``root`` may also be an nbgrader course directory (its ``submitted/`` folder is used); with
    ``assignment`` each student's submission is ``<student>/<assignment>``. Ids that are not plain
    names are left out (a note says so); a submission that is a link, or whose id equals another's
    after normalisation, is refused: its student gets status ``error`` with the reason.
    """
    root = Path(root)
    if (root / "submitted").is_dir():
        others = [p for p in root.iterdir() if p.name not in ("submitted", *_NBGRADER_DIRS)
                  and not p.name.startswith((".", "_")) and (p.is_dir() or p.suffix.lower() == ".zip")]
        if not others:  # an nbgrader course directory
            root = root / "submitted"
    found: dict[str, StudentSubmission] = {}
    notes: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        refused = None
        if entry.is_symlink():
            refused = ("the submission is a symbolic link; links are refused (a link could point at another "
                       "student's files): hand in the folder or zip itself")
        if entry.is_dir():
            student, path = entry.name, entry
            if assignment and not refused:
                path = entry / assignment
                if path.is_symlink():
                    refused = f"{assignment}/ is a symbolic link; links are refused: hand in the folder itself"
                elif not path.is_dir():
                    notes.append(f"{shown(student)}: no {assignment}/ folder, not graded")
                    continue
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            student, path = entry.stem, entry
        else:
            notes.append(f"{shown(entry.name)}: neither a folder nor a .zip, ignored")
            continue
        problem = id_problem(student)
        if problem:
            notes.append(f"{shown(entry.name)!r}: {problem}")
            continue
        if student in found:
            notes.append(f"{student}: both {found[student].path.name} and {entry.name}; grading {found[student].path.name}")
            continue
        found[student] = StudentSubmission(student, path, refused)
    by_key: dict[str, list[str]] = defaultdict(list)
    for student in found:
        by_key[id_key(student)].append(student)
    for same in (group for group in by_key.values() if len(group) > 1):
        why = (f"the student ids {', '.join(same)} are the same id to a case-insensitive file system or a "
               "spreadsheet; rename the submissions so that each student has one id")
        for student in same:
            found[student] = StudentSubmission(student, found[student].path, why)
        notes.append(f"refused {', '.join(same)}: the same id after normalisation (case, Unicode)")
    return list(found.values()), notes
