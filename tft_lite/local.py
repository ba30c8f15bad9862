"""In-process analysis: `analyze(preprocessing_fn, data, raw_feature_spec)`.

Traces the function, plans the phases (plan.py), then makes one pass over the batches per
phase: every analyzer of the phase gets each batch's values through its combiner's
add_input, and extract_output at the end. The results are bound into a data-only
TransformGraph. Same plan and combiners a Beam runner uses; no Beam here.

Speed (bench/bench_local.py): Arrow data is regrouped into batches of up to 2**20 rows, and
the analyzers of a phase run on a thread pool. Neither can change a result: every combiner
gives the same output for any batch split (tests check it), and each accumulator still
receives its batches one at a time, in order.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from tft_lite.errors import GraphError, SchemaError, TftLiteError
from tft_lite.ir.schema import normalize_schema
from tft_lite.plan import finalize, make_plan, phase_inputs
from tft_lite.serving.graph import TransformGraph
from tft_lite.trace import trace

_BATCH_ROWS = 1 << 20  # rows per analysis batch when regrouping Arrow data (see _replayable)


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
    results, bound = {}, {}  # bound: each analyzer's binding, shared by the bind calls
    for phase in plan.phases:
        results.update(_run_phase(plan, phase, results, batches, allow_empty, bound))
    graph, assets = finalize(plan, results, bound)
    return TransformGraph(graph, assets)


def _run_phase(plan, phase, results: dict, batches, allow_empty: bool, bound: dict) -> dict:
    """One pass over the data for the analyzers of `phase`; their outputs by node index.

    The analyzers of a phase are independent, so their add_input / extract_output calls run
    on a thread pool (one thread per usable core): numpy and pyarrow release the GIL in
    their kernels. Each accumulator still sees its batches in order, so nothing changes.
    """
    inputs = phase_inputs(plan, phase.index, results, bound)
    accumulators = [step.combiner.create_accumulator() for step in phase.steps]
    rows = 0
    with _pool(len(phase.steps)) as pool:
        for batch in batches():
            try:
                values = inputs(batch, row_offset=rows)
            except GraphError as exc:  # op errors count rows within the batch
                raise GraphError(f"{exc} [in the batch starting at row {rows}]") from exc
            accumulators = pool.starmap(_guard, [
                (step, plan, step.combiner.add_input, acc, step_values)
                for step, acc, step_values in zip(phase.steps, accumulators, values)])
            rows += _num_rows(batch)
        if rows == 0 and not allow_empty:
            raise SchemaError("analyze got no rows: analyzers over empty data give TFT's "
                              "placeholder results (pass allow_empty=True to accept them)")
        outputs = pool.starmap(_guard, [(step, plan, step.combiner.extract_output, acc)
                                        for step, acc in zip(phase.steps, accumulators)])
    return {step.node_index: out for step, out in zip(phase.steps, outputs)}


class _pool:
    """A thread pool for a phase's analyzers (starmap), or none on a single core."""

    def __init__(self, num_tasks: int):
        workers = min(num_tasks, _num_cpus())
        self._executor = ThreadPoolExecutor(workers) if workers > 1 else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._executor is not None:
            self._executor.shutdown()

    def starmap(self, fn, arg_tuples) -> list:
        if self._executor is None:
            return [fn(*args) for args in arg_tuples]
        futures = [self._executor.submit(fn, *args) for args in arg_tuples]
        return [f.result() for f in futures]  # the first failing analyzer's error, in order


def _num_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    """A function returning a fresh iterator over the batches of `data` each time.

    Arrow batches are regrouped into batches of about _BATCH_ROWS rows (zero-copy Table
    slices): per-batch costs (conversion, one value_counts per vocabulary) are paid a few
    times rather than once per small CSV block, and every combiner gives the same result
    for any batch split, so the grouping cannot change an output.
    """
    if isinstance(data, pa.Table):
        return lambda: _table_slices(data)
    if isinstance(data, (pa.RecordBatch, Mapping)) or type(data).__module__.startswith(
            "pandas"):
        return lambda: iter([data])
    if isinstance(data, Iterator) and num_passes > 1:
        data = list(data)
    return lambda: _coalesce(iter(data))


def _table_slices(table: pa.Table):
    if table.num_rows == 0:
        yield from table.to_batches()
    for start in range(0, table.num_rows, _BATCH_ROWS):
        yield table.slice(start, _BATCH_ROWS)


def _coalesce(batches):
    """Consecutive RecordBatches / Tables of one schema joined into ~_BATCH_ROWS-row Tables."""
    group, rows = [], 0
    for batch in batches:
        if not isinstance(batch, (pa.RecordBatch, pa.Table)):
            yield from _flush(group)
            group, rows = [], 0
            yield batch
            continue
        if group and not batch.schema.equals(group[0].schema):
            yield from _flush(group)
            group, rows = [], 0
        group.append(batch)
        rows += batch.num_rows
        if rows >= _BATCH_ROWS:
            yield from _flush(group)
            group, rows = [], 0
    yield from _flush(group)


def _flush(group):
    if len(group) == 1:
        yield group[0]
    elif group:
        yield pa.concat_tables([pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch)
                                else b for b in group])
