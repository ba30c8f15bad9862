"""serving/interpreter.py: the batch plan (in-place float steps, lookup-only string columns)
gives what the plain `evaluate` loop gives, and never overwrites a value still in use."""
import numpy as np
import pyarrow as pa
import pytest

import tft_lite as tft
from tft_lite.serving.interpreter import evaluate
from tft_lite.serving.values import output_array

SPEC = {"n": tft.FixedLenFeature([], "int64", default_value=3),
        "x": tft.FixedLenFeature([], "float32", default_value=0.5),
        "k": tft.FixedLenFeature([], "float32", default_value=0.0),
        "s": tft.FixedLenFeature([], "string", default_value=b""),
        "u": tft.FixedLenFeature([], "string", default_value=b""),
        "m": tft.FixedLenFeature([], "int64", default_value=-2)}
DATA = {"n": np.array([0, 3, 10, 1, 250, 3, 7, 1], np.int64),
        "x": np.array([1.0, -2.5, 3.25, 0.0, 7.5, -1.0, 2.0, 2.0], np.float32),
        "k": np.zeros(8, np.float32),  # std 0: scale_to_z_score's where picks the other side
        "s": [b"a", b"b", b"a", b"", b"long token over 8 bytes", b"a", b"", b"b"],
        "u": [b"p", b"q", b"p", b"r", b"q", b"p", b"p", b"s"],
        "m": np.array([1, 2**40, 3, 2**53 + 1, -7, 0, 5, 9], np.int64)}


def preprocessing_fn(inputs):
    n, x, k, s, u = inputs["n"], inputs["x"], inputs["k"], inputs["s"], inputs["u"]
    logged = tft.log1p(tft.cast(n, "float32"))
    shifted = logged - 1.0
    return {
        "z": tft.scale_to_z_score(tft.log1p(tft.cast(n, "float32"))),
        "zk": tft.scale_to_z_score(tft.log1p(k)),
        "logged": logged,                      # an output read by later steps
        "shifted": shifted,
        "twice": shifted * 2.0 + shifted,      # one value read twice
        "xx": tft.sqrt(tft.abs(x)) / 3.0 - x,
        "d": tft.cast(tft.cast(n, "float64") / 2.0, "float32"),  # float64 math
        "i": n + 1,                            # integers: never in place
        "b": tft.bucketize(tft.scale_to_z_score(x), 3),
        "id": tft.compute_and_apply_vocabulary(s, num_oov_buckets=1),
        "id0": tft.compute_and_apply_vocabulary(s, default_value=-3),
        "id2": tft.compute_and_apply_vocabulary(s, num_oov_buckets=2),
        "uid": tft.compute_and_apply_vocabulary(u, num_oov_buckets=1),
        "uraw": u,                             # u is also an output: filled, not lookup-only
        "zm": tft.scale_to_z_score(tft.cast(inputs["m"], "float32")),  # m: cast on reading
    }


@pytest.fixture(scope="module")
def graph():
    return tft.analyze(preprocessing_fn, DATA, SPEC)


def _serving_batch():
    return pa.RecordBatch.from_pydict({
        "n": pa.array([5, None, 0, 250, None, 1, 2]),
        "x": pa.array([0.5, -1.0, None, 9.0, 2.0, None, 1.0], pa.float32()),
        "k": pa.array([0.0, 1.0, None, 0.0, 2.0, 0.0, 0.0], pa.float32()),
        "s": pa.array([b"a", None, b"zz", b"", None, b"long token over 8 bytes", b"b"]),
        "u": pa.array(["p", None, "q", "new", None, "s", "p"]),
        "m": pa.array([2**62 + 12345, None, -(2**55) - 3, 16777217, None, 0, 1]),
    })


def _reference(graph, batch):
    """The plain interpreter (no plan, nothing in place) on the general column path."""
    from tft_lite.serving.columns import feature_columns
    columns = feature_columns({name: batch.column(name) for name in batch.schema.names},
                              graph.graph.input_spec)
    env = dict(graph._program.constants)
    env.update({graph.graph.inputs[name].id: value for name, value in columns.items()})
    env = evaluate(graph.graph, env)
    return {name: output_array(env[value_id]) for name, value_id in graph.graph.outputs.items()}


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_plan_matches_the_plain_interpreter(graph, offset):
    batch = _serving_batch().slice(offset)
    want = _reference(graph, batch)
    for _ in range(2):  # the cached plan, twice
        got = graph.transform(batch)
        assert list(got) == list(want)
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_outputs_do_not_share_memory(graph):
    got = graph.transform(_serving_batch())
    arrays = [v for v in got.values() if isinstance(v, np.ndarray) and v.dtype != object]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)


def test_in_place_steps_and_lookup_only_features(graph):
    wanted = [graph.graph.outputs[name] for name in graph.output_names]
    plan = graph._program._plan(wanted)
    in_place = [graph.graph.nodes[step[0]].op for step in plan[2]
                if step[1].__qualname__.startswith("_in_place")]
    assert "log1p" in in_place and "divide" in in_place
    assert graph._lookup_only(plan, wanted) == frozenset()  # id2 hashes OOV tokens of s
    assert graph._fused_casts(plan, wanted)[1] == frozenset({"m"})  # n has other readers
    ids = [graph.graph.outputs["id"], graph.graph.outputs["id0"]]
    assert graph._lookup_only(graph._program._plan(ids), ids) == frozenset({"s"})


def test_lookup_only_column_with_bytes_in_null_slots(graph):
    offsets = pa.py_buffer(np.array([0, 1, 3, 3], np.int32).tobytes())
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little").tobytes())
    s = pa.Array.from_buffers(pa.binary(), 3, [validity, offsets, pa.py_buffer(b"azz")])
    batch = pa.RecordBatch.from_arrays([s], ["s"])
    for names in (["id", "id0"], ["id2"], ["id", "id0", "id2"]):
        got = graph.transform(batch, names)
        want = graph.transform({"s": [b"a", b"", b""]}, names)
        for name in names:
            np.testing.assert_array_equal(got[name], want[name])


def test_fused_cast_on_other_batch_types(graph):
    batch = _serving_batch()
    want = graph.transform(batch, ["zm"])["zm"]
    as_dict = {name: batch.column(name) for name in batch.schema.names}
    np.testing.assert_array_equal(graph.transform(as_dict, ["zm"])["zm"], want)
    table = pa.Table.from_batches([batch])
    np.testing.assert_array_equal(graph.transform(table, ["zm"])["zm"], want)
