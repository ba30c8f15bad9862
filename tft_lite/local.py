"""In-process analysis: `analyze(preprocessing_fn, data, raw_feature_spec)`.

Traces the function, plans the phases (plan.py), then makes one pass over the batches per
phase: every analyzer of the phase gets each batch's values through its combiner's
add_input, and extract_output at the end. The results are bound into a data-only
TransformGraph. Same plan and combiners a Beam runner uses; no Beam here.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import pyarrow as pa

from tft_lite.errors import GraphError, SchemaError, TftLiteError
from tft_lite.ir.schema import normalize_schema
from tft_lite.plan import finalize, make_plan, phase_inputs
from tft_lite.serving.graph import TransformGraph
from tft_lite.trace import trace


def analyze(preprocessing_fn, data, raw_feature_spec, *, allow_empty: bool = False):
    """Computes the analyzers of `preprocessing_fn` over `data`; returns a TransformGraph.

    Args:
      preprocessing_fn: dict of name -> Tensor -> dict of name -> Tensor, written with
        tft_lite's functions (TFT's names).
      data: an iterable of pyarrow RecordBatches, or one RecordBatch, pyarrow Table, pandas
        DataFrame or dict of columns (numpy arrays / lists). A one-shot iterator is kept in
        memory when there is more than one phase.
      raw_feature_spec: dict of name -> FixedLenFeature / VarLenFeature.
      allow_empty: with no rows at all, return TFT's empty-data results (mean 0, min +inf,
        a dummy vocabulary, ...) instead of raising.

    Returns:
      TransformGraph: apply with .transform(batch), save with .save(path).

    Raises:
      SchemaError: a batch disagrees with the spec (names feature and row), or no rows.
      GraphError: a mistake in preprocessing_fn (names the line), or an op failed on data.
    """
    spec = normalize_schema(raw_feature_spec)
    plan = make_plan(trace(preprocessing_fn, spec))
    batches = _replayable(data, len(plan.phases))
    results = {}
    for phase in plan.phases:
        results.update(_run_phase(plan, phase, results, batches, allow_empty))
    graph, assets = finalize(plan, results)
    return TransformGraph(graph, assets)


def _run_phase(plan, phase, results: dict, batches, allow_empty: bool) -> dict:
    """One pass over the data for the analyzers of `phase`; their outputs by node index."""
    inputs = phase_inputs(plan, phase.index, results)
    accumulators = [step.combiner.create_accumulator() for step in phase.steps]
    rows = 0
    for batch in batches():
        try:
            values = inputs(batch, row_offset=rows)
        except GraphError as exc:  # op errors count rows within the batch
            raise GraphError(f"{exc} [in the batch starting at row {rows}]") from exc
        for i, step in enumerate(phase.steps):
            accumulators[i] = _guard(step, plan, step.combiner.add_input, accumulators[i],
                                     values[i])
        rows += _num_rows(batch)
    if rows == 0 and not allow_empty:
        raise SchemaError("analyze got no rows: analyzers over empty data give TFT's "
                          "placeholder results (pass allow_empty=True to accept them)")
    return {step.node_index: _guard(step, plan, step.combiner.extract_output, acc)
            for step, acc in zip(phase.steps, accumulators)}


def _guard(step, plan, fn, *args):
    """Runs a combiner method; a failure names the analyzer node and the user's line."""
    try:
        return fn(*args)
    except (TftLiteError, ValueError, TypeError, ArithmeticError) as exc:
        where = plan.graph.source[step.node_index] if plan.graph.source else "?"
        raise GraphError(f"analyzer node {step.node_index} ({step.node.op}) at {where}: "
                         f"{exc}") from exc


def _num_rows(batch) -> int:
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return batch.num_rows
    if isinstance(batch, Mapping):
        return len(next(iter(batch.values()))) if batch else 0
    return len(batch)


def _replayable(data, num_passes: int):
    """A function returning a fresh iterator over the batches of `data` each time."""
    if isinstance(data, pa.Table):
        batches = data.to_batches()
        return lambda: iter(batches)
    if isinstance(data, (pa.RecordBatch, Mapping)) or type(data).__module__.startswith(
            "pandas"):
        return lambda: iter([data])
    if isinstance(data, Iterator) and num_passes > 1:
        data = list(data)
    return lambda: iter(data)
