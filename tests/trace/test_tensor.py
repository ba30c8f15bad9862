"""Tracing: operators record the right ops and types; mistakes name the user's line."""
import inspect

import numpy as np
import pytest

import tft_lite as tft
from tft_lite.errors import GraphError, SchemaError
from tft_lite.ir import nodes as ir
from tft_lite.trace import trace

SPEC = {"x": tft.FixedLenFeature([], "float32"), "i": tft.FixedLenFeature([], "int64"),
        "m": tft.FixedLenFeature([3], "float32"), "s": tft.FixedLenFeature([], "string"),
        "v": tft.VarLenFeature("float32")}


def _trace_one(expr):
    """(node, value) of the tensor `expr` makes (outputs themselves must be TF dtypes)."""
    made = {}

    def fn(inputs):
        made["tensor"] = expr(inputs)
        return {"y": inputs["x"]}
    graph = trace(fn, SPEC)
    value = made["tensor"].value
    return graph.nodes[ir.producers(graph)[value.id]], value


OPERATORS = [
    ("add scalar", lambda t: t["x"] + 1, "add", ("float32", ir.DENSE, ())),
    ("radd", lambda t: 1 + t["x"], "add", ("float32", ir.DENSE, ())),
    ("rsub", lambda t: 1.0 - t["x"], "subtract", ("float32", ir.DENSE, ())),
    ("int true division", lambda t: t["i"] / 2, "divide", ("float64", ir.DENSE, ())),
    ("floordiv", lambda t: t["i"] // 2, "floor_divide", ("int64", ir.DENSE, ())),
    ("mod", lambda t: t["x"] % 2.0, "mod", ("float32", ir.DENSE, ())),
    ("pow", lambda t: t["x"] ** 2, "pow", ("float32", ir.DENSE, ())),
    ("neg", lambda t: -t["x"], "negative", ("float32", ir.DENSE, ())),
    ("abs", lambda t: abs(t["i"]), "abs", ("int64", ir.DENSE, ())),
    ("compare", lambda t: t["x"] >= 0, "greater_equal", ("bool", ir.DENSE, ())),
    ("equal", lambda t: t["s"] == "a", "equal", ("bool", ir.DENSE, ())),
    ("and", lambda t: (t["x"] > 0) & (t["x"] < 1), "logical_and", ("bool", ir.DENSE, ())),
    ("invert", lambda t: ~(t["x"] > 0), "logical_not", ("bool", ir.DENSE, ())),
    ("numpy scalar", lambda t: t["m"] + np.float32(1), "add", ("float32", ir.DENSE, (3,))),
    ("column broadcast", lambda t: t["m"] * tft.expand_dims(t["x"], 1), "multiply",
     ("float32", ir.DENSE, (3,))),
    ("const row", lambda t: t["m"] + np.array([1, 2, 3], np.float32), "add",
     ("float32", ir.DENSE, (3,))),
    ("ragged scalar", lambda t: t["v"] * 2.0, "multiply", ("float32", ir.RAGGED, ())),
    ("analyzer broadcast", lambda t: t["m"] - tft.mean(t["m"], reduce_instance_dims=False),
     "subtract", ("float32", ir.DENSE, (3,))),
    ("reduce row", lambda t: tft.reduce_max(t["m"], axis=-1), "reduce_max",
     ("float32", ir.DENSE, ())),
    ("split", lambda t: tft.strings.split(t["s"]), "split", ("string", ir.RAGGED, ())),
    ("to_dense", lambda t: tft.sparse_tensor_to_dense_with_shape(t["v"], [None, 4]),
     "to_dense", ("float32", ir.DENSE, (4,))),
    ("expand", lambda t: tft.expand_dims(t["x"], -1), "expand_dims",
     ("float32", ir.DENSE, (1,))),
]


@pytest.mark.parametrize("name,expr,op,want", OPERATORS, ids=[c[0] for c in OPERATORS])
def test_operator_records_op_and_type(name, expr, op, want):
    node, value = _trace_one(expr)
    assert node.op == op
    assert (value.dtype, value.kind, value.shape) == want


def test_python_scalars_take_the_tensor_dtype():
    graph = trace(lambda t: {"y": t["x"] * 0.5 + 2}, SPEC)
    consts = [n.attrs["value"] for n in graph.nodes if n.op == "constant"]
    assert [c.dtype for c in consts] == [np.float32, np.float32]


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_dtype_mismatch_names_the_user_line():
    def fn(inputs):
        x, i = inputs["x"], inputs["i"]
        bad = x + i  # the mistake
        return {"y": bad}
    with pytest.raises(GraphError) as info:
        trace(fn, SPEC)
    message = str(info.value)
    assert "dtype mismatch float32 vs int64" in message
    assert f"test_tensor.py:{_line_of(fn, 'the mistake')}: bad = x + i" in message


def test_unknown_feature_names_the_user_line():
    def fn(inputs):
        return {"y": inputs["nope"]}
    with pytest.raises(SchemaError) as info:
        trace(fn, SPEC)
    assert "unknown feature 'nope'" in str(info.value)
    assert f"test_tensor.py:{_line_of(fn, 'nope')}" in str(info.value)


TRACE_ERRORS = [
    ("float math on ints", lambda t: tft.log(t["i"]), "needs a float32 or float64 tensor"),
    ("float literal into int", lambda t: t["i"] + 0.5, "cannot convert 0.5 to a int64"),
    ("ragged with dense", lambda t: t["v"] + t["x"], "cannot combine a ragged"),
    ("shape mismatch", lambda t: t["m"] + np.ones(2, np.float32), "dimension 3 vs 2"),
    ("batch misaligned", lambda t: t["m"] + t["x"], "fixed dimension meets the batch"),
    ("string arithmetic", lambda t: t["s"] + "a", "needs a int32 or int64 or float32"),
    ("hash non-string", lambda t: tft.hash_strings(t["x"], 3), "must be a string tensor"),
    ("vocab of floats", lambda t: tft.compute_and_apply_vocabulary(t["x"]),
     "vocabulary needs a string or int32 or int64"),
    ("truth value", lambda t: t["x"] if t["x"] > 0 else t["x"], "has no truth value"),
    ("reduce over batch", lambda t: tft.reduce_sum(t["x"], axis=0), "is an analyzer"),
    ("output without batch", lambda t: tft.mean(t["x"]), "has no batch dimension"),
    ("analyzer of constant", lambda t: t["x"] + tft.mean(tft.mean(t["x"])),
     "needs a tensor with a batch dimension"),
    ("bucketize bad buckets", lambda t: tft.bucketize(t["x"], 1.5), "num_buckets must be an int"),
    ("scale bad range", lambda t: tft.scale_by_min_max(t["x"], 1.0, 0.0),
     "output_min must be less than output_max"),
    ("weights unsupported", lambda t: tft.compute_and_apply_vocabulary(t["s"], weights=t["x"]),
     "does not support ['weights']"),
    ("split of ragged", lambda t: tft.strings.split(tft.strings.split(t["s"])),
     "needs a dense [batch] string tensor"),
    ("apply_buckets rank", lambda t: tft.apply_buckets(t["x"], [1.0, 2.0]), "rank-2"),
]


@pytest.mark.parametrize("name,expr,fragment", TRACE_ERRORS, ids=[c[0] for c in TRACE_ERRORS])
def test_trace_errors(name, expr, fragment):
    with pytest.raises((GraphError, SchemaError)) as info:
        trace(lambda inputs: {"y": expr(inputs)}, SPEC)
    assert fragment in str(info.value)
    assert "test_tensor.py" in str(info.value)


def test_ops_outside_a_trace_are_an_error():
    with pytest.raises(GraphError, match="only inside a preprocessing_fn"):
        tft.log1p(1.0)


def _vocab_names(fn):
    graph = trace(fn, SPEC)
    return [n.attrs["vocab_filename"] for n in graph.nodes if n.op == "analyzer_vocabulary"]


def test_vocabulary_file_names_follow_tft_name_scopes():
    def fn(t):
        s = t["s"]
        tft.vocabulary(s)
        tft.vocabulary(s)
        tft.vocabulary(s, store_frequency=True)
        tft.vocabulary(s, vocab_filename="my vocab!")
        return {"a": tft.compute_and_apply_vocabulary(s),
                "b": tft.compute_and_apply_vocabulary(s, store_frequency=True),
                "c": tft.compute_and_apply_vocabulary(s, name="custom")}
    assert _vocab_names(fn) == [
        "vocab_vocabulary", "vocab_vocabulary_1", "vocab_frequency_vocabulary_2", "my-vocab_",
        "vocab_compute_and_apply_vocabulary_vocabulary",
        "vocab_frequency_compute_and_apply_vocabulary_1_vocabulary",
        "vocab_custom_vocabulary"]


def test_duplicate_vocab_filename_is_an_error():
    def fn(t):
        tft.vocabulary(t["s"], vocab_filename="v")
        return {"a": tft.compute_and_apply_vocabulary(t["s"], vocab_filename="v")}
    with pytest.raises(GraphError, match="'v' is used twice"):
        trace(fn, SPEC)


def test_store_frequency_formats_spaces_like_tft():
    graph = trace(lambda t: {"a": tft.compute_and_apply_vocabulary(t["s"],
                                                                    store_frequency=True)}, SPEC)
    replace = next(n for n in graph.nodes if n.op == "regex_replace")
    assert replace.attrs == {"pattern": " ", "rewrite": "__SPACE__", "replace_global": True}


def test_outputs_must_have_a_tf_example_dtype():
    with pytest.raises(GraphError, match="output 'y' has dtype float64.*add tft_lite.cast"):
        trace(lambda t: {"y": t["i"] / 2}, SPEC)
    with pytest.raises(GraphError, match="output 'y' has dtype bool"):
        trace(lambda t: {"y": t["x"] > 0}, SPEC)


def test_trace_errors_are_trace_errors_naming_the_line():
    from tft_lite.errors import GraphError, TraceError

    def fn(inputs):
        return {"y": inputs["x"] + inputs["s"]}  # float + string: a mistake at trace time

    with pytest.raises(TraceError) as info:
        trace(fn, {"x": tft.FixedLenFeature([], "float32"),
                   "s": tft.FixedLenFeature([], "string")})
    assert isinstance(info.value, GraphError)
    assert 'inputs["x"] + inputs["s"]' in str(info.value)
