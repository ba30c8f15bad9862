"""plan.py: phases of nested analyzers, picklable phase inputs, a Beam-like manual runner."""
import pickle

import numpy as np
import pytest

import tft_lite as tft
from tft_lite.errors import GraphError
from tft_lite.ir.serialize import graph_to_bytes
from tft_lite.plan import finalize, make_plan, phase_inputs
from tft_lite.serving.graph import TransformGraph
from tft_lite.trace import trace

SPEC = {"x": tft.FixedLenFeature([], "float32"), "s": tft.VarLenFeature("string")}


def preprocessing_fn(inputs):
    x, s = inputs["x"], inputs["s"]
    centered = x - tft.mean(x)                                    # phase 0
    ids = tft.compute_and_apply_vocabulary(s, top_k=3)            # phase 0
    return {"b": tft.bucketize(tft.scale_to_z_score(centered), 3),  # phases 1 and 2
            "id_mean": tft.cast(tft.reduce_sum(ids, axis=1), "float32") * 0.0
            + tft.mean(ids),                                      # phase 1 (reads the vocab)
            "ids": ids}


DATA = [{"x": np.array([1.0, 5.0, 2.0], np.float32), "s": [["a", "b"], [], ["a"]]},
        {"x": np.array([8.0, 3.0], np.float32), "s": [["c", "a"], ["d"]]},
        {"x": np.array([4.0], np.float32), "s": [["b"]]}]


def test_phases_are_found_from_the_graph():
    plan = make_plan(trace(preprocessing_fn, SPEC))
    ops = [[step.node.op for step in phase.steps] for phase in plan.phases]
    assert ops == [["analyzer_mean", "analyzer_vocabulary"],
                   ["analyzer_mean_and_var", "analyzer_mean"], ["analyzer_quantiles"]]
    for phase in plan.phases:
        for step in phase.steps:
            assert plan.graph.nodes[step.node_index] is step.node


def test_phase_needs_earlier_results():
    plan = make_plan(trace(preprocessing_fn, SPEC))
    with pytest.raises(GraphError, match="needs the results of analyzer nodes"):
        phase_inputs(plan, 1, {})


def test_beam_like_runner_with_sharded_accumulators_matches_local():
    """What a Beam runner does: pickled phase inputs, one accumulator per shard, merge."""
    plan = make_plan(trace(preprocessing_fn, SPEC))
    results = {}
    for phase in plan.phases:
        inputs = pickle.loads(pickle.dumps(phase_inputs(plan, phase.index, results)))
        for i, step in enumerate(phase.steps):
            combiner = pickle.loads(pickle.dumps(step.combiner))
            shards = []
            for batch in DATA:
                acc = combiner.create_accumulator()
                shards.append(combiner.compact(combiner.add_input(acc, inputs(batch)[i])))
            merged = combiner.merge_accumulators(shards[::-1])
            results[step.node_index] = combiner.extract_output(merged)
    graph, assets = finalize(plan, results)
    local = tft.analyze(preprocessing_fn, DATA, SPEC)
    assert graph_to_bytes(graph) == graph_to_bytes(local.graph)
    assert assets == local.assets
    ours = TransformGraph(graph, assets).transform(DATA[0])
    np.testing.assert_array_equal(ours["b"], local.transform(DATA[0])["b"])


def test_finalized_graph_has_no_analyzers_and_drops_unused_nodes():
    graph = tft.analyze(preprocessing_fn, DATA, SPEC).graph
    assert not any(n.op.startswith("analyzer_") for n in graph.nodes)
    assert sum(n.op == "asset" for n in graph.nodes) == 1


def test_unused_vocabulary_is_still_shipped():
    def fn(inputs):
        tft.vocabulary(inputs["s"], vocab_filename="side_output")
        return {"x": inputs["x"] + 1.0}
    graph = tft.analyze(fn, DATA, SPEC)
    assert graph.assets["side_output"] == b"a\nb\nd\nc\n"  # count desc, then bytes desc


def test_bind_cache_gives_the_same_graph_and_binds_once(monkeypatch):
    from tft_lite import plan as plan_mod
    plan = make_plan(trace(preprocessing_fn, SPEC))
    graph = tft.analyze(preprocessing_fn, DATA, SPEC)
    results = {}
    calls = []
    real = plan_mod.BINDERS["analyzer_vocabulary"]
    monkeypatch.setitem(plan_mod.BINDERS, "analyzer_vocabulary",
                        lambda node, outputs: calls.append(node) or real(node, outputs))
    cache = {}
    for phase in plan.phases:
        inputs = phase_inputs(plan, phase.index, results, cache)
        for i, step in enumerate(phase.steps):
            acc = step.combiner.create_accumulator()
            for batch in DATA:
                acc = step.combiner.add_input(acc, inputs(batch)[i])
            results[step.node_index] = step.combiner.extract_output(acc)
    bound, assets = finalize(plan, results, cache)
    assert len(calls) == 1
    assert graph_to_bytes(bound) == graph_to_bytes(graph.graph) and assets == graph.assets
