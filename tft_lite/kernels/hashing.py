"""String hashing with TensorFlow's exact semantics, without TensorFlow.

* `fingerprint64(values)`: FarmHash Fingerprint64 of each token's bytes (TF's
  `tensorflow::Fingerprint64`, the hash behind tf.strings.to_hash_bucket_fast).
* `hash_strings(values, hash_buckets, key=None)`: TFT's `tft.hash_strings`:
  - key None  -> tf.strings.to_hash_bucket_fast:   Fingerprint64(token) % hash_buckets
  - key given -> tf.strings.to_hash_bucket_strong: SipHash-2-4(key, token) % hash_buckets,
    where the two key words are uint64s whose little-endian bytes form the 16-byte SipHash
    key (TF passes `uint64 key[2]` to highwayhash's SipHash); the 64-bit digest is read as a
    little-endian uint64. The modulo is taken on the unsigned hash; the result is int64.

Tokens are bytes; str is encoded as UTF-8 and integers are hashed as their decimal text
(what tf.strings.as_string gives), see `tft_lite.kernels.tokens`. Only the distinct tokens of
a batch are hashed (pyarrow dictionary_encode), then the hashes are gathered, so large batches
with repeated tokens stay fast.

Imports numpy and pyarrow (via tft_lite.kernels.tokens), plus two small hashing libraries:
`pyfarmhash` (module `farmhash`, FarmHash Fingerprint64) and `siphash24` (SipHash-2-4, C
implementation; optional at import time, only keyed hashing needs it). Both were checked
against TF's golden vectors (see tests/kernels/test_hashing.py).
"""
from __future__ import annotations

import numbers

import farmhash
import numpy as np

try:  # only keyed (strong) hashing needs it
    from siphash24 import siphash24
except ImportError:  # pragma: no cover - exercised only where the package is missing
    siphash24 = None

from tft_lite.kernels.tokens import as_binary_array

__all__ = ["fingerprint64", "hash_strings", "siphash64"]

_U64 = (1 << 64) - 1


def _output_shape(values):
    if isinstance(values, np.ndarray):
        return values.shape
    return None


def _unique_and_indices(values):
    """(list of distinct token bytes, int64 index of each input token into that list)."""
    arr = as_binary_array(values)
    encoded = arr.dictionary_encode()
    uniques = encoded.dictionary.to_pylist()
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return uniques, indices


def _finish(per_unique, indices, shape):
    out = per_unique[indices] if len(indices) else np.zeros(0, per_unique.dtype)
    return out.reshape(shape) if shape is not None else out


def _fingerprint_uniques(uniques) -> np.ndarray:
    return np.fromiter(
        (farmhash.fingerprint64(u) for u in uniques), dtype=np.uint64, count=len(uniques)
    )


def fingerprint64(values) -> np.ndarray:
    """FarmHash Fingerprint64 of each token; uint64 array shaped like a numpy input (else 1-D)."""
    uniques, indices = _unique_and_indices(values)
    return _finish(_fingerprint_uniques(uniques), indices, _output_shape(values))


def _key_bytes(key) -> bytes:
    try:
        words = list(key)
    except TypeError:
        raise TypeError(f"key must be a sequence of two integers, got {key!r}") from None
    if len(words) != 2:
        raise ValueError(f"key must have exactly 2 elements (two uint64 words), got {len(words)}")
    out = b""
    for w in words:
        if isinstance(w, bool) or not isinstance(w, numbers.Integral):
            raise TypeError(f"key elements must be integers, got {w!r}")
        w = int(w)
        if not -(1 << 63) <= w <= _U64:
            raise ValueError(f"key element {w} does not fit in 64 bits")
        # TF's attr is list(int) (int64) reinterpreted as uint64: -1 == 2**64 - 1.
        out += (w & _U64).to_bytes(8, "little")
    return out


def _siphash_uniques(uniques, key_bytes) -> np.ndarray:
    if siphash24 is None:
        raise ImportError("keyed hashing needs the 'siphash24' package (pip install siphash24)")
    # intdigest() is the digest read as a little-endian *signed* 64-bit integer; view as uint64.
    return np.fromiter(
        (siphash24(u, key=key_bytes).intdigest() for u in uniques), dtype=np.int64,
        count=len(uniques),
    ).view(np.uint64)


def siphash64(values, key) -> np.ndarray:
    """SipHash-2-4 of each token with the 2-word `key` (TF's StrongKeyedHash); uint64 array."""
    kb = _key_bytes(key)
    uniques, indices = _unique_and_indices(values)
    return _finish(_siphash_uniques(uniques, kb), indices, _output_shape(values))


def _check_buckets(hash_buckets) -> int:
    if isinstance(hash_buckets, bool) or not isinstance(hash_buckets, numbers.Integral):
        raise TypeError(f"hash_buckets must be an integer, got {hash_buckets!r}")
    hash_buckets = int(hash_buckets)
    if not 1 <= hash_buckets <= (1 << 63) - 1:
        raise ValueError(f"hash_buckets must be in [1, 2**63 - 1], got {hash_buckets}")
    return hash_buckets


def hash_strings(values, hash_buckets, key=None) -> np.ndarray:
    """TFT's hash_strings: int64 bucket ids in [0, hash_buckets), shaped like a numpy input.

    Without `key` this is tf.strings.to_hash_bucket_fast (Fingerprint64 % buckets); with
    `key` (two 64-bit integers) it is tf.strings.to_hash_bucket_strong (SipHash-2-4 % buckets).
    """
    buckets = np.uint64(_check_buckets(hash_buckets))
    key_bytes = None if key is None else _key_bytes(key)
    uniques, indices = _unique_and_indices(values)
    if key_bytes is None:
        hashes = _fingerprint_uniques(uniques)
    else:
        hashes = _siphash_uniques(uniques, key_bytes)
    # Bucket the distinct hashes only, then gather.
    buckets_per_unique = (hashes % buckets).astype(np.int64)
    return _finish(buckets_per_unique, indices, _output_shape(values))
