"""ir/nodes.py data model and ir/verify.py checks (a table of broken graphs)."""
import dataclasses

import numpy as np
import pytest

from tft_lite.errors import GraphError
from tft_lite.ir import nodes as ir
from tft_lite.ir.ops import OPS
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature, normalize_schema
from tft_lite.ir.verify import verify

SPEC = normalize_schema({"x": FixedLenFeature([], "float32"), "v": VarLenFeature("string")})
X = ir.Value(0, "float32", ir.DENSE, ())
V = ir.Value(1, "string", ir.RAGGED, ())


def const(value_id, value, dtype="float32"):
    arr = np.asarray(value, dtype=dtype)
    return ir.Node("constant", (), {"value": arr}, (ir.Value(value_id, dtype, ir.CONST,
                                                             arr.shape),))


def make_graph(nodes, outputs=None):
    return ir.Graph(SPEC, {"v": V, "x": X}, tuple(nodes), outputs or {})


GOOD = make_graph([
    const(2, 2.0),
    ir.Node("multiply", (0, 2), {}, (ir.Value(3, "float32"),)),
    ir.Node("hash_strings", (1,), {"hash_buckets": 5, "key": ()},
            (ir.Value(4, "int64", ir.RAGGED),)),
    ir.Node("log", (3,), {}, (ir.Value(5, "float32"),)),  # unused: pruned
], {"y": 3, "h": 4})


def test_nodes_are_frozen_data():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GOOD.nodes[0].op = "add"
    assert X.has_batch and not GOOD.nodes[0].outputs[0].has_batch


def test_graph_helpers():
    verify(GOOD)
    assert ir.producers(GOOD) == {2: 0, 3: 1, 4: 2, 5: 3}
    assert ir.needed_nodes(GOOD, [3]) == [True, True, False, False]
    assert ir.needed_features(GOOD, [3]) == ["x"]
    assert ir.needed_features(GOOD, [4]) == ["v"]
    assert [n.op for n in ir.prune(GOOD).nodes] == ["constant", "multiply", "hash_strings"]
    assert set(ir.value_types(GOOD)) == {0, 1, 2, 3, 4, 5}


def test_format_graph_is_one_line_per_node():
    text = ir.format_graph(GOOD)
    assert "   1: %3:float32[batch] = multiply %0 %2" in text
    assert "%4:int64[batch, (ragged)] = hash_strings %1 hash_buckets=5 key=()" in text
    assert "  y: %3" in text


def test_every_op_has_a_comment_line_in_ops_py():
    import inspect

    from tft_lite.ir import ops
    source = inspect.getsource(ops)
    for name in OPS:
        line = next(line for line in source.splitlines() if f'_op("{name}"' in line)
        assert "#" in line, name


def _replace_node(index, **changes):
    nodes = list(GOOD.nodes)
    nodes[index] = dataclasses.replace(nodes[index], **changes)
    return dataclasses.replace(GOOD, nodes=tuple(nodes))


BROKEN = [
    ("unknown op", _replace_node(3, op="frobnicate"), "node 3 (frobnicate): unknown op"),
    ("use before definition", _replace_node(1, inputs=(0, 9)), "input %9 is used before"),
    ("assigned twice", _replace_node(3, outputs=(ir.Value(3, "float32"),)),
     "value %3 is assigned twice"),
    ("wrong arity", _replace_node(3, inputs=(3, 3)), "expected 1 inputs, got 2"),
    ("missing attr", _replace_node(2, attrs={"hash_buckets": 5}), "attributes ['hash_buckets']"),
    ("attr type", _replace_node(2, attrs={"hash_buckets": "5", "key": ()}),
     "attribute 'hash_buckets' must be int"),
    ("bad dtype", _replace_node(3, outputs=(ir.Value(5, "complex64"),)), "unknown dtype"),
    ("bad kind", _replace_node(3, outputs=(ir.Value(5, "float32", "sparse"),)), "unknown kind"),
    ("constant dtype", _replace_node(0, attrs={"value": np.asarray(2.0)}),
     "constant of numpy dtype float64 declared float32"),
    ("output undefined", dataclasses.replace(GOOD, outputs={"y": 42}), "undefined value %42"),
    ("output without batch", dataclasses.replace(GOOD, outputs={"y": 2}),
     "has no batch dimension"),
    ("analyzer in serving graph", _replace_node(3, op="analyzer_mean", attrs={
        "reduce_instance_dims": True, "output_dtype": ""}), "analyzer left in a graph"),
    ("asset path escape", make_graph([ir.Node("asset", (), {
        "filename": "../x", "sha256": "0"}, (ir.Value(2, "string", ir.ASSET),))]),
     "must be a plain file name"),
]


@pytest.mark.parametrize("name,graph,fragment", BROKEN, ids=[c[0] for c in BROKEN])
def test_verify_rejects(name, graph, fragment):
    with pytest.raises(GraphError) as info:
        verify(graph)
    assert fragment in str(info.value)


def test_verify_error_reprints_the_nodes_around_the_failure():
    with pytest.raises(GraphError) as info:
        verify(_replace_node(1, inputs=(0, 9)))
    assert ">>   1: %3:float32[batch] = multiply %0 %9" in str(info.value)
    assert "     0: %2:const float32[] = constant" in str(info.value)


def test_analyzers_allowed_in_traced_graphs():
    graph = _replace_node(3, op="analyzer_mean", attrs={"reduce_instance_dims": True,
                                                        "output_dtype": ""},
                          outputs=(ir.Value(5, "float32", ir.CONST),))
    verify(graph, allow_analyzers=True)
