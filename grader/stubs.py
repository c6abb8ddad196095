"""Generate the student stubs (``exercises/``) from the reference (``solutions/``).

The reference marks its answers nbgrader-style::

    def conv_output_size(n, k, stride=1, padding=0):
        \"\"\"...\"\"\"
        ### BEGIN SOLUTION
        return (n + 2 * padding - k) // stride + 1
        ### END SOLUTION

A block inside a function becomes ``raise NotImplementedError("<exercise>: ...")`` at the block's
indentation; a block at module level (private helpers, imports only the answer needs) is dropped.
Everything outside the blocks -- signatures, docstrings, imports -- is copied as it is.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from coursekit.course import Course

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")

HEADER = (
    "# Generated from {reference}/{name} by `grader stubs`: edit the bodies that raise\n"
    "# NotImplementedError. Keep the signatures: the grader calls them as they are.\n"
)


class StubError(ValueError):
    """A solution file whose markers cannot be turned into a stub."""


@dataclass(frozen=True)
class Drift:
    path: Path
    reason: str


def _enclosing_function(lines: list[str], index: int, indent: int) -> str | None:
    """Name of the innermost ``def`` that encloses line ``index`` (indented ``indent``)."""
    for j in range(index - 1, -1, -1):
        m = _DEF.match(lines[j])
        if m and len(m.group(1)) < indent:
            return m.group(2)
    return None


def make_stub(source: str, module: str, course: Course, filename: str = "<solution>") -> str:
    """Return the stub text for one reference module's source."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise StubError(f"{filename}:{i + 1}: '{END}' without a matching '{BEGIN}'")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        try:
            j = next(k for k in range(i + 1, len(lines)) if lines[k].strip() in (BEGIN, END))
        except StopIteration:
            raise StubError(f"{filename}:{i + 1}: '{BEGIN}' is never closed") from None
        if lines[j].strip() == BEGIN:
            raise StubError(f"{filename}:{j + 1}: nested '{BEGIN}' (close the block at line {i + 1} first)")
        function = _enclosing_function(lines, i, indent) if indent else None
        if function is not None:
            exercise = course.exercise_for_function(module, function)
            label = exercise.id if exercise is not None else function
            out.append(f'{" " * indent}raise NotImplementedError("{label}: replace this line with your code ({module}.{function})")\n')
        i = j + 1
    stub = re.sub(r"\n{4,}", "\n\n\n", "".join(out))  # a dropped module-level block leaves no gap
    try:
        ast.parse(stub, filename=filename)
    except SyntaxError as exc:
        raise StubError(f"{filename}: the generated stub is not valid Python (line {exc.lineno}): {exc.msg}") from None
    return stub


def _reference_modules(course: Course) -> list[Path]:
    ref = course.resolve(course.reference_package)
    return sorted(p for p in ref.glob("*.py"))


def render_stubs(course: Course) -> dict[str, str]:
    """Map of stub file name -> text for every module of the reference package."""
    rendered: dict[str, str] = {}
    for path in _reference_modules(course):
        text = path.read_text(encoding="utf-8")
        if path.name == "__init__.py":
            rendered[path.name] = '"""Your solutions to the convnet exercises: fill in the functions that raise NotImplementedError."""\n'
            continue
        header = HEADER.format(reference=course.reference_package, name=path.name)
        rendered[path.name] = header + make_stub(text, path.stem, course, filename=str(path))
    return rendered


def write_stubs(course: Course, out_dir: Path | None = None) -> list[Path]:
    """(Re)write the stubs; returns the files written. Stale stub modules are removed."""
    out = Path(out_dir) if out_dir else course.resolve(course.student_package)
    out.mkdir(parents=True, exist_ok=True)
    rendered = render_stubs(course)
    written = []
    for name, text in rendered.items():
        target = out / name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    for stale in out.glob("*.py"):
        if stale.name not in rendered:
            stale.unlink()
    return written


def check_stubs(course: Course, out_dir: Path | None = None) -> list[Drift]:
    """Differences between ``exercises/`` and what the generator would write (empty: in sync)."""
    out = Path(out_dir) if out_dir else course.resolve(course.student_package)
    rendered = render_stubs(course)
    drifts = []
    for name, text in rendered.items():
        target = out / name
        if not target.exists():
            drifts.append(Drift(target, "missing"))
        elif target.read_text(encoding="utf-8") != text:
            drifts.append(Drift(target, "differs from the generated stub"))
    for extra in out.glob("*.py"):
        if extra.name not in rendered:
            drifts.append(Drift(extra, "has no reference module"))
    return drifts
