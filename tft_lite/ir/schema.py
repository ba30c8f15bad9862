"""Feature specs and schemas, the vocabulary every layer shares.

`FixedLenFeature`, `VarLenFeature` and `FixedLenSequenceFeature` mirror tf.io's namedtuples of
the same names (same fields, same order) so TensorFlow code ports unchanged. A schema is a plain
dict of feature name to spec. This module is the bottom of the stack: it imports only numpy.

dtypes are normalized to one of three names, the three kinds a tf.train.Feature can hold:
"int64", "float32" and "string" (raw bytes). Anything with a `.name` attribute naming one of
those (a tf.DType, a numpy dtype) or the numpy scalar types np.int64 / np.float32 / np.bytes_ /
np.object_ / np.str_ is accepted.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any, NamedTuple

import numpy as np

from tft_lite.errors import SchemaError

SCHEMA_JSON_VERSION = 1
DTYPES = ("int64", "float32", "string")

_DTYPE_ALIASES = {
    "int64": "int64", "int": "int64", "int32": "int64",
    "float32": "float32", "float": "float32", "float64": "float32",
    "string": "string", "bytes": "string", "str": "string", "object": "string",
    "bytes_": "string", "str_": "string",
}
NUMPY_DTYPES = {"int64": np.dtype(np.int64), "float32": np.dtype(np.float32),
                "string": np.dtype(object)}


def normalize_dtype(dtype: Any, feature: str | None = None) -> str:
    """Returns "int64", "float32" or "string" for any accepted spelling of a dtype."""
    builtin = {object: "string", bytes: "string", str: "string", int: "int64",
               float: "float32"}
    if isinstance(dtype, type) and dtype in builtin:
        name = builtin[dtype]
    elif isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, type) and issubclass(dtype, np.generic):
        name = np.dtype(dtype).name if dtype not in (np.bytes_, np.str_) else "string"
    else:
        name = getattr(dtype, "name", None)
        if name is None:
            name = str(dtype)
    name = name.lower()
    if name.startswith("bytes") or name.startswith("str") or name.startswith("<u"):
        name = "string"
    if name not in _DTYPE_ALIASES:
        where = f" of feature {feature!r}" if feature else ""
        raise SchemaError(f"unsupported dtype {dtype!r}{where}: expected one of {DTYPES}")
    return _DTYPE_ALIASES[name]


class FixedLenFeature(NamedTuple):
    """A feature with exactly prod(shape) values per example; `default_value` fills absences."""

    shape: Any
    dtype: Any
    default_value: Any = None


class VarLenFeature(NamedTuple):
    """A feature with any number of values per example (decoded as a ragged column)."""

    dtype: Any


class FixedLenSequenceFeature(NamedTuple):
    """A SequenceExample feature list whose every step has prod(shape) values."""

    shape: Any
    dtype: Any
    allow_missing: bool = False
    default_value: Any = None


FeatureSpec = FixedLenFeature | VarLenFeature | FixedLenSequenceFeature


def normalize_spec(name: str, spec: Any) -> FeatureSpec:
    """Validates one spec; returns it with dtype, shape and default value in canonical form.

    Canonical form: dtype a name from DTYPES, shape a tuple of non-negative ints, default value
    None or a flat numpy array of prod(shape) values (a scalar default is broadcast).
    """
    if not isinstance(name, str) or not name:
        raise SchemaError(f"feature name must be a non-empty str, got {name!r}")
    if isinstance(spec, VarLenFeature):
        return VarLenFeature(normalize_dtype(spec.dtype, name))
    if not isinstance(spec, (FixedLenFeature, FixedLenSequenceFeature)):
        raise SchemaError(f"feature {name!r}: unsupported spec {spec!r}; expected "
                          "FixedLenFeature, VarLenFeature or FixedLenSequenceFeature")
    dtype = normalize_dtype(spec.dtype, name)
    shape = _normalize_shape(name, spec.shape)
    default = _normalize_default(name, spec.default_value, shape, dtype)
    if isinstance(spec, FixedLenFeature):
        return FixedLenFeature(shape, dtype, default)
    return FixedLenSequenceFeature(shape, dtype, bool(spec.allow_missing), default)


def normalize_schema(schema: dict) -> dict[str, FeatureSpec]:
    """Normalizes every spec of a {name: spec} dict (sorted by name for determinism)."""
    if not isinstance(schema, dict):
        raise SchemaError(f"a schema is a dict of feature name to spec, got {type(schema)}")
    return {name: normalize_spec(name, schema[name]) for name in sorted(schema)}


def num_elements(shape: tuple) -> int:
    """Number of values per example of a FixedLen feature with `shape`."""
    return int(math.prod(shape))


def _normalize_shape(name: str, shape: Any) -> tuple:
    if shape is None:
        raise SchemaError(f"feature {name!r}: FixedLenFeature needs a shape, e.g. []")
    if isinstance(shape, int):
        shape = [shape]
    dims = tuple(getattr(shape, "as_list", lambda: shape)())
    for dim in dims:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 0:
            raise SchemaError(f"feature {name!r}: shape {shape!r} must hold non-negative ints")
    return tuple(int(d) for d in dims)


def _normalize_default(name: str, default: Any, shape: tuple, dtype: str):
    if default is None:
        return None
    size = num_elements(shape)
    if dtype == "string":
        flat = np.array(default, dtype=object).reshape(-1)
        flat = np.array([v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in flat],
                        dtype=object)
    else:
        try:
            flat = np.asarray(default, dtype=NUMPY_DTYPES[dtype]).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"feature {name!r}: default_value {default!r} is not "
                              f"{dtype}") from exc
    if flat.size == 1 and size != 1:
        flat = np.repeat(flat, size)
    if flat.size != size:
        raise SchemaError(f"feature {name!r}: default_value has {flat.size} values, shape "
                          f"{list(shape)} needs {size}")
    return flat


# --- JSON form -------------------------------------------------------------------------------
# {"version": 1, "features": {name: {"kind": "fixed_len" | "var_len" | "fixed_len_sequence",
#  "dtype": ..., "shape": [...], "default_value": [...] | null, "allow_missing": bool}}}
# Floats that JSON cannot hold are written as the strings "nan", "inf", "-inf"; string
# defaults as base64 so any bytes survive.

def schema_to_json(schema: dict) -> str:
    """Serializes a schema to deterministic JSON text."""
    features = {}
    for name, spec in normalize_schema(schema).items():
        entry = {"dtype": spec.dtype}
        if isinstance(spec, VarLenFeature):
            entry["kind"] = "var_len"
        else:
            entry["kind"] = ("fixed_len" if isinstance(spec, FixedLenFeature)
                             else "fixed_len_sequence")
            entry["shape"] = list(spec.shape)
            entry["default_value"] = _default_to_json(spec.default_value, spec.dtype)
            if isinstance(spec, FixedLenSequenceFeature):
                entry["allow_missing"] = spec.allow_missing
        features[name] = entry
    return json.dumps({"version": SCHEMA_JSON_VERSION, "features": features}, indent=2,
                      sort_keys=True) + "\n"


def schema_from_json(text: str) -> dict[str, FeatureSpec]:
    """Parses schema_to_json output; rejects unknown versions and kinds with SchemaError."""
    try:
        doc = json.loads(text)
        version, features = doc["version"], doc["features"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"not a tft_lite schema JSON document: {exc}") from exc
    if version != SCHEMA_JSON_VERSION:
        raise SchemaError(f"schema JSON version {version} is not supported "
                          f"(this tft_lite reads version {SCHEMA_JSON_VERSION})")
    schema = {}
    for name, entry in features.items():
        kind, dtype = entry.get("kind"), entry.get("dtype")
        if kind == "var_len":
            schema[name] = VarLenFeature(dtype)
            continue
        default = _default_from_json(entry.get("default_value"), dtype)
        if kind == "fixed_len":
            schema[name] = FixedLenFeature(entry["shape"], dtype, default)
        elif kind == "fixed_len_sequence":
            schema[name] = FixedLenSequenceFeature(entry["shape"], dtype,
                                                   entry.get("allow_missing", False), default)
        else:
            raise SchemaError(f"feature {name!r}: unknown kind {kind!r} in schema JSON")
    return normalize_schema(schema)


def _default_to_json(default, dtype):
    if default is None:
        return None
    if dtype == "string":
        return [base64.b64encode(v).decode("ascii") for v in default]
    if dtype == "int64":
        return [int(v) for v in default]
    return [float(v) if math.isfinite(v) else str(float(v)) for v in default]


def _default_from_json(values, dtype):
    if values is None:
        return None
    if dtype == "string":
        return [base64.b64decode(v) for v in values]
    if dtype == "float32":
        return [float(v) for v in values]  # float("nan"), float("-inf") parse the strings
    return values
