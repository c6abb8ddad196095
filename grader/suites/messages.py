"""Describing a student's values and errors for messages: short, safe on any value, never raising."""
from __future__ import annotations

import re
import reprlib
from typing import Any

import numpy as np

#: What the student may see of a value: reprlib keeps nested and long values short.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 8, 8, 8
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 120, 120, 60
_MAX_TEXT = 2000


def type_name(value: Any) -> str:
    """``list``, ``torch.Tensor``, ``MyArray (a subclass of numpy.ndarray)``: never raises."""
    try:
        t = type(value)
        module = getattr(t, "__module__", None) or ""
        name = t.__qualname__ if module in ("builtins", "") else f"{module.split('.')[0]}.{t.__qualname__}"
        if isinstance(value, np.ndarray) and t is not np.ndarray:
            return f"{name} (a subclass of numpy.ndarray)"
        return name[:120]
    except Exception:  # noqa: BLE001  a hostile metaclass
        return "an unknown type"


def is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def describe(value: Any, max_elements: int = 36) -> str:
    """A short human description of any value; arrays printed in full only when small. Never raises."""
    try:
        text = _describe(value, max_elements)
    except Exception as exc:  # noqa: BLE001  an object whose repr or conversion raises
        text = f"a {type_name(value)} that cannot be shown ({type(exc).__name__})"
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def _describe(value: Any, max_elements: int) -> str:
    if is_tensor(value):
        head = f"torch tensor shape {tuple(value.shape)} dtype {value.dtype}"
        if value.numel() <= max_elements:
            return f"{head}:\n" + _array_body(value.detach().cpu().numpy())
        return head
    if isinstance(value, np.ndarray):
        plain = value.view(np.ndarray)
        head = f"array shape {plain.shape} dtype {plain.dtype}"
        if type(value) is not np.ndarray:
            head += f" ({type_name(value)})"
        if plain.size <= max_elements:
            return f"{head}:\n" + _array_body(plain)
        return head
    if isinstance(value, np.generic):
        return _SHORT.repr(value)
    if isinstance(value, tuple) and type(value) is tuple and len(value) <= 8:
        return "(" + ", ".join(describe(v, max_elements) for v in value) + ("," if len(value) == 1 else "") + ")"
    if type(value) is int and value.bit_length() > 200:
        return f"an int of {value.bit_length()} bits"
    return _SHORT.repr(value)


def _array_body(array: np.ndarray) -> str:
    with np.errstate(all="ignore"):
        return np.array2string(array, precision=4, suppress_small=True, separator=", ", threshold=64)


# ---------------------------------------------------------------------------------------------
# What the student's code did when it raised with an empty message
# ---------------------------------------------------------------------------------------------
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')


def student_frame(traceback: str, package: str = "") -> str | None:
    """``exercises/pooling.py, line 12, in maxpool2d: assert x.ndim == 4`` from a worker traceback, or None.

    The innermost frame in the student's package wins; otherwise the innermost frame of all.
    """
    lines = (traceback or "").splitlines()
    frames = []
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if m:
            after = lines[i + 1] if i + 1 < len(lines) else ""
            code = after.strip() if after.startswith("    ") and not _FRAME.match(after) else ""
            frames.append((m["file"], m["line"], m["func"].strip(), code))
    if not frames:
        return None
    own = [f for f in frames if package and f[0].startswith(package + "/")]
    file, line, func, code = (own or frames)[-1]
    return f"{file}, line {line}, in {func}" + (f": {code[:200]}" if code else "")


def last_printed(stdout: str, lines: int = 5) -> str:
    """The last ``lines`` non-empty lines the student printed, each cut to 200 characters."""
    tail = [l.rstrip()[:200] for l in (stdout or "").splitlines() if l.strip()][-lines:]
    return "\n".join(tail)


def explain_empty(type_name: str, message: str, traceback: str, stdout: str = "", package: str = "") -> str:
    """``message``, or for an empty one (``raise AssertionError``, ``sys.exit()``) where and what was last printed."""
    if str(message).strip():
        return message
    parts = [f"(no message) raised at {frame}" if (frame := student_frame(traceback, package)) else "(no message)"]
    printed = last_printed(stdout)
    if printed:
        parts.append("the last lines your code printed:\n" + "\n".join("    " + l for l in printed.splitlines()))
    return "\n".join(parts)
