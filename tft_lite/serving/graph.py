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
        names = self._check_names(output_names)
        wanted = [self.graph.outputs[name] for name in names]
        required = self._program.required_features(wanted)
        columns = feature_columns(batch, self.graph.input_spec, required)
        env = self._program.run(columns, wanted)
        out, seen = {}, set()
        for name in names:
            value = output_array(env[self.graph.outputs[name]])
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


def _first_row(value):
    if isinstance(value, Ragged):
        lo, hi = value.row_splits[0], value.row_splits[1]
        return np.asarray(as_numpy(value.values)[lo:hi])
    return as_numpy(value)[0]
