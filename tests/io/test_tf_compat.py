"""tft_lite against files and parse results made by real TensorFlow 2.21 (tests/golden/tfrecord).

Every value is compared exactly (floats bit for bit), on both codec backends, and the files
tft_lite writes are compared byte for byte with TensorFlow's.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tft_lite import io
from tft_lite.errors import ExampleDecodeError
from tft_lite.io import protos
from tft_lite.io.example import codec_backend

from tests.io import golden

BACKENDS = ["python"] + (["c"] if codec_backend() == "c" else [])
EXAMPLES = golden.load("examples.json")
SERIALIZED = [golden.b64(r["serialized_b64"]) for r in EXAMPLES]


def _sparse_rows(result: dict, n: int) -> list[list]:
    """Per-row value lists of a TF SparseTensor result (2-D)."""
    values = golden.values_of(result, result["dtype"])
    rows = [[] for _ in range(n)]
    for (row, _), value in zip(result["indices"], values):
        rows[row].append(value)
    return rows


def _as_rows(list_array: pa.ListArray, dtype: str) -> list[list]:
    rows = list_array.to_pylist()
    if dtype == "float32":
        return [list(np.asarray(r, np.float32).view(np.uint32)) for r in rows]
    return rows


@pytest.mark.parametrize("name,compression", [("examples.tfrecord", None),
                                              ("examples.tfrecord.gz", "GZIP"),
                                              ("examples.tfrecord.zlib", "ZLIB")])
def test_reads_tensorflow_files(name, compression):
    assert list(io.read_tfrecords(golden.path(name), compression)) == SERIALIZED
    assert list(io.read_tfrecords(golden.path(name), "auto")) == SERIALIZED


@pytest.mark.parametrize("name,compression", [("examples.tfrecord", None),
                                              ("examples.tfrecord.gz", "GZIP"),
                                              ("examples.tfrecord.zlib", "ZLIB"),
                                              ("sequence_examples.tfrecord", None),
                                              ("sequence_examples.tfrecord.gz", "GZIP")])
def test_writes_byte_identical_files(tmp_path, name, compression):
    records = list(io.read_tfrecords(golden.path(name), compression))
    out = tmp_path / name
    with io.TFRecordWriter(out, compression) as writer:
        writer.write_batch(pa.array(records, pa.binary()))
    with open(golden.path(name), "rb") as f:
        assert out.read_bytes() == f.read()


@pytest.mark.parametrize("backend", BACKENDS)
def test_decodes_every_value_of_tensorflow_examples(backend):
    kinds = {}
    for record in EXAMPLES:
        for name, feature in record["features"].items():
            kinds[name] = golden.feature_values(feature)[0]
    spec = {name: io.VarLenFeature(dtype) for name, dtype in kinds.items()}
    decoded = io.decode_examples(pa.array(SERIALIZED, pa.binary()), spec, backend=backend)
    for name, dtype in kinds.items():
        got = decoded[name].to_pylist()
        for row, record in enumerate(EXAMPLES):
            feature = record["features"].get(name)
            expected = golden.feature_values(feature)[1] if feature else np.array([], object)
            golden.assert_same(np.asarray(got[row], dtype=expected.dtype if dtype != "string"
                                          else object), expected)


def test_encodes_byte_identical_examples():
    """Each record re-encoded from its values gives TensorFlow's deterministic bytes."""
    for record, serialized in zip(EXAMPLES, SERIALIZED):
        if not record["features"]:
            continue  # no feature at all: no column to say how many rows there are
        columns, spec = {}, {}
        for name, feature in record["features"].items():
            dtype, values = golden.feature_values(feature)
            spec[name] = io.VarLenFeature(dtype)
            arrow_type = {"string": pa.binary(), "float32": pa.float32(),
                          "int64": pa.int64()}[dtype]
            columns[name] = pa.array([values.tolist()], pa.list_(arrow_type))
        for backend in BACKENDS:
            encoded = io.encode_examples(columns, spec, backend=backend)
            assert encoded[0].as_py() == serialized, (record["index"], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_parse_example_matches_tensorflow(backend):
    parsed = golden.load("examples_parsed.json")
    spec = {name: golden.spec_of(entry) for name, entry in parsed["spec"].items()}
    decoded = io.decode_examples(SERIALIZED, spec, backend=backend)
    for name, result in parsed["result"].items():
        if result["type"] == "dense":
            golden.assert_same(decoded[name], golden.dense_of(result))
        else:
            expected = _sparse_rows(result, len(SERIALIZED))
            if result["dtype"] == "float32":
                expected = [list(np.asarray(r, np.float32).view(np.uint32)) for r in expected]
            assert _as_rows(decoded[name], result["dtype"]) == expected, name


EDGE_CASES = [c for c in golden.load("parse_edge_cases.json")["cases"]
              if c["op"] == "tf.io.parse_example"
              and all(s["kind"] != "ragged" for s in c["spec"].values())]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", EDGE_CASES, ids=[c["name"] for c in EDGE_CASES])
def test_edge_cases_match_tensorflow(case, backend):
    records = [golden.b64(r) for r in case["records_b64"]]
    spec = {name: golden.spec_of(entry) for name, entry in case["spec"].items()}
    if case["error"]:
        with pytest.raises(ExampleDecodeError):
            io.decode_examples(records, spec, backend=backend)
        return
    decoded = io.decode_examples(records, spec, backend=backend)
    for name, result in case["result"].items():
        if result["type"] == "dense":
            golden.assert_same(decoded[name], golden.dense_of(result))
        else:
            expected = _sparse_rows(result, len(records))
            if result["dtype"] == "float32":
                expected = [list(np.asarray(r, np.float32).view(np.uint32)) for r in expected]
            assert _as_rows(decoded[name], result["dtype"]) == expected


ERROR_CASES = golden.load("parse_errors.json")["cases"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["name"] for c in ERROR_CASES])
def test_inputs_tensorflow_rejects_are_rejected(case, backend):
    records = [golden.b64(r) for r in case["records_b64"]]
    if case["op"] == "tf.io.parse_sequence_example":
        context = {k: golden.spec_of(v) for k, v in case["context_features"].items()}
        sequence = {k: golden.spec_of(v) for k, v in case["sequence_features"].items()}
        with pytest.raises(ExampleDecodeError):
            io.decode_sequence_examples(records, context, sequence)
        return
    spec = {name: golden.spec_of(entry) for name, entry in case["spec"].items()}
    with pytest.raises(ExampleDecodeError) as info:
        io.decode_examples(records, spec, backend=backend)
    message = case["error"]["message_core"]
    if info.value.feature is not None:  # TF names the feature as "Key: x" or "Feature: x"
        assert f": {info.value.feature}" in message
    assert info.value.row is not None


def test_masked_crc32c_matches_tensorflow():
    entries = golden.load("masked_crc.json")["entries"]
    assert len(entries) >= 10
    for entry in entries:
        data = golden.b64(entry["data_b64"])
        assert io.masked_crc32c(data) == entry["masked_crc32c"], entry["name"]
        length = bytes.fromhex(entry["length_le64_hex"])
        assert io.masked_crc32c(length) == entry["masked_crc32c_of_length"], entry["name"]


@pytest.mark.parametrize("name,records", [("one_record.tfrecord", [b"hello"]),
                                          ("two_records.tfrecord", [b"", b"\x00\x01\x02"])])
def test_small_tensorflow_files(tmp_path, name, records):
    assert list(io.read_tfrecords(golden.path(name))) == records
    io.write_tfrecords(tmp_path / name, records)
    with open(golden.path(name), "rb") as f:
        assert (tmp_path / name).read_bytes() == f.read()


def test_sequence_examples_match_tensorflow():
    doc = golden.load("sequence_examples.json")
    parse = doc["parse_sequence_example"]
    records = list(io.read_tfrecords(golden.path("sequence_examples.tfrecord.gz"), "GZIP"))
    assert records == [golden.b64(r["serialized_b64"]) for r in doc["records"]]
    context_spec = {k: golden.spec_of(v) for k, v in parse["context_features"].items()}
    sequence_spec = {k: golden.spec_of(v) for k, v in parse["sequence_features"].items()
                     if v["kind"] != "ragged"}
    context, lists, lengths = io.decode_sequence_examples(records, context_spec, sequence_spec)
    result = parse["result"]
    for name, expected in result["context"].items():
        if expected["type"] == "dense":
            golden.assert_same(context[name], golden.dense_of(expected))
        else:
            assert _as_rows(context[name], expected["dtype"]) == [
                list(np.asarray(r, np.float32).view(np.uint32)) if expected["dtype"] ==
                "float32" else r for r in _sparse_rows(expected, len(records))]
    for name, expected in result["feature_list"].items():
        if name not in sequence_spec:
            continue
        if expected["type"] == "dense":
            golden.assert_same(lists[name], golden.dense_of(expected))
        else:  # 3-D sparse: [row, step, i]
            values = golden.values_of(expected, expected["dtype"])
            got = lists[name].to_pylist()
            flat = [(r, s, i) for r, steps in enumerate(got) for s, vals in enumerate(steps)
                    for i in range(len(vals))]
            assert [list(x) for x in flat] == expected["indices"]
            assert [got[r][s][i] for r, s, i in flat] == values.tolist()
    assert sorted(lengths) == sorted(result["lengths"])
    for name, expected in result["lengths"].items():
        assert lengths[name].tolist() == golden.values_of(expected, "int64").tolist()


def test_sequence_examples_encode_to_tensorflow_bytes():
    doc = golden.load("sequence_examples.json")
    for record in doc["records"]:
        context_spec, context = {}, {}
        for name, feature in record["context"].items():
            dtype, values = golden.feature_values(feature)
            context_spec[name] = io.VarLenFeature(dtype)
            context[name] = [values.tolist()]
        sequence_spec, lists = {}, {}
        for name, steps in record["feature_lists"].items():
            dtypes = {golden.feature_values(s)[0] for s in steps} or {"float32"}
            sequence_spec[name] = io.VarLenFeature(dtypes.pop())
            lists[name] = [[golden.feature_values(s)[1].tolist() for s in steps]]
        encoded = io.encode_sequence_examples(context, lists, context_spec, sequence_spec)
        assert encoded[0].as_py() == golden.b64(record["serialized_b64"]), record["index"]


SCHEMAS = golden.load("schemas/specs.json")


@pytest.mark.parametrize("name", [n for n, s in SCHEMAS.items() if s["schema_file"]])
def test_schema_pbtxt_matches_tensorflow_transform(name):
    entry = SCHEMAS[name]
    spec = {k: golden.spec_of(v) for k, v in entry["feature_spec"].items()}
    with open(golden.path(f"schemas/{entry['schema_file']}"), encoding="utf-8") as f:
        expected = f.read()
    assert io.schema_to_pbtxt(spec) == expected
    round_trip = {k: golden.spec_of(v) for k, v in entry["schema_as_feature_spec"].items()}
    from tft_lite.ir.schema import normalize_schema
    assert io.schema_from_pbtxt(expected) == normalize_schema(round_trip)


def test_protos_parse_tensorflow_bytes_as_the_same_message():
    for serialized in SERIALIZED:
        message = protos.Example()
        message.ParseFromString(serialized)
        if serialized:
            assert message.SerializeToString(deterministic=True) == serialized
