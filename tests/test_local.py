"""tft_lite.analyze end to end: TFT golden vectors for every analyzer, mapper and op.

tests/golden/tft_ops/golden.json was made by real TFT 1.21 (recipe in its README) with the
same preprocessing_fns as below, written with tf/tft; here they are ported to tft_lite and run
in-process with several batch splits.
"""
import json
import os

import numpy as np
import pyarrow as pa
import pytest

import tft_lite as tft
from tft_lite.errors import GraphError, SchemaError

GOLDEN = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "tft_ops",
                                     "golden.json")))

SPEC_A = {"x": tft.FixedLenFeature([], "float32"), "i": tft.FixedLenFeature([], "int64"),
          "s": tft.FixedLenFeature([], "string"), "v": tft.VarLenFeature("float32"),
          "w": tft.VarLenFeature("float32"), "c": tft.FixedLenFeature([], "float32"),
          "n": tft.FixedLenFeature([], "string")}


def preprocessing_fn_a(inputs):
    """tests/fixtures/make_tft_ops_golden.py's preprocessing_fn, ported to tft_lite."""
    x, i, s, v, w, c, n = (inputs[k] for k in "xisvwcn")
    z = x * 0.0
    zi = tft.cast(z, "int64")
    return {
        "min_x": z + tft.min(x), "max_x": z + tft.max(x), "sum_x": z + tft.sum(x),
        "size_x": zi + tft.size(x), "mean_x": z + tft.mean(x), "var_x": z + tft.var(x),
        "min_i": zi + tft.min(i), "max_i": zi + tft.max(i), "sum_i": zi + tft.sum(i),
        "mean_i": z + tft.mean(i), "var_i": z + tft.var(i),
        "mean_v": z + tft.mean(v), "var_v": z + tft.var(v), "size_v": zi + tft.size(v),
        "min_v": z + tft.min(v), "max_v": z + tft.max(v), "sum_v": z + tft.sum(v),
        "z_x": tft.scale_to_z_score(x), "z_i": tft.scale_to_z_score(i),
        "z_c": tft.scale_to_z_score(c), "z_nested": tft.scale_to_z_score(x - tft.mean(x)),
        "s01_x": tft.scale_to_0_1(x), "s01_c": tft.scale_to_0_1(c),
        "mm_x": tft.scale_by_min_max(x, -1.0, 1.0), "mm_c": tft.scale_by_min_max(c, 2.0, 5.0),
        "mm_i": tft.scale_by_min_max(i, 0.0, 10.0),
        "voc": tft.compute_and_apply_vocabulary(s),
        "voc_oov": tft.compute_and_apply_vocabulary(s, top_k=1, num_oov_buckets=3),
        "voc_thr": tft.compute_and_apply_vocabulary(s, frequency_threshold=2, default_value=-7),
        "voc_freq": tft.compute_and_apply_vocabulary(s, store_frequency=True),
        "voc_int": tft.compute_and_apply_vocabulary(i, top_k=3, num_oov_buckets=2),
        "voc_res": tft.compute_and_apply_vocabulary(s, reserved_tokens=["<pad>", "B"]),
        "voc_named": tft.compute_and_apply_vocabulary(s, vocab_filename="my vocab!"),
        "bkt_x": tft.bucketize(x, 3), "bkt_nested": tft.bucketize(tft.scale_to_z_score(x), 2),
        "ab_x": tft.apply_buckets(x, [[0.0, 2.5]]), "ab_i": tft.apply_buckets(i, [[1, 4]]),
        "hash": tft.hash_strings(s, 7), "hash_key": tft.hash_strings(s, 7, key=[1, 2]),
        "log1p": tft.math.log1p(tft.abs(x)), "exp": tft.exp(x), "sqrt": tft.sqrt(tft.abs(x)),
        "sigmoid": tft.math.sigmoid(x), "round": tft.round(x), "floor": tft.floor(x),
        "ceil": tft.math.ceil(x), "fdiv": x // 2.0, "fmod": x % 2.0, "idiv": i // 2,
        "imod": i % 3, "itrue": tft.cast(i / 2, "float32"), "pow": tft.pow(x, 2.0),
        "maxi": tft.maximum(x, 1.0), "mini": tft.minimum(x, 1.0),
        "clip": tft.clip_by_value(x, -1.0, 3.0), "where": tft.where(x > 2.0, x, -x),
        "cast_i": tft.cast(x, "int64"), "expm1": tft.math.expm1(x), "sign": tft.sign(x),
        "square": tft.square(x),
        "lower": tft.strings.lower(s), "upper": tft.strings.upper(s),
        "strip": tft.strings.strip(s), "length": tft.cast(tft.strings.length(s), "int64"),
        "substr": tft.strings.substr(s, 0, 2), "substr_1": tft.strings.substr(s, 0, 1),
        "regex": tft.strings.regex_replace(s, "[aB]", "<\\0>"),
        "regex1": tft.strings.regex_replace(s, " ", "_", replace_global=False),
        "to_num": tft.strings.to_number(n),
        "split_n": tft.row_lengths(tft.strings.split(s)),
        "split_sep_n": tft.row_lengths(tft.strings.split(s, sep=" ")),
        "rsum": tft.reduce_sum(v, axis=1), "rmean": tft.reduce_mean(v, axis=1),
        "rmax": tft.reduce_max(v, axis=1), "rmin": tft.reduce_min(v, axis=1),
        "rlen": tft.row_lengths(v),
        "todense": tft.sparse_tensor_to_dense_with_shape(v, [None, 3], default_value=-1.0),
        "fill": tft.squeeze(tft.sparse_tensor_to_dense_with_shape(w, [None, 1], 9.0), 1),
        "z_v": tft.scale_to_z_score(v),
    }


def preprocessing_fn_b(inputs):
    x = inputs["x"]
    z = x * 0.0
    finite = tft.where(tft.is_finite(z), z, 0.0)
    return {"mean": finite + tft.mean(x), "var": finite + tft.var(x),
            "min": finite + tft.min(x), "max": finite + tft.max(x),
            "z": tft.scale_to_z_score(x), "b2": tft.bucketize(x, 2), "s01": tft.scale_to_0_1(x),
            "ab": tft.apply_buckets(x, [[0.0, 3.0]])}


def _inputs_a():
    inputs = dict(GOLDEN["a"]["inputs"])
    inputs["s"] = [t.encode("latin-1") for t in inputs["s"]]
    inputs["n"] = [t.encode("latin-1") for t in inputs["n"]]
    return pa.table({"x": pa.array(inputs["x"], pa.float32()), "i": inputs["i"],
                     "s": pa.array(inputs["s"], pa.binary()), "v": inputs["v"],
                     "w": inputs["w"], "c": inputs["c"], "n": inputs["n"]})


def _assert_column(name, got, want):
    if isinstance(got, pa.Array):
        got = got.to_pylist()
        assert [len(row) for row in got] == [len(row) for row in want], name
        for got_row, want_row in zip(got, want):
            assert got_row == pytest.approx(want_row, rel=1e-6, nan_ok=True), name
        return
    if got.dtype == object:
        assert [g.decode("latin-1") for g in got] == want, name
    elif got.dtype.kind in "iu":
        np.testing.assert_array_equal(got, np.asarray(want), err_msg=name)
    else:
        np.testing.assert_allclose(got, np.asarray(want, np.float64), rtol=1e-6, atol=1e-7,
                                   err_msg=name)


@pytest.fixture(scope="module", params=[6, 4, 1], ids=lambda n: f"batches_of_{n}")
def graph_a(request):
    table = _inputs_a()
    return tft.analyze(preprocessing_fn_a, table.to_batches(max_chunksize=request.param),
                       SPEC_A), table


@pytest.mark.parametrize("name", sorted(GOLDEN["a"]["columns"]))
def test_golden_a_column(graph_a, name):
    graph, table = graph_a
    out = graph.transform(table, output_names=[name])
    _assert_column(name, out[name], GOLDEN["a"]["columns"][name])


def test_golden_a_vocabulary_files(graph_a):
    graph, _ = graph_a
    want = {name: text.encode("latin-1") for name, text in GOLDEN["a"]["assets"].items()}
    assert graph.assets == want


def test_golden_b_nan_and_inf():
    data = {"x": np.array(GOLDEN["b"]["inputs"]["x"], np.float32)}
    graph = tft.analyze(preprocessing_fn_b, data, {"x": tft.FixedLenFeature([], "float32")})
    out = graph.transform(data)
    for name, want in GOLDEN["b"]["columns"].items():
        _assert_column(name, out[name], want)


# --- phases and data forms -----------------------------------------------------------------------

class CountingBatches:
    """An iterable that counts how often it is iterated (one pass per phase expected)."""

    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


def test_one_pass_per_phase_for_nested_analyzers():
    x = np.arange(20, dtype=np.float32)
    data = CountingBatches([{"x": x[:7]}, {"x": x[7:]}])

    def fn(inputs):
        x = inputs["x"]
        return {"a": tft.bucketize(tft.scale_to_z_score(x - tft.mean(x)), 4),  # 3 phases
                "b": tft.scale_to_0_1(x), "c": x * 0 + tft.mean(x)}             # phase 0
    graph = tft.analyze(fn, data, {"x": tft.FixedLenFeature([], "float32")})
    assert data.passes == 3
    np.testing.assert_array_equal(graph.transform({"x": x})["a"], np.repeat(np.arange(4), 5))


@pytest.mark.parametrize("form", ["table", "batches", "iterator", "dict", "pandas", "record"])
def test_data_forms_give_same_graph(form):
    x = np.array([1.0, 5.0, 2.0, 8.0], np.float32)
    s = np.array([b"a", b"b", b"a", b"c"], dtype=object)
    table = pa.table({"x": x, "s": pa.array(list(s), pa.binary())})
    data = {"table": table, "batches": table.to_batches(max_chunksize=3),
            "iterator": iter(table.to_batches(max_chunksize=1)), "dict": {"x": x, "s": s},
            "record": table.to_batches()[0]}.get(form)
    if form == "pandas":
        pd = pytest.importorskip("pandas")
        data = pd.DataFrame({"x": x, "s": ["a", "b", "a", "c"]})

    def fn(inputs):
        return {"z": tft.scale_to_z_score(inputs["x"] - tft.mean(inputs["x"])),
                "id": tft.compute_and_apply_vocabulary(inputs["s"])}
    spec = {"x": tft.FixedLenFeature([], "float32"), "s": tft.FixedLenFeature([], "string")}
    graph = tft.analyze(fn, data, spec)
    reference = tft.analyze(fn, table, spec)
    from tft_lite.ir.serialize import graph_to_bytes
    assert graph_to_bytes(graph.graph) == graph_to_bytes(reference.graph)
    np.testing.assert_array_equal(graph.transform(table)["id"], [0, 2, 0, 1])


def test_transform_instance_matches_batch(graph_a):
    graph, table = graph_a
    row = {k: v[2] for k, v in table.to_pydict().items()}
    one = graph.transform_instance(row)
    batch = graph.transform(table.slice(2, 1))
    for name, value in one.items():
        want = batch[name]
        want = want[0].values.to_numpy(zero_copy_only=False) if isinstance(want, pa.Array) \
            else want[0]
        np.testing.assert_array_equal(np.asarray(value), np.asarray(want), err_msg=name)


def test_varlen_output_is_list_array(graph_a):
    graph, table = graph_a
    out = graph.transform(table, output_names=["z_v"])["z_v"]
    assert isinstance(out, pa.LargeListArray)
    assert graph.transformed_feature_spec()["z_v"] == tft.VarLenFeature("float32")


# --- bad input -----------------------------------------------------------------------------------

def _fn_xs(inputs):
    return {"z": tft.scale_to_z_score(inputs["x"]), "id": tft.compute_and_apply_vocabulary(
        inputs["s"])}


SPEC_XS = {"x": tft.FixedLenFeature([], "float32"), "s": tft.FixedLenFeature([], "string")}

BAD_DATA = [
    ("missing column", {"x": np.ones(3, np.float32)}, SchemaError, "feature 's' is missing"),
    ("string for float", {"x": ["a", "b"], "s": ["a", "b"]}, SchemaError,
     "feature 'x': expected float32 values, got string"),
    ("number for string", {"x": np.ones(2, np.float32), "s": np.array([1, 2])}, SchemaError,
     "feature 's': expected string values"),
    ("null without default", {"x": pa.array([1.0, None, 2.0]), "s": ["a", "b", "c"]},
     SchemaError, "feature 'x' row 1: value is missing"),
    ("ragged rows for FixedLen", {"x": [[1.0], [2.0, 3.0]], "s": ["a", "b"]}, SchemaError,
     "feature 'x' row 1: expected 1 values, got 2"),
    ("unequal columns", {"x": np.ones(3, np.float32), "s": ["a"]}, SchemaError,
     "different numbers of rows"),
]


@pytest.mark.parametrize("name,data,error,fragment", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_data_names_feature_and_row(name, data, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        tft.analyze(_fn_xs, data, SPEC_XS)


def test_bad_row_in_later_batch_counts_rows_across_batches():
    batches = [{"x": np.ones(4, np.float32), "s": ["a"] * 4},
               {"x": pa.array([1.0, 2.0, None]), "s": ["a"] * 3}]
    with pytest.raises(SchemaError, match="feature 'x' row 6"):
        tft.analyze(_fn_xs, batches, SPEC_XS)


def test_int_feature_rejects_fractional_float_naming_row():
    spec = {"i": tft.FixedLenFeature([], "int64")}
    with pytest.raises(SchemaError, match="feature 'i' row 2: int64 feature got the "
                                          "non-integer value 2.5"):
        tft.analyze(lambda inp: {"y": inp["i"] + tft.min(inp["i"])},
                    {"i": np.array([1.0, 2.0, 2.5])}, spec)


def test_empty_data_is_an_error_unless_allowed():
    empty = {"x": np.zeros(0, np.float32), "s": np.zeros(0, object)}
    with pytest.raises(SchemaError, match="no rows"):
        tft.analyze(_fn_xs, empty, SPEC_XS)
    graph = tft.analyze(_fn_xs, empty, SPEC_XS, allow_empty=True)
    out = graph.transform({"x": np.array([3.0], np.float32), "s": ["a"]})
    assert out["z"].tolist() == [3.0]   # TFT: mean 0, var 0 -> x - 0
    assert out["id"].tolist() == [-1]   # TFT's dummy vocabulary entry


def test_missing_feature_with_default_is_filled():
    spec = {"x": tft.FixedLenFeature([], "float32", default_value=-1.0)}
    graph = tft.analyze(lambda inp: {"y": inp["x"] + tft.sum(inp["x"])},
                        {"x": pa.array([1.0, None, 2.0])}, spec)
    np.testing.assert_array_equal(graph.transform({"x": pa.array([None, 5.0])})["y"],
                                  [1.0, 7.0])


def test_runtime_op_error_names_node_feature_and_line():
    spec = {"s": tft.FixedLenFeature([], "string")}

    def fn(inputs):
        return {"n": tft.strings.to_number(inputs["s"]) + tft.mean(tft.strings.to_number(
            inputs["s"]))}
    with pytest.raises(GraphError) as info:
        tft.analyze(fn, {"s": ["1", "2", "x3"]}, spec)
    message = str(info.value)
    assert "to_number" in message and "feature(s) 's'" in message
    assert "row 2: 'x3' is not a valid float32" in message
    assert "test_local.py" in message


def test_varlen_with_two_values_cannot_fill_missing():
    spec = {"v": tft.VarLenFeature("float32")}
    graph = tft.analyze(lambda inp: {"f": tft.fill_missing(inp["v"])}, {"v": [[1.0]]}, spec,
                        allow_empty=True)
    with pytest.raises(GraphError, match="row 1 has 2 values"):
        graph.transform({"v": [[1.0], [2.0, 3.0]]})


def _criteo_like(rows=600, seed=5):
    rng = np.random.default_rng(seed)
    return pa.table({
        "x": pa.array(rng.zipf(1.5, rows).astype(np.float32), mask=rng.random(rows) < 0.2),
        "s": pa.array([b"t%d" % v for v in rng.zipf(1.3, rows)], pa.binary())})


def _fn_regroup(inputs):
    z = tft.scale_to_z_score(tft.log1p(inputs["x"]))
    return {"z": z, "b": tft.bucketize(z, 4), "m": tft.scale_to_0_1(inputs["x"]),
            "id": tft.compute_and_apply_vocabulary(inputs["s"], top_k=20, num_oov_buckets=1)}


_SPEC_REGROUP = {"x": tft.FixedLenFeature([], "float32", default_value=0.0),
                 "s": tft.FixedLenFeature([], "string")}


@pytest.mark.parametrize("batch_rows", [1 << 20, 128, 1])
@pytest.mark.parametrize("cpus", [1, 4])
def test_regrouping_and_threads_do_not_change_the_graph(monkeypatch, batch_rows, cpus):
    from tft_lite import local
    from tft_lite.ir.serialize import graph_to_bytes
    table = _criteo_like()
    reference = tft.analyze(_fn_regroup, iter(table.to_batches(max_chunksize=600)),
                            _SPEC_REGROUP)
    monkeypatch.setattr(local, "_BATCH_ROWS", batch_rows)
    monkeypatch.setattr(local, "_num_cpus", lambda: cpus)
    for data in (table, table.to_batches(max_chunksize=7), iter(table.to_batches(50))):
        graph = tft.analyze(_fn_regroup, data, _SPEC_REGROUP)
        assert graph_to_bytes(graph.graph) == graph_to_bytes(reference.graph)
        assert graph.assets == reference.assets


def test_coalesce_keeps_order_and_schema_breaks(monkeypatch):
    from tft_lite import local
    monkeypatch.setattr(local, "_BATCH_ROWS", 10)
    a = pa.record_batch({"x": pa.array(np.arange(4, dtype=np.float32))})
    b = pa.record_batch({"x": pa.array(np.arange(4, 8, dtype=np.int64))})
    groups = list(local._coalesce(iter([a, a, a, b, {"x": [1.0]}, a])))
    assert [g.num_rows if not isinstance(g, dict) else -1 for g in groups] == [12, 4, -1, 4]
    assert groups[0].column("x").to_pylist() == [0, 1, 2, 3] * 3


def test_bad_row_in_regrouped_batches_counts_rows(monkeypatch):
    from tft_lite import local
    monkeypatch.setattr(local, "_BATCH_ROWS", 6)
    good = pa.record_batch({"x": pa.array([1.0, 2.0, 3.0], pa.float32()),
                            "s": pa.array(["a", "b", "c"])})
    bad = pa.record_batch({"x": pa.array([1.0, None, 3.0], pa.float32()),
                           "s": pa.array(["a", "b", "c"])})
    with pytest.raises(SchemaError, match="feature 'x' row 10"):
        tft.analyze(_fn_xs, [good, good, good, bad], SPEC_XS)
