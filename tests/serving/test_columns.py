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


# --- the RecordBatch fast path ----------------------------------------------------------------

def _batch_and_dict(column):
    """The same column as a RecordBatch (fast path) and as a dict (general path)."""
    return pa.RecordBatch.from_arrays([column], ["f"]), {"f": column}


@pytest.mark.parametrize("dtype, column, default, want", CASES)
def test_record_batch_fast_path_matches_the_general_path(dtype, column, default, want):
    spec = normalize_schema({"f": FixedLenFeature([], dtype, default_value=default)})
    batch, columns = _batch_and_dict(column)
    fast = feature_columns(batch, spec)["f"]
    general = feature_columns(columns, spec)["f"]
    assert type(fast) is type(general)
    if isinstance(general, np.ndarray):
        assert fast.dtype == general.dtype and fast.shape == general.shape
        np.testing.assert_array_equal(fast, general)
        assert fast.flags.writeable
    else:
        assert fast.type == general.type and fast.to_pylist() == general.to_pylist()


@pytest.mark.parametrize("column", [pa.array([1, 2, 3]), pa.array([1.5, 2.5], pa.float32()),
                                    pa.array([1, None, 3] * 11).slice(5, 20)])
def test_record_batch_numbers_are_copies(column):
    spec = normalize_schema({"f": FixedLenFeature([], "int64" if pa.types.is_integer(
        column.type) else "float32", default_value=0)})
    out = feature_columns(pa.RecordBatch.from_arrays([column], ["f"]), spec)["f"]
    out[:] = 0  # writable, and not Arrow's buffer
    assert column.to_pylist() != [0] * len(column)


def test_lookup_only_strings_keep_their_nulls():
    from tft_lite.serving.values import EmptyNulls
    spec = normalize_schema({"f": FixedLenFeature([], "string", default_value=b""),
                             "g": FixedLenFeature([], "string", default_value=b"")})
    column = _string_array_with_bytes_in_null_slots()
    batch = pa.RecordBatch.from_arrays([column, pa.array(["ab", None, "c"])], ["f", "g"])
    out = feature_columns(batch, spec, lookup_only=frozenset({"f"}))
    assert type(out["f"]) is EmptyNulls and out["f"].array.null_count == 1
    assert out["g"].null_count == 0 and out["g"].to_pylist() == [b"ab", b"", b"c"]
    both = pa.RecordBatch.from_arrays([column, column], ["f", "g"])  # g: bytes in a null slot
    out = feature_columns(both, spec, lookup_only=frozenset({"f"}))
    assert out["f"].to_pylist() == out["g"].to_pylist() == [b"ab", b"", b"c"]
    no_nulls = pa.RecordBatch.from_arrays([pa.array(["a"]), pa.array(["b"])], ["f", "g"])
    out = feature_columns(no_nulls, spec, lookup_only=frozenset({"f"}))
    assert out["f"].to_pylist() == [b"a"]


def test_record_batch_declines_what_it_does_not_handle():
    spec = normalize_schema({"f": FixedLenFeature([2], "int64", default_value=[0, 0]),
                             "g": FixedLenFeature([], "int64", default_value=0)})
    lists = pa.array([[1, 2], None])
    batch = pa.RecordBatch.from_arrays([lists, pa.array([1.0, None])], ["f", "g"])
    out = feature_columns(batch, spec)
    assert out["f"].tolist() == [[1, 2], [0, 0]] and out["g"].tolist() == [1, 0]
    with pytest.raises(SchemaError):
        feature_columns(pa.RecordBatch.from_arrays([pa.array([1.5])], ["g"]),
                        normalize_schema({"g": FixedLenFeature([], "int64")}))
