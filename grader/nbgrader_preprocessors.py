"""nbgrader preprocessors that keep student code out of the autograde kernel.

nbgrader runs every submitted notebook as the instructor, in the submission folder. For this
course only the autograder cells need to run, and they grade the student's modules in the
grader's sandbox. So, at ``nbgrader autograde`` (set up by ``nbgrader_config.py``):

* :class:`DropUnknownCode` removes code cells a student added to a graded notebook;
* :class:`GradingExecute` runs graded notebooks only, in a kernel started in an empty folder
  (a submitted ``grader/`` or ``numpy.py`` cannot shadow the installed packages), and tells the
  autograder cells where the submission is.

:func:`install_guards` (called by ``nbgrader_config.py``) changes two of nbgrader's converters:

* ``nbgrader autograde`` refuses a submission holding a link, or anything that is not a regular
  file or folder, *before* nbgrader copies it (its copy follows links, as the instructor: a link to
  a classmate's module or to ``gradebook.db`` would arrive with its contents). The student is not
  graded; the log says why; the other students are graded;
* ``nbgrader generate_feedback`` writes only the HTML pages, never copies of the submitted files.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from nbformat import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.autograde import Autograde
from nbgrader.converters.generate_feedback import GenerateFeedback
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells

from .nbgrader import submission_problem
from .nbgrader_cell import SUBMISSION_ENV


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set one environment variable (inherited by the kernel) for the duration of the block."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _graded_cell_names(resources: dict[str, Any]) -> tuple[set[str], set[str]] | None:
    """(grade cell names, all source cell names) of this notebook in the gradebook; None if unknown."""
    info = resources.get("nbgrader", {})
    try:
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            return {c.name for c in notebook.grade_cells}, {c.name for c in notebook.source_cells}
    except (KeyError, MissingEntry):
        return None


class DropUnknownCode(NbGraderPreprocessor):
    """In a notebook with grade cells, drop every code cell that is not one of the instructor's cells."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        names = _graded_cell_names(resources)
        if not names or not names[0]:
            return nb, resources
        known = names[1]
        kept = []
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "code" and grade_id not in known:
                self.log.warning("Dropping a code cell that is not in the source notebook: %r", cell.source[:80])
                continue
            kept.append(cell)
        nb.cells = kept
        return nb, resources


class GradingExecute(Execute):
    """nbgrader's Execute for notebooks with grade cells, in a kernel whose folder is empty.

    Notebooks without grade cells (the course notebooks) are not run: at autograde they earn
    nothing and would run student code in the kernel. The submission folder reaches the
    autograder cells through ``$GRADER_NBGRADER_SUBMISSION``.
    """

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        names = _graded_cell_names(resources)
        if not names or not names[0]:
            self.log.info("Not executing %s: it has no autograder cells", resources.get("nbgrader", {}).get("notebook"))
            return nb, resources
        metadata = resources.setdefault("metadata", {})
        submission = str(Path(metadata.get("path") or ".").resolve())
        saved = metadata.get("path")
        with tempfile.TemporaryDirectory(prefix="nbgrader-kernel-") as empty, _env(SUBMISSION_ENV, submission):
            metadata["path"] = empty
            try:
                return super().preprocess(nb, resources, km)
            finally:
                metadata["path"] = saved


def _defaults(name: str) -> list:
    return list(Autograde.class_traits()[name].default())


def sanitize_preprocessors() -> list:
    """nbgrader's sanitize steps, with :class:`DropUnknownCode` right after ``OverwriteCells``."""
    steps = _defaults("sanitize_preprocessors")
    steps.insert(steps.index(OverwriteCells) + 1, DropUnknownCode)
    return steps


def autograde_preprocessors() -> list:
    """nbgrader's autograde steps, with :class:`GradingExecute` in place of ``Execute``."""
    return [GradingExecute if step is Execute else step for step in _defaults("autograde_preprocessors")]


class SubmissionRefused(RuntimeError):
    """A submission nbgrader must not copy (a link, a device, a pipe); the message says why."""


def _guarded_init_assignment(original: Any) -> Any:
    def init_assignment(self: Autograde, assignment_id: str, student_id: str) -> None:
        problem = submission_problem(Path(self._format_source(assignment_id, student_id)), student_id)
        if problem:
            self.log.error("Not grading %s: %s", student_id, problem)
            raise SubmissionRefused(f"{student_id}: {problem}")
        original(self, assignment_id, student_id)

    init_assignment.__grader_guard__ = True  # type: ignore[attr-defined]
    return init_assignment


def _feedback_pages_only(self: GenerateFeedback, assignment_id: str, student_id: str) -> None:
    """Copy none of the autograded folder's other files: feedback holds the HTML pages only."""
    self.log.info("Feedback for %s holds the HTML pages only (no copies of submitted files)", student_id)


def install_guards() -> None:
    """Refuse links at ``nbgrader autograde``; HTML pages only at ``generate_feedback`` (idempotent)."""
    if not getattr(Autograde.init_assignment, "__grader_guard__", False):
        Autograde.init_assignment = _guarded_init_assignment(Autograde.init_assignment)
    GenerateFeedback.init_assignment = _feedback_pages_only
