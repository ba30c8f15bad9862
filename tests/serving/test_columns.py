"""serving/columns.py: FixedLen nulls filled with the default, for every column layout.

The fast fills (numpy over the value buffer; string buffers reused when null slots are empty)
must give what filling row by row in Python gives, including sliced arrays, null slots that
hold bytes, and defaults that the column's own type cannot hold exactly.
"""
import numpy as np
import pyarrow as pa
import pytest

from tft_lite.errors import SchemaError
from tft_lite.ir.schema import FixedLenFeature, normalize_schema
from tft_lite.serving.columns import feature_columns
from tft_lite.serving.values import as_numpy


def _fill(spec, column):
    name = "f"
    return as_numpy(feature_columns({name: column}, normalize_schema({name: spec}))[name])


def _string_array_with_bytes_in_null_slots():
    # rows: b"ab", null holding b"zz", b"c"
    offsets = pa.py_buffer(np.array([0, 2, 4, 5], np.int32).tobytes())
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little").tobytes())
    return pa.Array.from_buffers(pa.binary(), 3, [validity, offsets, pa.py_buffer(b"abzzc")])


CASES = [
    ("int64", pa.array([1, None, 3]), 7, [1, 7, 3]),
    ("int64", pa.array([1, None, 3], pa.int32()), -1, [1, -1, 3]),
    ("int64", pa.array([1, None, 3], pa.uint8()), -1, [1, -1, 3]),      # -1 not a uint8
    ("int64", pa.array([2.0, None, 3.0]), 0, [2, 0, 3]),
    ("float32", pa.array([1.5, None, 0.1]), 0.25, [1.5, 0.25, np.float32(0.1)]),
    ("float32", pa.array([1, None, 3]), 0.5, [1.0, 0.5, 3.0]),           # 0.5 not an int
    ("float32", pa.array([1.0, None]), float("nan"), [1.0, float("nan")]),
    ("float32", pa.array([1, 2, None, 4, None]).slice(1, 4), 9.0, [2.0, 9.0, 4.0, 9.0]),
    ("string", pa.array(["a", None, "c"]), b"", [b"a", b"", b"c"]),
    ("string", pa.array([b"a", None, b"c"], pa.large_binary()), b"", [b"a", b"", b"c"]),
    ("string", pa.array(["a", None, "c"]), b"unk", [b"a", b"unk", b"c"]),
    ("string", pa.array(["a", None, "c"]), b"\xff", [b"a", b"\xff", b"c"]),  # not UTF-8
    ("string", pa.array(["x", None, "yy", None, "z"]).slice(1, 3), b"", [b"", b"yy", b""]),
    ("string", _string_array_with_bytes_in_null_slots(), b"", [b"ab", b"", b"c"]),
    ("string", pa.array(["a", None]).dictionary_encode(), b"d", [b"a", b"d"]),
]


@pytest.mark.parametrize("dtype, column, default, want", CASES)
def test_nulls_take_the_default(dtype, column, default, want):
    got = _fill(FixedLenFeature([], dtype, default_value=default), column)
    want = np.array(want, dtype=object if dtype == "string" else dtype)
    assert got.dtype == want.dtype
    if dtype == "string":
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got, want)


def test_filled_numbers_are_writable_copies():
    column = pa.array([1, None, 3])
    got = _fill(FixedLenFeature([], "int64", default_value=0), column)
    got[0] = 100
    assert column.to_pylist() == [1, None, 3]


def test_null_without_default_names_the_row():
    with pytest.raises(SchemaError, match="row 1"):
        _fill(FixedLenFeature([], "string"), pa.array(["a", None]))
    with pytest.raises(SchemaError, match="non-integer"):
        _fill(FixedLenFeature([], "int64", default_value=0), pa.array([1.5, None]))
