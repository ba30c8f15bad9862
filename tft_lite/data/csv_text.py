"""decode_csv: CSV lines to typed columns, with tf.io.decode_csv's arguments and rules.

Each column's type and default come from `record_defaults`, one entry per column (TF's
convention, adapted to numpy):

    0 or [0]            int32 column, default 0          (Python ints are int32, as in TF)
    0.0 or [0.0]        float32 column, default 0.0      (Python floats are float32)
    "" or [b"x"]        bytes column, default b"" / b"x"
    np.int64(7)         int64 column, default 7          (numpy scalars keep their dtype)
    np.float64, int, "float32", bytes, np.array([], np.int64), ...
                        a dtype (or an empty array) instead of a value: the column is
                        required; an empty field is an error

An empty field, or one equal to `na_value`, takes the default. A line with the wrong number of
fields, a missing required field or an unparsable number raises CsvDecodeError naming the row
(within the batch), the column and the line.
"""
from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa

from tft_lite.errors import TftLiteError

_INT_RANGE = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}
_DTYPE_NAMES = {"int32", "int64", "float32", "float64", "string"}


class CsvDecodeError(TftLiteError, ValueError):
    """A CSV line does not fit record_defaults. Attributes: row, column, line."""

    def __init__(self, message: str, row=None, column=None, line=None):
        self.row, self.column, self.line = row, column, line
        where = [f"row {row}"] if row is not None else []
        if column is not None:
            where.append(f"column {column}")
        if line is not None:
            where.append(f"line {line[:120]!r}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


def _dtype_name(value) -> str | None:
    """The column dtype a record_defaults entry names, if it is a dtype rather than a value."""
    builtin = {int: "int32", float: "float32", bytes: "string", str: "string", object: "string"}
    if isinstance(value, type) and value in builtin:
        return builtin[value]
    if isinstance(value, str) and value in _DTYPE_NAMES:
        return value
    if isinstance(value, type) and issubclass(value, np.generic) or isinstance(value, np.dtype):
        kind = np.dtype(value)
        return "string" if kind.kind in "SUO" else kind.name
    return None


def _column_spec(index: int, entry):
    """(dtype name, default or None) of one record_defaults entry."""
    dtype = _dtype_name(entry)
    if dtype is not None:
        return _checked(index, dtype), None
    if isinstance(entry, np.ndarray) and entry.size == 0:
        return _checked(index, "string" if entry.dtype.kind in "SUO" else entry.dtype.name), \
            None
    if isinstance(entry, (list, tuple, np.ndarray)):
        if len(entry) != 1:
            raise ValueError(f"record_defaults[{index}] must hold one default value or be a "
                             f"dtype (required column), got {entry!r}")
        entry = entry[0]
    if isinstance(entry, (str, bytes)):
        return "string", entry.encode("utf-8") if isinstance(entry, str) else entry
    if isinstance(entry, bool):
        raise ValueError(f"record_defaults[{index}]: bool columns are not supported")
    if isinstance(entry, int):
        return "int32", entry
    if isinstance(entry, float):
        return "float32", entry
    if isinstance(entry, np.generic):
        return _checked(index, "string" if entry.dtype.kind in "SUO" else entry.dtype.name), \
            entry.item()
    raise ValueError(f"record_defaults[{index}]: unsupported default {entry!r}")


def _checked(index, dtype):
    if dtype not in _DTYPE_NAMES:
        raise ValueError(f"record_defaults[{index}]: unsupported dtype {dtype}; use one of "
                         f"{sorted(_DTYPE_NAMES)}")
    return dtype


def _as_lines(records):
    """(list of str lines, shape of the input) for bytes/str, a list, numpy or pyarrow."""
    if isinstance(records, (bytes, str)):
        records, shape = [records], ()
    else:
        if isinstance(records, (pa.Array, pa.ChunkedArray)):
            records = records.to_numpy(zero_copy_only=False)
        array = np.asarray(records, dtype=object)
        shape, records = array.shape, array.reshape(-1).tolist()
    lines = [r.decode("utf-8", "surrogateescape") if isinstance(r, (bytes, np.bytes_)) else
             str(r) for r in records]
    return lines, shape


def decode_csv(records, record_defaults, field_delim=",", use_quote_delim=True, na_value="",
               select_cols=None):
    """Parses CSV lines into one numpy array per column (tf.io.decode_csv).

    Args:
      records: one line (bytes/str) or a batch of lines (list, numpy array, pyarrow array),
        e.g. from TextLineDataset(...).batch(n).
      record_defaults: one entry per output column; see the module docstring.
      field_delim: the one-character field separator.
      use_quote_delim: treat double quotes as quoting fields (RFC 4180); False: literal.
      na_value: a field equal to this is missing as well as an empty field.
      select_cols: sorted indices of the columns to keep (len == len(record_defaults)).

    Returns:
      list of numpy arrays shaped like `records` (int32/int64/float32/float64, or object
      arrays of bytes); for one line, a list of numpy scalars / bytes.

    Raises:
      CsvDecodeError: wrong field count, missing required field, unparsable value.
    """
    specs = [_column_spec(i, entry) for i, entry in enumerate(record_defaults)]
    wanted = list(range(len(specs))) if select_cols is None else list(select_cols)
    if len(wanted) != len(specs) or sorted(set(wanted)) != wanted:
        raise ValueError(f"select_cols must be {len(specs)} increasing column indices, got "
                         f"{select_cols!r}")
    lines, shape = _as_lines(records)
    rows = _split(lines, field_delim, use_quote_delim)
    for row, fields in enumerate(rows):
        if (select_cols is None and len(fields) != len(specs)) or \
                (select_cols is not None and len(fields) <= wanted[-1]):
            need = len(specs) if select_cols is None else f"at least {wanted[-1] + 1}"
            raise CsvDecodeError(f"expected {need} fields, got {len(fields)}", row=row,
                                 line=lines[row])
    columns = [_convert([fields[c] for fields in rows], c, specs[i], na_value, lines)
               for i, c in enumerate(wanted)]
    if shape == ():
        return [column[0] for column in columns]
    return [column.reshape(shape) for column in columns]


def _split(lines, field_delim, use_quote_delim):
    """Fields of each line; every line is parsed on its own (quotes never span lines)."""
    options = {"delimiter": field_delim, "strict": True}
    if not use_quote_delim:
        options.update(quoting=csv.QUOTE_NONE, quotechar=None)
    rows = []
    for row, line in enumerate(lines):
        try:
            fields = next(csv.reader((line,), **options), [])
        except csv.Error as exc:
            raise CsvDecodeError(f"malformed CSV ({exc})", row=row, line=line) from exc
        rows.append(fields if fields else [""])
    return rows


def _convert(values, column, spec, na_value, lines):
    dtype, default = spec
    out = []
    for row, text in enumerate(values):
        if text == "" or text == na_value:
            if default is None:
                raise CsvDecodeError("required field is missing (its record_defaults entry is "
                                     "a dtype, not a default)", row=row, column=column,
                                     line=lines[row])
            out.append(default)
        elif dtype == "string":
            out.append(text.encode("utf-8", "surrogateescape"))
        else:
            out.append(_number(text, dtype, row, column, lines[row]))
    if dtype == "string":
        array = np.empty(len(out), dtype=object)
        array[:] = out
        return array
    return np.array(out, dtype=dtype)


def _number(text, dtype, row, column, line):
    try:
        value = int(text) if dtype in _INT_RANGE else float(text)
    except ValueError:
        raise CsvDecodeError(f"cannot parse {text!r} as {dtype}", row=row, column=column,
                             line=line) from None
    if dtype in _INT_RANGE and not _INT_RANGE[dtype][0] <= value <= _INT_RANGE[dtype][1]:
        raise CsvDecodeError(f"{text!r} is out of range for {dtype}", row=row, column=column,
                             line=line)
    return value
