"""serving/instance.py: the scalar plan gives transform_instance exactly the batch answers.

Each instance is compared with the batch interpreter on the same instance as a batch of one
(what transform_instance ran before the plan existed) and with its row of one large batch:
same values bit for bit (NaN, -0.0), same Python/numpy types. Instances the plan declines
(odd value types, missing features without default) must still give the batch path's answer
or error.
"""
import numpy as np
import pyarrow as pa
import pytest

import tft_lite as tft
from tft_lite.errors import SchemaError
from tft_lite.serving.columns import instance_to_batch
from tft_lite.serving.instance import InstancePlan

SPEC = {"x": tft.FixedLenFeature([], "float32", default_value=0.5),
        "n": tft.FixedLenFeature([], "int64", default_value=-1),
        "s": tft.FixedLenFeature([], "string", default_value=b""),
        "t": tft.FixedLenFeature([], "string")}
DATA = {"x": np.array([1.0, -2.5, 3.25, 0.0, 7.5, -1.0, 2.0, 2.0], np.float32),
        "n": np.array([0, 3, 10, 1, 250, 3, 7, 1], np.int64),
        "s": [b"a", b"b", b"a", b"c", b"long token over 8 bytes", b"a", b"", b"b"],
        "t": ["p", "q", "p", "r", "q", "p", "p", "s"]}


def preprocessing_fn(inputs):
    x, n, s, t = inputs["x"], inputs["n"], inputs["s"], inputs["t"]
    nf = tft.cast(n, "float32")
    return {
        "z": tft.scale_to_z_score(x),
        "zn": tft.scale_to_z_score(tft.log1p(nf)),
        "b": tft.bucketize(x, 4),
        "bn": tft.apply_buckets(n, [[2.5, 7.0]]),
        "id0": tft.compute_and_apply_vocabulary(s, default_value=-7),
        "id1": tft.compute_and_apply_vocabulary(s, num_oov_buckets=1),
        "id3": tft.compute_and_apply_vocabulary(t, top_k=2, num_oov_buckets=3),
        "h": tft.hash_strings(s, 7),
        "hk": tft.hash_strings(t, 5, key=[1, 2]),
        "w": tft.where(x > 0.0, x, -x),
        "c": tft.clip_by_value(x, -1.0, 1.0),
        "m": x * 2.0 + nf / 3.0 - tft.sqrt(tft.abs(x)),
        "fd": tft.floordiv(n, 2),
        "lt": tft.cast(tft.less(x, 1.0), "int64"),
        "eq": tft.cast(tft.equal(n, 3), "float32") + tft.cast(tft.not_equal(x, 2.0), "float32"),
        "pow": tft.pow(tft.abs(x), 0.5) + tft.cast(tft.floormod(n, 3), "float32"),
        "mx": tft.maximum(x, tft.minimum(nf, 4.0)),
        "trunc": tft.cast(x * 3.0, "int64"),
        "sig": tft.sigmoid(x),
        "raw": n,
        "up": tft.strings.upper(s),  # no scalar rule: transform_instance uses the batch path
    }


@pytest.fixture(scope="module")
def graph():
    return tft.analyze(preprocessing_fn, DATA, SPEC)


SCALAR_OUTPUTS = ["z", "zn", "b", "bn", "id0", "id1", "id3", "h", "hk", "w", "c", "m", "fd",
                  "lt", "eq", "pow", "mx", "trunc", "sig", "raw"]
INSTANCES = [
    {"x": 1.0, "n": 3, "s": b"a", "t": "p"},
    {"x": -2.5, "n": 0, "s": "b", "t": "q"},                      # str and bytes tokens
    {"n": 10, "t": "zz"},                                          # defaults; OOV
    {"x": None, "n": None, "s": None, "t": "r"},                   # None takes the default
    {"x": float("nan"), "n": -1, "s": b"never seen", "t": "p"},   # log1p(-1) = -inf
    {"x": float("inf"), "n": 2**62 + 1, "s": b"long token over 8 bytes", "t": "s"},
    {"x": -0.0, "n": -(2**63), "s": "héllo", "t": "\u00e9"},
    {"x": 1e300, "n": 7, "s": b"\xff\x00", "t": "p", "extra": [1, 2]},
    {"x": 2, "n": 3.0, "s": b"a", "t": "p"},                       # declined: int for float32
    {"x": np.float32(1.5), "n": np.int64(4), "s": np.bytes_(b"c"), "t": "q"},  # declined
]


def _same(got, want, name):
    assert type(got) is type(want), (name, type(got), type(want))
    if isinstance(want, bytes):
        assert got == want, name
    else:
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (name, got, want)


# One instance holds a float beyond float32's range: numpy warns while casting it to inf (as
# tf.cast gives); the single-instance path keeps no errstate block on its hot path.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("index", range(len(INSTANCES)))
def test_instance_equals_batch_of_one(graph, index):
    instance = INSTANCES[index]
    batch = graph.transform(instance_to_batch(instance, graph.graph.input_spec))
    plan = InstancePlan.build(graph._program, SCALAR_OUTPUTS)
    assert (plan.run(instance) is None) == (index >= 8)  # the last two are declined
    for names in (SCALAR_OUTPUTS, None):  # the scalar plan, then the batch path ("up")
        got = graph.transform_instance(instance, names)
        assert sorted(got) == sorted(names or batch)
        for name, value in got.items():
            _same(value, batch[name][0], name)


def test_plan_covers_scalar_outputs_and_declines_string_ops(graph):
    assert InstancePlan.build(graph._program, SCALAR_OUTPUTS) is not None
    assert InstancePlan.build(graph._program, ["up"]) is None
    assert InstancePlan.build(graph._program, ["z", "up"]) is None


def test_instance_equals_row_of_large_batch(graph):
    rng = np.random.default_rng(0)
    rows = 2000
    x = rng.normal(0, 3, rows).astype(np.float32)
    x[::97] = np.nan
    table = pa.table({"x": x, "n": rng.zipf(1.5, rows).astype(np.int64),
                      "s": pa.array(rng.choice([b"a", b"b", b"c", b"x", b"long token over 8 "
                                                b"bytes"], rows), pa.binary()),
                      "t": pa.array(rng.choice(["p", "q", "r", "s", "u"], rows))})
    batch = graph.transform(table, output_names=SCALAR_OUTPUTS)
    for row, instance in enumerate(table.to_pylist()[:300]):
        got = graph.transform_instance(instance, output_names=SCALAR_OUTPUTS)
        for name in SCALAR_OUTPUTS:
            _same(got[name], batch[name][row], name)


@pytest.mark.parametrize("instance, fragment", [
    ({"x": 1.0, "n": 1, "s": b"a"}, "'t' is missing"),
    ({"x": 1.0, "n": True, "s": b"a", "t": "p"}, "feature 'n'"),
    ({"x": 1.0, "n": 1.5, "s": b"a", "t": "p"}, "non-integer"),
    ({"x": 1.0, "n": 1, "s": 3, "t": "p"}, "feature 's'"),
    ({"x": "1.0", "n": 1, "s": b"a", "t": "p"}, "feature 'x'"),
])
def test_instance_errors_are_the_batch_errors(graph, instance, fragment):
    with pytest.raises(SchemaError, match=fragment):
        graph.transform_instance(instance)


def test_int_out_of_range_is_an_error(graph):
    with pytest.raises((SchemaError, OverflowError)):
        graph.transform_instance({"x": 1.0, "n": 2**64, "s": b"a", "t": "p"})


def test_output_names_subset_and_unknown(graph):
    got = graph.transform_instance({"x": 1.0, "n": 3, "s": b"a", "t": "p"}, ["id1", "z"])
    assert sorted(got) == ["id1", "z"]
    with pytest.raises(SchemaError, match="unknown output"):
        graph.transform_instance({"x": 1.0}, ["nope"])


def test_concurrent_instances_get_their_own_answers(graph):
    from concurrent.futures import ThreadPoolExecutor
    instances = [{"x": float(i) / 7, "n": i, "s": b"ab"[i % 2:i % 2 + 1], "t": "pq"[i % 2]}
                 for i in range(400)]
    want = [graph.transform_instance(i, SCALAR_OUTPUTS) for i in instances]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda i: graph.transform_instance(i, SCALAR_OUTPUTS),
                                instances))
            for a, b in zip(got, want):
                for name in SCALAR_OUTPUTS:
                    _same(a[name], b[name], name)
