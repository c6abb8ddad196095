"""A sandbox's private temporary directory: the worker runtime, scratch space, the student's files.

Layout (host side; the sandbox sees ``student/`` and ``runtime/`` read-only)::

    grader-worker-XXXX/
      student/<package>/__init__.py, *.py     the student's modules (copied, regular files only), or
                                              instead the grading's Workspace, already checked (not copied)
      runtime/_grader_sandbox/*.py            every module of grader/sandbox_runtime (nothing else)
      scratch/                                writable by the worker (Landlock / unsandboxed modes)

``student_dir`` may hold ``<package>/*.py`` or the ``*.py`` files themselves; either way the worker
imports them as the package ``<package>`` and a module's relative imports reach only the student's
own siblings. The package's ``__init__.py`` is always the grader's own (empty): nothing runs on
package import, and a broken module costs only the exercises that import it. Symbolic links,
``__pycache__`` and non-``.py`` files are not copied, so the copy never points outside itself and
the student's original directory is never written to.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..submission import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS

#: The worker runtime, copied whole into each sandbox (its modules only: never launcher code, never suites).
RUNTIME_SOURCE = Path(__file__).resolve().parent.parent / "sandbox_runtime"
RUNTIME_PACKAGE = "_grader_sandbox"

#: The same caps as a submission's (grader.submission): one set of limits on what a student hands in.
MAX_FILES = MAX_ARCHIVE_MEMBERS
MAX_BYTES = MAX_ARCHIVE_BYTES


class WorkerDirError(Exception):
    """The student's directory cannot be laid out (missing, too large, bad package name)."""


@dataclass
class WorkerDir:
    """One worker's private directory (not :class:`grader.submission.Workspace`, the submission as read)."""

    root: Path
    student: Path  # contains <package>/
    runtime: Path  # contains _grader_sandbox/
    scratch: Path

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def runtime_modules() -> list[Path]:
    """The modules of :mod:`grader.sandbox_runtime` (its ``__init__`` included), as copied into a sandbox."""
    return sorted(RUNTIME_SOURCE.glob("*.py"))


def _copy_tree(src: Path, dst: Path, recursive: bool) -> tuple[int, int]:
    """Copy the regular ``*.py`` files of ``src`` (and of its package subdirectories if ``recursive``)."""
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = Path(dirpath).relative_to(src)
        dirnames[:] = [d for d in dirnames if recursive and d != "__pycache__" and d.isidentifier()
                       and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            if not name.endswith(".py"):
                continue
            s = os.path.join(dirpath, name)
            st = os.lstat(s)
            if not stat.S_ISREG(st.st_mode):
                continue
            files += 1
            size += st.st_size
            if files > MAX_FILES or size > MAX_BYTES:
                raise WorkerDirError(f"the submission has more than {MAX_FILES} files or {MAX_BYTES / 1e6:.0f} MB of Python")
            out = dst / rel / name
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(s, "rb") as fi, open(out, "wb") as fo:
                shutil.copyfileobj(fi, fo)
            os.chmod(out, 0o644)
    return files, size


def create_worker_dir(student_dir: Path, package: str, prepared: bool = False) -> WorkerDir:
    """Lay out a fresh directory for one sandbox. ``prepared``: ``student_dir`` is a
    :class:`grader.submission.Workspace` (its checked modules and an empty ``__init__`` in
    ``<package>/``), shown to the worker as it is instead of copied again."""
    if not package.isidentifier():
        raise WorkerDirError(f"bad package name {package!r}")
    student_dir = Path(student_dir)
    if not student_dir.is_dir():
        raise WorkerDirError(f"student directory {student_dir} does not exist")
    if prepared and not (student_dir / package / "__init__.py").is_file():
        raise WorkerDirError(f"{student_dir} is not a prepared workspace of package {package!r}")
    root = Path(tempfile.mkdtemp(prefix="grader-worker-"))
    ws = WorkerDir(root=root, student=student_dir if prepared else root / "student", runtime=root / "runtime",
                   scratch=root / "scratch")
    try:
        if not prepared:
            pkg = ws.student / package
            pkg.mkdir(parents=True)
            inner = student_dir / package
            src = inner if inner.is_dir() and not inner.is_symlink() else student_dir
            _copy_tree(src, pkg, recursive=src is not student_dir)
            (pkg / "__init__.py").write_text('"""The submission under grading."""\n')  # never the student's own
        rt = ws.runtime / RUNTIME_PACKAGE
        rt.mkdir(parents=True)
        for module in runtime_modules():
            shutil.copyfile(module, rt / module.name)
        ws.scratch.mkdir()
        for d in (root, ws.runtime, rt, ws.scratch):
            os.chmod(d, 0o755)
        for dirpath, dirnames, _ in os.walk(ws.student):
            os.chmod(dirpath, 0o755)
        os.chmod(ws.scratch, 0o777)
    except BaseException:
        ws.remove()
        raise
    return ws
