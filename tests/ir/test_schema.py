"""Feature specs: normalization, JSON round trip and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from tft_lite.errors import SchemaError
from tft_lite.ir.schema import (FixedLenFeature, FixedLenSequenceFeature, VarLenFeature,
                                normalize_dtype, normalize_schema, schema_from_json,
                                schema_to_json)


class _TfLikeDtype:  # what tf.float32 looks like to us: an object with a .name
    name = "float32"


@pytest.mark.parametrize("dtype,expected", [
    ("float32", "float32"), (np.float32, "float32"), (np.dtype("float64"), "float32"),
    (_TfLikeDtype(), "float32"), ("int64", "int64"), (np.int64, "int64"),
    ("string", "string"), (np.bytes_, "string"), (np.str_, "string"), (object, "string"),
    ("bytes", "string"),
])
def test_dtype_spellings(dtype, expected):
    assert normalize_dtype(dtype) == expected


def test_fields_match_tf_io():
    assert FixedLenFeature._fields == ("shape", "dtype", "default_value")
    assert VarLenFeature._fields == ("dtype",)
    assert FixedLenSequenceFeature._fields == ("shape", "dtype", "allow_missing",
                                               "default_value")


def test_normalize_defaults_and_shapes():
    schema = normalize_schema({
        "b": FixedLenFeature([2], "int64", default_value=7),
        "a": FixedLenFeature([], "string", default_value="x"),
        "c": VarLenFeature(np.float32),
    })
    assert list(schema) == ["a", "b", "c"]
    assert schema["b"].shape == (2,) and schema["b"].default_value.tolist() == [7, 7]
    assert schema["a"].default_value.tolist() == [b"x"]
    assert schema["c"] == VarLenFeature("float32")


@pytest.mark.parametrize("spec,message", [
    (FixedLenFeature([2], "int64", default_value=[1, 2, 3]), "has 3 values"),
    (FixedLenFeature([-1], "int64"), "non-negative"),
    (FixedLenFeature(None, "int64"), "needs a shape"),
    (FixedLenFeature([], "complex64"), "unsupported dtype"),
    (FixedLenFeature([], "int64", default_value="abc"), "is not int64"),
    ("not a spec", "unsupported spec"),
])
def test_bad_specs_name_the_feature(spec, message):
    with pytest.raises(SchemaError, match=message) as info:
        normalize_schema({"feat": spec})
    assert "feat" in str(info.value)


def test_json_round_trip_keeps_defaults_and_special_floats():
    schema = {
        "f": FixedLenFeature([3], "float32", default_value=[np.nan, np.inf, -0.5]),
        "s": FixedLenFeature([], "string", default_value=b"\x00\xff"),
        "i": FixedLenFeature([], "int64", default_value=-(2**63)),
        "v": VarLenFeature("string"),
        "q": FixedLenSequenceFeature([2], "int64", allow_missing=True),
    }
    text = schema_to_json(schema)
    assert text == schema_to_json(schema_from_json(text))  # deterministic
    back = schema_from_json(text)
    np.testing.assert_array_equal(back["f"].default_value, [np.nan, np.inf, -0.5])
    assert back["s"].default_value.tolist() == [b"\x00\xff"]
    assert back["i"].default_value.tolist() == [-(2**63)]
    assert back["v"] == VarLenFeature("string") and back["q"].allow_missing


def test_json_rejects_other_versions_and_garbage():
    with pytest.raises(SchemaError, match="version 99"):
        schema_from_json('{"version": 99, "features": {}}')
    with pytest.raises(SchemaError, match="not a tft_lite schema"):
        schema_from_json("[1, 2")
