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


#: Tags that rendered Markdown uses (CommonMark, tables, strike-through, the HTML notebooks commonly hold);
#: everything else (script, style, iframe, object, form, svg, math ...) is escaped and shown as text.
MARKDOWN_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"})
#: URL schemes a link or an image may use (no javascript:, vbscript:, file: ...); data: only for images.
URL_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """No event handler or style on any tag; links and images only with their own attributes."""
    if name in ("title", "class", "id"):
        return True
    if tag == "a":
        return name == "href" and not value.strip().lower().startswith("data:")
    if tag == "img":
        return name in ("alt", "width", "height") or (
            name == "src" and (not value.strip().lower().startswith("data:") or value.strip().lower().startswith("data:image/")))
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan", "align")
    if tag == "ol":
        return name == "start"
    return False


def sanitized_markdown_html(source: str) -> str:
    """A Markdown cell's source rendered as nbconvert renders it, then cleaned (bleach): returned as one line of
    HTML that Markdown passes through unchanged (an HTML block), so the page shows the same text and math."""
    import bleach
    from nbconvert.filters.markdown import markdown2html

    clean = bleach.clean(markdown2html(source), tags=MARKDOWN_TAGS, attributes=_allowed_attribute,
                         protocols=URL_PROTOCOLS, strip=False, strip_comments=True)
    # One line: a blank line would end Markdown's HTML block; "&#10;" is a newline again in text and <pre>.
    return '<div class="grader-sanitized">' + clean.replace("\r", "").replace("\n", "&#10;") + "</div>"


class SanitizeStudentText(NbGraderPreprocessor):
    """Make every Markdown and raw cell inert HTML before it reaches a page (formgrader, generate_feedback).

    nbgrader's feedback template renders Markdown cells with raw HTML passed through (``<script>``, ``onerror=``,
    ``javascript:`` links, iframes) and does not apply nbconvert's ``sanitize_html``. A student can add or edit
    such cells in any submitted notebook, so each one is rendered and cleaned here (:func:`sanitized_markdown_html`);
    a raw cell is shown as escaped text, never as HTML. A student-added cell also loses its nbgrader metadata
    (a grade id or points of its own would reach the page's table of contents unescaped).
    """

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        names = _graded_cell_names(resources)
        known = names[1] if names else None
        for cell in nb.cells:
            if cell.cell_type not in ("markdown", "raw"):
                continue
            meta = cell.setdefault("metadata", {})
            if known is not None and meta.get("nbgrader", {}).get("grade_id") not in known:
                meta.pop("nbgrader", None)
            if cell.cell_type == "markdown":
                if not str(cell.source).startswith('<div class="grader-sanitized">'):
                    cell.source = sanitized_markdown_html(str(cell.source))
                cell.pop("attachments", None)  # pasted images: their attachment: links are cleaned away anyway
            else:
                import html

                meta.pop("raw_mimetype", None)
                meta.pop("format", None)
                cell.cell_type, cell.source = "markdown", f'<div class="grader-sanitized"><pre>{html.escape(str(cell.source)).replace(chr(10), "&#10;")}</pre></div>'
        return nb, resources


def _defaults(name: str) -> list:
    return list(Autograde.class_traits()[name].default())


def sanitize_preprocessors() -> list:
    """nbgrader's sanitize steps, with :class:`DropUnknownCode` and :class:`SanitizeStudentText` right after
    ``OverwriteCells``."""
    steps = _defaults("sanitize_preprocessors")
    steps[steps.index(OverwriteCells) + 1:steps.index(OverwriteCells) + 1] = [DropUnknownCode, SanitizeStudentText]
    return steps


def feedback_preprocessors() -> list:
    """``generate_feedback``'s steps with :class:`SanitizeStudentText` first: notebooks autograded before it
    existed are cleaned too."""
    return [SanitizeStudentText, *GenerateFeedback.class_traits()["preprocessors"].default()]


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
