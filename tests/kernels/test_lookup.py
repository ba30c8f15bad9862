"""VocabularyLookup: the C table against a Python dict, on batches and single tokens."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_lite.kernels import lookup as lookup_module
from tft_lite.kernels.lookup import VocabularyLookup

BACKENDS = ["python"] + (["c"] if lookup_module._lookup is not None else [])


def test_c_table_is_built():
    assert lookup_module._lookup is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_lookup_values(backend):
    vocab = VocabularyLookup([b"a", "héllo", b"", b"\x00\xff", b"a", b"x" * 100], backend)
    values = pa.array([b"a", b"", b"zz", "héllo".encode(), None, b"x" * 100, b"\x00\xff"])
    assert vocab.lookup(values).tolist() == [0, 2, -1, 1, -1, 5, 3]
    assert vocab.lookup(pa.array(["a", "b"])).tolist() == [0, -1]  # string arrays
    assert vocab.lookup(pa.array([b"q", b"a"], pa.large_binary())).tolist() == [-1, 0]
    assert vocab.lookup(values.slice(2, 3)).tolist() == [-1, 1, -1]
    assert vocab.lookup(np.array([b"a", b"nope"], dtype=object)).tolist() == [0, -1]
    assert vocab.get(b"a") == 0 and vocab.get("héllo") == 1 and vocab.get(b"b") == -1
    assert len(vocab) == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_vocabulary_and_empty_input(backend):
    vocab = VocabularyLookup([], backend)
    assert vocab.lookup(pa.array([b"a"])).tolist() == [-1]
    assert vocab.lookup(pa.array([], pa.binary())).tolist() == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=50), st.lists(st.binary(max_size=20),
                                                               max_size=50))
def test_backends_agree(tokens, values):
    expected = {}
    for i, t in enumerate(tokens):
        expected.setdefault(t, i)
    want = [expected.get(v, -1) for v in values]
    for backend in BACKENDS:
        assert VocabularyLookup(tokens, backend).lookup(pa.array(values, pa.binary())
                                                        ).tolist() == want


def test_large_vocabulary():
    tokens = [f"{i:08x}".encode() for i in range(200_000)]
    vocab = VocabularyLookup(tokens)
    probe = pa.array(tokens[::-7] + [b"missing"], pa.binary())
    result = vocab.lookup(probe)
    assert result[:-1].tolist() == list(range(199_999, -1, -7)) and result[-1] == -1


# Tokens of every length around the 8-byte packing boundary, differing only in NUL padding,
# order or one byte: the packed keys of short tokens must still tell them all apart.
TRICKY = [b"", b"\x00", b"\x00\x00", b"a", b"a\x00", b"\x00a", b"ab", b"ba", b"abc", b"acb",
          b"abcd", b"abcd\x00", b"abce", b"abcde", b"abcdefg", b"abcdefgh", b"abcdefgh\x00",
          b"bbcdefgh", b"abcdefgi", b"abcdefghi", b"abcdefghj", b"x" * 16, b"x" * 17]


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_and_long_tokens_are_distinct(backend):
    half = TRICKY[::2]
    vocab = VocabularyLookup(half, backend)
    want = [half.index(t) if t in half else -1 for t in TRICKY]
    assert vocab.lookup(pa.array(TRICKY, pa.binary())).tolist() == want
    assert vocab.lookup(pa.array(TRICKY, pa.large_binary())).tolist() == want
    assert [vocab.get(t) for t in TRICKY] == want
    assert [vocab.get_bytes(t) for t in TRICKY] == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_absent_value_and_writable_result(backend):
    vocab = VocabularyLookup([b"a", b"b"], backend)
    result = vocab.lookup(pa.array([b"b", b"zz", None, b"a"]), absent=2)
    assert result.tolist() == [1, 2, 2, 0]
    result[0] = 5  # a fresh writable array
    assert vocab.lookup(pa.array([b"zz"])).tolist() == [-1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_dictionary_arrays_look_up_each_distinct_value_once(backend):
    vocab = VocabularyLookup([b"a", b"b", b"c"], backend)
    values = pa.array([b"c", b"q", None, b"c", b"a"], pa.binary()).dictionary_encode()
    assert pa.types.is_dictionary(values.type)
    assert vocab.lookup(values).tolist() == [2, -1, -1, 2, 0]
    assert vocab.lookup(values, absent=9).tolist() == [2, 9, 9, 2, 0]
    empty = pa.DictionaryArray.from_arrays(pa.array([None, None], pa.int32()),
                                           pa.array([], pa.binary()))
    assert vocab.lookup(empty, absent=4).tolist() == [4, 4]


def test_c_lookup_rejects_bad_offsets_and_out():
    if lookup_module._lookup is None:
        pytest.skip("C lookup not built")
    table = lookup_module._lookup.Lookup(b"ab", np.array([0, 1, 2], np.int64))
    with pytest.raises(ValueError, match="out of range"):
        table.lookup(b"ab", np.array([0, 5], np.int32), 4)
    with pytest.raises(ValueError, match="one int64 per value"):
        table.lookup(b"ab", np.array([0, 1, 2], np.int32), 4, -1, np.empty(3, np.int64))
    out = np.empty(2, np.int64)
    assert table.lookup(b"ba", np.array([0, 1, 2], np.int32), 4, -1, out) is out
    assert out.tolist() == [1, 0]


def _with_bytes_in_null_slots():
    # rows: b"ab", null holding b"zz", b"", null (empty), b"c", null holding b"ab"
    offsets = pa.py_buffer(np.array([0, 2, 4, 4, 4, 5, 7], np.int32).tobytes())
    validity = pa.py_buffer(np.packbits([1, 0, 1, 0, 1, 0], bitorder="little").tobytes())
    return pa.Array.from_buffers(pa.binary(), 6, [validity, offsets,
                                                  pa.py_buffer(b"abzzcab")])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [3, 40_000])  # a cache-resident and a pipelined table
def test_lookup_filled_reads_nulls_as_empty(backend, size):
    tokens = [b"ab", b"", b"c"] + [f"{i:08x}".encode() for i in range(size - 3)]
    vocab = VocabularyLookup(tokens, backend)
    values = _with_bytes_in_null_slots()
    assert vocab.lookup_filled(values, 99).tolist() == [0, 1, 1, 1, 2, 1]
    for start in range(6):
        part = values.slice(start)
        want = vocab.lookup(part.fill_null(b""), 99).tolist()
        assert vocab.lookup_filled(part, 99).tolist() == want
    no_empty = VocabularyLookup([b"ab", b"c"], backend)
    assert no_empty.lookup_filled(values, -5).tolist() == [0, -5, -5, -5, 1, -5]
    assert vocab.lookup_filled(pa.array(["c", None]), -1).tolist() == [2, 1]


@pytest.mark.skipif(lookup_module._lookup is None, reason="C extension not built")
@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), max_size=40),
       st.integers(0, 9), st.sampled_from(["i8", "i4", "u2", "u1", "f8", "f4"]))
def test_fill_nulls_matches_numpy(values, start, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        data = np.array([0 if v is None else int(np.clip(v, info.min, info.max))
                         for v in values], dtype)
    else:
        data = np.array([0 if v is None else v for v in values], np.float64).astype(dtype)
    mask = np.array([v is None for v in values], bool)
    array = pa.array(data, mask=mask).slice(min(start, len(values)))
    buffers = array.buffers()
    data = np.frombuffer(buffers[1], dtype)[array.offset:array.offset + len(array)]
    default = np.asarray(7, dtype)
    want = np.where(array.is_valid().to_numpy(zero_copy_only=False), data, default)
    out = np.empty_like(data)
    if buffers[0] is None:
        return
    lookup_module._lookup.fill_nulls(data, buffers[0], array.offset, default, out)
    assert out.tobytes() == want.tobytes()


@pytest.mark.skipif(lookup_module._lookup is None, reason="C extension not built")
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=3)), min_size=1, max_size=40),
       st.integers(0, 9))
def test_nulls_empty_matches_numpy(rows, start):
    offsets = np.zeros(len(rows) + 1, np.int32)
    offsets[1:] = np.cumsum([len(b) for _, b in rows])
    validity = np.packbits([v for v, _ in rows], bitorder="little").tobytes()
    array = pa.Array.from_buffers(pa.binary(), len(rows), [
        pa.py_buffer(validity), pa.py_buffer(offsets.tobytes()),
        pa.py_buffer(b"".join(b for _, b in rows))]).slice(min(start, len(rows)))
    start = array.offset
    offs = np.frombuffer(array.buffers()[1], np.int32)[start:start + len(array) + 1]
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    want = bool(((offs[1:] == offs[:-1]) | valid).all())
    assert lookup_module._lookup.nulls_empty(array.buffers()[0], start, offs, 4) is want


@pytest.mark.skipif(lookup_module._lookup is None, reason="C extension not built")
@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), max_size=40),
       st.integers(0, 9), st.integers(-2**63, 2**63 - 1))
def test_fill_nulls_float32_matches_numpy(values, start, default):
    mask = np.array([v is None for v in values], bool)
    data = np.array([0 if v is None else v for v in values], np.int64)
    array = pa.array(data, mask=mask if mask.any() else None).slice(min(start, len(values)))
    buffers = array.buffers()
    ints = np.frombuffer(buffers[1], np.int64)[array.offset:array.offset + len(array)]
    want = np.asarray(array.fill_null(default).to_numpy(zero_copy_only=False)).astype(
        np.float32)
    out = np.empty(len(array), np.float32)
    lookup_module._lookup.fill_nulls_float32(ints, buffers[0], array.offset, default, out)
    assert out.tobytes() == want.tobytes()
