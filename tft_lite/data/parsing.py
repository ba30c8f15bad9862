"""Parsing tf.train.Examples in a pipeline, and reading what the transform pass wrote.

`parse_examples(spec)` is tf.io.parse_example as a map function: give it a batch of
serialized records and it returns {feature: column} from one call of
tft_lite.io.decode_examples (the C codec). After `TFRecordDataset(...).batch(n)` the batch
reaches it as the pyarrow array the records were read into, so no record is copied or turned
into a Python object on the way.

`from_transform_output(output_dir, file_pattern)` is the reading half of a transform run: the
feature spec comes from output_dir/transformed_metadata (TFT's layout), the records from the
files the pipeline wrote.
"""
from __future__ import annotations

import os

import pyarrow as pa

from tft_lite.data.dataset import Dataset
from tft_lite.data.sources import ListFilesDataset, TFRecordDataset
from tft_lite.errors import SchemaError
from tft_lite.io.example import decode_examples
from tft_lite.io.schema_pbtxt import schema_from_pbtxt
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature, normalize_schema, schema_from_json

TRANSFORMED_METADATA_DIR = "transformed_metadata"  # TFT's TFTransformOutput layout
SCHEMA_JSON, SCHEMA_PBTXT = "schema.json", "schema.pbtxt"


class parse_examples:  # noqa: N801 (a function-like callable, named like tf.io.parse_example)
    """A map function parsing serialized tf.train.Examples, like tf.io.parse_example.

    Use after batch: `ds.batch(1024).map(parse_examples(spec))`; or as a dataset
    transformation (tf.data.experimental.parse_example_dataset):
    `ds.batch(1024).apply(parse_examples(spec))`.

    Args:
      features: dict of name -> FixedLenFeature / VarLenFeature.

    Calling it on a batch of records (pyarrow Binary array, numpy object array, list of
    bytes) returns dict of name -> FixedLen: numpy array [n, *shape] (float32, int64, or
    object of bytes); VarLen: pyarrow ListArray. On one record (bytes) it returns that
    record's values without the batch dimension (tf.io.parse_single_example): FixedLen a
    numpy array of `shape`, VarLen a 1-D numpy array.

    Raises:
      ExampleDecodeError: a malformed record, a wrong dtype or value count, or a missing
        FixedLen feature without default_value (names the row within the batch and the
        feature).
    """

    accepts_arrow = True  # Dataset.map hands it the batch's pyarrow array as is

    def __init__(self, features: dict):
        self.features = normalize_schema(features)
        for name, spec in self.features.items():
            if not isinstance(spec, (FixedLenFeature, VarLenFeature)):
                raise SchemaError(f"feature {name!r}: parse_examples takes FixedLenFeature or "
                                  f"VarLenFeature, got {type(spec).__name__}")

    def __call__(self, serialized):
        if isinstance(serialized, Dataset):
            return serialized.map(self)
        if isinstance(serialized, (bytes, bytearray, memoryview)):
            return self._single(bytes(serialized))
        return decode_examples(serialized, self.features)

    def _single(self, record: bytes) -> dict:
        columns = decode_examples([record], self.features)
        out = {}
        for name, column in columns.items():
            if isinstance(column, pa.Array):
                out[name] = column[0].values.to_numpy(zero_copy_only=False)
            else:
                out[name] = column[0]
        return out

    def __repr__(self):
        return f"parse_examples({sorted(self.features)})"


def transformed_feature_spec(output_dir) -> dict:
    """The feature spec of the transformed data, as TFTransformOutput gives it.

    Reads output_dir/transformed_metadata/schema.json (tft_lite's JSON schema, which keeps
    default values), or else schema.pbtxt (TF Metadata text format, as TFT writes it).

    Raises:
      FileNotFoundError: neither file exists (names both paths).
      SchemaError: the file cannot be parsed.
    """
    metadata = os.path.join(os.fspath(output_dir), TRANSFORMED_METADATA_DIR)
    json_path, pbtxt_path = (os.path.join(metadata, SCHEMA_JSON),
                             os.path.join(metadata, SCHEMA_PBTXT))
    if os.path.isfile(json_path):
        reader, path = schema_from_json, json_path
    elif os.path.isfile(pbtxt_path):
        reader, path = schema_from_pbtxt, pbtxt_path
    else:
        raise FileNotFoundError(f"no transformed schema: neither {json_path} nor {pbtxt_path} "
                                "exists; is output_dir the transform pass's output directory?")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return reader(text)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from exc


def from_transform_output(output_dir, file_pattern, batch_size=1024, shuffle=False,
                          seed=None, shuffle_buffer_size=10_000, num_epochs=1,
                          drop_remainder=False, compression_type="auto", cycle_length=8):
    """Batches of parsed transformed examples, ready for training.

    Like tf.data.experimental.make_batched_features_dataset with the spec from
    TFTransformOutput(output_dir).transformed_feature_spec():

        shuffle=False:  TFRecordDataset(files) → repeat → batch → parse_examples
        shuffle=True:   list_files(shuffled) → interleave(TFRecordDataset, cycle_length)
                        → shuffle(shuffle_buffer_size) → repeat → batch → parse_examples

    Args:
      output_dir: the transform pass's output directory (holds transformed_metadata/).
      file_pattern: glob of the transformed TFRecord files, relative to output_dir unless
        absolute.
      batch_size, drop_remainder: as Dataset.batch.
      shuffle, seed, shuffle_buffer_size: shuffle files and records (reproducibly with a
        seed).
      num_epochs: passes over the data (None: forever).
      compression_type: "auto" detects GZIP/ZLIB per file.
      cycle_length: files read at once when shuffling.

    Returns:
      a Dataset of dict batches (see parse_examples), with the spec as `.feature_spec`.

    Raises:
      FileNotFoundError: no schema, or file_pattern matches nothing (names it).
    """
    spec = transformed_feature_spec(output_dir)
    pattern = os.fspath(file_pattern)
    if not os.path.isabs(pattern):
        pattern = os.path.join(os.fspath(output_dir), pattern)
    if shuffle:
        files = ListFilesDataset(pattern, shuffle=True, seed=seed)
        dataset = files.interleave(_ReadFile(compression_type), cycle_length=cycle_length)
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed)
    else:
        dataset = TFRecordDataset(pattern, compression_type)
    dataset = dataset.repeat(num_epochs).batch(batch_size, drop_remainder)
    dataset = dataset.map(parse_examples(spec))
    dataset.feature_spec = spec
    return dataset


class _ReadFile:
    """interleave's map_func: a file name → TFRecordDataset (a class so that it pickles)."""

    def __init__(self, compression_type):
        self.compression_type = compression_type

    def __call__(self, filename):
        return TFRecordDataset(filename, self.compression_type)
