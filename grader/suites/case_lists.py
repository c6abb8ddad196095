"""Lists of the cases a passing property search tried, kept between runs (see :func:`.base.search_property`).

Hypothesis costs several ms per case on the grader's side; a kept list lets later runs call the student
with the same cases directly, and gives every submission the same cases. A list is keyed by the check and
by a fingerprint of hypothesis's and Python's versions and every hidden-suite file; it is written only by
the grader, atomically, and a damaged one is ignored (hypothesis then generates the cases again).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import hypothesis

from . import cases as case_types

#: Environment variable naming the directory of case lists; ``off`` disables them.
CASE_CACHE_ENV = "GRADER_CASE_CACHE"
_CACHE_FORMAT = 1


def case_cache_dir() -> Path | None:
    """Where case lists live: ``$GRADER_CASE_CACHE`` (``off``: nowhere), else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``convnets-grader/cases/<fingerprint>``. The fingerprint covers hypothesis's
    and Python's versions and every hidden-suite source file, so a list is never used for other
    strategies or another generator than the ones that produced it."""
    setting = os.environ.get(CASE_CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    root = Path(setting) if setting else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convnets-grader" / "cases"
    return root / _suites_fingerprint()


@lru_cache(maxsize=1)
def _suites_fingerprint() -> str:
    digest = hashlib.sha256(f"{_CACHE_FORMAT} {hypothesis.__version__} {sys.version_info[:2]}".encode())
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _case_file(key: str, max_examples: int) -> Path | None:
    folder = case_cache_dir() if key else None
    if folder is None:
        return None
    return folder / (hashlib.sha256(f"{key}\0{max_examples}".encode()).hexdigest()[:32] + ".json")


def load_cases(key: str, max_examples: int) -> list[Any] | None:
    """The kept list for this check, or None (none kept, unreadable, or not what this check stored)."""
    try:
        path = _case_file(key, max_examples)
        if path is None or not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key or data.get("max_examples") != max_examples:
            return None
        return [_decode(c) for c in data["cases"]]
    except Exception:  # noqa: BLE001  a damaged list is ignored: hypothesis generates the cases
        return None


def store_cases(key: str, max_examples: int, tried: list[Any]) -> None:
    """Keep the cases of a search that found no failing case (written atomically; never raises)."""
    tmp = None
    try:
        path = _case_file(key, max_examples)
        if path is None:
            return
        text = json.dumps({"key": key, "max_examples": max_examples, "cases": [_encode(c) for c in tried]})
        if not path.parent.is_dir():
            _forget_old_lists(path.parent.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001  no list kept: the next run generates the cases again
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


#: Lists of other suite versions (other fingerprints) not written for this long are deleted when a new version
#: stores its first (a version still in use just generates its lists again).
_FORGET_AFTER_S = 7 * 24 * 3600


def _forget_old_lists(root: Path) -> None:
    if not root.is_dir():
        return
    now = time.time()
    for old in root.iterdir():
        with contextlib.suppress(OSError):
            stale = now - old.stat().st_mtime > _FORGET_AFTER_S
            if stale and old.is_dir() and re.fullmatch(r"[0-9a-f]{32}", old.name):
                shutil.rmtree(old, ignore_errors=True)


def _encode(value: Any) -> Any:
    """JSON for a case: ints, floats, strings, booleans, None, tuples, lists and :mod:`.cases` dataclasses."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value) in (tuple, list):
        return {type(value).__name__: [_encode(v) for v in value]}
    if dataclasses.is_dataclass(value) and getattr(case_types, type(value).__name__, None) is type(value):
        return {"case": type(value).__name__, "fields": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot keep a case of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    if "list" in value:
        return [_decode(v) for v in value["list"]]
    cls = getattr(case_types, value["case"], None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"not a case type: {value['case']}")
    return cls(**{k: _decode(v) for k, v in value["fields"].items()})
