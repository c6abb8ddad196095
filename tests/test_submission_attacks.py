"""Malformed archives and folders are the student's problem, never the class's (issue 8 §3, §1 size cap).

`grader grade` on any damaged or unusual zip or folder exits 2 with a one-line reason (never 3, never a
traceback); `prepare` raises nothing but :class:`SubmissionError`; a link anywhere in a submission is
refused; student ids that are not plain names are refused; CSV cells never start a formula.
"""
from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursekit.course import load_course
from grader import submission as sub_mod
from grader.class_run import discover, id_problem
from grader.cli import main
from grader.exports import csv_cell, write_csv
from grader.submission import SubmissionError, module_limits, prepare

from grading_helpers import SOLUTIONS, course_with_limits, reference_submission

COURSE = load_course()
MODULES = COURSE.modules
STRIDES = (SOLUTIONS / "strides.py").read_bytes()


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def reference_zip(path: Path) -> Path:
    return make_zip(path, [(f"exercises/{f.name}", f.read_bytes()) for f in sorted(SOLUTIONS.glob("*.py"))])


def _patched(data: bytes, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """Write ``value`` at the same field of the first local header and the first central header."""
    b = bytearray(data)
    b[local_offset:local_offset + len(value)] = value
    c = b.find(b"PK\x01\x02")
    b[c + central_offset:c + central_offset + len(value)] = value
    return bytes(b)


def _link_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("exercises/strides.py")
    info.external_attr = 0o120777 << 16
    return info


def _fifo_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("exercises/strides.py")
    info.external_attr = 0o010644 << 16
    return info


def bad_zips(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (zip, a word its refusal must contain)."""
    one = make_zip(tmp / "one.zip", [("exercises/strides.py", STRIDES)]).read_bytes()
    crc = bytearray(make_zip(tmp / "crc0.zip", [("exercises/strides.py", STRIDES)], zipfile.ZIP_STORED).read_bytes())
    crc[crc.find(b"def conv_output_size")] ^= 0x20
    cases: dict[str, tuple[bytes | Path, str]] = {
        "bad CRC": (bytes(crc), "CRC"),
        "truncated": (reference_zip(tmp / "full.zip").read_bytes()[:3000], "damaged"),
        "not a zip": (b"this is not a zip archive at all", "damaged"),
        "empty file": (b"", "damaged"),
        "unsupported compression": (_patched(one, 8, 10, struct.pack("<H", 99)), "compression"),
        "encrypted": (_patched(one, 6, 8, bytes([one[6] | 1])), "encrypted"),
        "non-UTF-8 name": (make_zip(tmp / "u.zip", [("exercises/strid\u00e9s.py", STRIDES)]).read_bytes()
                           .replace("strid\u00e9s".encode(), b"strid\xff\xfes"), "UTF-8"),
    }
    zips = {name: (tmp / f"case{i}.zip", word) for i, (name, (_, word)) in enumerate(cases.items())}
    for name, (data, _) in cases.items():
        zips[name][0].write_bytes(data)
    more = {
        "file and folder of the same name": ([("exercises/strides.py", STRIDES), ("exercises/strides.py/x.py", b"x = 1")],
                                             "both a file and a folder"),
        "the same name twice": ([("exercises/strides.py", STRIDES), ("exercises/strides.py", b"x = 1")], "twice"),
        "absolute name": ([("/tmp/strides.py", STRIDES)], "outside"),
        "dot-dot name": ([("exercises/../../strides.py", STRIDES)], "outside"),
        "drive name": ([("C:/exercises/strides.py", STRIDES)], "outside"),
        "control characters in a name": ([("exercises/\x1b[2Jstrides.py", STRIDES)], "control characters"),
        "symlink entry": ([(_link_entry(), b"../../bob/exercises/strides.py")], "symbolic link"),
        "fifo entry": ([(_fifo_entry(), b"")], "not a regular file"),
        "bomb: one huge entry": ([("exercises/strides.py", b"\0" * (sub_mod.MAX_MEMBER_BYTES + 1))], "limit"),
        "bomb: ratio": ([("exercises/strides.py", b"\0" * (2 * 1024 * 1024))], "zip bomb"),
        "too many entries": ([(f"exercises/f{i}.txt", b"") for i in range(sub_mod.MAX_ARCHIVE_MEMBERS + 1)], "entries"),
    }
    for i, (name, (entries, word)) in enumerate(more.items()):
        zips[name] = (make_zip(tmp / f"more{i}.zip", entries), word)
    return zips


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return bad_zips(tmp_path_factory.mktemp("zips"))


def test_a_valid_zip_is_still_read(tmp_path):
    with prepare(reference_zip(tmp_path / "ok.zip"), "exercises", MODULES, module_limits(COURSE)) as ws:
        assert sorted(ws.modules) == MODULES and ws.problems == {}


@pytest.mark.parametrize("case", [
    "bad CRC", "truncated", "not a zip", "empty file", "unsupported compression", "encrypted", "non-UTF-8 name",
    "file and folder of the same name", "the same name twice", "absolute name", "dot-dot name", "drive name",
    "control characters in a name", "symlink entry", "fifo entry", "bomb: one huge entry", "bomb: ratio",
    "too many entries"])
def test_a_damaged_or_unusual_zip_is_a_submission_error(zips, case):
    path, word = zips[case]
    with pytest.raises(SubmissionError) as info:
        prepare(path, "exercises", MODULES, module_limits(COURSE))
    message = str(info.value)
    assert word.lower() in message.lower() and "\n" not in message and "Traceback" not in message


def test_total_unpacked_size_is_capped_even_when_each_entry_is_small(tmp_path, monkeypatch):
    monkeypatch.setattr(sub_mod, "MAX_ARCHIVE_BYTES", 300_000)  # the .zip (about 200 KB) is allowed; 400 KB unpacked is not
    path = make_zip(tmp_path / "many.zip", [(f"exercises/f{i}.py", os.urandom(50_000).hex().encode()) for i in range(4)])
    assert path.stat().st_size < 300_000
    with pytest.raises(SubmissionError, match="unpacks to more than"):
        prepare(path, "exercises", MODULES)


def test_an_entry_that_lies_about_its_size_is_refused(tmp_path):
    """The central directory says 10 bytes; the data holds more (the classic bomb that lies)."""
    data = make_zip(tmp_path / "lie0.zip", [("exercises/strides.py", STRIDES)], zipfile.ZIP_DEFLATED).read_bytes()
    c = data.find(b"PK\x01\x02")
    lie = bytearray(data)
    lie[c + 24:c + 28] = struct.pack("<I", 10)  # uncompressed size in the central directory
    lie[22:26] = struct.pack("<I", 10)          # and in the local header
    (tmp_path / "lie.zip").write_bytes(bytes(lie))
    with pytest.raises(SubmissionError):
        prepare(tmp_path / "lie.zip", "exercises", MODULES)


@pytest.mark.parametrize("case", ["bad CRC", "unsupported compression", "encrypted", "non-UTF-8 name",
                                  "file and folder of the same name", "symlink entry", "truncated"])
def test_grade_exits_2_with_one_line(zips, case, capsys):
    path, _ = zips[case]
    assert main(["grade", str(path), "--only", "conv_output_size"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grader: cannot grade") and len(err.splitlines()) == 1, err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_corruption_never_raises_anything_but_submission_error(tmp_path_factory, data):
    """Flip, drop or overwrite bytes of a valid zip: the result is a workspace or a SubmissionError, nothing else."""
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    original = bytearray(make_zip(folder / "ok.zip", [("exercises/strides.py", STRIDES), ("exercises/padding.py",
                                                      (SOLUTIONS / "padding.py").read_bytes())]).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(original) - 1))
        how = data.draw(st.sampled_from(["flip", "set", "cut"]))
        if how == "flip":
            original[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "set":
            original[at] = data.draw(st.integers(0, 255))
        else:
            del original[at:at + data.draw(st.integers(1, 64))]
            if not original:
                break
    (folder / "fuzzed.zip").write_bytes(bytes(original))
    try:
        with prepare(folder / "fuzzed.zip", "exercises", MODULES, module_limits(COURSE)):
            pass
    except SubmissionError as exc:
        assert "\n" not in str(exc)


# ------------------------------------------------------------------------------------------ folders and links


def test_a_link_inside_a_folder_is_refused(tmp_path):
    bob = reference_submission(tmp_path / "bob")
    alice = tmp_path / "alice" / "exercises"
    alice.mkdir(parents=True)
    for f in SOLUTIONS.glob("*.py"):
        (alice / f.name).symlink_to(Path("../../bob") / f.name)  # alice/exercises/x.py -> ../../bob/x.py
    assert bob.is_dir()
    with pytest.raises(SubmissionError, match="symbolic link"):
        prepare(tmp_path / "alice", "exercises", MODULES)


def test_a_linked_folder_component_is_refused(tmp_path):
    reference_submission(tmp_path / "bob" / "exercises")
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "exercises").symlink_to(tmp_path / "bob" / "exercises")
    with pytest.raises(SubmissionError, match="exercises.*symbolic link"):
        prepare(tmp_path / "alice", "exercises", MODULES)


def test_a_link_to_an_unrelated_file_is_refused_too(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "notes.txt").symlink_to("/proc/self/environ")
    with pytest.raises(SubmissionError, match="notes.txt"):
        prepare(sub, "exercises", MODULES)


def test_a_pipe_is_refused_without_hanging(tmp_path):
    sub = reference_submission(tmp_path / "sub")
    (sub / "strides.py").unlink()
    os.mkfifo(sub / "strides.py")
    with pytest.raises(SubmissionError, match="not a regular file"):
        prepare(sub, "exercises", MODULES)


def test_grade_of_a_folder_with_a_link_exits_2(tmp_path, capsys):
    sub = reference_submission(tmp_path / "sub")
    (sub / "strides.py").unlink()
    (sub / "strides.py").symlink_to(SOLUTIONS / "strides.py")
    assert main(["grade", str(sub), "--only", "conv_output_size"]) == 2
    assert "symbolic link" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ module size cap


def test_an_oversize_module_is_an_error_with_size_and_limit(tmp_path):
    course = course_with_limits(tmp_path, time_limit_s=8)
    assert course.limits("conv_output_size").max_module_kb == 64
    sub = reference_submission(tmp_path / "sub", {"strides": "WEIGHTS = " + repr(bytes(70 * 1024)) + "\n"})
    from grader.grade import grade_submission

    report = grade_submission(sub, course, only=["conv_output_size", "pad2d"])
    capped = report.exercise("conv_output_size")
    assert capped.status == "error" and capped.score == 0
    assert "KB" in capped.message and "64 KB limit" in capped.message
    assert report.exercise("pad2d").status == "passed"


def test_the_module_cap_follows_course_yml_and_an_exercise_may_raise_it(tmp_path):
    course = course_with_limits(tmp_path, time_limit_s=8, convnet={"max_module_kb": 256})
    limits = module_limits(course)
    assert limits["strides"] == 64 * 1024 and limits["convnet"] == 256 * 1024
    sub = reference_submission(tmp_path / "sub", {"convnet": "TABLE = " + repr(bytes(30 * 1024)) + "\n",
                                                  "strides": "TABLE = " + repr(bytes(30 * 1024)) + "\n"})
    with prepare(sub, "exercises", course.modules, limits) as ws:
        assert "convnet" in ws.modules and "strides" not in ws.modules
        assert "over the 64 KB limit" in ws.problems["strides"]


# ------------------------------------------------------------------------------------------ ids and CSV cells


@pytest.mark.parametrize("student", ["..", "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "a\x1bb", "a\nb",
                                     "a b", "x" * 101, "alice."])
def test_ids_that_are_not_plain_names_are_refused(student):
    assert id_problem(student)


@pytest.mark.parametrize("student", ["alice", "s001", "alice.smith", "a_b-c", "alice@uni.edu", "José", "李"])
def test_plain_ids_are_accepted(student):
    assert id_problem(student) is None


def test_discovery_refuses_links_unsafe_ids_and_clashing_ids(tmp_path):
    klass = tmp_path / "class"
    for name in ("alice", "Bob", "bob", "=cmd", "-rf", "carol"):
        (klass / name).mkdir(parents=True)
    (klass / "dave").symlink_to(klass / "alice")
    (klass / "erin.zip").symlink_to(tmp_path / "elsewhere.zip")
    (tmp_path / "elsewhere.zip").write_bytes(b"")
    subs, notes = discover(klass)
    by_id = {s.student: s for s in subs}
    assert sorted(by_id) == ["Bob", "alice", "bob", "carol", "dave", "erin"]
    assert by_id["alice"].refused is None and by_id["carol"].refused is None
    assert "symbolic link" in by_id["dave"].refused and "symbolic link" in by_id["erin"].refused
    assert "same id" in by_id["Bob"].refused and "same id" in by_id["bob"].refused
    assert any("=cmd" in n for n in notes) and any("-rf" in n for n in notes)


def test_discovery_refuses_a_linked_nbgrader_assignment_folder(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "ann" / "ps1").mkdir(parents=True)
    (course / "submitted" / "ben").mkdir(parents=True)
    (course / "submitted" / "ben" / "ps1").symlink_to(course / "submitted" / "ann" / "ps1")
    subs = {s.student: s for s in discover(course, assignment="ps1")[0]}
    assert subs["ann"].refused is None and "symbolic link" in subs["ben"].refused


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "＝1"])
def test_csv_cells_never_start_a_formula(text):
    assert csv_cell(text).startswith("'")


def test_write_csv_neutralises_every_cell(tmp_path):
    import csv

    path = write_csv(tmp_path / "x.csv", [["=HYPERLINK(\"http://evil\")", "ok", 1.5], ["@x", "-y", "a=b"]])
    with open(path, newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["'=HYPERLINK(\"http://evil\")", "ok", "1.5"], ["'@x", "'-y", "a=b"]]


def test_a_folder_with_too_many_entries_is_refused(tmp_path, monkeypatch):
    sub = reference_submission(tmp_path / "sub")
    monkeypatch.setattr(sub_mod, "MAX_ARCHIVE_MEMBERS", 20)
    for i in range(30):
        (sub / f"junk{i}.txt").write_text("")
    with pytest.raises(SubmissionError, match="more than 20 files"):
        prepare(sub, "exercises", MODULES)
