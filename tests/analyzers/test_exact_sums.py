"""Tests for tft_lite.analyzers._exact, the exact superaccumulator behind sum/mean/var."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_lite.analyzers import _exact


def _exact_ref(values, positions, num_positions, square):
    out = [Fraction(0)] * num_positions
    for v, p in zip(values, positions):
        f = Fraction(float(v))
        out[p] += f * f if square else f
    scale = 2 ** (_exact.SCALE_SQ if square else _exact.SCALE_ONE)
    return [f * scale for f in out]


def _check(values, positions, num_positions, mantissa_bits=53):
    s1, s2 = _exact.from_values(values, positions, num_positions, mantissa_bits=mantissa_bits)
    for acc, square in ((s1, False), (s2, True)):
        got = [Fraction(v) for v in _exact.to_ints(acc)]
        assert got == _exact_ref(values, positions, num_positions, square)
    return s1, s2


_f64 = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                     -1.7976931348623157e308, 0.0, -0.0, 1e9]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_f64, st.integers(0, 3)), max_size=40), st.integers(0, 40))
def test_exact_and_canonical_float64(pairs, cut):
    values = np.array([v for v, _ in pairs], dtype=np.float64)
    positions = np.array([p for _, p in pairs], dtype=np.int64)
    whole = _check(values, positions, 4)
    cut = min(cut, len(values))
    a = _exact.from_values(values[:cut], positions[:cut], 4)
    b = _exact.from_values(values[cut:], positions[cut:], 4)
    for k in range(2):
        merged = _exact.merge([b[k], a[k]], 4)
        assert merged[0] == whole[k][0] and np.array_equal(merged[1], whole[k][1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=40))
def test_float32_mantissa_path(vals):
    values = np.array(vals, dtype=np.float32).astype(np.float64)
    positions = np.zeros(len(values), dtype=np.int64)
    fast = _check(values, positions, 1, mantissa_bits=24)
    slow = _exact.from_values(values, positions, 1, mantissa_bits=53)
    for k in range(2):
        assert fast[k][0] == slow[k][0] and np.array_equal(fast[k][1], slow[k][1])


def test_chunked_rounds(monkeypatch):
    rng = np.random.default_rng(3)
    values = rng.normal(size=3000) * 10.0 ** rng.integers(-300, 300, size=3000)
    positions = rng.integers(0, 7, size=3000)
    reference = _check(values, positions, 7)
    monkeypatch.setattr(_exact, "_CHUNK", 128)
    chunked = _check(values, positions, 7)
    for k in range(2):
        assert chunked[k][0] == reference[k][0] and np.array_equal(chunked[k][1], reference[k][1])


def test_sparse_grouping_path():
    # Many positions x exponents (> the dense table limit): groups come from np.unique.
    rng = np.random.default_rng(4)
    values = rng.normal(size=3000) * 10.0 ** rng.integers(-5, 5, size=3000)
    positions = rng.integers(0, 100_000, size=3000)
    _check(values, positions, 100_000)


def test_many_equal_values_do_not_overflow():
    values = np.full(200_000, 1.7976931348623157e308)
    s1, s2 = _exact.from_values(values, np.zeros(values.size, np.int64), 1)
    assert _exact.to_ints(s1)[0] == 200_000 * int(Fraction(1.7976931348623157e308) * 2**1074)
    assert _exact.ratio_to_float(_exact.to_ints(s1)[0], 1 << 1074) == float("inf")
    merged = _exact.merge([s1] * 1000, 1)
    assert _exact.to_ints(merged)[0] == 1000 * _exact.to_ints(s1)[0]
    negated = _exact.from_values(-values, np.zeros(values.size, np.int64), 1, squares=False)[0]
    zero = _exact.merge([s1, negated], 1)
    assert _exact.to_ints(zero) == [0] and zero[1].shape == (1, 0)


def test_bad_mantissa_bits():
    with pytest.raises(ValueError):
        _exact.from_values(np.array([1.0]), np.array([0]), 1, mantissa_bits=32)


def _same(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1])


_F32_SPECIAL = [1e-45, -1e-45, 1e-40, -1.1754942e-38, 1.1754944e-38, 3.4028235e38,
                -3.4028235e38, 0.0, -0.0, 1.0, 16777215.0, 1e9]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False),
                          st.sampled_from(_F32_SPECIAL)), max_size=60),
       st.integers(1, 3))
def test_from_float32_equals_from_values(vals, num_positions):
    vals = vals[:len(vals) - len(vals) % num_positions]
    x2d = np.array(vals, np.float32).reshape(-1, num_positions)
    positions = np.tile(np.arange(num_positions), x2d.shape[0])
    flat = x2d.reshape(-1).astype(np.float64)
    ref = _check(flat, positions, num_positions, mantissa_bits=24)
    ours = _exact.from_float32(x2d)
    assert _same(ours[0], ref[0]) and _same(ours[1], ref[1])
    assert _same(_exact.from_float32(x2d, squares=False)[0], ref[0])


def test_from_float32_many_equal_values_and_chunks(monkeypatch):
    # The largest float32 mantissa, 2**20 times, in bins that must not round.
    x = np.full((1 << 20, 2), np.float32(16777215.0) * np.float32(2.0 ** 100))
    x[::2, 1] = np.float32(-1.4e-45)
    ref = _exact.from_values(x.reshape(-1).astype(np.float64),
                             np.tile(np.arange(2), x.shape[0]), 2, mantissa_bits=24)
    ours = _exact.from_float32(x)
    assert _same(ours[0], ref[0]) and _same(ours[1], ref[1])
    monkeypatch.setattr(_exact, "_CHUNK", 1000)
    chunked = _exact.from_float32(x[:5000])
    whole = _exact.from_values(x[:5000].reshape(-1).astype(np.float64),
                               np.tile(np.arange(2), 5000), 2, mantissa_bits=24)
    assert _same(chunked[0], whole[0]) and _same(chunked[1], whole[1])


@pytest.mark.parametrize("setting", [("_BLOCK", 7), ("_BLOCK", 1), ("_MAX_BIN_POSITIONS", 4)])
def test_from_float32_blocks_and_wide_rows(monkeypatch, setting):
    x = np.random.default_rng(2).normal(size=(50, 6)).astype(np.float32)
    whole = _exact.from_float32(x)
    monkeypatch.setattr(_exact, *setting)
    assert all(_same(a, b) for a, b in zip(_exact.from_float32(x), whole))
