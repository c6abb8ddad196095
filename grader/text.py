"""Student text is data: every string that came from a worker is made valid, harmless Unicode and clipped.

A worker's strings (error messages, tracebacks, returned strings, dict keys, printed output) are
chosen by the student. Before the grader keeps one, :func:`student_text` clips it to a cap and
replaces what no report, page, CSV or JSON should carry with U+FFFD: lone surrogates (which UTF-8
cannot encode), NUL and the other C0/C1 control characters except tab and newline, and the Unicode
bidirectional controls (overrides, embeddings, isolates, marks) that make text read differently
from how it is stored. The caps live here, in one place.
"""
from __future__ import annotations

import re
from typing import Any

#: Characters a report never carries: C0 controls but tab and newline, DEL and C1 controls, lone
#: surrogates, the bidi controls (ALM, LRM/RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI) and the BOM.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
REPLACEMENT = "\ufffd"

#: Caps, in characters: a student string inside a returned value (a parameter name, a layer type, a dict
#: key), an error message, a traceback, and any message the grader writes into a report.
VALUE_CHARS = 1_000
ERROR_MESSAGE_CHARS = 2_000
TRACEBACK_CHARS = 4_000
REPORT_MESSAGE_CHARS = 8_000


def student_text(text: str, limit: int) -> str:
    """``text`` clipped to ``limit`` characters (saying how many were left out) and with every unsafe
    character replaced by U+FFFD; the result always encodes as UTF-8."""
    if len(text) > limit:
        text = f"{text[:limit]}... [{len(text) - limit} more characters not shown]"
    return _UNSAFE.sub(REPLACEMENT, text)


def student_value(value: Any, limit: int = VALUE_CHARS) -> Any:
    """A decoded wire value with every string in it (dict keys too) passed through :func:`student_text`.

    Numbers, arrays and ``None`` are returned as they are; lists, tuples and dicts are rebuilt only
    when they hold a string."""
    t = type(value)
    if t is str:
        return student_text(value, limit)
    if t is list or t is tuple:
        if not any(type(v) in (str, list, tuple, dict) for v in value):
            return value
        items = [student_value(v, limit) for v in value]
        return items if t is list else tuple(items)
    if t is dict:
        return {student_text(k, limit) if type(k) is str else k: student_value(v, limit) for k, v in value.items()}
    return value


def is_clean(text: str) -> bool:
    """True when ``text`` holds nothing :func:`student_text` would replace."""
    return _UNSAFE.search(text) is None
