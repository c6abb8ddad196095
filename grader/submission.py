"""Turn what a student handed in (a folder or a zip) into a clean, private workspace.

The workspace is a fresh temporary directory holding ``<student_package>/__init__.py`` and the
student's module files, copied as plain files. Nothing is ever written next to the submission.
Zip entries that escape the directory, links that point outside, oversize archives and
sources that are not UTF-8 are refused with a :class:`SubmissionError` that says why.
"""
from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

MAX_FILE_BYTES = 2 * 1024 * 1024          # one module
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024      # everything unpacked
MAX_ARCHIVE_MEMBERS = 10_000


class SubmissionError(ValueError):
    """The submission cannot be graded as it is; the message says what to fix."""


@dataclass
class Workspace:
    """A private copy of the student's modules, removed by :meth:`cleanup`."""

    root: Path
    package: str
    modules: dict[str, Path] = field(default_factory=dict)   # module name -> file in the workspace
    problems: dict[str, str] = field(default_factory=dict)   # module name -> why it could not be used
    content_hash: str = ""

    @property
    def package_dir(self) -> Path:
        return self.root / self.package

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def _safe_member(name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise SubmissionError(f"the archive entry {name!r} points outside the submission folder; re-create the zip from your exercises folder")
    return p


def _unzip(archive: Path, into: Path) -> Path:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{archive.name} is not a readable zip archive ({exc})") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise SubmissionError(f"{archive.name} holds {len(members)} entries (more than {MAX_ARCHIVE_MEMBERS}); zip only your .py files")
        total = sum(m.file_size for m in members)
        if total > MAX_ARCHIVE_BYTES:
            raise SubmissionError(f"{archive.name} unpacks to {total / 1e6:.1f} MB (limit {MAX_ARCHIVE_BYTES / 1e6:.0f} MB); zip only your .py files")
        for m in members:
            rel = _safe_member(m.filename)
            mode = (m.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                raise SubmissionError(f"the archive entry {m.filename!r} is a symbolic link; submit plain files")
            if m.is_dir() or not rel.parts:
                continue
            target = into.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with zf.open(m) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 16):
                    written += len(chunk)
                    if written > MAX_ARCHIVE_BYTES:  # the declared size lied (zip bomb)
                        raise SubmissionError(f"{archive.name} unpacks to more than {MAX_ARCHIVE_BYTES / 1e6:.0f} MB")
                    dst.write(chunk)
    return into


def _find_modules(root: Path, package: str) -> Path:
    """The folder that holds the modules: ``root/<package>``, ``root/*/<package>``, or ``root`` itself."""
    for candidate in (root / package, *sorted(root.glob(f"*/{package}")), root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if candidate.is_dir() and not candidate.is_symlink() and any(candidate.glob("*.py")):
            return candidate
    return root


def _read_source(path: Path, base: Path) -> Optional[bytes]:
    """Bytes of a regular file that stays inside ``base``; None when the file must be ignored."""
    if path.is_symlink():
        resolved = path.resolve()
        if not resolved.is_relative_to(base.resolve()):
            raise SubmissionError(f"{path.name} is a link to {resolved}, outside the submission; submit the file itself")
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SubmissionError(f"{path.name} is {size / 1e6:.1f} MB; a module over {MAX_FILE_BYTES / 1e6:.0f} MB is not graded")
    return path.read_bytes()


def prepare(submission: Path, package: str, modules: list[str]) -> Workspace:
    """Copy the student's ``modules`` from ``submission`` (folder or .zip) into a fresh workspace."""
    submission = Path(submission)
    if not submission.exists():
        raise SubmissionError(f"{submission}: no such file or folder")
    root = Path(tempfile.mkdtemp(prefix="grader-ws-"))
    try:
        if submission.is_file():
            if submission.suffix.lower() != ".zip":
                raise SubmissionError(f"{submission}: expected a folder or a .zip archive")
            if submission.stat().st_size > MAX_ARCHIVE_BYTES:
                raise SubmissionError(f"{submission.name} is larger than {MAX_ARCHIVE_BYTES / 1e6:.0f} MB")
            source_root = _unzip(submission, root / "unpacked")
        else:
            source_root = submission
        found = _find_modules(source_root, package)
        ws = Workspace(root=root, package=package)
        ws.package_dir.mkdir()
        (ws.package_dir / "__init__.py").write_text("", encoding="utf-8")
        digest = hashlib.sha256()
        for module in sorted(modules):
            data = _read_source(found / f"{module}.py", source_root)
            if data is None:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                ws.problems[module] = f"{module}.py is not UTF-8 text (byte {exc.start}); save it as UTF-8"
                continue
            target = ws.package_dir / f"{module}.py"
            target.write_bytes(data)
            ws.modules[module] = target
            digest.update(module.encode() + b"\0" + hashlib.sha256(data).digest())
        ws.content_hash = digest.hexdigest()
        shutil.rmtree(root / "unpacked", ignore_errors=True)
        return ws
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
