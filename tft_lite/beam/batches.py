"""The PCollection element type: pyarrow RecordBatches, and the boundary for per-row dicts.

TFT pipelines feed per-row dicts; tft_lite moves RecordBatches. `ToRecordBatches` passes
batches through and batches dicts once, at the boundary, with Beam's BatchElements.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
import numpy as np
import pyarrow as pa

from tft_lite.errors import SchemaError
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature

_ARROW_TYPES = {"float32": pa.float32(), "int64": pa.int64(), "string": pa.binary()}


def in_global_window(value) -> WindowedValue:
    """`value` as finish_bundle must yield it: explicitly in the global window."""
    return WindowedValue(value, MIN_TIMESTAMP, [GlobalWindow()])


def arrow_schema(feature_spec: dict) -> pa.Schema:
    """The Arrow schema of per-row dicts of this feature spec."""
    fields = []
    for name, spec in feature_spec.items():
        value = _ARROW_TYPES[spec.dtype]
        if isinstance(spec, VarLenFeature) or (isinstance(spec, FixedLenFeature)
                                               and spec.shape):
            value = pa.list_(value)
        fields.append(pa.field(name, value))
    return pa.schema(fields)


def rows_to_record_batch(rows: list, feature_spec: dict) -> pa.RecordBatch:
    """Per-row dicts → one RecordBatch (strings as bytes, multi-dim FixedLen flattened)."""
    columns = {}
    for name, spec in feature_spec.items():
        values = []
        for index, row in enumerate(rows):
            if name not in row:
                raise SchemaError(f"row {index} of a dict batch has no feature {name!r}")
            values.append(_normalize(row[name], spec))
        columns[name] = values
    schema = arrow_schema(feature_spec)
    try:
        return pa.RecordBatch.from_pydict(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"per-row dicts disagree with the feature spec: {exc}") from exc


def _normalize(value, spec):
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist() if (isinstance(spec, VarLenFeature) or
                                               spec.shape) else value.reshape(-1)[0].item()
    if spec.dtype == "string":
        if isinstance(value, list):
            return [v.encode("utf-8") if isinstance(v, str) else v for v in value]
        return value.encode("utf-8") if isinstance(value, str) else value
    return value


class _ToBatch(beam.DoFn):
    """Passes RecordBatches through; buffers per-row dicts into batches within a bundle."""

    def __init__(self, feature_spec, batch_size):
        self._spec = feature_spec
        self._batch_size = batch_size
        self._rows = []

    def start_bundle(self):
        self._rows = []

    def process(self, element):
        if isinstance(element, pa.RecordBatch):
            yield element
        elif isinstance(element, pa.Table):
            yield from element.combine_chunks().to_batches()
        elif isinstance(element, dict):
            self._rows.append(element)
            if len(self._rows) >= self._batch_size:
                yield rows_to_record_batch(self._rows, self._spec)
                self._rows = []
        else:
            raise TypeError(f"expected RecordBatch elements (or per-row dicts), got "
                            f"{type(element).__name__}")

    def finish_bundle(self):
        if self._rows:
            batch = rows_to_record_batch(self._rows, self._spec)
            self._rows = []
            yield in_global_window(batch)


class ToRecordBatches(beam.PTransform):
    """RecordBatches pass through; per-row dicts are batched once (TFT compatibility)."""

    def __init__(self, feature_spec, desired_batch_size=None):
        super().__init__()
        self._spec = feature_spec
        self._batch_size = desired_batch_size or 10_000

    def expand(self, pcoll):
        return pcoll | "ToRecordBatch" >> beam.ParDo(
            _ToBatch(self._spec, self._batch_size)).with_output_types(pa.RecordBatch)
