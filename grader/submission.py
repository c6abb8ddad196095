"""Turn what a student handed in (a folder or a zip) into a clean, private workspace.

The workspace is a fresh temporary directory holding ``<student_package>/__init__.py`` and the
student's module files, copied as plain files. Nothing is ever written next to the submission.

Everything that can be wrong with student data is a :class:`SubmissionError` with a one-line
reason, raised by :func:`prepare` (never a traceback, never an internal error):

* zips: damaged (bad CRC, truncated, not a zip), encrypted, unsupported compression, bombs (total
  and per-entry unpacked size, compression ratio, number of entries), names that are absolute,
  hold ``..``, a drive, control characters or undecodable bytes, a name used twice or both as a
  file and a folder, link and device entries;
* folders: any symbolic link, or anything that is not a regular file or folder (a pipe, a
  socket, a device), anywhere inside the submission -- no student is graded on another's files;
  too many entries.

The modules are looked for at the top of the submission, in ``<student_package>/``, and one or two
folders deeper (``myproject/exercises/``, ``hw/``, ``myproject/hw/``): the folder holding most of them wins.
When modules are missing, :attr:`Workspace.found_note` lists what was found instead and what to upload
(a notebook or a zip inside the upload is named as such). Links are never followed.

A module over its size limit (course.yml ``max_module_kb``) or not UTF-8 is left out of the
workspace and recorded in :attr:`Workspace.problems`: its exercises get status ``error``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Mapping, Union

from coursekit.course import Limits

if TYPE_CHECKING:
    from coursekit.course import Course

MAX_ARCHIVE_BYTES = 50 * 1024 * 1024      # everything unpacked (and the .zip itself)
MAX_MEMBER_BYTES = 10 * 1024 * 1024       # one archive entry unpacked
MAX_RATIO = 100                           # unpacked / packed, for entries over RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 1024 * 1024
MAX_ARCHIVE_MEMBERS = 10_000              # entries of a zip, or files and folders of a submitted folder
MAX_NAME_CHARS = 1024
DEFAULT_MODULE_BYTES = int(Limits.model_fields["max_module_kb"].default * 1024)  # no limit given: course.yml's default
_SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


class SubmissionError(ValueError):
    """The submission cannot be graded as it is; the message says what to fix."""


@dataclass
class Workspace:
    """A private copy of the student's modules, removed by :meth:`cleanup`."""

    root: Path
    package: str
    modules: dict[str, Path] = field(default_factory=dict)   # module name -> file in the workspace
    problems: dict[str, str] = field(default_factory=dict)   # module name -> why it could not be used
    content_hash: str = ""                                    # of the files the worker sees (modules)
    found_note: str = ""                                      # what was found instead, when modules are missing

    @property
    def package_dir(self) -> Path:
        return self.root / self.package

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def shown(name: str) -> str:
    """A file name as text safe to print and store: control characters and undecodable bytes escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def module_limits(course: "Course") -> dict[str, int]:
    """Bytes allowed per student module: the largest ``max_module_kb`` among the exercises using it."""
    limits: dict[str, int] = {}
    for ex in course.exercises:
        kb = course.limits(ex.id).max_module_kb
        limits[ex.module] = max(limits.get(ex.module, 0), int(kb * 1024))
    return limits


# ------------------------------------------------------------------------------------------ zips


def _member_path(name: str, archive: str) -> PurePosixPath:
    """The entry's relative path; refuses names that are absolute, climb out, or hold odd characters."""
    where = f"{archive}: the entry {shown(name)!r}"
    if len(name) > MAX_NAME_CHARS or any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in name.split("/")):
        raise SubmissionError(f"{where} has a name too long for a file system")
    if any(not c.isprintable() for c in name):
        raise SubmissionError(f"{where} has control characters in its name; re-create the zip from your exercises folder")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise SubmissionError(f"{where} points outside the submission folder; re-create the zip from your exercises folder")
    return p


def _check_members(members: list[zipfile.ZipInfo], archive: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Validate every entry of the central directory before anything is unpacked."""
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise SubmissionError(f"{archive} holds {len(members)} entries (more than {MAX_ARCHIVE_MEMBERS}); zip only your .py files")
    total = 0
    files: dict[PurePosixPath, str] = {}
    folders: set[PurePosixPath] = set()
    checked = []
    for m in members:
        rel = _member_path(m.filename, archive)
        where = f"{archive}: the entry {shown(m.filename)!r}"
        mode = stat.S_IFMT(m.external_attr >> 16)
        if mode == stat.S_IFLNK:
            raise SubmissionError(f"{where} is a symbolic link; submit plain files")
        if mode not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise SubmissionError(f"{where} is not a regular file or folder (a device, pipe or socket)")
        if m.flag_bits & 0x1:
            raise SubmissionError(f"{where} is encrypted; zip your files without a password")
        if m.compress_type not in _SUPPORTED_COMPRESSION:
            raise SubmissionError(f"{where} uses an unsupported compression method ({m.compress_type}); "
                                  "use a standard zip (deflate)")
        if m.file_size > MAX_MEMBER_BYTES:
            raise SubmissionError(f"{where} unpacks to {m.file_size / 1e6:.1f} MB (limit {MAX_MEMBER_BYTES / 1e6:.0f} MB per file)")
        if m.file_size > RATIO_FLOOR_BYTES and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise SubmissionError(f"{where} is compressed {m.file_size / max(m.compress_size, 1):.0f} to 1 "
                                  f"(more than {MAX_RATIO} to 1: a zip bomb?)")
        total += m.file_size
        if total > MAX_ARCHIVE_BYTES:
            raise SubmissionError(f"{archive} unpacks to more than {MAX_ARCHIVE_BYTES / 1e6:.0f} MB; zip only your .py files")
        folders.update(rel.parents)
        if m.is_dir() or mode == stat.S_IFDIR or not rel.parts:
            folders.add(rel)
            continue
        if rel in files:
            raise SubmissionError(f"{where} appears twice in the archive")
        files[rel] = m.filename
        checked.append((m, rel))
    clash = sorted(set(files) & folders)
    if clash:
        raise SubmissionError(f"{archive}: {shown(str(clash[0]))!r} is both a file and a folder in the archive")
    return checked


def _read_zip(archive: Path, others: list[str] | None = None) -> dict[PurePosixPath, bytes]:
    """Validate and read a student's zip: every entry is decompressed (CRC checked), ``.py`` files kept.

    The one place that reads zip bytes; whatever goes wrong there is the archive's fault and
    becomes a :class:`SubmissionError`.
    """
    name = shown(archive.name)
    kept: dict[PurePosixPath, bytes] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            unpacked = 0
            for m, rel in _check_members(zf.infolist(), name):
                chunks, size = [], 0
                with zf.open(m) as src:
                    while chunk := src.read(1 << 16):
                        size += len(chunk)
                        unpacked += len(chunk)
                        if size > m.file_size or size > MAX_MEMBER_BYTES or unpacked > MAX_ARCHIVE_BYTES:
                            raise SubmissionError(f"{name}: the entry {shown(m.filename)!r} unpacks to more than it declares (a zip bomb?)")
                        if rel.suffix == ".py":
                            chunks.append(chunk)
                if rel.suffix == ".py":
                    kept[rel] = b"".join(chunks)
                elif others is not None and all(_searched(PurePosixPath(part)) for part in rel.parts[:-1]):
                    others.append(rel.as_posix())
    except SubmissionError:
        raise
    except zipfile.BadZipFile as exc:
        raise SubmissionError(f"{name} is damaged or not a zip archive ({exc}); re-create it with a standard zip tool") from None
    except UnicodeDecodeError:
        raise SubmissionError(f"{name} has entry names that are not valid UTF-8; re-create the zip") from None
    except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required"
        raise SubmissionError(f"{name} cannot be read: {exc}") from None
    except NotImplementedError as exc:
        raise SubmissionError(f"{name} uses a zip feature this grader does not support ({exc}); use a standard zip (deflate)") from None
    except MemoryError:
        raise SubmissionError(f"{name} needs too much memory to unpack") from None
    except Exception as exc:  # zlib.error, lzma.LZMAError, EOFError, OSError (bz2), struct.error, ValueError...
        raise SubmissionError(f"{name} is damaged ({type(exc).__name__}: {exc}); re-create it with a standard zip tool") from None
    return kept


def _unzip(archive: Path, into: Path, others: list[str] | None = None) -> Path:
    """The ``.py`` files of a validated archive, written under ``into`` (which it returns); the names of its
    other files are appended to ``others``."""
    files = _read_zip(archive, others)
    into.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        target = into.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return into


# ------------------------------------------------------------------------------------------ folders


def check_tree(root: Path, label: str | None = None) -> None:
    """Refuse a folder holding a link or anything that is not a regular file or folder, or too many entries.

    ``root`` itself may be a link (the caller named it); nothing under it may be.
    """
    label = label or shown(Path(root).name)
    count = 0
    todo = [Path(root)]
    while todo:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise SubmissionError(f"{label}: the folder {shown(_rel(folder, root))!r} cannot be read ({exc.strerror})") from None
        for entry in entries:
            count += 1
            if count > MAX_ARCHIVE_MEMBERS:
                raise SubmissionError(f"{label} holds more than {MAX_ARCHIVE_MEMBERS} files and folders; hand in only your .py files")
            rel = shown(_rel(Path(entry.path), root))
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                raise SubmissionError(f"{label}: {rel!r} cannot be read ({exc.strerror})") from None
            if stat.S_ISLNK(mode):
                raise SubmissionError(f"{label}: {rel!r} is a symbolic link; links are refused (a link could point at "
                                      "another student's or the instructor's files): submit the file itself")
            if stat.S_ISDIR(mode):
                todo.append(Path(entry.path))
            elif not stat.S_ISREG(mode):
                raise SubmissionError(f"{label}: {rel!r} is not a regular file or folder (a pipe, socket or device)")


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


#: Folders never searched for modules (macOS zip debris, caches, hidden folders).
_IGNORED_FOLDERS = ("__MACOSX", "__pycache__", ".ipynb_checkpoints")


def _searched(folder: Path) -> bool:
    return not folder.name.startswith(".") and folder.name not in _IGNORED_FOLDERS


def _subfolders(folder: Path) -> list[Path]:
    """Plain subfolders (never a link), sorted, without the ignored ones."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and _searched(p))
    except OSError:
        return []


def _module_folders(root: Path, package: str) -> list[Path]:
    """Where a student's modules may be, in order of preference: ``<package>/``, the top, then one and two
    folders deeper (``myproject/<package>/``, ``hw/``, ``myproject/hw/``)."""
    first = [root / package, root]
    deeper: list[Path] = []
    for sub in _subfolders(root):
        deeper.append(sub / package)
        deeper.append(sub)
        deeper.extend(s for s in _subfolders(sub) if s.name != package)
    return first + deeper


def _find_modules(root: Path, package: str, modules: list[str] | None = None) -> Path:
    """The folder that holds the most of ``modules`` (any ``.py`` without a list); the first such in the
    order of :func:`_module_folders`; ``root`` when none holds any."""
    best, best_count = root, 0
    for candidate in _module_folders(root, package):
        if not candidate.is_dir() or candidate.is_symlink():
            continue
        if modules:
            count = sum((candidate / f"{m}.py").is_file() and not (candidate / f"{m}.py").is_symlink() for m in modules)
        else:
            count = int(any(candidate.glob("*.py")))
        if count > best_count:
            best, best_count = candidate, count
    return best


def _listing(root: Path, limit: int = MAX_ARCHIVE_MEMBERS) -> list[str]:
    """Relative paths of the files under ``root`` (links are never followed), sorted; ignored folders left out."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if _searched(Path(d)))
        found.extend(_rel(Path(folder) / f, root) for f in files)
        if len(found) >= limit:
            break
    return sorted(found)[:limit]


def found_note(files: list[str], missing: list[str], package: str, shown_at_most: int = 8) -> str:
    """What a student uploaded instead of the missing modules, and what to upload: "found: convnets.ipynb;
    upload the .py modules strides.py, padding.py (...)"."""
    if not missing:
        return ""
    wanted = ", ".join(f"{m}.py" for m in missing)
    if not files:
        return f"the submission is empty; upload the .py modules {wanted}"
    names = [shown(f) for f in files[:shown_at_most]] + ([f"and {len(files) - shown_at_most} more"]
                                                         if len(files) > shown_at_most else [])
    why = []
    if any(f.lower().endswith(".ipynb") for f in files):
        why.append("a notebook is not graded: the grader runs your .py modules (from the course kit's "
                   f"{package}/ folder)")
    if any(f.lower().endswith(".zip") for f in files):
        why.append("a zip inside the upload is not opened: upload the .py files themselves")
    return f"found: {', '.join(names)}; upload the .py modules {wanted}" + (f" ({'; '.join(why)})" if why else "")


def _read_module(path: Path, limit: int) -> tuple[bytes | None, str]:
    """(bytes, "") of a regular file within ``limit`` bytes; (None, why) otherwise; (None, "") if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"{path.name} cannot be read ({exc.strerror}); submit it as a plain file"
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if stat.S_ISDIR(st.st_mode):
            return None, f"{path.name} is a folder, not a file"
        if not stat.S_ISREG(st.st_mode):
            return None, f"{path.name} is not a regular file"
        data = fh.read(limit + 1)
    if len(data) > limit:
        size = max(st.st_size, len(data))
        return None, (f"{path.name} is {size / 1024:.1f} KB, over the {limit / 1024:g} KB limit for a module "
                      "(course.yml max_module_kb): a module holds code, not data or trained weights")
    return data, ""


def prepare(submission: Path, package: str, modules: list[str],
            max_module_bytes: Union[Mapping[str, int], int, None] = None) -> Workspace:
    """Copy the student's ``modules`` from ``submission`` (folder or .zip) into a fresh workspace.

    ``max_module_bytes``: a limit per module (see :func:`module_limits`), one for all, or the default.
    """
    submission = Path(submission)
    if not submission.exists():
        raise SubmissionError(f"{shown(str(submission))}: no such file or folder")
    root = Path(tempfile.mkdtemp(prefix="grader-ws-"))
    other_names: list[str] = []  # a zip's entries that are not .py files (not unpacked): listed when modules are missing
    try:
        if submission.is_file():
            if submission.suffix.lower() != ".zip":
                raise SubmissionError(f"{shown(submission.name)}: expected a folder or a .zip archive")
            if submission.stat().st_size > MAX_ARCHIVE_BYTES:
                raise SubmissionError(f"{shown(submission.name)} is larger than {MAX_ARCHIVE_BYTES / 1e6:.0f} MB")
            source_root = _unzip(submission, root / "unpacked", other_names)
        elif submission.is_dir():
            check_tree(submission)
            source_root = submission
        else:
            raise SubmissionError(f"{shown(submission.name)} is not a regular file or folder")
        found = _find_modules(source_root, package, list(modules))
        ws = Workspace(root=root, package=package)
        ws.package_dir.mkdir()
        (ws.package_dir / "__init__.py").write_text("", encoding="utf-8")
        digest = hashlib.sha256()
        for module in sorted(modules):
            if isinstance(max_module_bytes, Mapping):
                limit = max_module_bytes.get(module, DEFAULT_MODULE_BYTES)
            else:
                limit = DEFAULT_MODULE_BYTES if max_module_bytes is None else int(max_module_bytes)
            data, why = _read_module(found / f"{module}.py", limit)
            if data is None:
                if why:
                    ws.problems[module] = why
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
        missing = [m for m in sorted(modules) if m not in ws.modules and m not in ws.problems]
        if missing:
            files = sorted({*_listing(source_root), *(str(n) for n in other_names)})
            ws.found_note = found_note(files, missing, package)
        shutil.rmtree(root / "unpacked", ignore_errors=True)
        return ws
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
