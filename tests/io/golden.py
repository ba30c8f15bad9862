"""Readers for the TensorFlow-made golden files in tests/golden/tfrecord (see its README)."""
from __future__ import annotations

import base64
import json
import os

import numpy as np

from tft_lite.ir.schema import (FixedLenFeature, FixedLenSequenceFeature, VarLenFeature)

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "golden", "tfrecord")


def path(name: str) -> str:
    return os.path.join(GOLDEN, name)


def load(name: str):
    with open(path(name), encoding="utf-8") as f:
        return json.load(f)


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def float_array(bits) -> np.ndarray:
    """float32 values from their bit patterns (nested lists allowed), exact."""
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def values_of(entry: dict, dtype: str, flat_prefix: str = "") -> np.ndarray:
    """Values of a FEATURE or tensor entry as numpy (float32 exact, int64, object of bytes)."""
    if dtype == "float32":
        return float_array(entry[flat_prefix + "float_bits"])
    if dtype == "int64":
        return np.asarray(entry[flat_prefix + "values"], dtype=np.int64)
    raw = entry[flat_prefix + "values"]
    return np.vectorize(b64, otypes=[object])(np.asarray(raw, dtype=object)) if len(raw) \
        else np.asarray(raw, dtype=object)


_KIND_DTYPES = {"bytes_list": "string", "float_list": "float32", "int64_list": "int64"}


def feature_values(feature: dict) -> tuple[str, np.ndarray]:
    """(dtype, values) of a FEATURE entry of examples.json."""
    dtype = _KIND_DTYPES[feature["kind"]]
    return dtype, values_of(feature, dtype)


def spec_of(entry: dict):
    """A tft_lite spec from the JSON spec encoding."""
    kind, dtype = entry["kind"], entry["dtype"]
    default = entry.get("default_value")
    if dtype == "string" and default is not None:
        default = (np.asarray(default, dtype=object).reshape(-1).tolist())
        default = [d.encode("utf-8") for d in default]
    if kind == "var_len":
        return VarLenFeature(dtype)
    if kind == "fixed_len":
        return FixedLenFeature(entry["shape"], dtype, default)
    if kind == "fixed_len_sequence":
        return FixedLenSequenceFeature(entry["shape"], dtype, entry["allow_missing"], default)
    raise KeyError(kind)


def dense_of(result: dict) -> np.ndarray:
    values = values_of(result, result["dtype"])
    return values.reshape(result["shape"])


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal values, dtype and shape; floats compared bit for bit (NaN payloads, -0.0)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype == np.float32:
        assert actual.dtype == np.float32
        np.testing.assert_array_equal(actual.view(np.uint32), expected.view(np.uint32))
    else:
        assert actual.tolist() == expected.tolist()
