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
