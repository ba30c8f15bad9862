"""The numpy interpreter: one loop over the nodes, an env dict, the rule table in rules.py.

`evaluate` is the whole interpreter. `Program` prepares a graph once for many batches: it
loads and checks the asset files, then evaluates every node that does not depend on the batch
(constants, analyzer results and what is derived from them, e.g. sqrt(var)) so each batch only
runs the per-row part: the same loop as `evaluate`, over (rule, inputs, attrs, outputs) steps
listed once per set of wanted outputs, since per-node bookkeeping is a tenth of a 10k-row
batch's time. Analysis reuses the same Program for the inputs of each phase's analyzers, on a
graph where the analyzers of earlier phases are already bound. One-row requests have their
own scalar interpreter (instance.py).

Imports numpy, pyarrow and the ir/kernels/serving layers only (never Beam, never the tracer).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pyarrow as pa

from tft_lite.errors import GraphError, TftLiteError
from tft_lite.ir import nodes as ir
from tft_lite.serving.assets import AssetFile
from tft_lite.serving.rules import RULES

_RULE_ERRORS = (TftLiteError, ValueError, TypeError, ArithmeticError, IndexError,
                pa.ArrowException)


def evaluate(graph: ir.Graph, env: dict, needed=None, rules=RULES) -> dict:
    """Runs the nodes of `graph` (those flagged in `needed`, default all) not yet in `env`.

    Args:
      env: value id -> run-time value; holds the raw features and anything precomputed.
      needed: optional list of bools, one per node.

    Returns:
      env, updated with every output computed.

    Raises:
      GraphError: a rule failed; names the node index, op, user line and raw features.
      NotImplementedError: no rule for a node's op.
    """
    with np.errstate(all="ignore"):  # TF computes inf/NaN silently, both where() branches too
        for index, node in enumerate(graph.nodes):
            if (needed is not None and not needed[index]) or all(
                    v.id in env for v in node.outputs):
                continue
            fn = rules.get(node.op)
            if fn is None:
                raise NotImplementedError(f"the numpy interpreter has no rule for op "
                                          f"{node.op!r} (node {index})")
            try:
                out = fn(*[env[i] for i in node.inputs], **node.attrs)
            except _RULE_ERRORS as exc:
                raise GraphError(_describe(graph, index, exc)) from exc
            outs = out if len(node.outputs) > 1 else (out,)
            env.update(zip((v.id for v in node.outputs), outs))
    return env


# Ops that may write over their first operand (the same ufunc loop, so the same values), and
# the ops whose numpy results are always new arrays.
IN_PLACE = {"log1p": np.log1p, "log": np.log, "exp": np.exp, "expm1": np.expm1,
            "sqrt": np.sqrt, "negative": np.negative, "abs": np.abs, "add": np.add,
            "subtract": np.subtract, "multiply": np.multiply, "divide": np.true_divide}
_FRESH = frozenset(IN_PLACE) | {"cast"}


def _in_place(ufunc, rule):
    """rule(x[, y]), computed as ufunc(x[, y], out=x) when that gives the same array: x a
    writable float ndarray, y a numpy scalar / 0-d / same-shape array, and x's dtype the
    result dtype."""
    if ufunc.nin == 1:
        def apply(x):
            if type(x) is np.ndarray and x.dtype.kind == "f" and x.flags.writeable:
                return ufunc(x, out=x)
            return rule(x)
        return apply

    def apply2(x, y):
        if (type(x) is np.ndarray and x.dtype.kind == "f" and x.flags.writeable
                and (type(y) is np.ndarray or isinstance(y, np.generic))
                and (y.ndim == 0 or y.shape == x.shape)
                and (y.dtype == x.dtype or np.result_type(x, y) == x.dtype)):
            return ufunc(x, y, out=x)
        return rule(x, y)
    return apply2


def _describe(graph: ir.Graph, index: int, exc: Exception) -> str:
    node = graph.nodes[index]
    where = f" at {graph.source[index]}" if index < len(graph.source) else ""
    features = ir.needed_features(graph, [v.id for v in node.outputs])
    reads = f" (computed from feature(s) {', '.join(map(repr, features))})" if features else ""
    return f"node {index} ({node.op}){where}{reads}: {exc}"


def _batch_free(graph: ir.Graph, available: set) -> list:
    """Nodes computable without a batch: non-analyzer nodes whose inputs are all available."""
    mask, available = [], set(available)
    for node in graph.nodes:
        ok = (not ir.is_analyzer(node.op) and all(i in available for i in node.inputs)
              and all(not v.has_batch for v in node.outputs))
        if ok:
            available.update(v.id for v in node.outputs)
        mask.append(ok)
    return mask


class Program:
    """A graph ready to run on batches: assets checked and loaded, constants folded once.

    Args:
      graph: a verified graph (analyzer nodes may remain; they are never run).
      assets: file name -> bytes for every `asset` node.

    Raises:
      GraphError: an asset is missing or does not match its recorded sha256.
    """

    def __init__(self, graph: ir.Graph, assets: Mapping[str, bytes]):
        self.graph = graph
        env = {}
        for node in graph.nodes:
            if node.op == "asset":
                filename = node.attrs["filename"]
                if filename not in assets:
                    raise GraphError(f"asset file {filename!r} is missing")
                env[node.outputs[0].id] = AssetFile(filename, assets[filename],
                                                    node.attrs["sha256"])
        self.constants = evaluate(graph, env, _batch_free(graph, env))
        self._plans = {}

    def required_features(self, wanted_ids) -> list:
        """Raw features that the values `wanted_ids` depend on."""
        return self._plan(wanted_ids)[1]

    def _plan(self, wanted_ids):
        """(needed-node flags, required features, per-row steps) for `wanted_ids`.

        A step is (node index, rule, input ids, attrs, output ids): the per-row nodes in order,
        looked up once instead of per batch.
        """
        key = tuple(sorted(set(wanted_ids)))
        if key not in self._plans:
            needed = ir.needed_nodes(self.graph, key)
            steps = [index for index, node in enumerate(self.graph.nodes) if needed[index]
                     and not all(v.id in self.constants for v in node.outputs)]
            in_place = self._in_place_steps(steps, key)
            per_row = []
            for index in steps:
                node = self.graph.nodes[index]
                fn = RULES.get(node.op)
                if index in in_place:
                    fn = _in_place(IN_PLACE[node.op], fn)
                per_row.append((index, fn, node.inputs, node.attrs,
                                tuple(v.id for v in node.outputs)))
            self._plans[key] = (needed, ir.needed_features(self.graph, key), per_row)
        return self._plans[key]

    def _in_place_steps(self, steps, wanted) -> set:
        """Steps (node indices) that may write their result over their first operand.

        That operand must be the fresh array of an earlier per-row step (a cast or one of the
        IN_PLACE ops: never a feature, a constant or another value's alias) that nothing else
        reads and that is not wanted. A `where` on a constant scalar condition reads only the
        operand it picks (np.where with such a condition never looks at the other one).
        The run-time checks of _in_place decide the rest (dtypes, shapes, numpy arrays).
        """
        nodes, constants = self.graph.nodes, self.constants
        readers, producer = dict.fromkeys(wanted, 2), {}
        for index in steps:
            node, inputs = nodes[index], nodes[index].inputs
            if node.op == "where" and inputs[0] in constants and np.ndim(constants[inputs[0]]) == 0:
                inputs = (inputs[1] if bool(constants[inputs[0]]) else inputs[2],)
            for value_id in inputs:
                readers[value_id] = readers.get(value_id, 0) + 1
            for v in node.outputs:
                producer[v.id] = node.op
        return {index for index in steps if nodes[index].op in IN_PLACE and nodes[index].inputs
                and producer.get(nodes[index].inputs[0]) in _FRESH
                and len(nodes[index].outputs) == 1
                and readers.get(nodes[index].inputs[0]) == 1}

    def run(self, columns: Mapping, wanted_ids) -> dict:
        """Evaluates `wanted_ids` on a batch of feature values; returns the env.

        The same loop as `evaluate`, over the per-row nodes chosen once per output set.
        """
        return self.run_plan(self._plan(wanted_ids), columns)

    def run_plan(self, plan, columns: Mapping) -> dict:
        """`run` with a plan from `_plan` (callers that cache it skip the lookup)."""
        _, features, per_row = plan
        env = dict(self.constants)
        inputs_of = self.graph.inputs
        for name in features:
            env[inputs_of[name].id] = columns[name]
        with np.errstate(all="ignore"):
            for index, fn, inputs, attrs, outputs in per_row:
                if fn is None:
                    raise NotImplementedError(f"the numpy interpreter has no rule for op "
                                              f"{self.graph.nodes[index].op!r} (node {index})")
                try:
                    if attrs:
                        out = fn(*[env[i] for i in inputs], **attrs)
                    elif len(inputs) == 1:
                        out = fn(env[inputs[0]])
                    else:
                        out = fn(*[env[i] for i in inputs])
                except _RULE_ERRORS as exc:
                    raise GraphError(_describe(self.graph, index, exc)) from exc
                if len(outputs) == 1:
                    env[outputs[0]] = out
                else:
                    env.update(zip(outputs, out))
        return env
