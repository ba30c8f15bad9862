"""tf.train.SequenceExample codec: context features plus per-step feature lists.

The context is decoded columnar by the Example codec: SequenceExample.context (field 1) has
exactly the wire layout of Example.features (field 1), and the codec skips field 2 as unknown.
Feature lists go through the protobuf runtime row by row: sequence data is rarely the hot
path, and its ragged-of-ragged shape gains little from the flat codec.

decode_sequence_examples mirrors tf.io.parse_sequence_example: it returns (context,
feature_lists, lengths). A FixedLenSequenceFeature becomes a dense numpy array
[n, max_steps, *shape] padded with its default_value (zeros / b"" when None) plus its per-row
step counts in `lengths` (which, as in TensorFlow, has entries for these features only); a
VarLenFeature becomes a pyarrow ListArray of ListArrays
(rows → steps → values).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tft_lite.errors import ExampleDecodeError, ExampleEncodeError, SchemaError
from tft_lite.io import protos
from tft_lite.io.example import _record_buffers, decode_examples
from tft_lite.ir.schema import (FixedLenSequenceFeature, VarLenFeature, normalize_schema,
                                num_elements)

_LIST_FIELD = {"string": "bytes_list", "float32": "float_list", "int64": "int64_list"}
_NUMPY = {"string": object, "float32": np.float32, "int64": np.int64}
_ARROW = {"string": pa.binary(), "float32": pa.float32(), "int64": pa.int64()}


def decode_sequence_examples(records, context_features=None, sequence_features=None,
                             path=None):
    """Parses serialized SequenceExamples.

    Args:
      records: pyarrow Binary array or list of bytes.
      context_features: dict name -> FixedLenFeature / VarLenFeature.
      sequence_features: dict name -> FixedLenSequenceFeature / VarLenFeature.

    Returns:
      (context dict, feature_lists dict, lengths dict) as described in the module docstring.

    Raises:
      ExampleDecodeError naming row and feature.
    """
    context = decode_examples(records, context_features or {}, path=path)
    sequence_spec = normalize_schema(sequence_features or {})
    for name, spec in sequence_spec.items():
        if not isinstance(spec, (FixedLenSequenceFeature, VarLenFeature)):
            raise SchemaError(f"sequence feature {name!r} needs FixedLenSequenceFeature or "
                              f"VarLenFeature, got {type(spec).__name__}")
    steps = {name: [] for name in sequence_spec}
    data, offsets, n = _record_buffers(records)
    view = memoryview(data)
    message = protos.SequenceExample()
    for row in range(n):
        try:
            message.ParseFromString(view[offsets[row]:offsets[row + 1]].tobytes())
        except ProtobufDecodeError as exc:
            raise ExampleDecodeError(f"malformed SequenceExample: {exc}", row=row,
                                     path=path) from None
        lists = message.feature_lists.feature_list
        for name, spec in sequence_spec.items():
            steps[name].append(_row_steps(name, spec, lists, row, path))
    feature_lists, lengths = {}, {}
    for name, spec in sequence_spec.items():
        if isinstance(spec, FixedLenSequenceFeature):
            lengths[name] = np.array([len(s) for s in steps[name]], np.int64)
            feature_lists[name] = _dense_steps(spec, steps[name], lengths[name])
        else:
            feature_lists[name] = _ragged_steps(spec, steps[name])
    return context, feature_lists, lengths


def _row_steps(name, spec, lists, row, path):
    """The value lists of each step of one row, checked against the spec."""
    if name not in lists:
        if isinstance(spec, FixedLenSequenceFeature) and not spec.allow_missing:
            raise ExampleDecodeError("required feature list is missing (pass "
                                     "allow_missing=True to accept)", row=row, feature=name,
                                     path=path)
        return []
    out = []
    for step, feature in enumerate(lists[name].feature):
        kind = feature.WhichOneof("kind")
        if kind is None:
            values = []
        elif kind != _LIST_FIELD[spec.dtype]:
            raise ExampleDecodeError(f"step {step} has {kind}, the spec says {spec.dtype}",
                                     row=row, feature=name, path=path)
        else:
            values = list(getattr(feature, kind).value)
        if isinstance(spec, FixedLenSequenceFeature) and \
                len(values) != num_elements(spec.shape):
            raise ExampleDecodeError(f"step {step} has {len(values)} values, shape "
                                     f"{list(spec.shape)} needs {num_elements(spec.shape)}",
                                     row=row, feature=name, path=path)
        out.append(values)
    return out


def _dense_steps(spec, rows, lengths):
    size = num_elements(spec.shape)
    max_steps = int(lengths.max()) if len(lengths) else 0
    out = np.empty((len(rows), max_steps, size), dtype=_NUMPY[spec.dtype])
    out[:] = spec.default_value if spec.default_value is not None else (
        b"" if spec.dtype == "string" else 0)
    for row, steps in enumerate(rows):
        if steps:
            out[row, :len(steps)] = np.array(steps, dtype=_NUMPY[spec.dtype]).reshape(-1, size)
    return out.reshape((len(rows), max_steps) + tuple(spec.shape))


def _ragged_steps(spec, rows):
    return pa.array(rows, type=pa.list_(pa.list_(_ARROW[spec.dtype])))


def encode_sequence_examples(context, feature_lists, context_spec=None, sequence_spec=None):
    """Serializes one SequenceExample per row (deterministic protobuf bytes).

    Args:
      context: dict name -> column of per-row values (as encode_examples takes), or None.
      feature_lists: dict name -> list over rows of a list of steps, each step a list of
        values (None for a row leaves the feature list out).
      context_spec / sequence_spec: the specs (sequence: FixedLenSequenceFeature or VarLen).

    Returns:
      pyarrow BinaryArray.
    """
    context_spec = normalize_schema(context_spec or {})
    sequence_spec = normalize_schema(sequence_spec or {})
    context_records = None
    if context_spec:
        from tft_lite.io.example import encode_examples
        context_records = encode_examples(context, context_spec).to_pylist()
    n = len(context_records) if context_records is not None else len(
        next(iter(feature_lists.values()))) if feature_lists else 0
    out = []
    for row in range(n):
        message = protos.SequenceExample()
        if context_records is not None:
            message.context.ParseFromString(_features_payload(context_records[row]))
        for name, spec in sequence_spec.items():
            _add_feature_list(message, name, spec, feature_lists[name][row], row)
        out.append(message.SerializeToString(deterministic=True))
    return pa.array(out, type=pa.binary())


def _features_payload(example_bytes: bytes) -> bytes:
    """The Features message inside a serialized Example (its field 1)."""
    example = protos.Example()
    example.ParseFromString(example_bytes)
    return example.features.SerializeToString(deterministic=True)


def _add_feature_list(message, name, spec, steps, row):
    if steps is None:
        return
    target = message.feature_lists.feature_list[name]
    field = _LIST_FIELD[spec.dtype]
    for values in steps:
        values = np.asarray(values).reshape(-1).tolist() if not isinstance(values, list) \
            else values
        if isinstance(spec, FixedLenSequenceFeature) and len(values) != num_elements(
                spec.shape):
            raise ExampleEncodeError(f"a step has {len(values)} values, shape "
                                     f"{list(spec.shape)} needs {num_elements(spec.shape)}",
                                     row=row, feature=name)
        if spec.dtype == "string":
            values = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
        lst = getattr(target.feature.add(), field)
        lst.SetInParent()
        lst.value.extend(values)
