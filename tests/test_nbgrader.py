"""`grader nbgrader init` and the real nbgrader workflow: release, autograde, gradebook, feedback, export.

The end-to-end test runs nbgrader's own CLI (`python -m nbgrader`) on a course written by
`grader nbgrader init --only ...` (fast exercises plus `convnet`; `mnist_accuracy` trains for
minutes), with three students: the reference modules, the untouched stubs, and an attacker.
"""
from __future__ import annotations

import csv
import functools
import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="nbgrader is in the dev extra: pip install -e '.[dev]'")

from coursekit.course import load_course  # noqa: E402
from grader import nbgrader as nbg  # noqa: E402
from grader import nbgrader_cell as nbc  # noqa: E402
from grader.cli import main  # noqa: E402
from grader.stubs import BEGIN, END, render_stubs  # noqa: E402
from grading_helpers import reference_submission  # noqa: E402
from test_release import _meaningful, hidden_suite_lines, solution_block_lines  # noqa: E402

COURSE = load_course()
ASSIGNMENT = "convnets"
#: Graded end to end: fast numpy exercises, a bonus one, and the model check (not mnist_accuracy).
GRADED = ["conv_output_size", "pad2d", "avgpool2d", "maxpool2d_backward", "convnet"]
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def nbgrader(course_dir: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """Run the real nbgrader CLI in ``course_dir`` (PATH: this environment's bin, where alembic is)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_YML", "PYTHONPATH")}
    if not installed_grader_is_this_checkout():
        # nbgrader and its kernels must run this checkout's grader. (PYTHONPATH comes before the kernel's
        # working folder on sys.path, so it also hides a submitted grader/ package: install with
        # `pip install -e .` here to test that defence at full strength, as CI does.)
        env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = path if path is not None else f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=900)


@functools.lru_cache(maxsize=1)
def installed_grader_is_this_checkout() -> bool:
    """True when a fresh interpreter outside the checkout imports ``grader`` from this checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run([sys.executable, "-c", "import grader; print(grader.__file__)"], cwd="/", env=env,
                           capture_output=True, text=True, timeout=120).stdout.strip()
    return bool(found) and Path(found).resolve().parent == ROOT / "grader"


def notebook_solution_lines(source: Path) -> set[str]:
    """Meaningful lines inside the solution blocks of the source notebooks."""
    lines: set[str] = set()
    for path in source.glob("*.ipynb"):
        for cell in nbformat.read(str(path), as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                s = line.strip()
                if s == BEGIN:
                    inside = True
                elif s == END:
                    inside = False
                elif inside and _meaningful(s):
                    lines.add(s)
    return lines


def tree_text(root: Path) -> str:
    """Every file under ``root`` as text; notebooks as their cells' sources and outputs."""
    parts = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".ipynb":
            nb = nbformat.read(str(p), as_version=4)
            parts += [c.source + "\n" + json.dumps(c.get("outputs", []), ensure_ascii=False) for c in nb.cells]
        else:
            parts.append(p.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def html_text(path: Path) -> str:
    """What a reader sees in an HTML page: tags removed (code is split in highlighting spans), entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def grading_cells(path: Path) -> list:
    return [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]


def leaks(text: str, secret: set[str], already_released: str) -> list[str]:
    """Lines of ``secret`` found in ``text`` that `grader release` does not already ship.

    What `grader release` writes is tests/test_release.py's to check; these tests check what the
    nbgrader set-up adds (notebooks, grading cells, config) and what nbgrader does with it.
    """
    return sorted(s for s in secret if s in text and s not in already_released)


@pytest.fixture(scope="module")
def released_text(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("plain_release") / "course"
    assert main(["release", str(out)]) == 0
    return tree_text(out)


# ----------------------------------------------------------------------------- init (fast)
@pytest.fixture(scope="module")
def full_course(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nbgrader") / "course"
    assert main(["nbgrader", "init", str(out)]) == 0
    return out


def test_the_assignment_readme_is_the_release_readme_for_nbgrader(full_course):
    """One student README template: the kit's set-up (pinned torch first), nbgrader's way of handing in."""
    readme = (full_course / "source" / ASSIGNMENT / "README.md").read_text(encoding="utf-8")
    assert "pip install torch==" in readme and "pytest -m conv2d" in readme
    assert "grading.ipynb" in readme and "jupyter lab .\n" in readme and "notebooks/" not in readme


def test_one_autograder_cell_per_exercise_with_course_points(full_course):
    nb = nbformat.read(str(full_course / "source" / ASSIGNMENT / "grading.ipynb"), as_version=4)
    nbformat.validate(nb)
    graded = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert sorted(graded) == sorted(nbg.autograder_id(e.id) for e in COURSE.exercises)
    for e in COURSE.exercises:
        cell = graded[nbg.autograder_id(e.id)]
        meta = cell.metadata.nbgrader
        assert cell.cell_type == "code" and meta["locked"] and not meta["solution"]
        assert meta["points"] == e.points
        assert f"autograde_cell({e.id!r}, points={e.points:g})" in cell.source
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for e in COURSE.exercises:
        assert (f"## {e.id} (bonus)" in text) == e.bonus
    # every other cell is read-only: students cannot edit the grading notebook
    assert all(c.metadata.get("nbgrader", {}).get("locked") for c in nb.cells)


def test_source_holds_stubs_course_notebooks_and_nothing_hidden(full_course, released_text):
    source = full_course / "source" / ASSIGNMENT
    for name, text in render_stubs(COURSE).items():
        assert (source / COURSE.student_package / name).read_text(encoding="utf-8") == text
    everything = tree_text(source)
    secret, hidden = solution_block_lines(), hidden_suite_lines()
    assert leaks(everything, secret | hidden, released_text) == []
    assert not (source / "solutions").exists() and not (source / "grader").exists()
    course_notebooks = sorted(p.name for p in (COURSE.root / "notebooks").glob("*.ipynb"))
    assert course_notebooks and all((source / name).is_file() for name in course_notebooks)
    for name in course_notebooks:
        nb = nbformat.read(str(source / name), as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown":
                assert meta.get("locked"), f"{name}: text cells are read-only"
            assert not meta.get("grade"), f"{name}: course notebooks carry no points"
    solutions = [c for p in source.glob("*.ipynb") for c in nbformat.read(str(p), as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("solution")]
    assert solutions and all(BEGIN in c.source for c in solutions)


def test_config_excludes_student_modules_and_sets_a_training_sized_timeout(full_course):
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import Execute, OverwriteCells
    from traitlets.config.loader import PyFileConfigLoader

    from grader.nbgrader_preprocessors import DropUnknownCode, GradingExecute

    config = PyFileConfigLoader("nbgrader_config.py", path=str(full_course)).load_config()
    excluded = Autograde(config=config).exclude_overwriting[ASSIGNMENT]
    assert sorted(excluded) == sorted(f"{COURSE.student_package}/{name}" for name in render_stubs(COURSE))
    executor = GradingExecute(config=config)
    mnist_limit = COURSE.limits("mnist_accuracy").time_limit_s
    assert executor.timeout >= mnist_limit + 60, "a cell must outlast MNIST training in the sandbox"
    assert executor.interrupt_on_timeout
    assert OverwriteCells(config=config).add_missing_cells
    steps = config.Autograde.autograde_preprocessors
    assert GradingExecute in steps and Execute not in steps
    assert DropUnknownCode in config.Autograde.sanitize_preprocessors


def test_without_notebooks_the_practice_gets_its_own_notebook(tmp_path):
    nbg.init_course(COURSE, tmp_path / "course", only=["conv_output_size"], notebooks_dir=tmp_path / "none")
    source = tmp_path / "course" / "source" / ASSIGNMENT
    assert sorted(p.name for p in source.glob("*.ipynb")) == ["by_hand.ipynb", "grading.ipynb"]
    cells = grading_cells(source / "grading.ipynb")
    assert [c.metadata.nbgrader["grade_id"] for c in cells] == ["autograde_conv_output_size"]


def test_init_refuses_an_existing_course_and_unknown_ids(full_course, tmp_path, capsys):
    before = (full_course / "nbgrader_config.py").read_text()
    assert main(["nbgrader", "init", str(full_course)]) == 2
    assert (full_course / "nbgrader_config.py").read_text() == before
    assert main(["nbgrader", "init", str(tmp_path / "x"), "--only", "conv3d"]) == 2
    assert "conv3d" in capsys.readouterr().err
    assert not (tmp_path / "x" / "nbgrader_config.py").exists()


def test_missing_alembic_is_reported_before_anything_is_written(tmp_path, monkeypatch, capsys):
    assert Path(nbg.check_alembic()).name == "alembic"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(nbg.NbgraderSetupError, match="alembic.*not on PATH"):
        nbg.check_alembic()
    assert main(["nbgrader", "init", str(tmp_path / "course")]) == 2
    err = capsys.readouterr().err
    assert "alembic" in err and str(BIN) in err  # says where it is: this environment's bin
    assert not (tmp_path / "course").exists()


def test_nbgrader_needs_alembic_on_path(tmp_path):
    """The trap is real: nbgrader started by its full path, without its bin folder on PATH, cannot create a gradebook."""
    course = tmp_path / "course"
    course.mkdir()
    failed = nbgrader(course, "db", "student", "add", "ada", path="/usr/bin:/bin")
    assert failed.returncode != 0 and "alembic" in failed.stdout + failed.stderr
    worked = nbgrader(course, "db", "student", "add", "ada")
    assert worked.returncode == 0, worked.stderr[-2000:]


# ----------------------------------------------------------------------------- the autograder cell (fast)
def test_autograde_cell_gives_partial_credit_and_keeps_stderr_clean(tmp_path, monkeypatch, capfd):
    """A wrong answer earns part of the points; a student (and the grader) writing to stderr leaves no trace
    on the cell's stderr, which nbgrader would score 0."""
    sub = tmp_path / "sub"
    reference_submission(sub / COURSE.student_package, {"strides": """
        import os, sys
        def conv_output_size(n, k, stride=1, padding=0):
            print("debugging", file=sys.stderr)
            os.write(2, b"raw stderr")
            return (n - k) // stride + 1          # forgets the padding
        """})
    monkeypatch.setenv(nbc.SUBMISSION_ENV, str(sub))
    score = nbc.autograde_cell("conv_output_size", points=5)
    out, err = capfd.readouterr()
    assert 0 < score < 5, out
    assert err == ""
    assert "conv_output_size:" in out and "failed" in out


def test_autograde_cell_survives_os_exit_in_student_code(tmp_path, monkeypatch, capfd):
    sub = reference_submission(tmp_path / "sub" / COURSE.student_package, {"pooling": """
        import os
        def avgpool2d(x, kernel_size, stride=None):
            os._exit(0)
        """}).parent
    monkeypatch.setenv(nbc.SUBMISSION_ENV, str(sub))
    assert nbc.autograde_cell("avgpool2d", points=5) == 0
    assert nbc.autograde_cell("maxpool2d") == COURSE.exercise("maxpool2d").points  # same module, still graded
    assert capfd.readouterr().err == ""


def test_autograde_cell_fails_loudly_instead_of_guessing(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(nbc.SUBMISSION_ENV, str(tmp_path))
    with pytest.raises(nbc.AutogradeError, match="course.yml"):
        nbc.autograde_cell("conv_output_size", points=7)

    def broken(*args, **kwargs):
        print("grader internals", file=sys.stderr)
        raise RuntimeError("suite crashed")

    monkeypatch.setattr("grader.grade.grade_submission", broken)
    with pytest.raises(nbc.AutogradeError, match="suite crashed"):
        nbc.autograde_cell("conv_output_size")
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------- links and instructor paths (fast)
def test_check_refuses_links_and_pipes_per_student(tmp_path, capsys):
    course = tmp_path / "course"
    submitted = course / "submitted"
    reference_submission(submitted / "ada" / ASSIGNMENT / COURSE.student_package)
    eve = submitted / "eve" / ASSIGNMENT / COURSE.student_package
    eve.mkdir(parents=True)
    (eve / "strides.py").symlink_to("../../../ada/convnets/exercises/strides.py")
    (submitted / "zed" / ASSIGNMENT).mkdir(parents=True)
    os.mkfifo(submitted / "zed" / ASSIGNMENT / "notes.txt")
    (submitted / "lou").symlink_to(submitted / "ada")
    (submitted / "max").mkdir()
    (submitted / "max" / ASSIGNMENT).symlink_to(submitted / "ada" / ASSIGNMENT)
    ok, refused = nbg.check_submissions(course, ASSIGNMENT)
    assert ok == ["ada"] and sorted(refused) == ["eve", "lou", "max", "zed"]
    assert "exercises/strides.py" in refused["eve"] and "symbolic link" in refused["eve"]
    assert "not a regular file" in refused["zed"]
    assert main(["nbgrader", "check", ASSIGNMENT, "--course-dir", str(course)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED eve:" in out and "1 submissions of convnets can be autograded; 4 refused" in out
    assert str(tmp_path) not in out
    shutil.rmtree(submitted)
    reference_submission(submitted / "ada" / ASSIGNMENT / COURSE.student_package)
    assert main(["nbgrader", "check", ASSIGNMENT, "--course-dir", str(course)]) == 0


def test_config_installs_the_guards(full_course):
    from nbgrader.converters.autograde import Autograde
    from nbgrader.converters.generate_feedback import GenerateFeedback
    from traitlets.config.loader import PyFileConfigLoader

    PyFileConfigLoader("nbgrader_config.py", path=str(full_course)).load_config()
    assert getattr(Autograde.init_assignment, "__grader_guard__", False)
    assert GenerateFeedback.init_assignment.__name__ == "_feedback_pages_only"


def test_public_text_keeps_instructor_paths_out(tmp_path):
    sub = tmp_path / "autograded" / "eve" / ASSIGNMENT
    text = (f"cannot grade in {sub}: File \"/home/prof/venv/lib/python3.11/site-packages/grader/grade.py\", "
            f"line 3; 1/2 of x / y; see https://example.org/a/b")
    public = nbc.public_text(text, sub)
    assert str(tmp_path) not in public and "/home/prof" not in public
    assert "your submission" in public and "…/grade.py" in public
    assert "1/2 of x / y" in public and "https://example.org/a/b" in public


def test_autograde_cell_failure_shows_no_instructor_path(tmp_path, monkeypatch, capfd):
    sub = reference_submission(tmp_path / "secret-course" / "autograded" / "eve" / COURSE.student_package).parent
    (sub / "link.txt").symlink_to("/proc/self/environ")
    monkeypatch.setenv(nbc.SUBMISSION_ENV, str(sub))
    with pytest.raises(nbc.AutogradeError) as info:
        nbc.autograde_cell("conv_output_size")
    assert "symbolic link" in str(info.value) and "secret-course" not in str(info.value)
    assert capfd.readouterr().err == ""


def test_autograde_error_shows_as_one_line_in_a_kernel(tmp_path, monkeypatch, capfd):
    """In IPython (the autograde kernel) the failure is an error output of one line: no traceback
    through the grader's files, no course folder."""
    from IPython.core.interactiveshell import InteractiveShell

    sub = reference_submission(tmp_path / "secret-course" / "autograded" / "eve" / COURSE.student_package).parent
    (sub / "link.txt").symlink_to("/proc/self/environ")
    monkeypatch.setenv(nbc.SUBMISSION_ENV, str(sub))
    shell = InteractiveShell.instance()
    try:
        result = shell.run_cell("from grader.nbgrader_cell import autograde_cell\nautograde_cell('conv_output_size')")
        out = capfd.readouterr().out
    finally:
        InteractiveShell.clear_instance()
    assert isinstance(result.error_in_exec, nbc.AutogradeError)
    assert "AutogradeError: the grader could not grade conv_output_size" in out and "symbolic link" in out
    assert "secret-course" not in out and "Traceback" not in out and str(ROOT) not in out


# ----------------------------------------------------------------------------- the real nbgrader, end to end
MALLORY_CELL = """\
import grader.nbgrader_cell as g
g.autograde_cell = lambda exercise_id, points=None: float(points)   # every cell full marks
"""

SHADOW_GRADER = """\
def autograde_cell(exercise_id, points=None):
    return float(points)
"""


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    """init -> generate_assignment -> three submissions -> autograde -> generate_feedback -> export."""
    course = tmp_path_factory.mktemp("nbgrader_e2e") / "course"
    assert main(["nbgrader", "init", str(course), "--assignment", ASSIGNMENT, "--only", ",".join(GRADED)]) == 0
    done = nbgrader(course, "generate_assignment", ASSIGNMENT)
    assert done.returncode == 0, done.stderr[-3000:]
    release = course / "release" / ASSIGNMENT

    def submit(student: str) -> Path:
        folder = course / "submitted" / student / ASSIGNMENT
        shutil.copytree(release, folder)
        return folder / COURSE.student_package

    # ada hands in the reference modules
    reference_submission(submit("ada"))
    # stan hands in the stubs untouched, plus a grader/ package that would give full marks if imported
    shadow = submit("stan").parent / "grader"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    (shadow / "nbgrader_cell.py").write_text(SHADOW_GRADER)
    # mallory: a partial answer, stderr chatter, os._exit in one exercise, and a cell that rewrites the scores
    reference_submission(submit("mallory"), {
        "strides": """
            def conv_output_size(n, k, stride=1, padding=0):
                return (n - k) // stride + 1
            """,
        "padding": """
            import sys
            _pad2d = pad2d
            def pad2d(x, pad, value=0.0):
                print("pad2d debugging output", file=sys.stderr)
                return _pad2d(x, pad, value)
            """,
        "pooling": """
            import os
            def avgpool2d(x, kernel_size, stride=None):
                os._exit(1)
            """})
    notebook = course / "submitted" / "mallory" / ASSIGNMENT / "grading.ipynb"
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(MALLORY_CELL))
    nb.cells[2:2] = payload_cells()  # student-added Markdown and raw cells carrying HTML/JS (issue 17.8)
    nbformat.write(nb, str(notebook))
    # eve: her modules are links to ada's, plus links to the gradebook, the config and the environment
    eve = submit("eve")
    for module in eve.glob("*.py"):
        module.unlink()
        module.symlink_to(Path("../../../ada") / ASSIGNMENT / COURSE.student_package / module.name)
    (eve.parent / "gradebook.txt").symlink_to("../../../gradebook.db")
    (eve.parent / "config.txt").symlink_to("../../../nbgrader_config.py")
    (eve.parent / "environ.txt").symlink_to("/proc/self/environ")

    assert main(["nbgrader", "check", ASSIGNMENT, "--course-dir", str(course)]) == 1
    done = nbgrader(course, "autograde", ASSIGNMENT)  # eve is refused, the others graded: nbgrader exits 1
    assert done.returncode == 1 and "Not grading eve" in done.stderr and "symbolic link" in done.stderr, \
        done.stderr[-3000:]
    for step in (["generate_feedback", ASSIGNMENT], ["export"]):
        done = nbgrader(course, *step)
        assert done.returncode == 0, f"nbgrader {' '.join(step)}:\n{done.stderr[-3000:]}"
    return course


PAYLOAD = "grader_xss_probe"
#: What a student can write in a Markdown or raw cell to run code in whoever opens the feedback page.
PAYLOAD_HTML = (f'<script>window.{PAYLOAD}=1</script> <img src="x" onerror="window.{PAYLOAD}=2"> '
                f'[click](javascript:window.{PAYLOAD}=3) <a href="javascript:window.{PAYLOAD}=4">here</a> '
                f'<iframe src="javascript:window.{PAYLOAD}=5"></iframe> <svg onload="window.{PAYLOAD}=6"></svg> '
                f'<details open ontoggle="window.{PAYLOAD}=7">x</details>')


def payload_cells() -> list:
    return [nbformat.v4.new_markdown_cell(f"My notes: **bold** text, $x^2$.\n\n{PAYLOAD_HTML}\n\n> a quote"),
            nbformat.v4.new_raw_cell(PAYLOAD_HTML),
            nbformat.v4.new_raw_cell(PAYLOAD_HTML, metadata={"raw_mimetype": "text/html"}),
            nbformat.v4.new_markdown_cell(f"<div onclick=\"window.{PAYLOAD}=8\">no blank line</div>\n{PAYLOAD_HTML}")]


class _LiveHTML(HTMLParser):
    """Collects everything in a page that a browser would execute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.live: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or (name in ("href", "src", "action", "formaction", "data") and value.startswith("javascript:")):
                self.live.append(f"<{tag} {name}={value[:60]}>")
        if tag in ("script", "iframe", "object", "embed", "svg"):
            self._in = tag
            if any(PAYLOAD in (v or "") for _, v in attrs):
                self.live.append(f"<{tag}> with the payload")

    def handle_data(self, data: str) -> None:
        if self._in in ("script",) and PAYLOAD in data:
            self.live.append(f"<script>{data[:60]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None


def live_html(page: str) -> list[str]:
    """Event handlers, javascript: URLs and payload-carrying scripts/frames in ``page``."""
    parser = _LiveHTML()
    parser.feed(page)
    return parser.live


def feedback_page(nb: nbformat.NotebookNode, preprocessors: list) -> str:
    """``nb`` through the given preprocessors and nbgrader's feedback exporter, as generate_feedback renders it."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.converters.generate_feedback import GenerateFeedback
    from traitlets.config import Config

    config = GenerateFeedback(config=Config()).config
    config.HTMLExporter.sanitize_html = True
    resources = {"nbgrader": {"score": 0, "max_score": 0, "late_penalty": 0, "student": "s", "assignment": "a",
                              "notebook": "n", "timestamp": "t"}}
    for step in preprocessors:
        nb, resources = step().preprocess(nb, resources)
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]


def test_student_markdown_and_raw_cells_reach_feedback_pages_inert():
    """nbgrader's feedback template passes a Markdown cell's raw HTML through (sanitize_html does not reach it):
    without the course's cleaning step the payloads are live; with it none is, and the text still reads."""
    from grader.nbgrader_preprocessors import SanitizeStudentText, feedback_preprocessors

    nb = nbformat.v4.new_notebook(cells=payload_cells())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    raw = feedback_page(nbformat.from_dict(json.loads(json.dumps(nb))), [])
    assert len(live_html(raw)) >= 4, live_html(raw)  # the danger is real: script, onerror, javascript: links
    assert SanitizeStudentText in feedback_preprocessors()
    page = feedback_page(nb, [SanitizeStudentText])
    assert live_html(page) == []
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "My notes: bold text, $x^2$." in text and "a quote" in text and f"<script>window.{PAYLOAD}=1</script>" in text
    assert "<strong>bold</strong>" in page and "<blockquote>" in page


def scores(course: Path, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {g.name.removeprefix("autograde_"): (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}


@pytest.mark.slow
def test_release_holds_no_solution_and_no_hidden_test(graded_course, released_text):
    release = graded_course / "release" / ASSIGNMENT
    source = graded_course / "source" / ASSIGNMENT
    text = tree_text(release)
    secret = solution_block_lines() | notebook_solution_lines(source)
    hidden = hidden_suite_lines()
    assert notebook_solution_lines(source) and len(hidden) > 100  # the check has something to find
    assert leaks(text, secret | hidden, released_text) == []
    assert BEGIN not in text and END not in text and "HIDDEN TESTS" not in text
    assert "grading.ipynb" in {p.name for p in release.iterdir()}
    for name, stub in render_stubs(COURSE).items():
        assert (release / COURSE.student_package / name).read_text(encoding="utf-8") == stub


@pytest.mark.slow
def test_gradebook_gives_the_reference_full_marks_and_the_stubs_zero(graded_course):
    ada, stan = scores(graded_course, "ada"), scores(graded_course, "stan")
    assert sorted(ada) == sorted(GRADED) == sorted(stan)
    for exercise_id in GRADED:
        points = COURSE.exercise(exercise_id).points
        assert ada[exercise_id] == (points, points), exercise_id
        assert stan[exercise_id] == (0, points), f"{exercise_id}: the stubs (and a submitted grader/) earn nothing"


@pytest.mark.slow
def test_attacks_earn_nothing_and_the_kernel_survives(graded_course):
    got = scores(graded_course, "mallory")
    full = {e: float(COURSE.exercise(e).points) for e in GRADED}
    assert 0 < got["conv_output_size"][0] < full["conv_output_size"], "partial credit through the cell's value"
    assert got["pad2d"][0] == full["pad2d"], "stderr from student code stays in the sandbox"
    assert got["avgpool2d"][0] == 0, "os._exit in student code; the added cell must not rewrite the score"
    assert got["maxpool2d_backward"][0] == full["maxpool2d_backward"] and got["convnet"][0] == full["convnet"], \
        "the cells after the os._exit still ran"
    graded = graded_course / "autograded" / "mallory" / ASSIGNMENT / "grading.ipynb"
    assert "g.autograde_cell = lambda" not in graded.read_text(encoding="utf-8")


@pytest.mark.slow
def test_grading_cells_write_no_stderr_and_no_error(graded_course):
    for student in ("ada", "stan", "mallory"):
        cells = grading_cells(graded_course / "autograded" / student / ASSIGNMENT / "grading.ipynb")
        assert len(cells) == len(GRADED)
        for cell in cells:
            kinds = [(o.output_type, o.get("name")) for o in cell.outputs]
            assert ("stream", "stderr") not in kinds and all(k != "error" for k, _ in kinds), (student, cell.outputs)
            assert kinds[-1][0] == "execute_result", "the points are the cell's value"


@pytest.mark.slow
def test_course_notebooks_are_not_run_at_autograde(graded_course):
    for path in (graded_course / "autograded" / "ada" / ASSIGNMENT).glob("0*.ipynb"):
        cells = grading_cells(path)
        assert cells and all(not c.outputs and c.execution_count is None for c in cells), path.name


@pytest.mark.slow
def test_feedback_shows_scores_and_no_hidden_source(graded_course, released_text):
    hidden = hidden_suite_lines()
    for student in ("ada", "stan", "mallory"):
        page = graded_course / "feedback" / student / ASSIGNMENT / "grading.html"
        text = html_text(page)
        assert "avgpool2d:" in text and "points" in text  # the check reads the page as a person does
        assert leaks(text, hidden, released_text) == [], student
    stan = html_text(graded_course / "feedback" / "stan" / ASSIGNMENT / "grading.html")
    assert "conv_output_size: 0 / 5 points, not implemented" in stan
    assert leaks(stan, solution_block_lines(), released_text) == []


@pytest.mark.slow
def test_export_csv_has_each_students_total(graded_course):
    with open(graded_course / "grades.csv", newline="", encoding="utf-8") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    nbgrader_max = sum(COURSE.exercise(e).points for e in GRADED)  # nbgrader counts bonus points in its maximum
    assert set(rows) == {"ada", "stan", "mallory"}
    assert float(rows["ada"]["score"]) == float(rows["ada"]["max_score"]) == nbgrader_max
    assert float(rows["stan"]["score"]) == 0
    assert 0 < float(rows["mallory"]["score"]) < nbgrader_max


@pytest.mark.slow
def test_a_linking_student_is_refused_before_nbgrader_copies_anything(graded_course):
    assert not (graded_course / "autograded" / "eve").exists() or not any((graded_course / "autograded" / "eve").rglob("*.*"))
    assert not (graded_course / "feedback" / "eve").exists()
    with open(graded_course / "grades.csv", newline="", encoding="utf-8") as fh:
        assert "eve" not in {r["student_id"] for r in csv.DictReader(fh) if float(r["score"] or 0) > 0}
    gradebook = (graded_course / "gradebook.db").read_bytes()[:64]
    for path in (graded_course / "autograded").rglob("*"):
        if path.is_file() and path.suffix != ".ipynb":
            assert gradebook not in path.read_bytes(), path


@pytest.mark.slow
def test_feedback_holds_only_html_pages(graded_course):
    files = [p for p in (graded_course / "feedback").rglob("*") if p.is_file()]
    assert files and all(p.suffix == ".html" for p in files), sorted({p.suffix for p in files})
    for page in files:
        text = page.read_text(encoding="utf-8")
        assert str(graded_course) not in text and str(ROOT) not in text, page


@pytest.mark.slow
def test_feedback_pages_hold_no_live_html_from_student_cells(graded_course):
    """mallory added Markdown and raw cells carrying scripts, event handlers and javascript: links to her
    grading notebook: her feedback page (generated by nbgrader's own CLI) shows them as text, none of them live."""
    page = (graded_course / "feedback" / "mallory" / ASSIGNMENT / "grading.html").read_text(encoding="utf-8")
    assert PAYLOAD in page  # her cells are on the page...
    assert live_html(page) == []  # ...as inert text
    for student in ("ada", "stan"):
        assert live_html((graded_course / "feedback" / student / ASSIGNMENT / "grading.html").read_text(encoding="utf-8")) == []
