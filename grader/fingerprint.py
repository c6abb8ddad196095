"""Hashes that decide whether a recorded grade is still valid: code, course and grader.

A class run reuses an exercise's result whenever the *cache key* is unchanged:

* the **code hash** of the exercise's module plus every sibling it imports, transitively
  (``from .padding import pad2d``, ``from exercises import padding``, ``import exercises.conv``).
  A module that could reach its siblings some other way (``importlib``, ``__import__``, ``open``,
  ``__file__``, ``os``, ``pathlib``, ...) makes the hash cover every module of the submission;
* the **course hash** of everything course.yml says about the exercise (points, functions,
  limits, forbidden lists, the MNIST scale and data checksums);
* the **grader build**: the version and a hash of the code that scores (suites, sandbox,
  grade.py, the reference solutions), so a fixed hidden suite invalidates old results.
"""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from coursekit.course import Course, Exercise

from . import __version__

_GRADER_DIR = Path(__file__).resolve().parent
#: Modules and builtins that let code reach files or modules without a static import of a sibling.
_DYNAMIC_MODULES = frozenset({"importlib", "os", "sys", "pathlib", "glob", "io", "builtins", "pkgutil", "runpy", "shutil",
                              "zipimport", "codecs", "linecache", "inspect", "marshal", "types"})
_DYNAMIC_NAMES = _DYNAMIC_MODULES | {"__import__", "exec", "eval", "compile", "open", "getattr", "globals", "vars", "locals",
                                     "__builtins__", "__file__", "__path__", "__spec__", "__loader__", "__package__"}
#: Attributes that do the same (``model.eval()`` is fine, ``x.__globals__`` is not).
_DYNAMIC_ATTRS = frozenset({"__import__", "import_module", "__file__", "__path__", "__spec__", "__loader__",
                            "__builtins__", "__globals__", "__dict__"})


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def module_links(source: bytes, package: str) -> tuple[set[str], bool]:
    """(sibling modules imported statically, whether the module may reach siblings dynamically).

    A module that does not parse has no links; its syntax error is part of its own hash.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), False
    siblings: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and node.module and node.module.split(".")[0] == package):
                parts = (node.module or "").split(".")
                parts = parts[1:] if node.level == 0 else parts
                if parts and parts[0]:
                    siblings.add(parts[0])
                else:
                    siblings.update(a.name.split(".")[0] for a in node.names)
            elif node.level > 1:
                dynamic = True  # reaches above the package: be conservative
            elif node.module and node.module.split(".")[0] in _DYNAMIC_MODULES:
                dynamic = True
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == package and rest:
                    siblings.add(rest.split(".")[0])
                elif top == package or top in _DYNAMIC_MODULES:
                    dynamic = True
        elif isinstance(node, ast.Name) and node.id in _DYNAMIC_NAMES:
            dynamic = True
        elif isinstance(node, ast.Attribute) and node.attr in _DYNAMIC_ATTRS:
            dynamic = True
    return siblings, dynamic


def code_hash(module: str, sources: Mapping[str, bytes], package: str) -> str:
    """Hash of ``module`` and the siblings it can import (all of them if it may import dynamically)."""
    closure: set[str] = set()
    todo = [module]
    everything = False
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        if name not in sources:
            continue
        siblings, dynamic = module_links(sources[name], package)
        everything = everything or dynamic
        todo.extend(siblings - closure)
    if everything:
        closure |= set(sources)
    parts: list[str | bytes] = [package, module]
    for name in sorted(closure):
        parts += [name, sources[name] if name in sources else b"\0absent"]
    return _sha(*parts)


def course_hash(course: Course, exercise: Exercise) -> str:
    """Hash of what course.yml says about one exercise (a changed point value or limit regrades it)."""
    data = {"exercise": exercise.model_dump(mode="json"), "limits": course.limits(exercise.id).model_dump(mode="json"),
            "package": course.student_package, "scale": course.mnist_scale.model_dump(mode="json"),
            "mnist": dict(sorted(course.data.mnist_sha256.items()))}
    return _sha(json.dumps(data, sort_keys=True))


@lru_cache(maxsize=1)
def grader_build() -> str:
    """``<version>+<hash>`` of the code that produces scores (suites, sandbox, grade.py, the reference)."""
    files = [_GRADER_DIR / name for name in ("grade.py", "report.py", "submission.py")]
    files += sorted((_GRADER_DIR / "suites").rglob("*.py")) + sorted((_GRADER_DIR / "sandbox").rglob("*.py"))
    solutions = _GRADER_DIR.parent / "solutions"
    if solutions.is_dir():
        files += sorted(solutions.glob("*.py"))
    parts: list[str | bytes] = [__version__]
    for f in files:
        if f.is_file():
            parts += [f.relative_to(_GRADER_DIR.parent).as_posix(), f.read_bytes()]
    return f"{__version__}+{_sha(*parts)[:12]}"


def cache_key(exercise_id: str, code: str, course_h: str, build: str) -> str:
    """The key under which an exercise's result is stored and reused."""
    return _sha("exercise-result", exercise_id, code, course_h, build)
