"""Columnar tf.train.Example codec: whole columns in, serialized records out, and back.

`encode_examples(columns, spec)` turns a batch of columns into one serialized Example per row;
`decode_examples(records, spec)` turns serialized Examples into columns. Between the user-facing
arrays and the wire sits one flat layout per feature, shared by the C codec (_codec.c) and its
pure-Python twin (_example_py.py):

    values   float32 / int64 values of all rows back to back, or the bytes of all strings
    offsets  (strings only) int64 boundaries of each string inside `values`
    splits   int64[n + 1]: row r owns values[splits[r]:splits[r + 1]]
    present  uint8[n]: the feature is in row r's Example at all (absent != empty list)

Decoding gives FixedLen features as dense numpy arrays [n, *shape] (strings as object arrays
of bytes, like TensorFlow's .numpy()), defaults filled for absent rows; VarLen features as
pyarrow ListArrays. Errors name the row and the feature.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import pyarrow as pa

from tft_lite.errors import ExampleDecodeError, ExampleEncodeError, SchemaError
from tft_lite.io import _example_py
from tft_lite.ir.schema import (FixedLenFeature, VarLenFeature, normalize_schema,
                                num_elements)

try:
    from tft_lite.io import _codec as _c_codec
except ImportError:  # the C extension was not built: the pure-Python codec is used
    _c_codec = None

KIND_OF_DTYPE = {"string": 0, "float32": 1, "int64": 2}
_NUMPY_VALUE_DTYPE = {"float32": np.dtype(np.float32), "int64": np.dtype(np.int64)}
_ARROW_VALUE_TYPE = {"float32": pa.float32(), "int64": pa.int64(), "string": pa.binary()}


def codec_backend() -> str:
    """"c" when the compiled codec is in use, else "python"."""
    return "c" if _c_codec is not None and not os.environ.get("TFT_LITE_PURE_PYTHON") else \
        "python"


def _backend(backend):
    backend = backend or codec_backend()
    if backend == "c":
        if _c_codec is None:
            raise RuntimeError("the C codec (tft_lite.io._codec) is not built")
        return _c_codec
    if backend == "python":
        return _example_py
    raise ValueError(f"backend must be 'c' or 'python', got {backend!r}")


# --- encoding --------------------------------------------------------------------------------

def encode_examples(columns, spec, backend: str | None = None) -> pa.Array:
    """Serializes one tf.train.Example per row.

    Args:
      columns: dict of feature name -> column (numpy array, pyarrow Array/ChunkedArray, or a
        list), or a pyarrow Table / RecordBatch. A FixedLen column holds [n, *shape] values
        (numpy) or one list of prod(shape) values per row; a VarLen column one list per row. A
        null row (None, pyarrow null) leaves the feature out of that row's Example; a FixedLen
        feature may be null only if its spec has a default. Columns not in `spec` are ignored.
      spec: dict of feature name -> FixedLenFeature / VarLenFeature.
      backend: "c" or "python" (default: "c" when built).

    Returns:
      pyarrow BinaryArray with n records, byte-identical to protobuf's
      SerializeToString(deterministic=True) of the same Example (LargeBinaryArray if the batch
      exceeds 2 GiB).

    Raises:
      SchemaError: a spec feature is missing from `columns`, or lengths differ.
      ExampleEncodeError: a row has the wrong number of values or type (names row, feature).
    """
    spec = normalize_schema(spec)
    columns = _as_column_dict(columns)
    n = _num_rows(columns, spec)
    flat = [_flatten_column(name, columns[name], feature, n)
            for name, feature in _sorted_by_key_bytes(spec)]
    data, offsets = _backend(backend).encode(n, flat)
    offsets = np.frombuffer(offsets, np.int64)
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(
            offsets.astype(np.int32)), pa.py_buffer(data)])
    return pa.Array.from_buffers(pa.large_binary(), n,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _as_column_dict(columns) -> dict:
    if isinstance(columns, (pa.Table, pa.RecordBatch)):
        return {name: columns.column(name) for name in columns.schema.names}
    if not isinstance(columns, dict):
        raise TypeError(f"columns must be a dict or a pyarrow Table/RecordBatch, "
                        f"got {type(columns).__name__}")
    return columns


def _num_rows(columns: dict, spec: dict) -> int:
    lengths = {}
    for name in spec:
        if name not in columns:
            raise SchemaError(f"feature {name!r} of the spec is missing from the columns "
                              f"(have {sorted(columns)})")
        lengths[name] = len(columns[name])
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"columns have different lengths: {lengths}")
    return next(iter(lengths.values()), 0)


def _sorted_by_key_bytes(spec):
    """Features in the order of protobuf's deterministic map serialization.

    That is the order of Python protobuf's default (upb) runtime: keys compared bytewise on
    their common prefix, and when one key is a prefix of the other the longer key first
    ("C10" before "C1" before "C2"). upb sorts shortest-first and then writes the message
    back to front. (C++ protobuf sorts plain lexicographically; decoding accepts any order.)
    """
    return sorted(spec.items(), key=functools.cmp_to_key(_upb_key_order))


def _upb_key_order(a, b) -> int:
    key_a, key_b = a[0].encode("utf-8"), b[0].encode("utf-8")
    common = min(len(key_a), len(key_b))
    if key_a[:common] != key_b[:common]:
        return -1 if key_a[:common] < key_b[:common] else 1
    return len(key_b) - len(key_a)


def _flatten_column(name, column, feature, n):
    """A user column → (name, kind, values, value_offsets, splits, present) for the codec.

    splits None means row r holds value r (a flat column); present None means every row has
    the feature. Flat Arrow columns are passed with their own buffers, nulls included, so
    nothing is copied.
    """
    dtype = feature.dtype
    if isinstance(column, np.ndarray) and column.dtype.kind in "iufb":
        values, splits, present = _flatten_numpy(name, column, feature, n)
    else:
        values, splits, present = _flatten_arrow(name, _to_arrow(name, column, dtype), dtype)
    if isinstance(feature, FixedLenFeature):
        _check_fixed_len(name, feature, splits, present, n)
    key = name.encode("utf-8")
    if dtype == "string":
        data, value_offsets = values
        return key, 0, data, value_offsets, splits, present
    return key, KIND_OF_DTYPE[dtype], values, None, splits, present


def _flatten_numpy(name, column, feature, n):
    dtype = feature.dtype
    if dtype == "string":
        raise ExampleEncodeError(f"got numeric {column.dtype} values for a string feature",
                                 feature=name)
    if dtype == "int64" and column.dtype.kind == "f":
        raise ExampleEncodeError(f"got {column.dtype} values for an int64 feature; cast "
                                 "explicitly if truncation is intended", feature=name)
    per_row = int(np.prod(column.shape[1:], dtype=np.int64)) if column.ndim > 1 else 1
    values = np.ascontiguousarray(column.reshape(n, per_row),
                                  dtype=_NUMPY_VALUE_DTYPE[dtype]).reshape(-1)
    splits = None if per_row == 1 else np.arange(0, (n + 1) * per_row, per_row,
                                                 dtype=np.int64)
    return values, splits, None


def _to_arrow(name, column, dtype):
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not isinstance(column, pa.Array):
        if isinstance(column, np.ndarray) and column.dtype.kind in "SU":
            column = column.astype(object)
        try:
            # NaN stays a value (no from_pandas): only None means absent.
            column = pa.array(list(column) if isinstance(column, np.ndarray) else column)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise ExampleEncodeError(f"cannot read the column as {dtype} values: {exc}",
                                     feature=name) from exc
    return column


def _validity(column: pa.Array):
    """uint8 presence per row from the Arrow validity bitmap, or None if no nulls."""
    if not column.null_count:
        return None
    if pa.types.is_null(column.type):
        return np.zeros(len(column), np.uint8)
    first, skip = divmod(column.offset, 8)  # unpack only this slice's bytes of the bitmap
    bits = np.frombuffer(column.buffers()[0], np.uint8)[first:first + (skip + len(column) + 7)
                                                        // 8]
    return np.unpackbits(bits, bitorder="little")[skip:skip + len(column)]


def _flatten_arrow(name, column: pa.Array, dtype):
    """pyarrow column (flat, list, large list or fixed-size list) → values, splits, present."""
    present = _validity(column)
    t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        splits = _list_offsets(column, present)
        child = column.values.slice(int(splits[0]), int(splits[-1] - splits[0]))
        splits = splits - splits[0]
        if pa.types.is_null(child.type) and not len(child):  # lists that are all empty
            child = pa.array([], type=_ARROW_VALUE_TYPE[dtype])
        if child.null_count:
            raise ExampleEncodeError(
                "a list holds a null value; tf.train.Example lists cannot",
                row=_first_row_with_null_value(child, splits), feature=name)
        return _arrow_values(name, child, dtype), splits, present
    if pa.types.is_null(t):  # a column of nothing but nulls
        column = pa.array([None] * len(column), type=_ARROW_VALUE_TYPE[dtype])
    return _arrow_values(name, column, dtype), None, present


def _list_offsets(column, present) -> np.ndarray:
    n = len(column)
    if pa.types.is_fixed_size_list(column.type):
        size = column.type.list_size
        counts = np.full(n, size, np.int64) if present is None else present * np.int64(size)
        return column.offset * size + np.concatenate([[0], np.cumsum(counts)])
    offsets = column.offsets.to_numpy().astype(np.int64)  # accounts for the array's offset
    if present is not None and np.any(np.diff(offsets)[present == 0]):
        # Arrow lets a null list span values; they are not part of the data: drop them.
        counts = np.where(present != 0, np.diff(offsets), 0)
        raise ExampleEncodeError("a null list entry spans values; pass a sanitized array "
                                 "(pyarrow.compute.list_flatten of valid rows)",
                                 row=int(np.flatnonzero(counts != np.diff(offsets))[0]))
    return offsets


def _first_row_with_null_value(child, splits):
    null_at = np.flatnonzero(~child.is_valid().to_numpy(zero_copy_only=False))
    return int(np.searchsorted(splits, null_at[0], side="right") - 1)


def _arrow_values(name, values: pa.Array, dtype):
    """Flat pyarrow values → numpy values, or (data, int64 offsets) for strings.

    Null slots stay in place (their rows are marked absent), so the buffers pass through.
    """
    t = values.type
    if dtype == "string":
        if pa.types.is_string(t) or pa.types.is_binary(t):
            offsets_dtype = np.int32
        elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
            offsets_dtype = np.int64
        else:
            raise ExampleEncodeError(f"got {t} values for a string feature", feature=name)
        buffers = values.buffers()
        offsets = np.frombuffer(buffers[1], offsets_dtype)[
            values.offset:values.offset + len(values) + 1].astype(np.int64)
        data = buffers[2] if buffers[2] is not None else pa.py_buffer(b"")
        return data, offsets
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or \
            (pa.types.is_floating(t) and dtype == "float32"):
        if values.null_count:
            values = values.fill_null(0)  # the slot's row is absent; any value will do
        return values.to_numpy(zero_copy_only=False).astype(_NUMPY_VALUE_DTYPE[dtype],
                                                            copy=False)
    raise ExampleEncodeError(f"got {t} values for a {dtype} feature", feature=name)


def _check_fixed_len(name, feature, splits, present, n):
    size = num_elements(feature.shape)
    if splits is None:
        bad = np.arange(n)[:1] if size != 1 and (present is None or present.any()) else []
        counts = np.ones(n, np.int64)
        if size != 1 and present is not None:
            bad = np.flatnonzero(present)[:1]
    else:
        counts = np.diff(splits)
        mask = counts != size
        if present is not None:
            mask &= present != 0
        bad = np.flatnonzero(mask)
    if len(bad):
        row = int(bad[0])
        raise ExampleEncodeError(f"FixedLenFeature{list(feature.shape)} needs {size} values, "
                                 f"got {int(counts[row])}", row=row, feature=name)
    if feature.default_value is None and present is not None:
        missing = np.flatnonzero(present == 0)
        if missing.size:
            raise ExampleEncodeError("value is missing and the FixedLenFeature has no "
                                     "default_value", row=int(missing[0]), feature=name)


# --- decoding --------------------------------------------------------------------------------

def decode_examples(records, spec, backend: str | None = None, path=None) -> dict:
    """Parses serialized tf.train.Examples into columns, like tf.io.parse_example.

    Args:
      records: pyarrow Binary/LargeBinary array (or ChunkedArray), or a list of bytes.
      spec: dict of feature name -> FixedLenFeature / VarLenFeature.
      backend: "c" or "python" (default: "c" when built).
      path: the file the records came from, named in errors.

    Returns:
      dict of name -> FixedLen: numpy array [n, *shape] (float32, int64, or object of bytes);
      VarLen: pyarrow ListArray (values float32 / int64 / binary; absent rows are empty).

    Raises:
      ExampleDecodeError: malformed record, wrong dtype, wrong number of values, or a missing
        FixedLen feature without default (names row, feature, byte offset where known).
    """
    spec = normalize_schema(spec)
    for feature_name, feature in spec.items():
        if not isinstance(feature, (FixedLenFeature, VarLenFeature)):
            raise SchemaError(f"feature {feature_name!r}: decode_examples takes FixedLenFeature"
                              f" or VarLenFeature, got {type(feature).__name__}")
    data, offsets, n = _record_buffers(records)
    names = list(spec)
    flat = _decode_flat(data, offsets, names, spec, backend, path, records)
    return {name: _column_from_flat(name, spec[name], flat[i], n, path)
            for i, name in enumerate(names)}


def _record_buffers(records):
    """Records → (contiguous data buffer, int64 offsets[n + 1], n) without copying strings."""
    if isinstance(records, pa.ChunkedArray):
        records = records.combine_chunks()
    if not isinstance(records, pa.Array):
        records = pa.array(records, type=pa.binary())
    if not (pa.types.is_binary(records.type) or pa.types.is_large_binary(records.type)):
        records = records.cast(pa.large_binary())
    if records.null_count:
        raise ExampleDecodeError("null record", row=int(np.flatnonzero(
            ~records.is_valid().to_numpy(zero_copy_only=False))[0]))
    n = len(records)
    offsets_dtype = np.int64 if pa.types.is_large_binary(records.type) else np.int32
    buffers = records.buffers()
    offsets = np.frombuffer(buffers[1], offsets_dtype)[records.offset:records.offset + n + 1]
    data = buffers[2] if buffers[2] is not None else pa.py_buffer(b"")
    return data, offsets.astype(np.int64), n


def _decode_flat(data, offsets, names, spec, backend, path, records):
    codec = _backend(backend)
    columns = [_decode_column_spec(name, spec[name]) for name in names]
    try:
        if codec is _example_py:
            view = memoryview(data)
            rows = [view[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
            return codec.decode(rows, columns)
        return codec.decode(data, offsets, columns)
    except (_example_py.DecodeError,) + ((_c_codec.DecodeError,) if _c_codec else ()) as exc:
        message, row, column, offset = exc.args
        feature = names[column] if column >= 0 else None
        if feature is not None and message.startswith("feature has the wrong"):
            message = f"feature has the wrong data type: the spec says {spec[feature].dtype}"
        raise ExampleDecodeError(message, row=row, feature=feature,
                                 offset=offset if offset >= 0 else None, path=path) from None


def _decode_column_spec(name, feature):
    """(name, kind, default values, default string offsets, default count, values per row)."""
    kind = KIND_OF_DTYPE[feature.dtype]
    if isinstance(feature, VarLenFeature):
        return name.encode("utf-8"), kind, None, None, 0, -1
    size = num_elements(feature.shape)
    default = feature.default_value
    if default is None:
        return name.encode("utf-8"), kind, None, None, 0, size
    if feature.dtype == "string":
        bounds = np.concatenate([[0], np.cumsum([len(v) for v in default])]).astype(np.int64)
        return name.encode("utf-8"), kind, b"".join(default), bounds.tobytes(), size, size
    return (name.encode("utf-8"), kind, np.ascontiguousarray(default).tobytes(), None, size,
            size)


def _column_from_flat(name, feature, flat, n, path):
    data, splits, present, value_offsets = flat
    splits = np.frombuffer(splits, np.int64)
    present = np.frombuffer(present, np.uint8)
    values = _values_array(feature.dtype, data, value_offsets)
    if isinstance(feature, VarLenFeature):
        return pa.ListArray.from_arrays(pa.array(splits.astype(np.int32)) if splits[-1] < 2**31
                                        else pa.array(splits), values)
    return _dense(name, feature, values, splits, present, n, path)


def _values_array(dtype, data, value_offsets) -> pa.Array:
    if dtype == "string":
        offsets = np.frombuffer(value_offsets, np.int64)
        count = len(offsets) - 1
        if offsets[-1] < 2**31:
            return pa.Array.from_buffers(pa.binary(), count, [
                None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
        return pa.Array.from_buffers(pa.large_binary(), count,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    values = np.frombuffer(data, _NUMPY_VALUE_DTYPE[dtype])
    return pa.array(values, type=_ARROW_VALUE_TYPE[dtype])


def _dense(name, feature, values: pa.Array, splits, present, n, path):
    """FixedLen: checks counts (defaults are already filled in), returns numpy [n, *shape]."""
    size = num_elements(feature.shape)
    counts = np.diff(splits)
    if feature.default_value is None:
        missing = np.flatnonzero(present == 0)
        if missing.size:
            raise ExampleDecodeError("required feature is missing (the FixedLenFeature has "
                                     "no default_value)", row=int(missing[0]), feature=name,
                                     path=path)
    bad = np.flatnonzero(counts != size)
    if bad.size:
        row = int(bad[0])
        raise ExampleDecodeError(f"FixedLenFeature{list(feature.shape)} needs {size} values, "
                                 f"got {int(counts[row])}", row=row, feature=name, path=path)
    flat_values = values.to_numpy(zero_copy_only=False)
    if feature.dtype == "string" and flat_values.dtype != object:
        flat_values = flat_values.astype(object)
    return flat_values.reshape((n,) + tuple(feature.shape))
