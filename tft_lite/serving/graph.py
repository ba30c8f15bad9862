"""TransformGraph: a bound, data-only transform graph with its assets, ready to apply.

What `tft_lite.analyze` returns and `tft_lite.serving.load` reads back. It holds an
`ir.Graph` without analyzers plus the asset files' bytes, and applies the graph to batches
with the numpy interpreter. It never imports the tracer or Beam, so serving code can use it
with only numpy, pyarrow and protobuf installed.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from tft_lite.errors import SchemaError
from tft_lite.ir import nodes as ir
from tft_lite.ir.verify import verify
from tft_lite.serving import schema as out_schema
from tft_lite.serving.columns import feature_columns, instance_to_batch
from tft_lite.serving.instance import InstancePlan
from tft_lite.serving.interpreter import Program
from tft_lite.serving.rules import RULES
from tft_lite.serving.values import Ragged, as_numpy, output_array


class TransformGraph:
    """The result of analysis: apply it with `transform` / `transform_instance`, or `save` it.

    Args:
      graph: a graph whose analyzers are all bound (verified here).
      assets: asset file name -> bytes, for every `asset` node of the graph.

    Raises:
      GraphError: the graph is malformed, or an asset is missing or altered.
    """

    def __init__(self, graph: ir.Graph, assets: Mapping[str, bytes]):
        verify(graph)
        self.graph = graph
        self.assets = dict(sorted(assets.items()))
        self._program = Program(graph, self.assets)
        self._instance_plans = {}  # output names (None: all) -> InstancePlan | None
        self._batch_plans = {}  # output names (None: all) -> ((name, id)s, features, plan)

    @property
    def raw_feature_spec(self) -> dict:
        """Feature name -> FixedLenFeature / VarLenFeature the graph reads."""
        return dict(self.graph.input_spec)

    @property
    def output_names(self) -> list:
        return list(self.graph.outputs)

    def transformed_feature_spec(self) -> dict:
        """Output name -> FixedLenFeature / VarLenFeature (TFT's transformed metadata)."""
        return out_schema.output_spec(self.graph)

    def transformed_int_domains(self) -> dict:
        """Output name -> (min, max, is_categorical) for vocabulary ids and bucket indices."""
        return out_schema.int_domains(self.graph, self._program.constants)

    def transform(self, batch, output_names=None) -> dict:
        """Applies the graph to a batch.

        Args:
          batch: pyarrow RecordBatch / Table, pandas DataFrame or dict of columns; it needs
            the raw features that the requested outputs read (others may be absent).
          output_names: outputs to compute (default: all).

        Returns:
          dict output name -> numpy array [batch, *shape] (strings: object arrays of bytes),
          or a pyarrow LargeListArray for a ragged output.

        Raises:
          SchemaError: a feature is missing or disagrees with the raw feature spec.
          GraphError: an op failed on this data (names the node and the features).
        """
        key = None if output_names is None else tuple(output_names)
        cached = self._batch_plans.get(key)
        if cached is None:
            names = self._check_names(output_names)
            wanted = [self.graph.outputs[name] for name in names]
            plan = self._program._plan(wanted)
            plan, as_float32 = self._fused_casts(plan, wanted)
            cached = (list(zip(names, wanted)), plan[1], plan, self._lookup_only(plan, wanted),
                      as_float32)
            self._batch_plans[key] = cached
        outputs, required, plan, lookup_only, as_float32 = cached
        columns = feature_columns(batch, self.graph.input_spec, required,
                                  lookup_only=lookup_only, as_float32=as_float32)
        env = self._program.run_plan(plan, columns)
        out, seen = {}, set()
        for name, value_id in outputs:
            value = output_array(env[value_id])
            if id(value) in seen:  # two outputs of one array (e.g. a folded where): own copies
                value = value.copy() if isinstance(value, np.ndarray) else value
            seen.add(id(value))
            out[name] = value
        return out

    def transform_instance(self, instance: Mapping, output_names=None) -> dict:
        """Applies the graph to one {feature: value} dict; returns {output: numpy value}.

        Scalar features given as Python int / float / str / bytes (or left out, to take their
        default) run through a prepared scalar plan (serving/instance.py); anything else
        runs the batch interpreter on a batch of one. Both give the same values.
        """
        key = None if output_names is None else tuple(output_names)
        plan = self._instance_plans.get(key, False)
        if plan is False:
            plan = InstancePlan.build(self._program, self._check_names(output_names))
            self._instance_plans[key] = plan
        if plan is not None:
            result = plan.run(instance)
            if result is not None:
                return result
        batch = instance_to_batch(instance, self.graph.input_spec)
        names = self._check_names(output_names)
        wanted = [self.graph.outputs[name] for name in names]
        required = self._program.required_features(wanted)
        columns = feature_columns(batch, self.graph.input_spec, required)
        env = self._program.run(columns, wanted)
        return {name: _first_row(env[self.graph.outputs[name]]) for name in names}

    def save(self, path) -> None:
        """Writes the artifact directory (see docs/transform_graph.md)."""
        from tft_lite.serving.artifact import save
        save(self, path)

    def _readers(self, plan) -> dict:
        """value id -> [(node index, input position)] of the plan's per-row steps."""
        readers = {}
        for index, _, inputs, _, _ in plan[2]:
            for position, value_id in enumerate(inputs):
                readers.setdefault(value_id, []).append((index, position))
        return readers

    def _fused_casts(self, plan, wanted):
        """(plan, features): int64 features read only by one cast to float32 (and not
        wanted) arrive from a RecordBatch already cast (feature_columns' as_float32); their
        cast steps then pass a float32 array through (anything else is still cast)."""
        readers, fused, steps = self._readers(plan), set(), set()
        for name in plan[1]:
            value_id = self.graph.inputs[name].id
            spec = self.graph.input_spec[name]
            steps_of = readers.get(value_id, [])
            if (len(steps_of) == 1 and value_id not in wanted and spec.dtype == "int64"
                    and self.graph.nodes[steps_of[0][0]].op == "cast"
                    and self.graph.nodes[steps_of[0][0]].attrs.get("dtype") == "float32"):
                fused.add(name)
                steps.add(steps_of[0][0])
        if not fused:
            return plan, frozenset()
        per_row = [(index, _float32_passthrough if index in steps else fn, inputs, attrs, out)
                   for index, fn, inputs, attrs, out in plan[2]]
        return (plan[0], plan[1], per_row), frozenset(fused)

    def _lookup_only(self, plan, wanted) -> frozenset:
        """Features of `plan` read only as the tokens of apply_vocabulary steps with at most
        one OOV bucket, and not outputs themselves (see feature_columns' lookup_only)."""
        readers = {}
        for index, _, inputs, attrs, _ in plan[2]:
            for position, value_id in enumerate(inputs):
                ok = (self.graph.nodes[index].op == "apply_vocabulary" and position == 0
                      and attrs.get("num_oov_buckets", 2) <= 1)
                readers[value_id] = readers.get(value_id, True) and ok
        return frozenset(name for name in plan[1]
                         if readers.get(self.graph.inputs[name].id) and
                         self.graph.inputs[name].id not in wanted)

    def _check_names(self, output_names):
        if output_names is None:
            return list(self.graph.outputs)
        unknown = [n for n in output_names if n not in self.graph.outputs]
        if unknown:
            raise SchemaError(f"unknown output(s) {unknown}; the graph has "
                              f"{list(self.graph.outputs)}")
        return list(output_names)

    def __repr__(self):
        return (f"TransformGraph({len(self.graph.input_spec)} features -> "
                f"{len(self.graph.outputs)} outputs, {len(self.graph.nodes)} nodes, "
                f"{len(self.assets)} assets)")


def _float32_passthrough(x, *, dtype):
    """The cast of a feature fused into its conversion (TransformGraph._fused_casts): the
    float32 array is new and read by nothing else, so it is the cast's result."""
    if type(x) is np.ndarray and x.dtype == np.float32 and dtype == "float32":
        return x
    return RULES["cast"](x, dtype=dtype)


def _first_row(value):
    if isinstance(value, Ragged):
        lo, hi = value.row_splits[0], value.row_splits[1]
        return np.asarray(as_numpy(value.values)[lo:hi])
    return as_numpy(value)[0]
