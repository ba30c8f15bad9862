"""Pure-Python twin of the C codec (_codec.c), built on the protobuf runtime.

Used when the C extension could not be compiled, and by the tests as an independent oracle:
protobuf's own parser and deterministic serializer define what correct bytes and values are.
Both twins take and return the same flat column layout, described in example.py.
"""
from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tft_lite.io import protos

KIND_BYTES, KIND_FLOAT, KIND_INT64 = 0, 1, 2
_KIND_FIELDS = {"bytes_list": KIND_BYTES, "float_list": KIND_FLOAT, "int64_list": KIND_INT64}
_LIST_FIELDS = {v: k for k, v in _KIND_FIELDS.items()}
_VALUE_DTYPES = {KIND_FLOAT: np.float32, KIND_INT64: np.int64}


class DecodeError(ValueError):
    """Same args as the C codec's DecodeError: (message, row, column index or -1, offset)."""


def decode(records, columns):
    """Decodes serialized Examples (a sequence of bytes) into per-column flat buffers.

    columns: list of (name, kind, default values, default string offsets, default count,
    values per row), as the C codec takes them; a default fills rows lacking the feature.
    """
    n = len(records)
    builders = [_ColumnBuilder(column, n) for column in columns]
    index = {column[0].decode("utf-8", "surrogateescape"): i for i, column in
             enumerate(columns)}
    example = protos.Example()
    for row, record in enumerate(records):
        try:
            example.ParseFromString(record)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"malformed Example: {exc}", row, -1, -1) from None
        for key, feature in example.features.feature.items():
            ci = index.get(key)
            if ci is None:
                continue
            kind = feature.WhichOneof("kind")
            if kind is None:
                continue
            if _KIND_FIELDS[kind] != builders[ci].kind:
                raise DecodeError("feature has the wrong data type", row, ci, -1)
            builders[ci].add(row, getattr(feature, kind).value)
        for builder in builders:
            builder.end_row(row)
    return [builder.finish() for builder in builders]


class _ColumnBuilder:
    def __init__(self, column, n):
        _, self.kind, default, default_offsets, _, _ = column
        self.default = None
        if default is not None:
            if self.kind == KIND_BYTES:
                bounds = np.frombuffer(default_offsets, np.int64)
                self.default = [default[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            else:
                self.default = np.frombuffer(default, _VALUE_DTYPES[self.kind]).tolist()
        self.values = []
        self.splits = np.zeros(n + 1, np.int64)
        self.present = np.zeros(n, np.uint8)

    def add(self, row, values):
        self.values.extend(values)
        self.present[row] = 1

    def end_row(self, row):
        if self.default is not None and not self.present[row]:
            self.values.extend(self.default)
        self.splits[row + 1] = len(self.values)

    def finish(self):
        if self.kind == KIND_BYTES:
            lengths = np.fromiter(map(len, self.values), np.int64, len(self.values))
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            data = b"".join(self.values)
            return data, self.splits.tobytes(), self.present.tobytes(), offsets.tobytes()
        data = np.array(self.values, dtype=_VALUE_DTYPES[self.kind]).tobytes()
        return data, self.splits.tobytes(), self.present.tobytes(), None


def encode(n: int, columns) -> tuple[bytes, bytes]:
    """Encodes flat columns as serialized Examples: returns (data, int64 offsets[n + 1]).

    columns: list of (name, kind, values, value_offsets | None, splits | None,
    present | None), as the C codec takes them.
    """
    views = [_column_view(*column, n) for column in columns]
    records = []
    for row in range(n):
        example = protos.Example()
        example.features.SetInParent()
        feature_map = example.features.feature
        for name, kind, values, offsets, splits, present in views:
            if not present[row]:
                continue
            lo, hi = splits[row], splits[row + 1]
            target = getattr(feature_map[name], _LIST_FIELDS[kind])
            target.SetInParent()
            if kind == KIND_BYTES:
                target.value.extend(values[offsets[i]:offsets[i + 1]] for i in range(lo, hi))
            else:
                target.value.extend(values[lo:hi].tolist())
        records.append(example.SerializeToString(deterministic=True))
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(r) for r in records], out=offsets[1:])
    return b"".join(records), offsets.tobytes()


def _column_view(name, kind, values, value_offsets, splits, present, n):
    key = name.decode("utf-8", "surrogateescape")
    # splits None: row r holds value r; present None: every row has the feature.
    splits = np.arange(n + 1, dtype=np.int64) if splits is None else np.frombuffer(
        splits, np.int64)
    present = np.ones(n, np.uint8) if present is None else np.frombuffer(present, np.uint8)
    if kind == KIND_BYTES:
        return key, kind, bytes(values), np.frombuffer(value_offsets, np.int64), splits, present
    return key, kind, np.frombuffer(values, _VALUE_DTYPES[kind]), None, splits, present
