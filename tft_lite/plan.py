"""Analysis planning: phases of analyzers, their combiners, and binding their results.

A traced graph holds analyzer nodes. An analyzer whose input depends on another analyzer's
result must wait for it, so analyzers fall into phases: phase 0 reads only raw features,
phase k reads results of phase k - 1 at most. All analyzers of one phase are computed in one
pass over the data. This module is runner-neutral; a runner (tft_lite.local in-process, a
Beam pipeline) does:

    plan = make_plan(traced_graph)
    results = {}                                   # analyzer node index -> output tuple
    for phase in plan.phases:
        inputs = phase_inputs(plan, phase.index, results)   # picklable, ship to workers
        # per batch: values = inputs(batch) -> one tuple of arrays per step;
        # step.combiner.add_input(acc, values[i]); merge_accumulators; extract_output
        results.update({step.node_index: output})
    graph, assets = finalize(plan, results)        # data-only graph + asset file bytes
    TransformGraph(graph, assets)

Combiners come from tft_lite.analyzers (one table, COMBINERS); how an analyzer's output
becomes graph data (constants, or a vocabulary asset file) is a second table, BINDERS.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from tft_lite.analyzers.base import Combiner
from tft_lite.analyzers.moments import (MaxCombiner, MeanAndVarCombiner, MeanCombiner,
                                        MinCombiner, MinMaxCombiner, SizeCombiner, SumCombiner,
                                        VarCombiner)
from tft_lite.analyzers.quantiles import QuantilesCombiner
from tft_lite.analyzers.vocabulary import VocabularyCombiner, vocabulary_file_bytes
from tft_lite.errors import GraphError
from tft_lite.ir import nodes as ir
from tft_lite.ir.verify import verify
from tft_lite.serving.columns import feature_columns
from tft_lite.serving.interpreter import Program
from tft_lite.serving.values import Ragged

COMBINERS: dict = {}
BINDERS: dict = {}


def combiner_rule(*ops):
    """Registers fn(node, input Value) -> Combiner for analyzer `ops`."""
    def register(fn):
        for op in ops:
            COMBINERS[op] = fn
        return fn
    return register


def binder_rule(*ops):
    """Registers fn(node, outputs) -> (replacement nodes, {asset name: bytes}) for `ops`."""
    def register(fn):
        for op in ops:
            BINDERS[op] = fn
        return fn
    return register


@dataclass(frozen=True)
class AnalyzerStep:
    """One analyzer of a phase: its node, the combiner computing it, the values it reads."""

    node_index: int
    node: ir.Node
    combiner: Combiner
    input_ids: tuple


@dataclass(frozen=True)
class Phase:
    index: int
    steps: tuple


@dataclass(frozen=True)
class Plan:
    graph: ir.Graph
    phases: tuple


def make_plan(graph: ir.Graph) -> Plan:
    """Groups the analyzers of a traced graph into phases (a loop over the nodes)."""
    level = {v.id: 0 for v in graph.inputs.values()}
    types = ir.value_types(graph)
    phases: dict[int, list] = {}
    for index, node in enumerate(graph.nodes):
        depth = max((level[i] for i in node.inputs), default=0)
        if ir.is_analyzer(node.op):
            make = COMBINERS.get(node.op)
            if make is None:
                raise NotImplementedError(f"the planner has no combiner for op {node.op!r}")
            combiner = make(node, types[node.inputs[0]])
            phases.setdefault(depth, []).append(
                AnalyzerStep(index, node, combiner, tuple(node.inputs)))
            depth += 1
        for value in node.outputs:
            level[value.id] = depth
    return Plan(graph, tuple(Phase(i, tuple(phases[i])) for i in sorted(phases)))


class PhaseInputs:
    """Computes the inputs of one phase's analyzers from a raw batch (picklable).

    Call it with a batch (any form TransformGraph.transform takes); it returns one tuple of
    arrays per step, ready for `step.combiner.add_input`: dense values as numpy
    [batch, *shape] (strings may be pyarrow arrays), VarLen/ragged values as their flat values.
    """

    def __init__(self, graph: ir.Graph, assets: dict, steps: tuple):
        self.graph = graph
        self.assets = assets
        self.steps = steps
        self._wanted = sorted({i for step in steps for i in step.input_ids})

    @functools.cached_property
    def program(self) -> Program:
        return Program(self.graph, self.assets)

    @property
    def required_features(self) -> list:
        return self.program.required_features(self._wanted)

    def __call__(self, batch, row_offset: int = 0) -> list:
        columns = feature_columns(batch, self.graph.input_spec, self.required_features,
                                  row_offset)
        env = self.program.run(columns, self._wanted)
        return [tuple(_combiner_input(env[i]) for i in step.input_ids) for step in self.steps]

    def __getstate__(self):
        return {"graph": self.graph, "assets": self.assets, "steps": self.steps,
                "_wanted": self._wanted, "_program": None}


def _combiner_input(value):
    return value.values if isinstance(value, Ragged) else value


def phase_inputs(plan: Plan, phase_index: int, results: dict, cache=None) -> PhaseInputs:
    """The batch -> analyzer inputs function of a phase, given all earlier phases' results.

    `cache`: an optional dict shared by the bind calls of one analysis (see `bind`).
    """
    earlier = {i: out for i, out in results.items()
               if any(i == s.node_index for p in plan.phases[:phase_index] for s in p.steps)}
    missing = [s.node_index for p in plan.phases[:phase_index] for s in p.steps
               if s.node_index not in earlier]
    if missing:
        raise GraphError(f"phase {phase_index} needs the results of analyzer nodes {missing}")
    graph, assets = bind(plan.graph, earlier, cache)
    return PhaseInputs(graph, assets, plan.phases[phase_index].steps)


def bind(graph: ir.Graph, results: dict, cache=None) -> tuple:
    """Replaces each analyzer node in `results` by data (constants or an asset).

    Args:
      results: analyzer node index -> tuple of combiner outputs (extract_output).
      cache: optional dict, node index -> binder result; pass one dict to every bind of the
        same results (a runner binds each phase's results again for later phases and for
        finalize, and a vocabulary file is costly to write and hash).

    Returns:
      (graph, assets): the graph with those nodes replaced, and {file name: bytes}.
    """
    nodes, source, assets = [], [], {}
    for index, node in enumerate(graph.nodes):
        where = graph.source[index] if index < len(graph.source) else ""
        if index not in results:
            nodes.append(node)
            source.append(where)
            continue
        binder = BINDERS.get(node.op, _bind_constants)
        if cache is not None and index in cache:
            new_nodes, new_assets = cache[index]
        else:
            new_nodes, new_assets = binder(node, tuple(results[index]))
            if cache is not None:
                cache[index] = (new_nodes, new_assets)
        nodes.extend(new_nodes)
        source.extend([where] * len(new_nodes))
        assets.update(new_assets)
    return dataclasses.replace(graph, nodes=tuple(nodes), source=tuple(source)), assets


def finalize(plan: Plan, results: dict, cache=None) -> tuple:
    """All analyzers bound, unused nodes pruned: the data-only (graph, assets) for serving."""
    graph, assets = bind(plan.graph, results, cache)
    graph = ir.prune(graph)
    verify(graph)
    used = {n.attrs["filename"] for n in graph.nodes if n.op == "asset"}
    return graph, {name: data for name, data in sorted(assets.items()) if name in used}


# --- binders -----------------------------------------------------------------------------------

def _bind_constants(node: ir.Node, outputs: tuple):
    if len(outputs) != len(node.outputs):
        raise GraphError(f"{node.op}: combiner gave {len(outputs)} outputs, expected "
                         f"{len(node.outputs)}")
    nodes = []
    for value, out in zip(node.outputs, outputs):
        array = np.asarray(out, dtype=np.dtype(value.dtype))
        if array.shape != tuple(value.shape):
            raise GraphError(f"{node.op}: result has shape {array.shape}, traced as "
                             f"{value.shape}")
        nodes.append(ir.Node("constant", (), {"value": array}, (value,)))
    return nodes, {}


@binder_rule("analyzer_vocabulary")
def _bind_vocabulary(node: ir.Node, outputs: tuple):
    tokens, counts = outputs[0], outputs[1]
    data = vocabulary_file_bytes(tokens, counts, store_frequency=node.attrs["store_frequency"])
    filename = node.attrs["vocab_filename"]
    attrs = {"filename": filename, "sha256": hashlib.sha256(data).hexdigest()}
    return [ir.Node("asset", (), attrs, node.outputs)], {filename: data}


# --- combiners ---------------------------------------------------------------------------------

def _instance_shape(node: ir.Node, x: ir.Value):
    return None if node.attrs["reduce_instance_dims"] else list(x.shape)


@combiner_rule("analyzer_min", "analyzer_max", "analyzer_min_and_max")
def _min_max(node: ir.Node, x: ir.Value):
    cls = {"analyzer_min": MinCombiner, "analyzer_max": MaxCombiner,
           "analyzer_min_and_max": MinMaxCombiner}[node.op]
    return cls(input_dtype=x.dtype, reduce_instance_dims=node.attrs["reduce_instance_dims"],
               instance_shape=_instance_shape(node, x))


@combiner_rule("analyzer_sum")
def _sum(node: ir.Node, x: ir.Value):
    return SumCombiner(input_dtype=x.dtype, reduce_instance_dims=node.attrs["reduce_instance_dims"],
                       instance_shape=_instance_shape(node, x))


@combiner_rule("analyzer_size")
def _size(node: ir.Node, x: ir.Value):
    return SizeCombiner(reduce_instance_dims=node.attrs["reduce_instance_dims"],
                        instance_shape=_instance_shape(node, x))


@combiner_rule("analyzer_mean", "analyzer_var", "analyzer_mean_and_var")
def _moments(node: ir.Node, x: ir.Value):
    cls = {"analyzer_mean": MeanCombiner, "analyzer_var": VarCombiner,
           "analyzer_mean_and_var": MeanAndVarCombiner}[node.op]
    return cls(input_dtype=x.dtype, reduce_instance_dims=node.attrs["reduce_instance_dims"],
               output_dtype=node.attrs["output_dtype"] or None,
               instance_shape=_instance_shape(node, x))


@combiner_rule("analyzer_vocabulary")
def _vocabulary(node: ir.Node, x: ir.Value):
    attrs = node.attrs
    return VocabularyCombiner(
        top_k=attrs["top_k"] or None, frequency_threshold=attrs["frequency_threshold"] or None,
        store_frequency=attrs["store_frequency"],
        reserved_tokens=list(attrs["reserved_tokens"]) or None,
        file_format=attrs["file_format"], input_dtype=x.dtype)


@combiner_rule("analyzer_quantiles")
def _quantiles(node: ir.Node, x: ir.Value):
    feature_shape = [] if node.attrs["reduce_instance_dims"] else list(x.shape)
    num_buckets = node.attrs["num_buckets"]
    return QuantilesCombiner(num_buckets, node.attrs["epsilon"], np.float32,
                             output_shape=(feature_shape or [1]) + [num_buckets - 1],
                             feature_shape=feature_shape)
