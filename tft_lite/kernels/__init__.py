"""Pure numpy/pyarrow kernels shared by serving (transform) and analysis.

* `tokens.as_binary_array`: the bytes view TFT has of string/integer tokens.
* `hashing`: FarmHash Fingerprint64 and TF's to_hash_bucket_fast / to_hash_bucket_strong
  (needs the small `pyfarmhash` and `siphash24` packages).
* `lookup.VocabularyLookup`: token -> vocabulary index.

Nothing here imports TensorFlow. Exports are resolved lazily (PEP 562), so importing one
kernel module does not import the others' dependencies.
"""
import importlib

_EXPORTS = {
    "as_binary_array": "tft_lite.kernels.tokens",
    "is_integer_tokens": "tft_lite.kernels.tokens",
    "fingerprint64": "tft_lite.kernels.hashing",
    "hash_strings": "tft_lite.kernels.hashing",
    "siphash64": "tft_lite.kernels.hashing",
    "VocabularyLookup": "tft_lite.kernels.lookup",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tft_lite.kernels' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
