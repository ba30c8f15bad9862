"""Tests for tft_lite.kernels.hashing against TensorFlow golden vectors (no TF import here).

Golden values were produced once with TensorFlow 2.21 (the /work/tfvenv used for TFT 1.21):
  tf.strings.to_hash_bucket_fast(tokens, n) and tf.strings.to_hash_bucket_strong(tokens, n, key)
The raw 64-bit hashes were recovered from the bucket ids for n = 2**62 and n = 2**62 + 1 by the
Chinese remainder theorem (the two moduli are coprime and their product exceeds 2**64).
"""
import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_lite.kernels import hashing
from tft_lite.kernels.hashing import fingerprint64, hash_strings, siphash64
from tft_lite.kernels.tokens import as_binary_array

TOKENS = [b"", b"Dog", b"\xff\xfe", b"caf\xc3\xa9", b"a\nb", b"x y", b"-5", b"123", b"a" * 100]

# TF 2.21: Fingerprint64 of each token (from to_hash_bucket_fast, see module docstring).
GOLDEN_FINGERPRINT64 = [
    11160318154034397263, 18246350116893214251, 1432599169808672139, 11379377682866355587,
    5607647107046709067, 9771971514170879829, 17702585896903905816, 15224156052391641931,
    13153998191144080618,
]
# TF 2.21: SipHash-2-4 of each token from to_hash_bucket_strong with key [123, 456].
GOLDEN_SIPHASH_123_456 = [
    10111237486511263214, 11045156302322092086, 17587701812637558364, 1893935012488003927,
    11677033487269643314, 10011475536122828662, 13261245131950583168, 9625431008248098115,
    11349212190997698792,
]
# TF 2.21: same with key [-1, 7] (TF's key attr is int64; -1 is the uint64 word 2**64 - 1).
GOLDEN_SIPHASH_M1_7 = [
    8027644291016615997, 15815223978273770609, 3544952996214114632, 18412369530302663451,
    8836408304457058339, 4486270920743670512, 8988809051669537927, 5515829743082244515,
    6666284815518184710,
]


def test_tf_docstring_vectors():
    # From the TF docs of to_hash_bucket_fast / to_hash_bucket_strong (and re-checked with TF).
    assert hash_strings(np.array([b"Dog", b"Cat", b""], dtype=object), 17).tolist() == [12, 4, 11]
    assert hash_strings(["Cake", "Pie", "Sundae"], 11, key=[123, 456]).tolist() == [6, 5, 6]


def test_fingerprint64_raw_golden():
    out = fingerprint64(np.array(TOKENS, dtype=object))
    assert out.dtype == np.uint64
    assert out.tolist() == GOLDEN_FINGERPRINT64


@pytest.mark.parametrize(
    "key,golden", [([123, 456], GOLDEN_SIPHASH_123_456), ([-1, 7], GOLDEN_SIPHASH_M1_7)]
)
def test_siphash_raw_golden(key, golden):
    out = siphash64(np.array(TOKENS, dtype=object), key)
    assert out.dtype == np.uint64
    assert out.tolist() == golden


def test_uint64_key_word_equals_negative_int64():
    a = siphash64(TOKENS, [2**64 - 1, 7])
    b = siphash64(TOKENS, [-1, 7])
    assert a.tolist() == b.tolist() == GOLDEN_SIPHASH_M1_7


@pytest.mark.parametrize(
    "buckets,key,golden",
    [
        # TF 2.21 to_hash_bucket_fast / _strong outputs for TOKENS:
        (10, None, [3, 1, 9, 7, 7, 9, 6, 1, 8]),
        (1, None, [0] * 9),
        (10, [0, 0], [7, 9, 9, 5, 8, 7, 6, 7, 8]),
    ],
)
def test_bucket_golden(buckets, key, golden):
    out = hash_strings(np.array(TOKENS, dtype=object), buckets, key=key)
    assert out.dtype == np.int64
    assert out.tolist() == golden


def test_bucket_golden_large_moduli():
    toks = [b"\xff\xfe", b"caf\xc3\xa9", b"a\nb", b"x y", b"-5", b"123"]
    # TF 2.21: to_hash_bucket_fast(toks, 2**63 - 1) and (toks, 1000).
    assert hash_strings(toks, 2**63 - 1).tolist() == [
        1432599169808672139, 2156005646011579780, 5607647107046709067, 548599477316104022,
        8479213860049130009, 6000784015536866124,
    ]
    assert hash_strings(toks, 1000).tolist() == [139, 587, 67, 829, 816, 931]
    # TF 2.21: to_hash_bucket_strong(toks, 1000, [-1, 7]) and (toks, 2**63 - 1, [-1, 7]).
    assert hash_strings(toks, 1000, key=[-1, 7]).tolist() == [632, 451, 339, 512, 927, 515]
    assert hash_strings(toks, 2**63 - 1, key=[-1, 7]).tolist() == [
        3544952996214114632, 9188997493447887644, 8836408304457058339, 4486270920743670512,
        8988809051669537927, 5515829743082244515,
    ]
    # TF 2.21: to_hash_bucket_strong(["", "Cake"], 2**63 - 1, [0, 0]).
    assert hash_strings([b"", b"Cake"], 2**63 - 1, key=[0, 0]).tolist() == [
        2202906307356721367, 5819028532807426451,
    ]


def test_integers_hash_as_decimal_text():
    ints = np.array([-5, 123, 0, 2**63 - 1, -(2**63)], dtype=np.int64)
    text = np.array([b"-5", b"123", b"0", b"9223372036854775807", b"-9223372036854775808"],
                    dtype=object)
    assert hash_strings(ints, 1000).tolist() == hash_strings(text, 1000).tolist()
    # TF 2.21 buckets of b"-5", b"123" (tf.strings.as_string of the ints gives these strings).
    assert hash_strings(ints[:2], 1000).tolist() == [816, 931]
    assert hash_strings(ints[:2], 1000, key=[-1, 7]).tolist() == [927, 515]
    for dtype in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64):
        small = np.array([0, 5, 100], dtype=dtype)
        assert hash_strings(small, 97).tolist() == hash_strings([b"0", b"5", b"100"], 97).tolist()
    assert hash_strings(pa.array([-5, 123], pa.int32()), 1000).tolist() == [816, 931]


def test_input_kinds_agree():
    expected = hash_strings(np.array([b"Dog", b"Cat", b""], dtype=object), 17).tolist()
    assert hash_strings(np.array(["Dog", "Cat", ""]), 17).tolist() == expected  # numpy 'U'
    assert hash_strings(np.array([b"Dog", b"Cat", b""]), 17).tolist() == expected  # numpy 'S'
    assert hash_strings(pa.array(["Dog", "Cat", ""]), 17).tolist() == expected
    assert hash_strings(pa.array([b"Dog", b"Cat", b""], pa.binary()), 17).tolist() == expected
    assert hash_strings(pa.chunked_array([["Dog"], ["Cat", ""]]), 17).tolist() == expected
    assert hash_strings(pa.array(["Dog", "Cat", ""]).dictionary_encode(), 17).tolist() == expected
    assert hash_strings(["Dog", b"Cat", ""], 17).tolist() == expected


def test_shape_is_preserved_and_empty_inputs():
    x = np.array([[b"Dog", b"Cat"], [b"", b"Dog"]], dtype=object)
    out = hash_strings(x, 17)
    assert out.shape == (2, 2) and out.tolist() == [[12, 4], [11, 12]]
    assert fingerprint64(x).shape == (2, 2)
    empty = hash_strings(np.zeros((0, 3), dtype=object), 5)
    assert empty.shape == (0, 3) and empty.dtype == np.int64
    assert hash_strings(pa.array([], pa.string()), 5).tolist() == []
    assert siphash64(np.array([], dtype=object), [1, 2]).dtype == np.uint64


def test_large_batch_hashes_only_uniques(monkeypatch):
    calls = []
    real = hashing.farmhash.fingerprint64

    class Spy:
        @staticmethod
        def fingerprint64(value):
            calls.append(value)
            return real(value)

    monkeypatch.setattr(hashing, "farmhash", Spy)
    x = np.array([b"a", b"b", b"c"] * 100_000, dtype=object)
    out = hash_strings(x, 1000)
    assert len(calls) == 3
    assert out.shape == (300_000,)
    assert out[:3].tolist() == [real(b"a") % 1000, real(b"b") % 1000, real(b"c") % 1000]


@pytest.mark.parametrize("bad", [0, -3, 2**63, 1.5, True, "7"])
def test_bad_bucket_counts(bad):
    with pytest.raises((ValueError, TypeError)):
        hash_strings([b"a"], bad)


@pytest.mark.parametrize("bad", [[1], [1, 2, 3], "ab", [1, 2.5], [2**64, 0], [-(2**63) - 1, 0], 5])
def test_bad_keys(bad):
    with pytest.raises((ValueError, TypeError)):
        hash_strings([b"a"], 3, key=bad)


@pytest.mark.parametrize("bad", [np.array([1.5, 2.0]), np.array([True]), pa.array([1.0]),
                                 pa.array(["a", None]), np.array([b"a", None], dtype=object),
                                 np.array([b"a", 3], dtype=object)])
def test_bad_token_inputs(bad):
    with pytest.raises((ValueError, TypeError)):
        hash_strings(bad, 3)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=12), min_size=0, max_size=60),
    st.integers(min_value=1, max_value=2**63 - 1),
    st.one_of(st.none(), st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))),
)
def test_matches_per_element_hashing(tokens, buckets, key):
    arr = np.empty(len(tokens), dtype=object)
    arr[:] = tokens
    out = hash_strings(arr, buckets, key=key)
    if key is None:
        expected = [hashing.farmhash.fingerprint64(t) % buckets for t in tokens]
    else:
        kb = key[0].to_bytes(8, "little") + key[1].to_bytes(8, "little")
        expected = [
            int.from_bytes(hashing.siphash24(t, key=kb).digest(), "little") % buckets
            for t in tokens
        ]
    assert out.tolist() == expected
    assert pickle.loads(pickle.dumps(out)).tolist() == expected


def test_as_binary_array_decimal_and_utf8():
    arr = as_binary_array(np.array([-(2**63), 0, 7], dtype=np.int64))
    assert arr.to_pylist() == [b"-9223372036854775808", b"0", b"7"]
    assert as_binary_array(np.array(["é", "a b"])).to_pylist() == ["é".encode(), b"a b"]
    assert as_binary_array([1, 2]).to_pylist() == [b"1", b"2"]
