"""Normalise token inputs (strings, bytes or integers) to one flat pyarrow binary array.

TFT treats every categorical token as bytes: tf.string values are raw bytes (no encoding is
assumed, non-UTF-8 bytes are fine) and integer tokens are turned into their decimal text the
way tf.strings.as_string does (b"-5", b"9223372036854775807"). The vocabulary analyzer and the
hashing kernel both need exactly that view of a batch, so it lives here.

Imports only numpy and pyarrow.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_binary_array", "is_integer_tokens"]

_BINARY_TYPES_CHECKS = (
    pa.types.is_binary,
    pa.types.is_large_binary,
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_fixed_size_binary,
)


def _is_binaryish(t: pa.DataType) -> bool:
    if any(check(t) for check in _BINARY_TYPES_CHECKS):
        return True
    # string_view / binary_view exist in newer pyarrow only.
    for name in ("is_string_view", "is_binary_view"):
        check = getattr(pa.types, name, None)
        if check is not None and check(t):
            return True
    return False


def is_integer_tokens(values) -> bool:
    """True when `values` holds integer tokens (numpy or pyarrow integer dtype)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.type
    if isinstance(values, pa.Array):
        values = values.type
    if isinstance(values, pa.DataType):
        if pa.types.is_dictionary(values):
            values = values.value_type
        return pa.types.is_integer(values)
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "iu"
    if isinstance(values, (bytes, str)):
        return False
    try:
        items = list(values)
    except TypeError:
        return False
    return bool(items) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items
    )


def _from_arrow(arr: pa.Array) -> pa.LargeBinaryArray:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.null_count:
        raise ValueError(
            f"token array has {arr.null_count} null value(s); pass the flat values of a "
            "VarLen/ragged feature, which never contain nulls"
        )
    t = arr.type
    if pa.types.is_integer(t):
        # Same text as tf.strings.as_string for integers: plain decimal, '-' for negatives.
        return pc.cast(pc.cast(arr, pa.string()), pa.large_binary())
    if _is_binaryish(t):
        if pa.types.is_large_binary(t):
            return arr
        if pa.types.is_fixed_size_binary(t):
            arr = pc.cast(arr, pa.binary())
        return pc.cast(arr, pa.large_binary())
    raise TypeError(
        f"tokens must be strings, bytes or integers, got arrow type {t} "
        "(TFT accepts tf.string or integer tokens only)"
    )


def as_binary_array(values) -> pa.LargeBinaryArray:
    """Returns the tokens of `values`, flattened, as a pyarrow large_binary array.

    Accepts numpy arrays of dtype object (bytes or str items), 'S', 'U' or any integer dtype,
    pyarrow (Chunked)Arrays of binary/string/integer/dictionary type, or Python sequences.
    str items are encoded as UTF-8; integers become their decimal text. Floats, bools and
    nulls are rejected (TypeError / ValueError). numpy 'S' arrays cannot hold trailing NUL
    bytes (numpy strips them); pass an object array for such tokens.
    """
    if isinstance(values, pa.ChunkedArray):
        values = (
            values.combine_chunks()
            if values.num_chunks != 1
            else values.chunk(0)
        )
    if isinstance(values, pa.Array):
        return _from_arrow(values)
    if not isinstance(values, np.ndarray):
        values = list(values) if not isinstance(values, (bytes, str)) else [values]
        if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                          for v in values):
            return _from_arrow(pa.array(values, type=pa.int64()))
        values = np.array(values, dtype=object)
    flat = values.reshape(-1)
    kind = flat.dtype.kind
    if kind in "iu":
        return _from_arrow(pa.array(flat))
    if kind == "S":
        return pa.array(flat.astype(object), type=pa.large_binary())
    if kind == "U":
        return pa.array(flat.astype(object), type=pa.large_binary())
    if kind == "O":
        try:
            arr = pa.array(flat, type=pa.large_binary(), from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise TypeError(
                "object token arrays must hold only bytes or str items "
                f"(integers must come as an integer-dtype array): {exc}"
            ) from None
        if arr.null_count:
            raise ValueError(f"token array has {arr.null_count} None value(s)")
        return arr
    raise TypeError(
        f"tokens must be strings, bytes or integers, got numpy dtype {flat.dtype} "
        "(TFT accepts tf.string or integer tokens only)"
    )
