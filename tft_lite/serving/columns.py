"""Raw input batches -> the interpreter's feature values, checked against the raw feature spec.

Accepted batches: a pyarrow RecordBatch or Table, a pandas DataFrame, or a dict of columns
(numpy arrays, pyarrow arrays or Python lists). Per feature kind:

  FixedLenFeature(shape, dtype, default)  numpy [batch, *shape]; a missing value (null, None,
      empty list) takes `default` or is an error naming the feature and row.
  VarLenFeature(dtype)  Ragged; a list column, or a flat column whose nulls are empty rows
      (a CSV column with blanks), or a numpy object array of lists / None.

dtypes: float32 features take any float or integer column; int64 features take integers, or
floats that are all integral; string features take strings/bytes only. Anything else raises
SchemaError naming the feature (and the first bad row). Nothing is dropped silently.

Imports numpy, pyarrow and the ir layer only.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pyarrow as pa

from tft_lite.errors import SchemaError
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature, num_elements
from tft_lite.serving.values import EmptyNulls, Ragged, as_arrow, ragged_from_arrow

try:  # C helpers for null filling (optional, like the lookup table they live with)
    from tft_lite.kernels import _lookup
except ImportError:
    _lookup = None

_LIST_TYPES = (pa.ListType, pa.LargeListType, pa.FixedSizeListType)
_STRING_TYPE_IDS = frozenset(t.id for t in (pa.string(), pa.large_string(), pa.binary(),
                                            pa.large_binary()))
# (id(default array), arrow type) -> (that array, exact fill value or None); the array is kept
# so its id cannot be reused while cached.
_FILL_VALUES: dict = {}


def feature_columns(batch, input_spec: Mapping, names=None, row_offset: int = 0,
                    lookup_only=frozenset(), as_float32=frozenset()) -> dict:
    """Converts and checks the columns `names` (default: all of `input_spec`).

    Args:
      batch: RecordBatch, Table, pandas DataFrame or dict of columns.
      input_spec: feature name -> normalized FixedLenFeature / VarLenFeature.
      names: features to convert; others in the batch are ignored.
      row_offset: added to row numbers in error messages (rows seen in earlier batches).
      lookup_only: string features read only by apply_vocabulary with at most one OOV
        bucket: with an empty default, a RecordBatch column with nulls may come back as an
        EmptyNulls (its nulls looked up as b"" in C), not filled here.
      as_float32: int64 features read only by a cast to float32: a RecordBatch int64 column
        may come back already cast (filled and converted in one pass, the same values).

    Returns:
      dict name -> numpy array [batch, *shape] | pyarrow binary array (string []) | Ragged.

    Raises:
      SchemaError: missing column without default, wrong dtype, bad row (named).
    """
    if type(batch) is pa.RecordBatch:  # the serving hot path: scalar columns, one pass each
        out = _record_batch_columns(batch, input_spec, names, lookup_only, as_float32)
        if out is not None:
            return out
    columns = _columns_of(batch)
    names = list(input_spec) if names is None else list(names)
    num_rows = _num_rows(columns)
    out = {}
    for name in names:
        spec = input_spec[name]
        column = columns.get(name)
        if column is None:
            out[name] = _absent_column(name, spec, num_rows, columns)
        elif isinstance(spec, VarLenFeature):
            out[name] = _varlen(name, spec, column, row_offset)
        else:
            out[name] = _fixedlen(name, spec, column, row_offset)
        if num_rows is not None and _len(out[name]) != num_rows:
            raise SchemaError(f"feature {name!r} has {_len(out[name])} rows, other columns "
                              f"have {num_rows}")
    return out


# Arrow type ids of the columns the RecordBatch fast path reads.
_INT64_ID, _FLOAT32_ID, _FLOAT64_ID = pa.int64().id, pa.float32().id, pa.float64().id
_STRING_ID, _BINARY_ID = pa.string().id, pa.binary().id
_NUMBER_DTYPES = {_INT64_ID: np.dtype(np.int64), _FLOAT32_ID: np.dtype(np.float32),
                  _FLOAT64_ID: np.dtype(np.float64)}


def _record_batch_columns(batch: pa.RecordBatch, input_spec: Mapping, names, lookup_only,
                          as_float32):
    """feature_columns for a RecordBatch whose wanted columns are all scalar FixedLen features
    of int64 / float / string columns (None otherwise: the general path decides).

    The same values as the general path, with its checks done once per column: a number is
    copied out of Arrow's buffer with its nulls filled in C, a string column with an empty
    default keeps its buffers (null slots checked empty).
    """
    if _lookup is None:
        return None
    names = input_spec if names is None else names
    schema_names = batch.schema.names
    index = {n: i for i, n in enumerate(schema_names)}
    if len(index) != len(schema_names):
        return None
    out = {}
    for name in names:
        spec = input_spec[name]
        i = index.get(name)
        if i is None or type(spec) is not FixedLenFeature or spec.shape != ():
            return None
        array = batch.column(i)
        value = _scalar_column(spec, array, name in lookup_only, name in as_float32)
        if value is None:
            return None
        out[name] = value
    return out


def _scalar_column(spec, array: pa.Array, lookup_only: bool, as_float32: bool):
    """One column of _record_batch_columns, or None."""
    type_id, dtype = array.type.id, spec.dtype
    nulls = array.null_count
    if dtype == "string":
        if type_id == _BINARY_ID:
            binary = array
        elif type_id == _STRING_ID:
            binary = array.view(pa.binary())
        else:
            return None
        if not nulls:
            return binary
        fill = spec.default_value is not None and _fill_value(spec.default_value, array.type)
        if not fill or fill[1]:  # no default, or not empty: the general path
            return None
        if lookup_only:
            return EmptyNulls(binary)
        buffers = array.buffers()
        start = array.offset
        offsets = np.frombuffer(buffers[1], np.int32)[start:start + len(array) + 1]
        if not _lookup.nulls_empty(buffers[0], start, offsets, 4):
            return None
        return pa.Array.from_buffers(pa.binary(), len(array), [None] + buffers[1:],
                                     offset=start)
    np_dtype = _NUMBER_DTYPES.get(type_id)
    if np_dtype is None or (dtype == "int64" and type_id != _INT64_ID) or dtype not in (
            "int64", "float32"):
        return None
    buffers = array.buffers()
    start = array.offset
    values = np.frombuffer(buffers[1], np_dtype)[start:start + len(array)]
    if as_float32 and dtype == "int64" and type_id == _INT64_ID:
        if not nulls:
            return values.astype(np.float32)
        fill = spec.default_value is not None and _fill_value(spec.default_value, array.type)
        if not fill:
            return None
        out = np.empty(len(values), np.float32)
        _lookup.fill_nulls_float32(values, buffers[0], start, fill[1], out)
        return out
    if nulls:
        fill = spec.default_value is not None and _fill_value(spec.default_value, array.type)
        if not fill:
            return None
        out = np.empty_like(values)
        _lookup.fill_nulls(values, buffers[0], start, np.asarray(fill[1], np_dtype), out)
        values = out
    elif dtype == "int64":
        return values.copy()
    return values.astype(np.float32, copy=not nulls) if dtype == "float32" else values


def instance_to_batch(instance: Mapping, input_spec: Mapping) -> dict:
    """A single {name: value} instance as a dict batch of one row."""
    batch = {}
    for name, value in instance.items():
        spec = input_spec.get(name)
        if isinstance(spec, VarLenFeature) and value is not None and np.ndim(value) == 0:
            value = [value]
        if isinstance(value, np.ndarray):
            value = value.tolist()
        batch[name] = [value]
    return batch


def _columns_of(batch) -> dict:
    if type(batch).__module__.split(".")[0] == "pandas":
        batch = pa.Table.from_pandas(batch, preserve_index=False)
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
    if isinstance(batch, Mapping):
        return dict(batch)
    raise SchemaError(f"a batch must be a pyarrow RecordBatch/Table, a pandas DataFrame or a "
                      f"dict of columns, got {type(batch).__name__}")


def _len(value) -> int:
    return value.nrows if isinstance(value, Ragged) else len(value)


def _num_rows(columns: dict):
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"columns have different numbers of rows: {lengths}")
    return next(iter(lengths.values()), None)


def _absent_column(name, spec, num_rows, columns):
    if isinstance(spec, FixedLenFeature) and spec.default_value is not None:
        rows = num_rows or 0
        return _fill_default(spec, rows)
    have = ", ".join(sorted(map(str, columns))) or "none"
    raise SchemaError(f"feature {name!r} is missing from the batch (columns: {have})")


def _fill_default(spec, rows: int) -> np.ndarray:
    default = np.asarray(spec.default_value).reshape(spec.shape)
    return np.broadcast_to(default, (rows,) + tuple(spec.shape)).copy()


def _to_arrow(name, column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    if isinstance(column, pa.Array):
        return column
    if isinstance(column, np.ndarray) and column.dtype.kind in "US":
        column = column.astype(object)
    try:
        return pa.array(list(column) if isinstance(column, np.ndarray) else column)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise SchemaError(f"feature {name!r}: cannot read the column: {exc}") from exc


# --- FixedLen ----------------------------------------------------------------------------------

def _fixedlen(name, spec, column, row_offset):
    size = num_elements(spec.shape)
    if isinstance(column, np.ndarray) and column.dtype.kind in "biuf":
        values = _cast(name, spec.dtype, column, None, row_offset)
        if values.shape[1:] != tuple(spec.shape) and values.size == len(values) * size:
            values = values.reshape((len(values),) + tuple(spec.shape))
        if values.shape[1:] != tuple(spec.shape):
            raise SchemaError(f"feature {name!r}: expected shape [batch, "
                              f"{', '.join(map(str, spec.shape))}], got {list(values.shape)}")
        return values
    array = _to_arrow(name, column)
    if isinstance(array.type, _LIST_TYPES):
        return _fixedlen_from_lists(name, spec, array, row_offset)
    if size != 1:
        raise SchemaError(f"feature {name!r}: shape {list(spec.shape)} needs a list column, got "
                          f"{array.type}")
    if array.null_count:
        array = _fill_nulls(name, spec, array, row_offset)
    values = _cast(name, spec.dtype, array, None, row_offset,
                   owned=isinstance(array, np.ndarray))
    if isinstance(values, np.ndarray):
        return values.reshape((len(values),) + tuple(spec.shape))
    return values


def _fill_nulls(name, spec, array: pa.Array, row_offset):
    fill = None if spec.default_value is None else _fill_value(spec.default_value, array.type)
    if fill is not None:  # fill in the column's own type; values are converted with the rest
        return _filled(array, *fill)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if spec.default_value is None:
        row = int(np.flatnonzero(~valid)[0]) + row_offset
        raise SchemaError(f"feature {name!r} row {row}: value is missing and the "
                          "FixedLenFeature has no default_value")
    values = np.asarray(_cast(name, spec.dtype, array.drop_null(), None, row_offset,
                              arrow_ok=False))
    out = _fill_default(spec, len(array)).reshape(-1)
    out[valid] = values
    return out


def _fill_value(default_value, arrow_type):
    """(pyarrow scalar, Python value) of the default in the column's own type, or None.

    None unless the column's type holds the default exactly: then filling nulls with it and
    converting the whole column gives the same values as converting the present values and
    placing them among defaults. Cached per default array and type (one per feature).
    """
    key = (id(default_value), arrow_type)
    cached = _FILL_VALUES.get(key)
    if cached is not None and cached[0] is default_value:
        return cached[1]
    value = np.asarray(default_value).reshape(-1)[:1].tolist()[0]
    fill = None
    if isinstance(value, bytes) and (pa.types.is_string(arrow_type)
                                     or pa.types.is_large_string(arrow_type)):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = None
    if value is not None:
        try:
            scalar = pa.scalar(value, type=arrow_type)
            fill = (scalar, value) if scalar.as_py() == value else None
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            fill = None
    if len(_FILL_VALUES) > 4096:
        _FILL_VALUES.clear()
    _FILL_VALUES[key] = (default_value, fill)
    return fill


def _valid_mask(array: pa.Array, buffers) -> np.ndarray:
    """bool [len(array)]: which values are present (the validity bitmap, unpacked)."""
    bitmap = np.frombuffer(buffers[0], np.uint8)
    bits = np.unpackbits(bitmap, count=array.offset + len(array), bitorder="little")
    return bits[array.offset:].view(bool)


def _filled(array: pa.Array, default: pa.Scalar, value):
    """`array` (with nulls) with each null replaced by `default` (a scalar of its type; `value`
    is the same as a Python object).

    Numbers: a numpy array. Strings with an empty default: the same buffers without the
    validity bitmap when every null slot is already empty (what Arrow's builders write), so
    nothing is copied. Otherwise Arrow's fill_null. One pass in C over the validity bitmap
    when the lookup extension is built (the same answers as the numpy twins below).
    """
    t, start, stop = array.type, array.offset, array.offset + len(array)
    buffers = array.buffers()
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        kind = "f" if pa.types.is_floating(t) else "i" if pa.types.is_signed_integer(t) else "u"
        values = np.frombuffer(buffers[1], f"{kind}{t.bit_width // 8}")[start:stop]
        fill = np.asarray(value, values.dtype)
        if _lookup is not None:
            out = np.empty_like(values)
            _lookup.fill_nulls(values, buffers[0], start, fill, out)
            return out
        return np.where(_valid_mask(array, buffers), values, fill)
    if (pa.types.is_binary(t) or pa.types.is_string(t)) and not value:
        offsets = np.frombuffer(buffers[1], np.int32)[start:stop + 1]
        if (_lookup.nulls_empty(buffers[0], start, offsets, 4) if _lookup is not None else
                ((offsets[1:] == offsets[:-1]) | _valid_mask(array, buffers)).all()):
            return pa.Array.from_buffers(t, len(array), [None] + buffers[1:], offset=start)
    return array.fill_null(default)


def _fixedlen_from_lists(name, spec, array, row_offset):
    ragged = ragged_from_arrow(array)
    lengths = ragged.row_lengths()
    size = num_elements(spec.shape)
    missing = lengths == 0
    bad = (lengths != size) & ~(missing & (spec.default_value is not None))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaError(f"feature {name!r} row {row + row_offset}: expected {size} values, "
                          f"got {int(lengths[row])}")
    values = np.asarray(_cast(name, spec.dtype, ragged.values, ragged, row_offset,
                              arrow_ok=False))
    if missing.any():
        out = _fill_default(spec, len(lengths)).reshape(len(lengths), size)
        out[~missing] = values.reshape(-1, size)
        values = out
    return values.reshape((len(lengths),) + tuple(spec.shape))


# --- VarLen ------------------------------------------------------------------------------------

def _varlen(name, spec, column, row_offset) -> Ragged:
    if isinstance(column, np.ndarray) and column.dtype.kind in "biuf":
        column = pa.array(column.reshape(len(column), -1).tolist()
                          if column.ndim > 1 else column)
    array = _to_arrow(name, column)
    if isinstance(array.type, _LIST_TYPES):
        ragged = ragged_from_arrow(array)
    else:  # a flat column: each present value is a row of one, a null an empty row
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        splits = np.zeros(len(array) + 1, np.int64)
        np.cumsum(valid, out=splits[1:])
        ragged = Ragged(array.drop_null() if array.null_count else array, splits)
    if ragged.values.null_count:
        flat = int(np.flatnonzero(~ragged.values.is_valid().to_numpy(zero_copy_only=False))[0])
        row = int(np.searchsorted(ragged.row_splits, flat, side="right")) - 1
        raise SchemaError(f"feature {name!r} row {row + row_offset}: a VarLen row holds a "
                          "null value")
    return Ragged(_cast(name, spec.dtype, ragged.values, ragged, row_offset), ragged.row_splits)


# --- dtypes ------------------------------------------------------------------------------------

def _kind(values) -> str:
    """'f', 'i', 'b', 's' (string/bytes) or '?' for a numpy or pyarrow array."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "US":
            return "s"
        if values.dtype.kind == "O":
            sample = next((v for v in values.reshape(-1) if v is not None), b"")
            return "s" if isinstance(sample, (bytes, str)) else "?"
        return {"f": "f", "i": "i", "u": "i", "b": "b"}.get(values.dtype.kind, "?")
    t = values.type
    if t.id in _STRING_TYPE_IDS:  # the common case first
        return "s"
    if pa.types.is_floating(t):
        return "f"
    if pa.types.is_integer(t):
        return "i"
    if pa.types.is_boolean(t):
        return "b"
    if pa.types.is_null(t):
        return "n"
    if pa.types.is_dictionary(t):
        return _kind(values.dictionary_decode())
    if any(check(t) for check in (pa.types.is_string, pa.types.is_large_string,
                                  pa.types.is_binary, pa.types.is_large_binary)):
        return "s"
    return "?"


def _cast(name, dtype, values, ragged, row_offset, arrow_ok=True, owned=False):
    """Values (numpy or arrow) as the spec dtype; SchemaError on a dtype disagreement.

    owned: `values` is a numpy array made for this batch, which the result may share.
    """
    kind = _kind(values)
    if kind == "n":  # an all-null or empty column carries no type
        return np.zeros(len(values), np.float32 if dtype == "float32" else np.int64) \
            if dtype != "string" else np.empty(0, object)
    if dtype == "string":
        if kind != "s":
            raise SchemaError(f"feature {name!r}: expected string values, got "
                              f"{_type_name(values)}")
        if isinstance(values, pa.Array) and pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        arrow = as_arrow(values) if isinstance(values, pa.Array) else _strings_to_arrow(values)
        if arrow.null_count:
            raise SchemaError(f"feature {name!r}: a string value is None/null")
        if arrow_ok:
            return arrow
        return arrow.to_numpy(zero_copy_only=False)
    if kind not in "fi":
        raise SchemaError(f"feature {name!r}: expected {dtype} values, got {_type_name(values)}")
    array = values.to_numpy(zero_copy_only=False) if isinstance(values, pa.Array) else values
    copy = not owned  # never hand out the caller's array (or a view of Arrow's buffers)
    if dtype == "float32":
        with np.errstate(over="ignore"):  # beyond float32's range -> ±inf, as tf.cast does
            return array.astype(np.float32, copy=copy)
    if kind == "f":
        flat = array.reshape(-1)
        bad = ~np.isfinite(flat) | (flat != np.round(flat))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            row = index if ragged is None else int(
                np.searchsorted(ragged.row_splits, index, side="right")) - 1
            raise SchemaError(f"feature {name!r} row {row + row_offset}: int64 feature got "
                              f"the non-integer value {float(flat[index])!r}")
    return array.astype(np.int64, copy=copy)


def _strings_to_arrow(values: np.ndarray) -> pa.Array:
    """numpy str/bytes/object array -> large_binary (str as UTF-8), in one C loop."""
    flat = np.asarray(values).reshape(-1).astype(object)
    try:
        return pa.array(flat, type=pa.large_binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise SchemaError(f"expected str or bytes values: {exc}") from exc


def _type_name(values) -> str:
    return str(values.dtype) if isinstance(values, np.ndarray) else str(values.type)
