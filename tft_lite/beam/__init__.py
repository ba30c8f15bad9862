"""Apache Beam implementation: TFT's analyze and transform passes over Arrow RecordBatches.

The only package of tft_lite that imports apache_beam. Names and call shapes follow
tensorflow_transform.beam (`import tft_lite.beam as tft_beam`):

    with tft_beam.Context(temp_dir=tmp):
        (transformed, transformed_metadata), transform_fn = (
            (raw_data, raw_metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn))
"""
from tft_lite.beam import coders  # noqa: F401  (registers the RecordBatch coder)
from tft_lite.beam.analyze import AnalyzeDataset, TransformFnArtifact
from tft_lite.beam.batches import SourceSplit, ToRecordBatches
from tft_lite.beam.context import Context
from tft_lite.beam.metadata import DatasetMetadata
from tft_lite.beam.sinks import WriteTFRecords
from tft_lite.beam.sources import CsvError, DeadLetter, ReadCsv, ReadParquet, ReadTFRecord
from tft_lite.beam.transform import AnalyzeAndTransformDataset, TransformDataset
from tft_lite.beam.transform_fn_io import (ReadTransformFn, WriteTransformFn,
                                           WriteTransformOutput)

__all__ = [
    "AnalyzeAndTransformDataset", "AnalyzeDataset", "Context", "CsvError", "DatasetMetadata",
    "DeadLetter", "ReadCsv", "ReadParquet", "ReadTFRecord", "ReadTransformFn", "SourceSplit",
    "ToRecordBatches", "TransformDataset", "TransformFnArtifact", "WriteTFRecords",
    "WriteTransformFn", "WriteTransformOutput",
]
