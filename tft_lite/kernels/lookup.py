"""Vocabulary lookup: token bytes -> index in the vocabulary, -1 when absent.

A `VocabularyLookup` is built once (when a transform graph is loaded) and applied to many
batches. The table lives in a small C extension (_lookup.c): a batch is looked up in one call
over Arrow's buffers, writing straight into a numpy array and, if asked, the caller's id for
absent tokens (one OOV bucket or a default value then needs no second pass); a dictionary-
encoded array is looked up once per distinct value. `get` / `get_bytes` serve single instances
without building arrays. Without the extension, a Python dict gives the same answers (tests
compare both).

Imports numpy and pyarrow only; used by serving and by the analyzers' local execution.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

try:
    from tft_lite.kernels import _lookup
except ImportError:  # the C extension was not built
    _lookup = None

__all__ = ["VocabularyLookup"]


def _as_binary(values) -> pa.Array:
    """Any 1-D token container -> a pyarrow (large) binary array, without copying data."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = np.asarray(values, dtype=object).reshape(-1)
        values = pa.array([v.encode("utf-8") if isinstance(v, str) else v for v in values],
                          type=pa.binary())
    t = values.type
    if pa.types.is_string(t):
        return values.view(pa.binary())
    if pa.types.is_large_string(t):
        return values.view(pa.large_binary())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return values
    raise TypeError(f"vocabulary lookup takes string/binary values, got {t}")


_STRING_ARRAYS = (pa.BinaryArray, pa.StringArray, pa.LargeBinaryArray, pa.LargeStringArray)
_WIDE = (pa.LargeBinaryArray, pa.LargeStringArray)  # int64 offsets


def _buffers(values: pa.Array):
    """(data buffer, offsets ndarray, offset width) of a (large) binary/string array."""
    width = 8 if type(values) in _WIDE else 4
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], np.int64 if width == 8 else np.int32)
    offsets = offsets[values.offset:values.offset + len(values) + 1]
    return (buffers[2] if buffers[2] is not None else b""), offsets, width


class VocabularyLookup:
    """Maps tokens to their position in `tokens` (first occurrence wins), -1 if absent.

    Args:
      tokens: the vocabulary, a list of bytes/str or a pyarrow string/binary array.
      backend: "c" or "python" (default: "c" when built).
    """

    def __init__(self, tokens, backend: str | None = None):
        tokens = _as_binary(tokens)
        if tokens.null_count:
            raise ValueError("a vocabulary cannot hold null tokens")
        self.tokens = tokens
        self.backend = backend or ("c" if _lookup is not None else "python")
        if self.backend == "c":
            if _lookup is None:
                raise RuntimeError("the C lookup (tft_lite.kernels._lookup) is not built")
            data, offsets, _ = _buffers(tokens)
            self._table = _lookup.Lookup(data, np.ascontiguousarray(offsets, np.int64))
        elif self.backend == "python":
            table = {}
            for index, token in enumerate(tokens.to_pylist()):
                table.setdefault(token, index)
            self._table = table
        else:
            raise ValueError(f"backend must be 'c' or 'python', got {backend!r}")
        # get_bytes(token: bytes) -> index or -1, with no per-call checks: the serving hot path.
        self.get_bytes = (self._table.get if self.backend == "c"
                          else lambda token: self._table.get(token, -1))

    def __len__(self) -> int:
        return len(self.tokens)

    def lookup(self, values, absent: int = -1) -> np.ndarray:
        """int64 index of each value; `absent` for values not in the vocabulary and nulls.

        A dictionary-encoded array is looked up once per distinct value, then gathered.
        Returns a new writable array.
        """
        if type(values) in _STRING_ARRAYS and self.backend == "c" and not values.null_count:
            data, offsets, width = _buffers(values)  # the serving hot path: no conversions
            result = np.empty(len(values), np.int64)
            self._table.lookup(data, offsets, width, absent, result)
            return result
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array) and pa.types.is_dictionary(values.type):
            per_value = self.lookup(values.dictionary, absent)
            indices = values.indices.fill_null(0).to_numpy(zero_copy_only=False)
            result = per_value[indices] if len(per_value) else np.full(len(values), absent)
            valid = values.indices
        else:
            values = _as_binary(values)
            valid = values
            if self.backend == "c":
                data, offsets, width = _buffers(values)
                result = np.empty(len(values), np.int64)
                self._table.lookup(data, offsets, width, absent, result)
            else:
                get = self._table.get
                result = np.fromiter((get(v, absent) for v in values.to_pylist()), np.int64,
                                     len(values))
        if valid.null_count:
            result[~valid.is_valid().to_numpy(zero_copy_only=False)] = absent
        return result

    def lookup_filled(self, values: pa.Array, absent: int = -1) -> np.ndarray:
        """`lookup(values.fill_null(b""))` for a binary/string array: a null is the empty token.

        The C table reads nulls as empty in its one pass (whatever bytes their slots span).
        """
        if type(values) in _STRING_ARRAYS and self.backend == "c":
            data, offsets, width = _buffers(values)
            result = np.empty(len(values), np.int64)
            validity = values.buffers()[0]
            self._table.lookup(data, offsets, width, absent, result, validity, values.offset)
            return result
        return self.lookup(_as_binary(values).fill_null(b""), absent)

    def get(self, token) -> int:
        """Index of one token (bytes or str), -1 if absent: the single-instance path."""
        if isinstance(token, str):
            token = token.encode("utf-8")
        return self._table.get(token) if self.backend == "c" else self._table.get(token, -1)
