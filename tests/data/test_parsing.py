"""parse_examples in pipelines, and reading a transform pass's output back."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

import tft_lite.data as tfd
from tft_lite import io
from tft_lite.errors import ExampleDecodeError, SchemaError
from tft_lite.io import schema_pbtxt
from tft_lite.ir.schema import schema_to_json

SPEC = {"x": tfd.FixedLenFeature([], "float32"),
        "ids": tfd.FixedLenFeature([2], "int64", default_value=[-1, -1]),
        "tags": tfd.VarLenFeature("string")}
COLUMNS = {"x": np.array([0.5, 1.5, 2.5], np.float32),
           "ids": [[1, 2], None, [5, 6]],
           "tags": [["a"], [], ["b", "c"]]}


@pytest.fixture()
def shards(tmp_path):
    records = io.encode_examples(COLUMNS, SPEC)
    paths = []
    for i, (start, stop) in enumerate([(0, 2), (2, 3)]):
        path = str(tmp_path / f"data-{i}.tfrecord.gz")
        io.write_tfrecords(path, records.slice(start, stop - start), "GZIP")
        paths.append(path)
    return paths


def _check_all_rows(batch):
    assert batch["x"].tolist() == [0.5, 1.5, 2.5]
    assert batch["ids"].tolist() == [[1, 2], [-1, -1], [5, 6]]
    assert batch["tags"].to_pylist() == [[b"a"], [], [b"b", b"c"]]


def test_batch_then_map_parse_examples(shards):
    (batch,) = list(tfd.TFRecordDataset(shards, "GZIP").batch(8).map(tfd.parse_examples(SPEC)))
    _check_all_rows(batch)


def test_parse_example_dataset_style_apply_and_parallel_map(shards):
    ds = tfd.TFRecordDataset(shards, "auto").batch(2).apply(tfd.parse_examples(SPEC))
    first, second = list(ds)
    assert first["x"].tolist() == [0.5, 1.5] and second["ids"].tolist() == [[5, 6]]
    ds = tfd.TFRecordDataset(shards, "GZIP").batch(1).map(tfd.parse_examples(SPEC),
                                                          num_parallel_calls=2)
    assert [b["x"].item() for b in ds] == [0.5, 1.5, 2.5]


def test_parse_examples_on_every_batch_type(shards):
    records = list(tfd.TFRecordDataset(shards, "GZIP"))
    parse = tfd.parse_examples(SPEC)
    for batch in (records, np.array(records, dtype=object), pa.array(records, pa.binary())):
        _check_all_rows(parse(batch))


def test_parse_examples_after_shuffle_and_interleave(shards):
    ds = (tfd.Dataset.list_files(shards, seed=2).interleave(
        lambda f: tfd.TFRecordDataset(f, "GZIP"), cycle_length=2)
        .shuffle(3, seed=2).batch(3).map(tfd.parse_examples(SPEC)))
    (batch,) = list(ds)
    order = np.argsort(batch["x"])
    assert batch["x"][order].tolist() == [0.5, 1.5, 2.5]
    assert batch["ids"][order].tolist() == [[1, 2], [-1, -1], [5, 6]]


def test_parse_single_record_has_no_batch_dimension(shards):
    record = next(iter(tfd.TFRecordDataset(shards, "GZIP")))
    parsed = tfd.parse_examples(SPEC)(record)
    assert parsed["x"] == np.float32(0.5) and parsed["ids"].tolist() == [1, 2]
    assert parsed["tags"].tolist() == [b"a"]


def test_missing_required_feature_names_row_and_feature(tmp_path):
    records = io.encode_examples({"x": [1.0, None, 3.0]},
                                 {"x": tfd.FixedLenFeature([], "float32", default_value=0.0)})
    path = str(tmp_path / "f.tfrecord")
    io.write_tfrecords(path, records)
    ds = tfd.TFRecordDataset(path).batch(3).map(
        tfd.parse_examples({"x": tfd.FixedLenFeature([], "float32")}))
    with pytest.raises(ExampleDecodeError, match="required feature is missing") as info:
        list(ds)
    assert (info.value.row, info.value.feature) == (1, "x")
    assert list(ds.ignore_errors()) == []  # the whole batch is the element that failed


def test_parse_examples_rejects_sequence_features():
    with pytest.raises(SchemaError, match="FixedLenFeature or VarLenFeature"):
        tfd.parse_examples({"s": io.FixedLenSequenceFeature([], "int64")})


# --- transform output ------------------------------------------------------------------------

def _write_output(tmp_path, shards, schema_file):
    metadata = tmp_path / "out" / "transformed_metadata"
    metadata.mkdir(parents=True)
    if schema_file == "schema.json":
        (metadata / "schema.json").write_text(schema_to_json(SPEC))
    else:
        (metadata / "schema.pbtxt").write_text(schema_pbtxt.schema_to_pbtxt(SPEC))
    for path in shards:
        os.rename(path, tmp_path / "out" / ("transformed-" + os.path.basename(path)))
    return tmp_path / "out"


def test_transformed_feature_spec_prefers_json(tmp_path, shards):
    out = _write_output(tmp_path, shards, "schema.json")
    spec = tfd.transformed_feature_spec(out)
    assert spec["ids"].default_value.tolist() == [-1, -1] and spec["tags"].dtype == "string"


def test_transformed_feature_spec_falls_back_to_pbtxt(tmp_path, shards):
    out = _write_output(tmp_path, shards, "schema.pbtxt")
    spec = tfd.transformed_feature_spec(out)
    assert spec["ids"] == tfd.FixedLenFeature((2,), "int64", None)  # pbtxt has no defaults
    assert spec["tags"] == tfd.VarLenFeature("string")


def test_transformed_feature_spec_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="schema.json nor .*schema.pbtxt"):
        tfd.transformed_feature_spec(tmp_path)


def test_from_transform_output_reads_batches(tmp_path, shards):
    out = _write_output(tmp_path, shards, "schema.json")
    ds = tfd.from_transform_output(out, "transformed-*", batch_size=8)
    assert set(ds.feature_spec) == {"x", "ids", "tags"}
    (batch,) = list(ds)
    _check_all_rows(batch)
    shuffled = tfd.from_transform_output(out, str(out / "transformed-*"), batch_size=2,
                                         shuffle=True, seed=4, num_epochs=2)
    xs = sorted(x for b in shuffled for x in b["x"].tolist())
    assert xs == [0.5, 0.5, 1.5, 1.5, 2.5, 2.5]


def test_from_transform_output_pattern_matching_nothing(tmp_path, shards):
    out = _write_output(tmp_path, shards, "schema.json")
    with pytest.raises(FileNotFoundError, match="eval-"):
        tfd.from_transform_output(out, "eval-*")
