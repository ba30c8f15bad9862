"""Saved artifacts: layout, save -> load -> transform round trip, tampering detected."""
import json
import os

import numpy as np
import pyarrow as pa
import pytest

import tft_lite as tft
from tft_lite import serving
from tft_lite.errors import GraphError, SchemaError
from tft_lite.ir.schema import schema_from_json

SPEC = {"x": tft.FixedLenFeature([], "float32"), "s": tft.FixedLenFeature([], "string"),
        "v": tft.VarLenFeature("string")}
DATA = {"x": np.array([1.0, 4.0, 2.0, 9.0], np.float32), "s": ["a", "b", "a", "c"],
        "v": [["p", "q"], [], ["q"], ["r", "q", "q"]]}


def preprocessing_fn(inputs):
    x = inputs["x"]
    return {"z": tft.scale_to_z_score(x), "b": tft.bucketize(x, 2),
            "id": tft.compute_and_apply_vocabulary(inputs["s"], num_oov_buckets=1),
            "tags": tft.compute_and_apply_vocabulary(inputs["v"], top_k=2),
            "n": tft.row_lengths(inputs["v"])}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    graph = tft.analyze(preprocessing_fn, DATA, SPEC)
    path = tmp_path_factory.mktemp("artifact")
    graph.save(path)
    return graph, path


def test_layout(saved):
    _, path = saved
    files = sorted(os.path.relpath(os.path.join(d, f), path)
                   for d, _, names in os.walk(path) for f in names)
    assert files == [
        "transform_fn/assets/vocab_compute_and_apply_vocabulary_1_vocabulary",
        "transform_fn/assets/vocab_compute_and_apply_vocabulary_vocabulary",
        "transform_fn/transform_graph.pb",
        "transformed_metadata/schema.json", "transformed_metadata/schema.pbtxt"]
    spec = schema_from_json((path / "transformed_metadata" / "schema.json").read_text())
    assert spec["tags"] == tft.VarLenFeature("int64")
    assert spec["z"].shape == () and spec["z"].dtype == "float32"
    assert json.loads((path / "transformed_metadata" / "schema.json").read_text())["version"] == 1
    pbtxt = (path / "transformed_metadata" / "schema.pbtxt").read_text()
    assert 'name: "id"\n  type: INT\n  int_domain {\n    min: 0\n    max: 3\n' in pbtxt


def test_round_trip_equals_in_memory(saved):
    graph, path = saved
    loaded = serving.load(path)
    batch = {"x": np.array([0.0, 3.0, 10.0], np.float32), "s": ["c", "zz", "a"],
             "v": [["q", "new"], [], ["p"]]}
    want, got = graph.transform(batch), loaded.transform(batch)
    assert sorted(want) == sorted(got)
    for name in want:
        if isinstance(want[name], pa.Array):
            assert got[name].to_pylist() == want[name].to_pylist()
        else:
            np.testing.assert_array_equal(got[name], want[name])
    assert loaded.transform_instance({"x": 3.0, "s": "a", "v": ["q"]})["tags"].tolist() == [0]
    assert loaded.transformed_int_domains() == graph.transformed_int_domains()


def test_save_is_deterministic(saved, tmp_path):
    graph, path = saved
    tft.analyze(preprocessing_fn, DATA, SPEC).save(tmp_path)
    for rel in ("transform_fn/transform_graph.pb", "transformed_metadata/schema.pbtxt"):
        assert (tmp_path / rel).read_bytes() == (path / rel).read_bytes()


def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_tampered_asset_is_detected(saved, tmp_path):
    path = _copy(saved[1], tmp_path / "a")
    asset = path / "transform_fn" / "assets" / "vocab_compute_and_apply_vocabulary_vocabulary"
    asset.write_bytes(asset.read_bytes().replace(b"a\n", b"c\n"))
    with pytest.raises(GraphError, match="was modified"):
        serving.load(path)


def test_missing_asset_is_detected(saved, tmp_path):
    path = _copy(saved[1], tmp_path / "a")
    os.remove(path / "transform_fn" / "assets" / "vocab_compute_and_apply_vocabulary_vocabulary")
    with pytest.raises(GraphError, match="is missing"):
        serving.load(path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_graph_file_is_detected(saved, tmp_path, damage):
    path = _copy(saved[1], tmp_path / "a")
    graph_file = path / "transform_fn" / "transform_graph.pb"
    data = graph_file.read_bytes()
    if damage == "truncate":
        graph_file.write_bytes(data[: len(data) - 40])
    elif damage == "flip":
        graph_file.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    else:
        os.remove(graph_file)
    with pytest.raises(GraphError):
        serving.load(path)


def test_transform_needs_only_the_features_it_reads(saved):
    graph, _ = saved
    out = graph.transform({"x": np.array([1.0], np.float32)}, output_names=["z", "b"])
    assert sorted(out) == ["b", "z"]
    with pytest.raises(SchemaError, match="feature 's' is missing"):
        graph.transform({"x": np.array([1.0], np.float32)})
