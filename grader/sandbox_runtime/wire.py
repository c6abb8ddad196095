"""The wire format between the grader and a sandboxed worker: framed JSON headers plus raw array bytes.

A frame is ``PREFIX`` (magic, header length, body length) + a UTF-8 JSON header + a body holding the raw
bytes of every array in the value, each at a 64-byte aligned offset. Never pickle, never eval.

Header: ``{"k": kind, "m": meta, "v": value-tree, "b": [[dtype, shape, offset, nbytes], ...]}``.
Value tree: JSON ``null``/bool/int/float/str, JSON lists for Python lists, and one-key objects for
everything else: ``{"t": [...]}`` a tuple, ``{"d": {...}}`` a dict with str keys, ``{"a": i}`` the
i-th array of ``"b"`` (``{"a": i, "l": "F"|"S"}``: the sender's array was Fortran-ordered/strided),
``{"m": name}`` a :class:`Build` placeholder (requests only). Arrays are bool/int/uint/float
(little-endian) of any shape.

The reading side never trusts the writer: sizes are checked against :class:`FrameCaps` *before*
anything is allocated, dtypes come from an allow-list, ``prod(shape) * itemsize == nbytes``, buffers
may not overlap or be reused, nesting and item counts are bounded. Violations raise :class:`WireError`.

Hand-written because no library fits: numpy's ``.npy`` carries one array per stream and sizes its buffer
from the writer's header, while a frame carries a tree of plain values and many arrays read in one
``readv`` into buffers whose total was capped before allocation; JSON (stdlib) does the rest.

This module runs on both sides of the boundary; it imports numpy lazily so that the worker can read
its configuration frame before numpy (and its threads) start.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"CNV1"
PREFIX = struct.Struct("<4sIQ")  # magic, header length (u32), body length (u64)
ALIGN = 64

#: dtype strings allowed on the wire (numpy ``dtype.str`` after conversion to little-endian).
DTYPES = frozenset({"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8"})
_TAGS = ("t", "d", "a")


class WireError(Exception):
    """A frame or value that breaks the protocol (malformed, oversized, disallowed dtype, ...)."""


class InvalidValue(TypeError):
    """A Python value that cannot cross the boundary (object arrays, ndarray subclasses, custom classes, ...)."""


@dataclass(frozen=True)
class FrameCaps:
    """Upper bounds enforced by the *reading* side of a pipe."""

    max_header_bytes: int = 16 * 2**20
    max_body_bytes: int = 512 * 2**20
    max_depth: int = 32
    max_items: int = 1_000_000
    max_ndim: int = 32
    max_str_chars: int = 4 * 2**20


@dataclass(frozen=True)
class Build:
    """An argument standing for ``<builder>()`` from the called function's own module, built inside the
    worker (e.g. a torch model passed to ``count_parameters``): the object never crosses the boundary.
    Only requests (grader to worker) may carry it."""

    builder: str


@dataclass
class Frame:
    """One decoded message: a kind (``"call"``, ``"result"``, ...), plain-JSON meta and an optional value."""

    kind: str
    meta: dict = field(default_factory=dict)
    value: Any = None


# ----------------------------------------------------------------------------------------------- encoding


def _np():
    import numpy

    return numpy


def _wire_dtype(arr) -> str | None:
    """The little-endian dtype string of ``arr`` if it is allowed on the wire, else None."""
    dt = arr.dtype
    if dt.kind not in "biuf" or dt.fields is not None or dt.subdtype is not None:
        return None
    s = dt.newbyteorder("<").str
    return s if s in DTYPES else None


def describe(value: Any) -> str:
    """A short human description of a value's type, e.g. ``MyArray (a subclass of numpy.ndarray)``."""
    np = _np()
    t = type(value)
    name = f"{t.__module__}.{t.__qualname__}" if t.__module__ not in ("builtins", None) else t.__qualname__
    if isinstance(value, np.ndarray) and t is not np.ndarray:
        return f"{name[:200]} (a subclass of numpy.ndarray)"
    return name[:200]


def encode_value(value: Any, caps: FrameCaps = FrameCaps()) -> tuple[Any, list]:
    """Turn ``value`` into a JSON-able tree and a list of contiguous little-endian arrays.

    Only exact built-in types are accepted (no subclasses: they could override ``__eq__``);
    numpy scalars become plain Python numbers. Raises :class:`InvalidValue` with a readable reason.
    """
    np = _np()
    arrays: list = []
    count = [0]
    scalar_types = (np.bool_, np.integer, np.floating)

    def enc(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > caps.max_items:
            raise InvalidValue(f"more than {caps.max_items} items")
        if depth > caps.max_depth:
            raise InvalidValue(f"nested deeper than {caps.max_depth} levels")
        t = type(v)
        if v is None or t is bool or t is str:
            if t is str and len(v) > caps.max_str_chars:
                raise InvalidValue(f"a string of {len(v)} characters")
            return v
        if t is int:
            if v.bit_length() > 4096:
                raise InvalidValue("an int with more than 4096 bits")
            return v
        if t is float:
            return v
        if t is np.ndarray:
            dt = _wire_dtype(v)
            if dt is None:
                raise InvalidValue(f"a numpy array of dtype {v.dtype} (allowed: bool, int, uint, float)")
            if v.ndim > caps.max_ndim:
                raise InvalidValue(f"an array with {v.ndim} dimensions")
            layout = None
            if not v.flags.c_contiguous:
                layout = "F" if v.ndim >= 2 and v.flags.f_contiguous else "S"
            arrays.append(np.asarray(v, dtype=np.dtype(dt), order="C"))
            node = {"a": len(arrays) - 1}
            if layout:
                node["l"] = layout
            return node
        if isinstance(v, np.ndarray):
            raise InvalidValue(f"{describe(v)}; return a plain numpy.ndarray")
        if isinstance(v, np.generic):
            if isinstance(v, scalar_types) and type(v).__module__ == "numpy" and _wire_dtype(np.asarray(v)) is not None:
                return v.item()
            raise InvalidValue(f"a numpy scalar of type {describe(v)}")
        if t is Build:
            if type(v.builder) is not str or not v.builder.isidentifier():
                raise InvalidValue(f"Build needs a function name, got {v.builder!r}")
            return {"m": v.builder}
        if t is list:
            return [enc(x, depth + 1) for x in v]
        if t is tuple:
            return {"t": [enc(x, depth + 1) for x in v]}
        if t is dict:
            out = {}
            for k, x in v.items():
                if type(k) is not str:
                    raise InvalidValue(f"a dict with a key of type {describe(k)} (only str keys)")
                out[k] = enc(x, depth + 1)
            return {"d": out}
        raise InvalidValue(f"an object of type {describe(v)}")

    return enc(value, 0), arrays


def encode_frame(kind: str, meta: dict | None = None, value: Any = None, *, has_value: bool = False,
                 caps: FrameCaps = FrameCaps()) -> list:
    """Serialise one frame into a list of byte chunks (arrays are not copied again)."""
    np = None
    header: dict = {"k": kind, "m": meta or {}}
    arrays: list = []
    if has_value:
        header["v"], arrays = encode_value(value, caps)
    table = []
    chunks_after: list = []
    offset = 0
    for arr in arrays:
        pad = (-offset) % ALIGN
        if pad:
            chunks_after.append(b"\0" * pad)
            offset += pad
        if np is None:
            np = _np()
        raw = memoryview(arr.reshape(-1).view(np.uint8))
        table.append([arr.dtype.str, list(arr.shape), offset, arr.nbytes])
        if arr.nbytes:
            chunks_after.append(raw)
        offset += arr.nbytes
    if table:
        header["b"] = table
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return [PREFIX.pack(MAGIC, len(head), offset) + head, *chunks_after]


# ----------------------------------------------------------------------------------------------- decoding


class FrameAssembler:
    """Incremental, allocation-bounded frame reader: read into :meth:`target`, then :meth:`commit`.

    The target never extends past the current part of the current frame, so no byte of the next
    frame is consumed early; the size checks happen before the header or body is allocated.
    """

    def __init__(self, caps: FrameCaps = FrameCaps(), restore_layout: bool = False, allow_build: bool = False):
        self.caps = caps
        self.restore_layout = restore_layout
        self.allow_build = allow_build
        self._reset()

    def _reset(self) -> None:
        self._stage = "prefix"
        self._buf = bytearray(PREFIX.size)
        self._filled = 0
        self._header: bytes = b""
        self._body_len = 0

    @property
    def idle(self) -> bool:
        """True between frames (nothing of a next frame has been read)."""
        return self._stage == "prefix" and self._filled == 0

    def target(self) -> memoryview:
        return memoryview(self._buf)[self._filled:]

    def commit(self, n: int) -> Frame | None:
        """Account for ``n`` bytes written into :meth:`target`; return a frame when one is complete."""
        self._filled += n
        while self._filled == len(self._buf):
            if self._stage == "prefix":
                magic, hlen, blen = PREFIX.unpack(bytes(self._buf))
                if magic != MAGIC:
                    raise WireError(f"bad frame magic {magic!r}")
                if hlen > self.caps.max_header_bytes:
                    raise WireError(f"frame header of {hlen} bytes exceeds {self.caps.max_header_bytes}")
                if blen > self.caps.max_body_bytes:
                    raise WireError(f"frame body of {blen} bytes exceeds {self.caps.max_body_bytes}")
                self._body_len = blen
                self._stage, self._buf, self._filled = "header", bytearray(hlen), 0
            elif self._stage == "header":
                self._header = bytes(self._buf)
                self._stage, self._buf, self._filled = "body", bytearray(self._body_len), 0
            else:
                header, body = self._header, self._buf
                self._reset()
                return decode_frame(header, body, self.caps, self.restore_layout, self.allow_build)
        return None


def decode_frame(header: bytes, body: bytearray, caps: FrameCaps = FrameCaps(),
                 restore_layout: bool = False, allow_build: bool = False) -> Frame:
    """Validate and decode one frame's header and body.

    Arrays arrive C-contiguous; with ``restore_layout`` (the worker side), an array the sender had as
    Fortran-ordered or strided is handed over with such a layout again (same values), so that student
    code meets non-contiguous inputs when the grader sends them; ``allow_build`` (the worker side too)
    accepts :class:`Build` placeholders.
    """
    try:
        h = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError(f"frame header is not valid JSON: {type(e).__name__}") from None
    if type(h) is not dict or set(h) - {"k", "m", "v", "b"} or type(h.get("k")) is not str:
        raise WireError("frame header must be an object with a str 'k'")
    meta = h.get("m", {})
    if type(meta) is not dict:
        raise WireError("frame meta must be an object")
    arrays = _decode_buffers(h.get("b", []), body, caps)
    used = [False] * len(arrays)
    frame = Frame(kind=h["k"], meta=meta)
    if "v" in h:
        frame.value = _decode_tree(h["v"], arrays, used, caps, restore_layout, allow_build)
    if not all(used):
        raise WireError("frame carries an array the value does not reference")
    return frame


def _is_int(x: Any) -> bool:
    return type(x) is int


def _decode_buffers(table: Any, body: bytearray, caps: FrameCaps) -> list:
    if type(table) is not list:
        raise WireError("buffer table must be a list")
    if not table:
        if len(body):
            raise WireError("frame body without a buffer table")
        return []
    np = _np()
    arrays = []
    end = 0
    for entry in table:
        if type(entry) is not list or len(entry) != 4:
            raise WireError("buffer entry must be [dtype, shape, offset, nbytes]")
        dt, shape, offset, nbytes = entry
        if type(dt) is not str or dt not in DTYPES:
            raise WireError(f"dtype {str(dt)[:40]!r} is not allowed")
        if type(shape) is not list or len(shape) > caps.max_ndim or not all(_is_int(s) and s >= 0 for s in shape):
            raise WireError("shape must be a list of at most max_ndim non-negative ints")
        if not (_is_int(offset) and _is_int(nbytes)) or offset < end or offset % ALIGN or nbytes < 0:
            raise WireError("buffer offset/nbytes out of order, overlapping or misaligned")
        dtype = np.dtype(dt)
        if math.prod(shape) * dtype.itemsize != nbytes:
            raise WireError(f"shape {shape} x itemsize {dtype.itemsize} != {nbytes} bytes")
        if offset + nbytes > len(body):
            raise WireError("buffer extends past the frame body")
        count = nbytes // dtype.itemsize
        arr = np.frombuffer(body, dtype=dtype, count=count, offset=offset) if count else np.empty(0, dtype)
        arrays.append(arr.reshape(shape))
        end = offset + nbytes
    if end != len(body):
        raise WireError("frame body has trailing bytes")
    return arrays


def _relayout(arr, layout: str):
    """Give a decoded (contiguous) array the kind of memory layout the sender's array had."""
    np = _np()
    if arr.ndim == 0 or arr.size == 0:
        return arr
    if layout == "F":
        return np.asfortranarray(arr)
    base = np.empty(arr.shape[:-1] + (2 * arr.shape[-1],), dtype=arr.dtype)
    view = base[..., ::2]
    view[...] = arr
    return view


def _decode_tree(node: Any, arrays: list, used: list, caps: FrameCaps, restore_layout: bool,
                 allow_build: bool = False) -> Any:
    count = [0]

    def dec(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > caps.max_items or depth > caps.max_depth:
            raise WireError("value too large or too deeply nested")
        t = type(v)
        if v is None or t in (bool, int, float):
            return v
        if t is str:
            if len(v) > caps.max_str_chars:
                raise WireError("string too long")
            return v
        if t is list:
            return [dec(x, depth + 1) for x in v]
        if t is dict and len(v) == 2 and type(v.get("a")) is int and v.get("l") in ("F", "S"):
            arr = dec({"a": v["a"]}, depth)
            return _relayout(arr, v["l"]) if restore_layout else arr
        if t is dict and len(v) == 1:
            (tag, inner), = v.items()
            if tag == "t" and type(inner) is list:
                return tuple(dec(x, depth + 1) for x in inner)
            if tag == "d" and type(inner) is dict:
                return {k: dec(x, depth + 1) for k, x in inner.items()}
            if tag == "m" and allow_build and type(inner) is str and inner.isidentifier():
                return Build(inner)
            if tag == "a" and _is_int(inner) and 0 <= inner < len(arrays):
                if used[inner]:
                    raise WireError("array referenced twice")
                used[inner] = True
                return arrays[inner]
        raise WireError(f"unexpected value node of type {t.__name__}")

    return dec(node, 0)


# ----------------------------------------------------------------------------------------------- blocking I/O (worker side)


def write_chunks(fd: int, chunks: list) -> None:
    """Write every chunk completely to a blocking fd."""
    for chunk in chunks:
        view = memoryview(chunk)
        while len(view):
            n = os.write(fd, view)
            view = view[n:]


def read_frame(fd: int, caps: FrameCaps = FrameCaps(), restore_layout: bool = False,
               allow_build: bool = False) -> Frame | None:
    """Read one frame from a blocking fd; None on a clean EOF before the frame starts."""
    asm = FrameAssembler(caps, restore_layout, allow_build)
    while True:
        target = asm.target()
        if len(target) == 0:  # zero-length header/body part: commit without reading
            frame = asm.commit(0)
            if frame is not None:
                return frame
            continue
        n = os.readv(fd, [target])
        if n == 0:
            if asm.idle:
                return None
            raise WireError("pipe closed in the middle of a frame")
        frame = asm.commit(n)
        if frame is not None:
            return frame
