"""ir/serialize.py: deterministic bytes, round trip, version policy, corrupt files."""
import numpy as np
import pytest

import tft_lite as tft
from tft_lite.errors import GraphError
from tft_lite.ir import serialize
from tft_lite.ir.serialize import graph_from_bytes, graph_to_bytes
from tft_lite.trace import trace

SPEC = {"x": tft.FixedLenFeature([2], "float32", default_value=[0.5, 1.5]),
        "i": tft.FixedLenFeature([], "int64", default_value=-3),
        "s": tft.FixedLenFeature([], "string", default_value=b"\xff\x00"),
        "v": tft.VarLenFeature("string")}


def preprocessing_fn(inputs):
    x, s = inputs["x"], inputs["s"]
    return {"z": tft.scale_to_z_score(x - tft.mean(x)),
            "b": tft.bucketize(tft.reduce_sum(x, axis=1), 3),
            "id": tft.compute_and_apply_vocabulary(tft.strings.split(s), num_oov_buckets=2,
                                                   reserved_tokens=["<r>"]),
            "h": tft.hash_strings(inputs["v"], 9, key=[1, -1]),
            "c": tft.cast(inputs["i"], "float32") * 0.25,
            "q": tft.where(tft.is_nan(x), 1.0, x)}


def test_same_function_traces_to_the_same_bytes():
    first = graph_to_bytes(trace(preprocessing_fn, SPEC))
    assert graph_to_bytes(trace(preprocessing_fn, SPEC)) == first


def test_round_trip_of_a_traced_graph_with_analyzers():
    graph = trace(preprocessing_fn, SPEC)
    data = graph_to_bytes(graph)
    back = graph_from_bytes(data, allow_analyzers=True)
    assert graph_to_bytes(back) == data
    assert back.outputs == graph.outputs
    assert [n.op for n in back.nodes] == [n.op for n in graph.nodes]
    assert back.input_spec["s"].default_value.tolist() == [b"\xff\x00"]
    assert back.input_spec["x"].default_value.tolist() == [0.5, 1.5]


def test_round_trip_of_an_analyzed_graph_transforms_the_same():
    data = {"x": np.array([[1, 2], [3, 4], [5, np.nan]], np.float32), "i": np.array([1, 2, 3]),
            "s": ["a b", "b", "c a"], "v": [["p"], [], ["q", "p"]]}
    graph = tft.analyze(preprocessing_fn, data, SPEC)
    back = tft.TransformGraph(graph_from_bytes(graph_to_bytes(graph.graph)), graph.assets)
    want, got = graph.transform(data), back.transform(data)
    for name in want:
        if hasattr(want[name], "to_pylist"):
            assert got[name].to_pylist() == want[name].to_pylist()
        else:
            np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("array", [
    np.array(1.5, np.float32), np.array([[1, -2]], np.int64), np.array([True, False]),
    np.array([np.nan, -np.inf, 1e300]), np.array([7, -7], np.int32),
    np.array([b"", b"\x00a", b"\xff"], dtype=object), np.zeros((0, 3), np.float32)],
    ids=["f32", "i64", "bool", "f64", "i32", "bytes", "empty"])
def test_tensor_round_trip(array):
    proto = serialize.TensorProto()
    serialize.tensor_to_proto(array, proto)
    back = serialize.tensor_from_proto(proto)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def _rewrap(data: bytes, **changes) -> bytes:
    wrapper = serialize.GraphFileProto()
    wrapper.ParseFromString(data)
    for field, value in changes.items():
        if field in ("major", "minor"):
            setattr(wrapper.version, field, value)
        else:
            setattr(wrapper, field, value)
    return wrapper.SerializeToString(deterministic=True)


@pytest.fixture(scope="module")
def good_bytes():
    return graph_to_bytes(trace(preprocessing_fn, SPEC))


def test_newer_major_version_is_rejected_before_parsing(good_bytes):
    data = _rewrap(good_bytes, major=serialize.FORMAT_MAJOR + 1, graph=b"\xffgarbage")
    with pytest.raises(GraphError, match=r"version 2\.0 is newer than the 1\.x"):
        graph_from_bytes(data, allow_analyzers=True)


def test_newer_minor_version_is_read(good_bytes):
    data = _rewrap(good_bytes, minor=serialize.FORMAT_MINOR + 5)
    graph_from_bytes(data, allow_analyzers=True)


def test_every_truncation_is_detected(good_bytes):
    for size in sorted({0, 1, 5, 20, len(good_bytes) // 2, len(good_bytes) - 33,
                        len(good_bytes) - 1} | set(range(0, len(good_bytes), 97))):
        with pytest.raises(GraphError):
            graph_from_bytes(good_bytes[:size], allow_analyzers=True)


def test_flipped_byte_anywhere_is_detected(good_bytes):
    for offset in range(0, len(good_bytes), max(1, len(good_bytes) // 60)):
        tampered = bytearray(good_bytes)
        tampered[offset] ^= 0x20
        with pytest.raises(GraphError):
            graph_from_bytes(bytes(tampered), allow_analyzers=True)


def test_edited_graph_with_recomputed_field_but_old_checksum(good_bytes):
    wrapper = serialize.GraphFileProto()
    wrapper.ParseFromString(good_bytes)
    edited = wrapper.graph.replace(b"subtract", b"multiply", 1)
    assert edited != wrapper.graph
    with pytest.raises(GraphError, match="sha256"):
        graph_from_bytes(_rewrap(good_bytes, graph=edited), allow_analyzers=True)


def test_not_a_graph_file():
    with pytest.raises(GraphError, match="not a tft_lite graph file"):
        graph_from_bytes(b"hello world, this is not a protobuf message")
    with pytest.raises(GraphError, match="magic"):
        graph_from_bytes(_rewrap(graph_to_bytes(trace(preprocessing_fn, SPEC)),
                                 magic="other"), allow_analyzers=True)


def test_serving_load_rejects_traced_graph(good_bytes):
    with pytest.raises(GraphError, match="analyzer left"):
        graph_from_bytes(good_bytes)
