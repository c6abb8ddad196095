"""The student's own helper calls that the worker recorded during one call, validated (trusted side).

The worker (``grader/sandbox_runtime/worker.py``, ``HelperRecorder``) reports which of the student's
``depends_on`` helpers (pad2d, same_padding, conv_output_size) a function called, with clipped plain-JSON
arguments and answers. That report is untrusted: :func:`decode` keeps only well-formed records of the
watched helpers, rebuilds small arrays and marks anything else as :class:`Clipped` (never compared).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_CALLS = 16
MAX_VALUES = 20_000


@dataclass(frozen=True)
class Clipped:
    """A value the worker did not send in full (a large array, an object): it cannot be checked."""
    what: str = "a value not recorded in full"


@dataclass(frozen=True)
class HelperCall:
    function: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    value: Any = None
    raised: str | None = None

    @property
    def checkable(self) -> bool:
        """Every argument (and the answer, unless it raised) was recorded in full."""
        parts = [*self.args, *self.kwargs.values()] + ([] if self.raised else [self.value])
        return not any(_has_clipped(p) for p in parts)


def _has_clipped(value: Any) -> bool:
    if isinstance(value, Clipped):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_clipped(v) for v in value)
    return False


def _value(raw: Any, depth: int = 0) -> Any:
    if raw is None or type(raw) in (bool, int, float):
        return raw
    if type(raw) is str:
        return raw[:200]
    if depth > 4:
        return Clipped()
    if type(raw) is list:
        return [_value(v, depth + 1) for v in raw[:16]]
    if type(raw) is not dict or len(raw) != 1:
        return Clipped()
    (tag, body), = raw.items()
    try:
        if tag == "t" and type(body) is list:
            return tuple(_value(v, depth + 1) for v in body[:16])
        if tag == "nd" and type(body) is list and len(body) == 3:
            dtype, shape, data = np.dtype(str(body[0])[:8]), body[1], body[2]
            if (dtype.kind not in "biuf" or type(shape) is not list or len(shape) > 6
                    or not all(type(d) is int and 0 <= d <= MAX_VALUES for d in shape)
                    or type(data) is not list or len(data) > MAX_VALUES or int(np.prod(shape)) != len(data)
                    or not all(type(v) in (int, float, bool) for v in data)):
                return Clipped()
            return np.array(data, dtype=dtype).reshape(shape)
        if tag == "np" and type(body) is list and len(body) == 2 and type(body[1]) in (int, float, bool):
            dtype = np.dtype(str(body[0])[:8])
            return dtype.type(body[1]) if dtype.kind in "biuf" else Clipped()
        if tag == "big" and type(body) is list and len(body) == 2 and type(body[1]) is list:
            return Clipped(f"an array of shape {tuple(int(d) for d in body[1][:6] if type(d) is int)}")
    except (TypeError, ValueError, OverflowError):
        return Clipped()
    return Clipped()


def decode(raw: Any, watched: set[str]) -> tuple[HelperCall, ...]:
    """The well-formed records of ``watched`` helpers in the worker's report ``raw`` (never raises)."""
    out: list[HelperCall] = []
    if not isinstance(raw, (list, tuple)):
        return ()
    for item in list(raw)[:MAX_CALLS]:
        try:
            if type(item) is not dict or item.get("function") not in watched:
                continue
            args = item.get("args", [])
            kwargs = item.get("kwargs", {})
            if type(args) is not list or type(kwargs) is not dict:
                continue
            raised = item.get("raised")
            out.append(HelperCall(function=str(item["function"]), args=tuple(_value(a) for a in args[:6]),
                                  kwargs={str(k)[:40]: _value(v) for k, v in list(kwargs.items())[:6]},
                                  value=_value(item.get("value")) if raised is None else None,
                                  raised=str(raised)[:100] if raised is not None else None))
        except Exception:  # noqa: BLE001  a malformed record is dropped
            continue
    return tuple(out)
