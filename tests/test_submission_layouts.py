"""Uploads as students make them: modules at the top, in exercises/, or one or two folders deeper; a
notebook, a zip inside the upload, or nothing recognisable is explained by listing what was found."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from grader.submission import SubmissionError, prepare

MODULES = ["strides", "padding", "conv"]


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "upload"
    root.mkdir()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _zip(tmp_path: Path, files: dict[str, str]) -> Path:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return archive


def _modules(files: dict[str, str]) -> dict[str, str]:
    return {m: f"# {m} of this layout\nX = {m!r}\n" for m in MODULES} | files


LAYOUTS = {
    "top": {f"{m}.py": "" for m in MODULES},
    "exercises": {f"exercises/{m}.py": "" for m in MODULES},
    "project/exercises": {f"myproject/exercises/{m}.py": "" for m in MODULES},
    "hw": {f"hw/{m}.py": "" for m in MODULES},
    "two folders deep": {f"convnets-main/hw3/{m}.py": "" for m in MODULES},
    "deep, with a stray setup.py at the top": {"setup.py": "", **{f"a/b/{m}.py": "" for m in MODULES}},
    "deep, with macOS debris": {**{f"__MACOSX/hw/._{m}.py": "" for m in MODULES}, **{f"hw/{m}.py": "" for m in MODULES}},
}


@pytest.mark.parametrize("packed", ["folder", "zip"])
@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_modules_are_found_where_students_put_them(tmp_path, layout, packed):
    files = {name: f"WHERE = {name!r}\n" for name in LAYOUTS[layout]}
    submission = _folder(tmp_path, files) if packed == "folder" else _zip(tmp_path, files)
    with prepare(submission, "exercises", MODULES) as ws:
        assert sorted(ws.modules) == sorted(MODULES), ws.found_note
        for m in MODULES:
            text = ws.modules[m].read_text()
            assert f"{m}.py" in text and "__MACOSX" not in text
        assert ws.found_note == ""


def test_the_folder_with_most_modules_wins(tmp_path):
    files = {"strides.py": "WHERE = 'top'\n", **{f"exercises/{m}.py": f"WHERE = 'exercises/{m}'\n" for m in MODULES}}
    with prepare(_folder(tmp_path, files), "exercises", MODULES) as ws:
        assert "exercises/strides" in ws.modules["strides"].read_text()


@pytest.mark.parametrize("packed", ["folder", "zip"])
def test_a_notebook_is_explained_with_what_was_found(tmp_path, packed):
    files = {"convnets.ipynb": "{}", "notes.txt": "hello"}
    submission = _folder(tmp_path, files) if packed == "folder" else _zip(tmp_path, files)
    with prepare(submission, "exercises", MODULES) as ws:
        assert ws.modules == {}
        note = ws.found_note
    assert note.startswith("found: convnets.ipynb, notes.txt; upload the .py modules conv.py, padding.py, strides.py")
    assert "a notebook is not graded" in note


def test_a_zip_inside_the_upload_is_explained(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        for m in MODULES:
            zf.writestr(f"{m}.py", "X = 1\n")
    root = _folder(tmp_path, {})
    (root / "convnets.zip").write_bytes(inner.read_bytes())
    with prepare(root, "exercises", MODULES) as ws:
        assert ws.modules == {}
        assert ws.found_note.startswith("found: convnets.zip; upload the .py modules")
        assert "a zip inside the upload is not opened" in ws.found_note


def test_some_modules_missing_lists_the_files_and_the_missing(tmp_path):
    with prepare(_folder(tmp_path, {"hw/strides.py": "", "hw/readme.md": ""}), "exercises", MODULES) as ws:
        assert sorted(ws.modules) == ["strides"]
        assert ws.found_note == "found: hw/readme.md, hw/strides.py; upload the .py modules conv.py, padding.py"


def test_an_empty_upload_says_so(tmp_path):
    with prepare(_folder(tmp_path, {}), "exercises", MODULES) as ws:
        assert ws.found_note == "the submission is empty; upload the .py modules conv.py, padding.py, strides.py"


def test_the_missing_message_of_a_graded_exercise_names_what_was_found(tmp_path):
    from coursekit.course import load_course
    from grader.grade import grade_submission

    course = load_course()
    report = grade_submission(_folder(tmp_path, {"convnets.ipynb": "{}"}), course, only=["conv_output_size"])
    ex = report.exercises[0]
    assert ex.status == "missing" and ex.score == 0
    assert ex.message.startswith("strides.py was not found in the submission (found: convnets.ipynb; upload the .py "
                                 "modules ")
    assert "strides.py" in ex.message.split("upload the .py modules", 1)[1]


def test_links_are_still_refused_deep_down(tmp_path):
    root = _folder(tmp_path, {"a/b/padding.py": ""})
    os.symlink("/etc/passwd", root / "a" / "b" / "strides.py")
    with pytest.raises(SubmissionError, match="symbolic link"):
        prepare(root, "exercises", MODULES)


def test_a_linked_folder_is_never_searched(tmp_path):
    other = _folder(tmp_path / "other", {f"{m}.py": "SECRET = 1\n" for m in MODULES}) if (tmp_path / "other").mkdir() is None else None
    root = _folder(tmp_path, {"readme.txt": ""})
    os.symlink(other, root / "hw")
    with pytest.raises(SubmissionError, match="symbolic link"):  # refused by the tree check, before any search
        prepare(root, "exercises", MODULES)
