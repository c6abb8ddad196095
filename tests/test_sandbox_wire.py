"""The wire format: exact round trips of plain data, and a reader that trusts nothing it is sent."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.sandbox_runtime import wire
from grader.sandbox_runtime.wire import FrameAssembler, InvalidValue, WireError, FrameCaps

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
          np.float16, np.float32, np.float64]


def roundtrip(value, limits: FrameCaps = FrameCaps(), restore_layout: bool = False, piece: int | None = None):
    data = b"".join(bytes(memoryview(c)) for c in wire.encode_frame("result", {"x": 1}, value, has_value=True))
    asm = FrameAssembler(limits, restore_layout)
    frames, pos = [], 0
    while pos < len(data):
        target = asm.target()
        n = min(len(target), len(data) - pos, piece or len(data))
        target[:n] = data[pos:pos + n]
        pos += n
        f = asm.commit(n)
        if f is not None:
            frames.append(f)
    assert len(frames) == 1 and asm.idle
    assert frames[0].kind == "result" and frames[0].meta == {"x": 1}
    return frames[0].value


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


arrays = hnp.arrays(dtype=st.sampled_from(DTYPES), shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
scalars = st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=True) | st.text(max_size=20)
values = st.recursive(scalars | arrays, lambda inner: st.lists(inner, max_size=4)
                      | st.lists(inner, max_size=4).map(tuple)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(values, st.sampled_from([None, 1, 7, 4096]))
def test_plain_data_round_trips_exactly(value, piece):
    assert same(roundtrip(value, piece=piece), value)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from(DTYPES), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)),
       st.sampled_from(["T", "step", "neg"]))
def test_non_contiguous_inputs_keep_their_values_and_a_non_contiguous_layout(arr, how):
    view = {"T": arr.T, "step": arr[..., ::2], "neg": arr[::-1]}[how]
    plain = roundtrip(view)
    assert plain.flags.c_contiguous and same(plain, np.ascontiguousarray(view))
    restored = roundtrip(view, restore_layout=True)
    assert same(np.ascontiguousarray(restored), np.ascontiguousarray(view))
    if not view.flags.c_contiguous and view.size > 1:
        assert not restored.flags.c_contiguous


def test_big_endian_and_numpy_scalars_become_plain():
    out = roundtrip([np.arange(3, dtype=">f8"), np.float32(1.5), np.int64(-3), np.bool_(True)])
    assert out[0].dtype == np.dtype("<f8") and out[0].tolist() == [0.0, 1.0, 2.0]
    assert out[1:] == [1.5, -3, True] and [type(x) for x in out[1:]] == [float, int, bool]


def test_non_finite_floats_cross():
    out = roundtrip([float("nan"), float("inf"), -float("inf"), np.array([np.nan, np.inf])])
    assert math.isnan(out[0]) and out[1] == math.inf and out[2] == -math.inf
    assert np.isnan(out[3][0]) and np.isinf(out[3][1])


class Sub(np.ndarray):
    def __eq__(self, other):
        return True


class MyInt(int):
    pass


@pytest.mark.parametrize("value, fragment", [
    (np.array([None], dtype=object), "dtype object"),
    (np.zeros(2, dtype=complex), "complex128"),
    (np.zeros(2, dtype="U3"), "<U3"),
    (np.zeros(2, dtype=[("a", "f8")]), "dtype"),
    (np.zeros(2, dtype=np.longdouble), "float128"),
    (np.zeros(3).view(Sub), "subclass of numpy.ndarray"),
    (np.matrix([[1.0]]), "subclass of numpy.ndarray"),
    (MyInt(3), "MyInt"),
    (b"bytes", "bytes"),
    ({1: 2}, "key of type int"),
    ({1, 2}, "set"),
    (np.complex128(1j), "numpy scalar"),
    (object(), "object"),
])
def test_values_that_are_not_plain_data_are_refused(value, fragment):
    with pytest.raises(InvalidValue) as e:
        wire.encode_value(value)
    assert fragment in str(e.value)


def test_nesting_and_size_limits_on_encoding():
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InvalidValue, match="nested"):
        wire.encode_value(deep)
    with pytest.raises(InvalidValue, match="items"):
        wire.encode_value(list(range(100)), FrameCaps(max_items=50))


# ----------------------------------------------------------------------------------------- hostile frames


def frame_bytes(header: dict | bytes, body: bytes = b"", declared_body: int | None = None,
                magic: bytes = wire.MAGIC) -> bytes:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(body) if declared_body is None else declared_body
    return wire.PREFIX.pack(magic, len(head), n) + head + body


def feed(data: bytes, limits: FrameCaps = FrameCaps()):
    asm = FrameAssembler(limits)
    pos = 0
    while pos < len(data):
        target = asm.target()
        n = min(len(target), len(data) - pos)
        target[:n] = data[pos:pos + n]
        pos += n
        f = asm.commit(n)
        if f is not None:
            return f
    return None


def test_declared_sizes_are_refused_before_allocation():
    with pytest.raises(WireError, match="body of 1099511627776 bytes exceeds"):
        feed(frame_bytes({"k": "result"}, declared_body=2**40))
    with pytest.raises(WireError, match="header of"):
        feed(wire.PREFIX.pack(wire.MAGIC, 2**31, 0))
    with pytest.raises(WireError, match="exceeds 1000"):
        feed(frame_bytes({"k": "result"}, declared_body=1001), FrameCaps(max_body_bytes=1000))


ok_table = [["<f8", [2], 0, 16]]


@pytest.mark.parametrize("header, body, match", [
    (b"not json", b"", "not valid JSON"),
    (b"[" * 100000, b"", "JSON|nested"),
    ({"k": 1}, b"", "str 'k'"),
    ({"k": "result", "extra": 1}, b"", "str 'k'"),
    ({"k": "result", "m": []}, b"", "meta"),
    ({"k": "result", "v": {"a": 0}, "b": [["|O", [2], 0, 16]]}, bytes(16), "not allowed"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [3], 0, 16]]}, bytes(16), "itemsize"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [-2], 0, 16]]}, bytes(16), "shape"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [True, 2], 0, 16]]}, bytes(16), "shape"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [1] * 40, 0, 8]]}, bytes(8), "shape"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [4], 0, 32]]}, bytes(16), "past the frame body"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [2], 3, 16]]}, bytes(19), "misaligned"),
    ({"k": "result", "v": {"a": 0}, "b": ok_table}, bytes(24), "trailing"),
    ({"k": "result", "v": [{"a": 0}, {"a": 0}], "b": ok_table}, bytes(16), "twice"),
    ({"k": "result", "v": {"a": 1}, "b": ok_table}, bytes(16), "unexpected value"),
    ({"k": "result", "v": 1, "b": ok_table}, bytes(16), "does not reference"),
    ({"k": "result", "v": {"a": 0, "b": 1}}, b"", "unexpected value"),
    ({"k": "result", "v": {"x": 1}}, b"", "unexpected value"),
    ({"k": "result", "v": {"a": 0}, "b": [["<f8", [2], 0, 16], ["<f8", [2], 0, 16]]}, bytes(16), "overlapping"),
])
def test_malformed_frames_are_protocol_errors(header, body, match):
    with pytest.raises(WireError, match=match):
        feed(frame_bytes(header, body))


def test_bad_magic_and_huge_ints_and_depth():
    with pytest.raises(WireError, match="magic"):
        feed(frame_bytes({"k": "x"}, magic=b"EVIL"))
    with pytest.raises(WireError):
        feed(frame_bytes(b'{"k": "r", "v": ' + b"9" * 5000 + b"}"))
    nested = {"k": "r", "v": 1}
    for _ in range(40):
        nested["v"] = [nested["v"]]
    with pytest.raises(WireError, match="nested"):
        feed(frame_bytes(nested))


def test_a_valid_hand_made_frame_decodes():
    f = feed(frame_bytes({"k": "result", "m": {"status": "ok"}, "v": {"t": [{"a": 0}, 2]}, "b": ok_table},
                         np.array([1.5, -2.0]).tobytes()))
    assert f.meta == {"status": "ok"} and f.value[1] == 2 and f.value[0].tolist() == [1.5, -2.0]


def test_blocking_pipe_helpers_round_trip_a_5mb_array():
    r, w = os.pipe()
    x = np.random.default_rng(0).random(655_360)
    pid = os.fork()
    if pid == 0:  # writer child
        os.close(r)
        wire.write_chunks(w, wire.encode_frame("result", {}, [x, "done"], has_value=True))
        os._exit(0)
    os.close(w)
    try:
        frame = wire.read_frame(r)
        assert np.array_equal(frame.value[0], x) and frame.value[1] == "done"
        assert wire.read_frame(r) is None  # clean EOF
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def test_build_placeholders_travel_to_the_worker_only():
    value = [wire.Build("build_convnet"), {"m": wire.Build("x")}]
    data = b"".join(bytes(memoryview(c)) for c in wire.encode_frame("call", {}, value, has_value=True))
    head_len = wire.PREFIX.unpack(data[:wire.PREFIX.size])[1]
    header, body = data[wire.PREFIX.size:wire.PREFIX.size + head_len], bytearray()
    assert wire.decode_frame(header, body, allow_build=True).value == value
    with pytest.raises(WireError):  # the grader never accepts one from a worker
        wire.decode_frame(header, body)
    with pytest.raises(InvalidValue):
        wire.encode_value(wire.Build("not a name"))
