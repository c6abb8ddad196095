"""The generic describers (coursekit.describe): each fires on the difference it names, exactly, and stays
silent on a right answer and on unrelated values. Property tests over random shapes and values."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from coursekit import describe as d

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def arrays(draw, min_hw: int = 3, ndim: int = 4) -> np.ndarray:
    """Random NCHW (or HW) float64 arrays with distinct values (no accidental symmetry)."""
    h, w = draw(st.integers(min_hw, 7)), draw(st.integers(min_hw, 7))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w) if ndim == 4 else (h, w)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal(shape)


def fires(describer, got, expected, hints=None) -> bool:
    return describer(got, expected, hints or {}) not in (None, d.UNJUDGED)


#: (describer, how to make a wrong answer it must name from a right one)
TRANSFORMS = {
    "flipped": (d.flipped, lambda e: np.flip(e, axis=-1).copy()),
    "flipped_rows": (d.flipped, lambda e: np.flip(e, axis=-2).copy()),
    "transposed": (d.transposed, lambda e: np.ascontiguousarray(np.swapaxes(e, -1, -2))),
    "shifted": (d.shifted, lambda e: np.concatenate([e[..., :1, :] * 0 + 7.0, e[..., :-1, :]], axis=-2)),
    "scaled": (d.scaled, lambda e: e * 2.5),
    "offset": (d.offset, lambda e: e + 1.25),
    "offset_per_map": (d.offset_per_map, lambda e: e + np.arange(e.shape[0] * e.shape[1]).reshape(e.shape[0], e.shape[1], 1, 1) + 0.5),
    "dtype_changed": (d.dtype_changed, lambda e: e.astype(np.float32)),
    "not_an_array": (d.not_an_array, lambda e: e.tolist()),
    "border_only": (d.border_only, lambda e: np.concatenate([e[..., :, :-1], e[..., :, -1:] + 3.0], axis=-1)),
    "cropped": (d.cropped, lambda e: e[..., :-1, :].copy()),
    "subsampled": (d.subsampled, lambda e: e[..., ::2, ::2].copy()),
    "rounded": (d.rounded, lambda e: np.trunc(e)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@SETTINGS
@given(arrays())
def test_describer_fires_on_its_difference(name, expected):
    describer, make = TRANSFORMS[name]
    if name == "rounded":
        expected = expected * 10 + 0.3  # no value already an integer
    if name == "offset_per_map":
        assume(expected.shape[0] * expected.shape[1] > 1)
    got = make(expected)
    if name not in ("dtype_changed", "not_an_array"):
        assume(not d.close(got, expected))
    assert fires(describer, got, expected), (name, got, expected)


@pytest.mark.parametrize("name", sorted({n: v for n, v in TRANSFORMS.items()}))
@SETTINGS
@given(arrays())
def test_describer_silent_on_a_right_answer(name, expected):
    describer, _ = TRANSFORMS[name]
    assert not fires(describer, expected.copy(), expected)


@pytest.mark.parametrize("describer", [f for _, f in d.DESCRIBERS], ids=[n for n, _ in d.DESCRIBERS])
@SETTINGS
@given(arrays(), st.integers(0, 2**16))
def test_every_describer_silent_on_unrelated_values(describer, expected, seed):
    got = np.random.default_rng(seed).standard_normal(expected.shape) * 3 + 11
    assert not fires(describer, got, expected)


@SETTINGS
@given(arrays())
def test_a_flip_is_not_called_a_transpose_or_a_shift(expected):
    got = np.flip(expected, axis=(-2, -1)).copy()
    assume(not d.close(got, expected))
    found = {f.id for f in d.differences(got, expected)}
    assert "describe.flipped" in found
    assert not found & {"describe.transposed", "describe.shifted", "describe.scaled"}


@SETTINGS
@given(arrays())
def test_batch_items_the_same(expected):
    assume(expected.shape[0] > 1)
    got = np.broadcast_to(expected[:1], expected.shape).copy()
    assert "of item 0" in d.batch_items_same(got, expected, {})
    assert d.batch_items_same(expected.copy(), expected, {}) is None


@SETTINGS
@given(arrays())
def test_only_the_windows_over_the_padding(expected):
    mask = np.zeros(expected.shape[-2:], dtype=bool)
    mask[0, :] = True
    got = expected.copy()
    got[..., 0, 1] += 5.0
    assert d.padding_windows(got, expected, {"padding_mask": mask})
    got[..., 1, 1] += 5.0  # a wrong value inside: no longer only the padding
    assert d.padding_windows(got, expected, {"padding_mask": mask}) is None
    assert d.padding_windows(expected.copy(), expected, {"padding_mask": mask}) is None


@SETTINGS
@given(st.integers(0, 40), st.integers(0, 40))
def test_pairs_and_numbers(a, b):
    assume(a != b)
    assert "reverse order" in d.pair_swapped((b, a), (a, b), {})
    assert d.pair_swapped((a, b), (a, b), {}) is None
    assert "list" in d.pair_swapped([a, b], (a, b), {})
    assert "1 more" in d.number_off(a + 1, a, {})[1]
    assert "float" in d.number_off(float(a), a, {})[1]
    assert d.number_off(a, a, {}) is None


def test_a_tuple_result_is_described_item_by_item():
    rng = np.random.default_rng(0)
    expected = (rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 3, 3)), rng.standard_normal(1))
    got = (expected[0], expected[1] * 0.5, expected[2])
    found = d.differences(got, expected)
    assert [f.id for f in found] == ["describe.scaled.item2"]
    assert "items 1, 3 are right" in found[0].text


def test_the_float32_upcast_is_named():
    e = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    assert "float64, expected float32" in d.dtype_changed(e.astype(np.float64), e, {})
    assert d.dtype_changed(e, e, {}) is None


def test_strange_answers_get_no_description_and_no_crash():
    e = np.ones((1, 1, 3, 3))
    for got in (None, "text", object(), np.array(["a"]), [[1, "x"]], np.full((1, 1, 3, 3), np.nan), (1, 2), {}):
        assert isinstance(d.differences(got, e), list)


def test_a_case_too_small_to_tell_is_unjudged_not_silent():
    one = np.array([[[[2.0]]]])
    assert d.scaled(one * 3, one, {}) == d.UNJUDGED
    assert d.flipped(one * 3, one, {}) == d.UNJUDGED
    assert d.batch_items_same(one * 3, one, {}) == d.UNJUDGED
    assert d.differences(one * 3, one) == []
    assert {f.id for f in d.differences(one * 3, one, unjudged=True)} >= {"describe.scaled", "describe.flipped"}
