"""One hierarchy of errors for tft_lite.

Every error says where the problem is (file, record index, byte offset, feature, row) and what
was expected versus what was found. Lower layers raise these; nothing is swallowed.
"""
from __future__ import annotations


class TftLiteError(Exception):
    """Base class of every error tft_lite raises on bad input."""


class SchemaError(TftLiteError, ValueError):
    """A feature spec or schema is invalid, or data disagrees with it (names the feature)."""


class RecordError(TftLiteError, ValueError):
    """A TFRecord file cannot be read or written.

    Attributes:
      path: the file, or None for in-memory data.
      record_index: 0-based index of the record in the file, if known.
      offset: byte offset in the (uncompressed) record stream where the problem starts.
    """

    def __init__(self, message: str, path=None, record_index=None, offset=None):
        self.path = path
        self.record_index = record_index
        self.offset = offset
        where = []
        if path is not None:
            where.append(f"file {path!s}")
        if record_index is not None:
            where.append(f"record {record_index}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class CorruptRecordError(RecordError):
    """A TFRecord record is corrupt: bad CRC, truncated, or wrong compression."""


class ExampleDecodeError(TftLiteError, ValueError):
    """A serialized tf.train.Example cannot be decoded against a feature spec.

    Attributes: row (0-based index in the batch), feature (name or None), offset (byte
    offset inside the record, if the wire format itself is broken), path (file, if known).
    """

    def __init__(self, message: str, row=None, feature=None, offset=None, path=None):
        self.row = row
        self.feature = feature
        self.offset = offset
        self.path = path
        where = []
        if path is not None:
            where.append(f"file {path!s}")
        if row is not None:
            where.append(f"row {row}")
        if feature is not None:
            where.append(f"feature {feature!r}")
        if offset is not None:
            where.append(f"byte offset {offset} in the record")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class ExampleEncodeError(TftLiteError, ValueError):
    """Columns cannot be encoded as tf.train.Example against a feature spec (row, feature)."""

    def __init__(self, message: str, row=None, feature=None):
        self.row = row
        self.feature = feature
        where = []
        if row is not None:
            where.append(f"row {row}")
        if feature is not None:
            where.append(f"feature {feature!r}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class GraphError(TftLiteError, ValueError):
    """A transform graph is invalid, truncated, tampered with or of an unsupported version."""


class TraceError(GraphError):
    """A mistake in a preprocessing_fn found while tracing it (names the user's line)."""
