"""The transform graph: typed values, nodes and graphs, as plain frozen data.

A graph is a straight-line program in single-assignment form, the way JAX's jaxpr is: raw
features come in as values, every node applies one op (named in `ops.py`) to earlier values
and defines new ones, and named outputs pick values at the end. Nodes carry no behaviour;
each consumer (numpy serving, phase planning, shape inference at trace time, printing) is a
separate loop with its own rule table.

Values have one of four kinds, because a preprocessing_fn mixes per-row data with
dataset-wide results:

  dense   one array per batch, shape [batch, *shape]       (FixedLenFeature, most ops)
  ragged  rows of variable length, flat values + row splits (VarLenFeature, string split)
  const   no batch dimension, shape `shape`                 (literals, analyzer results)
  asset   a file shipped with the graph                     (a vocabulary)

Analyzer nodes (ops whose name starts with "analyzer_") only appear in a traced graph: they
reduce a batch value over the whole dataset into const values. Binding their results
replaces each by `constant` or `asset` nodes, giving the data-only graph that serving runs.

This module is the bottom of the stack: it imports only the standard library and
`tft_lite.ir.schema` (feature specs).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from tft_lite.ir.schema import FeatureSpec

DENSE, RAGGED, CONST, ASSET = "dense", "ragged", "const", "asset"
KINDS = (DENSE, RAGGED, CONST, ASSET)
BATCH_KINDS = (DENSE, RAGGED)
# Every dtype a value can have. Strings are raw bytes. Shapes use None for a dim that is only
# known at run time (e.g. a vocabulary's size).
DTYPES = ("bool", "int32", "int64", "float32", "float64", "string")
ANALYZER_PREFIX = "analyzer_"


@dataclass(frozen=True)
class Value:
    """One SSA value: an integer id (unique in its graph) and its static type.

    `shape` excludes the batch dimension for dense values, is () for ragged values (rank-1
    ragged rows of scalars) and is the full shape for const values.
    """

    id: int
    dtype: str
    kind: str = DENSE
    shape: tuple = ()

    @property
    def has_batch(self) -> bool:
        return self.kind in BATCH_KINDS


@dataclass(frozen=True)
class Node:
    """`outputs = op(*inputs, **attrs)`: inputs are value ids, outputs new Values."""

    op: str
    inputs: tuple[int, ...]
    attrs: Mapping[str, Any]
    outputs: tuple[Value, ...]


@dataclass(frozen=True)
class Graph:
    """A whole transform: raw feature specs and their values, nodes, named outputs.

    Attributes:
      input_spec: feature name -> normalized FixedLenFeature / VarLenFeature, sorted by name.
      inputs: feature name -> the Value that feature enters the graph as.
      nodes: in topological order (every input is defined before it is used).
      outputs: output name -> value id, sorted by name.
      source: optional per-node "file:line" of the user code that made the node, for error
        messages at analysis time; never serialized and ignored by ==.
    """

    input_spec: Mapping[str, FeatureSpec]
    inputs: Mapping[str, Value]
    nodes: tuple[Node, ...]
    outputs: Mapping[str, int]
    source: tuple[str, ...] = field(default=(), compare=False)


def is_analyzer(op: str) -> bool:
    """True for analyzer ops (dataset-wide reductions that only a traced graph holds)."""
    return op.startswith(ANALYZER_PREFIX)


def value_types(graph: Graph) -> dict[int, Value]:
    """Every value of the graph by id: the inputs, then each node's outputs."""
    types = {value.id: value for value in graph.inputs.values()}
    for node in graph.nodes:
        for value in node.outputs:
            types[value.id] = value
    return types


def producers(graph: Graph) -> dict[int, int]:
    """value id -> index of the node defining it (raw feature values are absent)."""
    return {v.id: index for index, node in enumerate(graph.nodes) for v in node.outputs}


def needed_nodes(graph: Graph, wanted_ids) -> list[bool]:
    """Which nodes must run to compute `wanted_ids` (one backward pass over the nodes)."""
    wanted = set(wanted_ids)
    needed = [False] * len(graph.nodes)
    for index in range(len(graph.nodes) - 1, -1, -1):
        node = graph.nodes[index]
        if any(v.id in wanted for v in node.outputs):
            needed[index] = True
            wanted.update(node.inputs)
    return needed


def needed_features(graph: Graph, wanted_ids) -> list[str]:
    """Names of the raw features that `wanted_ids` depend on, sorted."""
    wanted = set(wanted_ids)
    for index, flag in enumerate(needed_nodes(graph, wanted)):
        if flag:
            wanted.update(graph.nodes[index].inputs)
    return sorted(name for name, value in graph.inputs.items() if value.id in wanted)


def prune(graph: Graph, keep_ops=("asset",)) -> Graph:
    """Drops nodes that no output needs, except nodes whose op is in `keep_ops`.

    Asset nodes stay by default: TFT ships every vocabulary it computed, used or not.
    """
    wanted = set(graph.outputs.values())
    for node in graph.nodes:
        if node.op in keep_ops:
            wanted.update(v.id for v in node.outputs)
    keep = needed_nodes(graph, wanted)
    nodes = tuple(n for n, k in zip(graph.nodes, keep) if k)
    source = tuple(s for s, k in zip(graph.source, keep) if k) if graph.source else ()
    return dataclasses.replace(graph, nodes=nodes, source=source)


def format_value(value: Value) -> str:
    if value.kind == DENSE:
        dims = ", ".join(["batch"] + ["?" if d is None else str(d) for d in value.shape])
        return f"%{value.id}:{value.dtype}[{dims}]"
    if value.kind == RAGGED:
        return f"%{value.id}:{value.dtype}[batch, (ragged)]"
    dims = ", ".join("?" if d is None else str(d) for d in value.shape)
    return f"%{value.id}:{value.kind} {value.dtype}[{dims}]"


def _format_attr(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_node(index: int, node: Node) -> str:
    """One line per node, e.g. `  3: %5:float32[batch] = add %1 %4`."""
    outs = ", ".join(format_value(v) for v in node.outputs)
    ins = " ".join(f"%{i}" for i in node.inputs)
    attrs = " ".join(f"{k}={_format_attr(v)}" for k, v in sorted(node.attrs.items()))
    return f"{index:4d}: {outs} = {node.op} {ins} {attrs}".rstrip()


def format_graph(graph: Graph) -> str:
    """The whole graph as text, for humans (not a serialization format)."""
    lines = ["inputs:"]
    lines += [f"  {name}: {format_value(v)}" for name, v in graph.inputs.items()]
    lines.append("nodes:")
    lines += [format_node(i, n) for i, n in enumerate(graph.nodes)]
    lines.append("outputs:")
    lines += [f"  {name}: %{vid}" for name, vid in graph.outputs.items()]
    return "\n".join(lines)
