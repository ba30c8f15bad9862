"""The PCollection element types: pyarrow RecordBatches, per-row dicts at the boundary, and
lazy source splits.

TFT pipelines feed per-row dicts; tft_lite moves RecordBatches. `ToRecordBatches` passes
batches through, batches dicts once, at the boundary, and reads `SourceSplit`s (the elements
of a lazy source: see tft_lite/beam/sources.py).
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


class SourceSplit:
    """A part of a source (a file, a byte range) that its consumer reads itself.

    `reader.batches(part)` yields the part's RecordBatches; both are small and picklable, so
    a split costs nothing to ship to a worker, and reading it again costs one parse.
    """

    __slots__ = ("reader", "part")

    def __init__(self, reader, part):
        self.reader, self.part = reader, part

    def read(self, columns=None):
        """The split's RecordBatches; `columns` (names) may restrict them to what a consumer
        needs, which readers use to skip converting the rest."""
        return self.reader.batches(self.part, columns)

    def __reduce__(self):
        return SourceSplit, (self.reader, self.part)

    def __repr__(self):
        return f"SourceSplit({self.part!r})"


def is_lazy(pcoll) -> bool:
    """Whether a PCollection holds SourceSplits (known from its element type when built)."""
    element_type = getattr(pcoll, "element_type", None)
    return isinstance(element_type, type) and issubclass(element_type, SourceSplit)


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
        elif isinstance(element, SourceSplit):
            yield from element.read()
        elif isinstance(element, pa.Table):
            yield from element.combine_chunks().to_batches()
        elif isinstance(element, dict):
            self._rows.append(element)
            if len(self._rows) >= self._batch_size:
                yield rows_to_record_batch(self._rows, self._spec)
                self._rows = []
        else:
            raise TypeError(f"expected RecordBatches (or per-row dicts or SourceSplits), "
                            f"got {type(element).__name__}")

    def finish_bundle(self):
        if self._rows:
            batch = rows_to_record_batch(self._rows, self._spec)
            self._rows = []
            yield in_global_window(batch)


class ToRecordBatches(beam.PTransform):
    """RecordBatches pass through; per-row dicts are batched once (TFT compatibility);
    SourceSplits are read."""

    def __init__(self, feature_spec, desired_batch_size=None):
        super().__init__()
        self._spec = feature_spec
        self._batch_size = desired_batch_size or 10_000

    def expand(self, pcoll):
        return pcoll | "ToRecordBatch" >> beam.ParDo(
            _ToBatch(self._spec, self._batch_size)).with_output_types(pa.RecordBatch)


def record_batches_of(element, columns=None):
    """The RecordBatches of a consumer's element: a RecordBatch, or a SourceSplit read here
    (only `columns`, when given)."""
    if isinstance(element, SourceSplit):
        return element.read(columns)
    return (element,)


class ConsumerBatches:
    """`ConsumerBatches(raw_data, spec)(label)` -> the PCollection one consumer reads, called
    once per consumer; its elements go through `record_batches_of`.

    Eager data is batched once and shared. Lazy data (SourceSplits) is handed to each consumer
    (reshuffled): the consumer's DoFn reads the split itself. (A separate read step would be fused
    into the producer's stage by the runner, and its batches kept for the consumer, which
    has to wait for an analysis result.)
    """

    def __init__(self, raw_data, spec: dict, batch_size=None):
        self.pipeline = raw_data.pipeline
        self._raw, self._spec, self._batch_size = raw_data, spec, batch_size
        self._shared = None

    def __call__(self, label: str):
        if is_lazy(self._raw):
            # Its own reshuffle per consumer: runners split a grouped input evenly across
            # workers, while a PCollection read by several stages may reach a stage as one
            # chunk that only one worker gets (FnApiRunner's ListBuffer.partition).
            return self._raw | f"Spread{label}" >> beam.Reshuffle()
        if self._shared is None:
            self._shared = self._raw | "Batch" >> ToRecordBatches(self._spec, self._batch_size)
        return self._shared
