"""decode_csv: tf.io.decode_csv's defaults, required fields and errors."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tft_lite.data import CsvDecodeError, decode_csv


def test_types_and_defaults_for_empty_fields():
    lines = [b"1,2.5,abc,7", b",,,", b"3,1e3,\"q,uoted\",-2"]
    a, b, c, d = decode_csv(lines, [0, 0.0, "dflt", np.int64(9)])
    assert a.dtype == np.int32 and a.tolist() == [1, 0, 3]
    assert b.dtype == np.float32 and b.tolist() == [2.5, 0.0, 1000.0]
    assert c.dtype == object and c.tolist() == [b"abc", b"dflt", b"q,uoted"]
    assert d.dtype == np.int64 and d.tolist() == [7, 9, -2]


def test_one_line_gives_scalars():
    x, s = decode_csv("4,hi", [[0], [""]])
    assert x == 4 and isinstance(x, np.int32) and s == b"hi"


@pytest.mark.parametrize("records", [["1;x", "2;y"], np.array([b"1;x", b"2;y"]),
                                     pa.array(["1;x", "2;y"])])
def test_batches_of_any_kind_and_delimiter(records):
    x, s = decode_csv(records, [np.float64, bytes], field_delim=";")
    assert x.dtype == np.float64 and x.tolist() == [1.0, 2.0] and s.tolist() == [b"x", b"y"]


def test_na_value_select_cols_and_literal_quotes():
    (v,) = decode_csv(["a,NA,c", "a,5,c"], [0], na_value="NA", select_cols=[1])
    assert v.tolist() == [0, 5]
    (q,) = decode_csv(['"x"'], [""], use_quote_delim=False)
    assert q.tolist() == [b'"x"']


def test_2d_records_keep_their_shape():
    (v,) = decode_csv(np.array([["1", "2"], ["3", "4"]], dtype=object), [0])
    assert v.shape == (2, 2) and v.tolist() == [[1, 2], [3, 4]]


ERRORS = [
    ("too few fields", ["1,2", "3"], [0, 0], "expected 2 fields, got 1", 1, None),
    ("too many fields", ["1,2,3"], [0, 0], "expected 2 fields, got 3", 0, None),
    ("required missing", ["1,", "2,3"], [0, np.int64], "required field is missing", 0, 1),
    ("required via empty array", [",5"], [np.array([], np.float32), 0],
     "required field is missing", 0, 0),
    ("not a number", ["1,x"], [0, 0], "cannot parse 'x' as int32", 0, 1),
    ("out of range", ["3000000000"], [0], "out of range for int32", 0, 0),
    ("select_cols beyond line", ["1,2"], [0], "at least 3", 0, None),
]


@pytest.mark.parametrize("name, lines, defaults, message, row, column", ERRORS,
                         ids=[e[0] for e in ERRORS])
def test_errors_name_row_and_column(name, lines, defaults, message, row, column):
    select = [2] if name == "select_cols beyond line" else None
    with pytest.raises(CsvDecodeError, match=message) as info:
        decode_csv(lines, defaults, select_cols=select)
    assert (info.value.row, info.value.column) == (row, column)
    assert lines[row][:5] in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_record_defaults():
    with pytest.raises(ValueError, match="one default value"):
        decode_csv(["1"], [[1, 2]])
    with pytest.raises(ValueError, match="select_cols"):
        decode_csv(["1,2"], [0], select_cols=[1, 0])
