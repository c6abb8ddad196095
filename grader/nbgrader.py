"""``grader nbgrader init``: an nbgrader course whose autograder cells call this grader.

The course folder it writes::

    nbgrader_config.py          exclude_overwriting, cell timeout, our autograde preprocessors
    source/<assignment>/
        exercises/*.py          the stubs (nbgrader copies .py files as they are: never solutions)
        coursekit/, tests/public/, course.yml, pyproject.toml   what `grader release` gives students
        01_...ipynb ...         the course notebooks, their text cells read-only
        grading.ipynb           one locked autograder cell per exercise, points from course.yml

Each autograder cell runs :func:`grader.nbgrader_cell.autograde_cell`, which grades the student's ``exercises/*.py``
with the hidden suites of the installed grader: student code runs in the sandbox, never in the
notebook kernel, and the cell's value is the points earned (nbgrader's partial-credit rule).
The functions below are one transformation each, in the spirit of nbgrader's preprocessors.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.course import DEFAULT_COURSE_FILE, Course, Exercise, split_ids

#: The notebook holding the autograder cells.
GRADING_NOTEBOOK = "grading"
DEFAULT_ASSIGNMENT = "convnets"
#: Added to the longest exercise time limit (course.yml) for nbgrader's per-cell timeout: worker
#: start, loading MNIST on the grader's side, and scoring all happen inside the cell too.
CELL_TIMEOUT_MARGIN_S = 300
#: What nbgrader leaves in place of a solution block in a notebook (the default raises).
CODE_STUB = "# YOUR CODE HERE\n"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class NbgraderSetupError(RuntimeError):
    """nbgrader cannot work in this environment; the message says what to do."""


# --------------------------------------------------------------------------- environment checks
def check_alembic() -> str:
    """Path of the ``alembic`` command nbgrader's gradebook set-up runs; raise if it is not on PATH.

    nbgrader creates ``gradebook.db`` by running ``alembic`` through PATH. Installing nbgrader puts
    ``alembic`` in the same bin folder as ``nbgrader``; calling that nbgrader by its full path
    without the folder on PATH (an inactive virtual environment) fails when the gradebook is created.
    """
    found = shutil.which("alembic")
    if found:
        return found
    beside = Path(sys.executable).parent / "alembic"
    hint = (f"it is installed in {beside.parent}: run `export PATH={beside.parent}:$PATH` (or activate that environment)"
            if beside.exists() else "install nbgrader in this environment (`pip install nbgrader`), which installs alembic")
    raise NbgraderSetupError("`alembic` is not on PATH, and nbgrader needs it to create its gradebook (gradebook.db): " + hint)


def check_nbgrader() -> None:
    """Raise when nbgrader is not importable here (the config imports our preprocessors next to it)."""
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise NbgraderSetupError("nbgrader is not installed in this environment: `pip install nbgrader` "
                                 "(or `pip install -e '.[nbgrader]'`)") from None


# --------------------------------------------------------------------------- cell metadata
def nbgrader_metadata(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
                      points: float | None = None) -> dict:
    """nbgrader's cell metadata (schema 3) for one cell."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def read_only(cell: NotebookNode, grade_id: str) -> NotebookNode:
    """Mark ``cell`` read-only: students cannot change it, autograde restores it."""
    cell.metadata["nbgrader"] = nbgrader_metadata(grade_id, locked=True)
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


def autograder_cell(exercise: Exercise, package: str = "exercises") -> NotebookNode:
    """A locked autograder cell worth ``exercise.points`` that grades ``exercise`` with the hidden suites.

    The grading call sits between hidden-test markers: the release keeps only the comment (a
    student running it has no grader installed), autograde restores the call from the gradebook.
    """
    source = (f"# Autograder for {exercise.id} ({exercise.points:g} points{', bonus' if exercise.bonus else ''}): "
              f"the course's hidden tests run on your\n"
              f"# {package}/{exercise.module}.py, in a sandbox, when your instructor grades the assignment.\n"
              "### BEGIN HIDDEN TESTS\n"
              "from grader.nbgrader_cell import autograde_cell\n"
              f"autograde_cell({exercise.id!r}, points={exercise.points:g})\n"
              "### END HIDDEN TESTS")
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = nbgrader_metadata(autograder_id(exercise.id), grade=True, locked=True, points=exercise.points)
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


def autograder_id(exercise_id: str) -> str:
    return f"autograde_{exercise_id}"


# --------------------------------------------------------------------------- notebooks
def grading_notebook(course: Course, exercises: Sequence[Exercise]) -> NotebookNode:
    """The notebook nbgrader executes at autograde: read-only text and one autograder cell per exercise."""
    rows = "\n".join(f"| {e.id} | `{course.student_package}/{e.module}.py` | {e.points:g}{' (bonus)' if e.bonus else ''} |"
                     for e in exercises)
    regular = sum(e.points for e in exercises if not e.bonus)
    bonus = sum(e.points for e in exercises if e.bonus)
    intro = (f"# Grading: {course.title}\n\n"
             f"Your instructor grades your `{course.student_package}/*.py` modules with this notebook. Each cell below "
             "runs the course's hidden tests on one exercise, with your code in a sandbox, and earns its points "
             "(partial credit per test). Running it yourself does nothing: check your work with `pytest` and the "
             "notebooks.\n\n"
             "| exercise | module | points |\n|---|---|---:|\n" + rows + "\n\n"
             f"Total: {regular:g} points" + (f", plus {bonus:g} bonus points. nbgrader has no bonus cells, so its "
                                             f"gradebook counts them in its maximum ({regular + bonus:g}); the course "
                                             f"counts them only in your score." if bonus else "."))
    cells = [read_only(new_markdown_cell(intro), "grading_intro")]
    for e in exercises:
        functions = ", ".join(f"`{f}`" for f in e.functions)
        title = (f"## {e.id}{' (bonus)' if e.bonus else ''}: {e.points:g} points\n\n"
                 f"`{course.student_package}/{e.module}.py`: {functions}" + (
                     "\n\n**Bonus**: these points add to your score beyond the course total." if e.bonus else ""))
        cells.append(read_only(new_markdown_cell(title), f"title_{e.id}"))
        cells.append(autograder_cell(e, course.student_package))
    return new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})


def course_notebook(path: Path) -> NotebookNode:
    """A course notebook with its text cells read-only; code cells stay the students' to run and edit."""
    nb = nbformat.read(str(path), as_version=4)
    slug = _slug(path.stem)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            read_only(cell, f"{slug}_text_{index}")
    nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))
    return nb


def by_hand_cells() -> list[NotebookNode]:
    """Practice (not graded): two numbers of the chapter's model to work out by hand.

    A solution cell (nbgrader replaces the block with :data:`CODE_STUB` in the release) and a
    read-only self-check.
    """
    intro = new_markdown_cell(
        "## By hand (practice, not graded)\n\n"
        "After the first 2×2 max pooling the chapter's model holds 13×13 maps with 32 channels. The second "
        "convolution has 64 kernels of size 3×3, stride 1, no padding. Work out, without calling any function, "
        "the side of its output maps and its number of weights and biases.")
    answer = new_code_cell(
        "side_after_second_conv = None   # replace None with your number\n"
        "params_second_conv = None\n"
        "### BEGIN SOLUTION\n"
        "side_after_second_conv = 13 - 3 + 1\n"
        "params_second_conv = 3 * 3 * 32 * 64 + 64\n"
        "### END SOLUTION")
    answer.metadata["nbgrader"] = nbgrader_metadata("by_hand_answer", solution=True)
    check = new_code_cell(
        "from coursekit import notebook as nb\n\n"
        "if side_after_second_conv is None or params_second_conv is None:\n"
        "    print(\"⏳ fill in the two numbers above, then run this cell again\")\n"
        "else:\n"
        "    nb.check(\"side of the maps after the second convolution\", side_after_second_conv, 11)\n"
        "    nb.check(\"weights and biases of the second convolution\", params_second_conv, 18_496)")
    return [read_only(intro, "by_hand_intro"), answer, read_only(check, "by_hand_check")]


def with_by_hand(notebooks: dict[str, NotebookNode]) -> dict[str, NotebookNode]:
    """Append the by-hand practice to the strides notebook, or give it a notebook of its own."""
    target = next((name for name in sorted(notebooks) if "stride" in name), None)
    if target is None:
        notebooks = {**notebooks, "by_hand": new_notebook(metadata={"kernelspec": dict(KERNELSPEC)})}
        target = "by_hand"
    notebooks[target].cells.extend(by_hand_cells())
    return notebooks


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_") or "notebook"


# --------------------------------------------------------------------------- files
def student_files(course: Course, dest: Path) -> list[Path]:
    """What students get (``grader release``: stubs, self-checks, kit, course.yml) without its notebooks folder."""
    from .release import release

    with tempfile.TemporaryDirectory(prefix="nbgrader-release-") as tmp:
        out = Path(tmp) / "release"
        release(course, out, nbgrader=True)
        shutil.rmtree(out / "notebooks", ignore_errors=True)  # nbgrader only handles notebooks at the top level
        shutil.copytree(out, dest, dirs_exist_ok=True)
    return sorted(p for p in dest.rglob("*") if p.is_file())


def exclude_overwriting(course: Course, stubs: Sequence[str]) -> list[str]:
    """Files nbgrader must not overwrite at autograde: the student's modules (relative to source/NAME)."""
    return [f"{course.student_package}/{name}" for name in sorted(stubs)]


def cell_timeout(course: Course) -> int:
    """nbgrader's per-cell timeout: the longest exercise time limit (MNIST training) plus a margin."""
    return int(max(course.limits(e.id).time_limit_s for e in course.exercises)) + CELL_TIMEOUT_MARGIN_S


CONFIG_TEMPLATE = '''\
"""nbgrader configuration for "{title}" (written by `grader nbgrader init`).

Run nbgrader in this folder, in the environment where the course grader is installed, with that
environment's bin folder on PATH (nbgrader runs `alembic` from PATH to create gradebook.db).
"""
import os

from grader.nbgrader_preprocessors import (autograde_preprocessors, feedback_preprocessors, install_guards,
                                          sanitize_preprocessors)

c = get_config()  # noqa: F821 -- provided by nbgrader

# A submission holding a link (to a classmate's module, the gradebook, /proc/...) or anything that is not a
# regular file or folder is refused before nbgrader copies it (its copy follows links); feedback holds the
# HTML pages only. `grader nbgrader check {assignment}` lists the refused students before autograding.
install_guards()
{course_env}
c.CourseDirectory.course_id = {course_id!r}

# The students' modules are what gets graded. Without this, nbgrader replaces every submitted file
# with its version in source/ -- the stubs -- before grading.
c.Autograde.exclude_overwriting = {exclude!r}

# One autograder cell grades one exercise; MNIST training may take its whole course.yml time limit.
c.Execute.timeout = {timeout}

# A deleted autograder cell is put back; code cells a student adds to a graded notebook are dropped;
# only graded notebooks run, each in a kernel started in an empty folder (a submitted grader/ or
# numpy.py cannot shadow the installed packages). Student code runs only in the grader's sandbox.
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
c.Autograde.autograde_preprocessors = autograde_preprocessors()

# Markdown and raw cells reach the feedback pages as inert HTML: nbgrader's feedback template passes a
# Markdown cell's raw HTML through (<script>, onerror=, javascript: links), so every one is cleaned first.
c.GenerateFeedback.preprocessors = feedback_preprocessors()
c.HTMLExporter.sanitize_html = True  # and cell outputs (text/html, text/markdown) are cleaned by nbconvert

# A solution block in a notebook becomes this in the release (nbgrader's default raises an error).
c.ClearSolutions.code_stub = {{"python": {code_stub!r}}}
'''


def config_text(course: Course, assignment: str, stubs: Sequence[str]) -> str:
    """The course's nbgrader_config.py."""
    course_file = (course.root / "course.yml").resolve()
    course_env = ("" if course_file == DEFAULT_COURSE_FILE.resolve()
                  else f"os.environ.setdefault(\"COURSE_YML\", {str(course_file)!r})  # the course the cells grade\n")
    return CONFIG_TEMPLATE.format(title=course.title, course_env=course_env, course_id=_slug(course.title).lower(),
                                  assignment=assignment,
                                  exclude={assignment: exclude_overwriting(course, stubs)},
                                  timeout=cell_timeout(course), code_stub=CODE_STUB)


def init_course(course: Course, course_dir: Path, assignment: str = DEFAULT_ASSIGNMENT,
                only: Sequence[str] | None = None, notebooks_dir: Path | None = None) -> list[Path]:
    """Write an nbgrader course into ``course_dir``; returns the files written.

    ``only`` limits the autograder cells to these exercise ids (all by default); ``notebooks_dir``
    defaults to the course's ``notebooks/``.
    """
    from .grade import select
    from .stubs import render_stubs

    if not assignment or not _slug(assignment) == assignment:
        raise ValueError(f"assignment name {assignment!r}: use letters, digits and underscores")
    exercises = select(course, only)
    course_dir = Path(course_dir)
    source = course_dir / "source" / assignment
    config = course_dir / "nbgrader_config.py"
    for existing in (config, source):
        if existing.exists():
            raise FileExistsError(f"{existing} already exists; choose a new course folder")
    source.mkdir(parents=True)
    written = student_files(course, source)

    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else course.root / "notebooks"
    notebooks = {p.stem: course_notebook(p) for p in sorted(notebooks_dir.glob("*.ipynb"))} if notebooks_dir.is_dir() else {}
    notebooks = with_by_hand(notebooks)
    if GRADING_NOTEBOOK in notebooks:
        raise ValueError(f"{notebooks_dir} already holds a {GRADING_NOTEBOOK}.ipynb")
    notebooks[GRADING_NOTEBOOK] = grading_notebook(course, exercises)
    for name, nb in notebooks.items():
        nbformat.validate(nb)
        path = source / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        written.append(path)

    config.write_text(config_text(course, assignment, render_stubs(course)), encoding="utf-8")
    written.append(config)
    return written


# --------------------------------------------------------------------------- submissions nbgrader must not copy
def submission_problem(folder: Path, student: str) -> str | None:
    """Why nbgrader must not copy ``submitted/<student>/<assignment>``: a link, or anything that is not a
    regular file or folder, anywhere in it (the student folder and the assignment folder included)."""
    from .submission import SubmissionError, check_tree

    folder = Path(folder)
    for path in (folder.parent, folder):
        if path.is_symlink():
            return f"{path.name} is a symbolic link; links are refused: hand in the folder itself"
    if not folder.is_dir():
        return None
    try:
        check_tree(folder, label=f"{student}'s {folder.name}")
    except SubmissionError as exc:
        return str(exc)
    return None


def check_submissions(course_dir: Path, assignment: str) -> tuple[list[str], dict[str, str]]:
    """(students whose submission may be autograded, refused student -> why) in ``course_dir/submitted``."""
    ok: list[str] = []
    refused: dict[str, str] = {}
    submitted = Path(course_dir) / "submitted"
    for entry in sorted(submitted.iterdir()) if submitted.is_dir() else []:
        folder = entry / assignment
        if not (entry.is_dir() or entry.is_symlink()) or not (folder.exists() or folder.is_symlink()):
            continue
        problem = submission_problem(folder, entry.name)
        if problem:
            refused[entry.name] = problem
        else:
            ok.append(entry.name)
    return ok, refused


def check_command(args: argparse.Namespace) -> int:
    """``grader nbgrader check``: 0 when every submission may be autograded, 1 when some are refused."""
    from .submission import shown

    course_dir = Path(args.course_dir)
    if not (course_dir / "submitted").is_dir():
        print(f"grader: {course_dir}/submitted: no such folder (collect the submissions first)", file=sys.stderr)
        return 2
    ok, refused = check_submissions(course_dir, args.assignment)
    for student, why in refused.items():
        print(f"REFUSED {shown(student)}: {why}")
    print(f"{len(ok)} submissions of {args.assignment} can be autograded; {len(refused)} refused"
          + (" (`nbgrader autograde` will not grade them; ask those students to resubmit plain files)" if refused else ""))
    return 1 if refused else 0


# --------------------------------------------------------------------------- command line
def command(args: argparse.Namespace, course: Course) -> int:
    """Run ``grader nbgrader init`` or ``check``; 0 on success, 2 with a one-line message otherwise."""
    if getattr(args, "nbgrader_command", "init") == "check":
        return check_command(args)
    only = split_ids(args.only)
    try:
        check_nbgrader()
        check_alembic()
        files = init_course(course, args.course_dir, args.assignment, only or None)
    except (NbgraderSetupError, FileExistsError, ValueError, KeyError) as exc:
        print(f"grader: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.course_dir} (assignment {args.assignment!r}); next, in that folder:\n"
          f"  nbgrader generate_assignment {args.assignment}")
    return 0
