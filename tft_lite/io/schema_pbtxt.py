"""The schema.pbtxt that TensorFlow Transform writes (TF Metadata's Schema, text format).

TFT's `schema_utils.schema_from_feature_spec` writes, per feature sorted by name: its type
(BYTES / INT / FLOAT); for a FixedLenFeature `presence { min_fraction: 1.0 }` and its shape;
for a VarLenFeature nothing more. Optional integer domains (`int_domain { min max
is_categorical }`) carry what TFT records for vocabulary ids and bucket indices. TF Metadata
has no place for default values, so they are not written (the JSON schema keeps them).
"""
from __future__ import annotations

from google.protobuf import text_format

from tft_lite.errors import SchemaError
from tft_lite.io.protos import MetadataSchema
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature, normalize_schema

_TYPE_OF_DTYPE = {"string": 1, "int64": 2, "float32": 3}  # FeatureType BYTES, INT, FLOAT
_DTYPE_OF_TYPE = {v: k for k, v in _TYPE_OF_DTYPE.items()}


def schema_to_pbtxt(schema: dict, int_domains: dict | None = None) -> str:
    """Text-format TF Metadata Schema for a feature spec, as TFT writes it.

    Args:
      schema: dict of name -> FixedLenFeature / VarLenFeature.
      int_domains: optional dict of name -> (min, max, is_categorical) for int64 features.
    """
    proto = MetadataSchema()
    for name, spec in normalize_schema(schema).items():
        if not isinstance(spec, (FixedLenFeature, VarLenFeature)):
            raise SchemaError(f"feature {name!r}: schema.pbtxt holds FixedLen and VarLen "
                              f"features only, got {type(spec).__name__}")
        feature = proto.feature.add(name=name, type=_TYPE_OF_DTYPE[spec.dtype])
        if int_domains and name in int_domains:
            low, high, categorical = int_domains[name]
            feature.int_domain.min, feature.int_domain.max = int(low), int(high)
            feature.int_domain.is_categorical = bool(categorical)
        if isinstance(spec, FixedLenFeature):
            feature.presence.min_fraction = 1.0
            feature.shape.SetInParent()
            for size in spec.shape:
                feature.shape.dim.add(size=size)
    return text_format.MessageToString(proto)


def schema_from_pbtxt(text: str) -> dict:
    """Feature spec from a schema.pbtxt: features with a shape are FixedLen, others VarLen."""
    proto = MetadataSchema()
    try:
        text_format.Parse(text, proto, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise SchemaError(f"cannot parse schema.pbtxt: {exc}") from exc
    schema = {}
    for feature in proto.feature:
        if feature.type not in _DTYPE_OF_TYPE:
            raise SchemaError(f"feature {feature.name!r}: unsupported type {feature.type}")
        dtype = _DTYPE_OF_TYPE[feature.type]
        if feature.HasField("shape"):
            schema[feature.name] = FixedLenFeature([d.size for d in feature.shape.dim], dtype)
        else:
            schema[feature.name] = VarLenFeature(dtype)
    return normalize_schema(schema)
