"""TransformDataset and AnalyzeAndTransformDataset: apply the transform graph to batches.

Each worker deserializes the transform_fn artifact once (the graph is data, no user code)
and applies it to every RecordBatch with the numpy interpreter; transformed elements are
RecordBatches again, ready for WriteTFRecords.
"""
from __future__ import annotations

import hashlib

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tft_lite.beam.analyze import analyze_batches
from tft_lite.beam.batches import ConsumerBatches, record_batches_of
from tft_lite.beam.context import Context
from tft_lite.beam.metadata import TupleInputMixin, feature_spec_of
from tft_lite.ir.serialize import graph_from_bytes
from tft_lite.serving.graph import TransformGraph


def transform_graph_of(artifact) -> TransformGraph:
    """A TransformGraph from a TransformFnArtifact (verifies it; runs no code)."""
    return TransformGraph(graph_from_bytes(artifact.graph_bytes), artifact.assets)


def outputs_to_record_batch(outputs: dict) -> pa.RecordBatch:
    """transform() outputs -> RecordBatch: [n] columns as is, [n, *shape] as fixed-size lists
    of the flattened row, ragged outputs as list arrays, strings as binary."""
    columns, names = [], []
    for name in sorted(outputs):
        columns.append(_column(outputs[name]))
        names.append(name)
    return pa.RecordBatch.from_arrays(columns, names=names)


def _column(value):
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value
    value = np.asarray(value)
    if value.dtype == object:
        flat = pa.array(value.reshape(-1).tolist(), pa.binary())
    else:
        flat = pa.array(value.reshape(-1))
    if value.ndim <= 1:
        return flat
    per_row = int(np.prod(value.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(flat, per_row)


ARTIFACT_KEY = b"tft_lite.transform_fn.sha256"


def artifact_digest(artifact) -> str:
    """sha256 over the graph bytes and the assets: identifies one transform_fn."""
    digest = hashlib.sha256(artifact.graph_bytes)
    for name in sorted(artifact.assets):
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(
            artifact.assets[name]).digest())
    return digest.hexdigest()


class _TransformBatches(beam.DoFn):
    """Applies the graph; stamps each output batch with the transform_fn's digest so the
    commit can prove every shard was made by the transform_fn it writes (a runner that
    evaluated the analysis twice with different results is caught, not written)."""

    def __init__(self):
        self._graph = None
        self._artifact_id = None
        self._metadata = None

    def process(self, element, artifact):
        if self._graph is None or self._artifact_id != id(artifact):
            self._graph = transform_graph_of(artifact)
            self._artifact_id = id(artifact)
            self._metadata = {ARTIFACT_KEY: artifact_digest(artifact).encode("ascii")}
        for batch in record_batches_of(element):
            out = outputs_to_record_batch(self._graph.transform(batch))
            yield out.replace_schema_metadata(self._metadata)


class TransformDataset(TupleInputMixin, beam.PTransform):
    """((raw_data, raw_metadata), transform_fn) -> (transformed_data, transformed_metadata)."""

    def __init__(self, exclude_outputs=None, output_record_batches=True):
        super().__init__()
        self._exclude = exclude_outputs
        del output_record_batches  # always RecordBatches

    def expand(self, inputs):
        (raw_data, raw_metadata), transform_fn = inputs
        spec = feature_spec_of(raw_metadata)
        batches = ConsumerBatches(raw_data, spec, Context.get().desired_batch_size)
        return transform_batches(batches("Transform"), transform_fn, self._exclude)


def transform_batches(batches, transform_fn, exclude=None):
    """RecordBatches + transform_fn -> (transformed RecordBatches, transformed metadata)."""
    artifact, transformed_metadata = transform_fn
    transformed = batches | "Transform" >> beam.ParDo(
        _TransformBatches(), artifact=beam.pvalue.AsSingleton(artifact)
    ).with_output_types(pa.RecordBatch)
    if exclude:
        keep = [n for n in feature_spec_of(transformed_metadata) if n not in exclude]
        transformed = transformed | "Exclude" >> beam.Map(lambda b: b.select(keep))
        transformed_metadata = {n: feature_spec_of(transformed_metadata)[n] for n in keep}
    return transformed, transformed_metadata


class AnalyzeAndTransformDataset(TupleInputMixin, beam.PTransform):
    """(raw_data, raw_metadata) -> ((transformed_data, transformed_metadata), transform_fn)."""

    def __init__(self, preprocessing_fn, output_record_batches=True):
        super().__init__()
        self._preprocessing_fn = preprocessing_fn

    def expand(self, dataset):
        raw_data, raw_metadata = dataset
        spec = feature_spec_of(raw_metadata)
        batches = ConsumerBatches(raw_data, spec, Context.get().desired_batch_size)
        transform_fn = analyze_batches(batches, spec, self._preprocessing_fn)
        return transform_batches(batches("Transform"), transform_fn), transform_fn
