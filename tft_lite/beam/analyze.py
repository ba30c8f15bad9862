"""AnalyzeDataset on Beam: one pass over the data per phase of analyzers.

The plan (tft_lite/plan.py) groups analyzers into phases; for each phase:

  1. `_AccumulatePhase` (a DoFn) computes the phase's analyzer inputs for each RecordBatch
     (reading a lazy source's splits itself) and folds a whole bundle into one partial
     accumulator per analyzer, emitted when the bundle finishes (one element per analyzer
     and bundle, not per row or batch). A vocabulary's accumulator is then cut once into
     hash shards of its tokens, so counting is distributed per token.
  2. `CombinePerKey(_MergeAccumulators)` merges partial accumulators per (analyzer, shard);
     the runner's combiner lifting passes each bundle's already-folded partial through.
  3. A vocabulary shard keeps only the tokens that can survive `frequency_threshold` and
     `top_k` (every occurrence of a token is in one shard, so this is exact), and a second
     CombinePerKey per analyzer merges shard results and extracts the output; top_k never
     pulls all distinct tokens to one worker.
  4. The phase's results, (analyzer node index, result) pairs, reach every later phase and
     the final binding as AsDict side inputs.

Finally the results are bound into the data-only graph; the transform_fn PCollection holds
one `TransformFnArtifact`: the serialized graph bytes and the asset files' bytes. Every
accumulator is exact and order-free except quantiles on data with more distinct values than
the sketch keeps exactly (see docs/beam.md), so the graph bytes do not depend on the runner,
bundle sizes or worker count.
"""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from tft_lite.analyzers.vocabulary import VocabularyCombiner
from tft_lite.beam.batches import ConsumerBatches, in_global_window, record_batches_of
from tft_lite.beam.context import Context
from tft_lite.beam.metadata import TupleInputMixin, DatasetMetadata, feature_spec_of
from tft_lite.beam.runners import check_runner
from tft_lite.ir import nodes as ir
from tft_lite.ir.serialize import graph_to_bytes
from tft_lite.plan import finalize, make_plan, phase_inputs
from tft_lite.serving.schema import output_spec
from tft_lite.trace import trace


class TransformFnArtifact(NamedTuple):
    """The element of a transform_fn PCollection: a data-only transform graph."""

    graph_bytes: bytes
    assets: dict  # asset file name -> bytes


class _AccumulatePhase(beam.DoFn):
    """A bundle's analyzer inputs -> one partial accumulator per analyzer (per shard).

    Each batch is added to the bundle's accumulator of each analyzer; finish_bundle emits
    them, a vocabulary's cut once into hash shards of its tokens. (Cutting and merging every
    batch's partials instead cost more than the counting. Beam 2.77's own DaskRunner drops
    finish_bundle outputs: use tft_lite.beam.dask_runner.DaskRunner, see docs/runners.md.)
    """

    def __init__(self, plan, phase_index: int, vocabulary_shards: int):
        self._plan = plan
        self._phase = plan.phases[phase_index]
        self._shards = vocabulary_shards
        self._inputs = None
        self._accumulators = None

    def start_bundle(self):
        self._accumulators = None

    def process(self, element, *earlier):
        if self._inputs is None:
            results = _results_of(self._plan, self._phase.index, earlier)
            self._inputs = phase_inputs(self._plan, self._phase.index, results)
        if self._accumulators is None:
            self._accumulators = [step.combiner.create_accumulator()
                                  for step in self._phase.steps]
        for batch in record_batches_of(element, self._inputs.required_features):
            values = self._inputs(batch)
            for i, step in enumerate(self._phase.steps):
                self._accumulators[i] = step.combiner.add_input(self._accumulators[i],
                                                                values[i])

    def finish_bundle(self):
        accumulators, self._accumulators = self._accumulators, None
        for i, accumulator in enumerate(accumulators or ()):
            for key, value in self._partials(i, accumulator):
                yield in_global_window((key, value))

    def _partials(self, i, accumulator):
        combiner = self._phase.steps[i].combiner
        if isinstance(combiner, VocabularyCombiner):
            for shard, part in enumerate(combiner.split(accumulator, self._shards)):
                if part:
                    yield (i, shard), (i, part)
        else:
            yield (i, 0), (i, combiner.compact(accumulator))


class _IndexedCombineFn(beam.CombineFn):
    """Values are tuples whose first item is the analyzer's index in the phase: merging
    uses that analyzer's combiner. The accumulator is such a tuple, or None when empty."""

    def __init__(self, combiners):
        self._combiners = combiners

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, value):
        return self.merge_accumulators([accumulator, value])

    def merge_accumulators(self, accumulators):
        present = [a for a in accumulators if a is not None]
        if not present:
            return None
        if len(present) == 1:  # the lifted combine's first input: nothing to merge
            return present[0]
        return self._merge(present[0][0], self._combiners[present[0][0]], present)


class _MergeAccumulators(_IndexedCombineFn):
    """(index, accumulator) values merged per (analyzer, shard) key. No compact(): partials
    arrive folded per bundle (_AccumulatePhase), so re-sorting them would be pure cost."""

    def _merge(self, index, combiner, present):
        return index, combiner.merge_accumulators([a for _, a in present])

    def extract_output(self, accumulator):
        return accumulator


class _MergeShards(_IndexedCombineFn):
    """(index, pruned shard accumulator, distinct tokens) values merged per analyzer; the
    output is the analyzer's result."""

    def _merge(self, index, combiner, present):
        merged = combiner.merge_accumulators([a for _, a, _ in present])
        return index, merged, sum(d for _, _, d in present)

    def extract_output(self, accumulator):
        index, merged, distinct = accumulator
        combiner = self._combiners[index]
        if isinstance(combiner, VocabularyCombiner):  # tokens stay Arrow up to the binder
            return combiner.with_unpruned_size(combiner.extract_arrow_output(merged), distinct)
        return combiner.extract_output(merged)


def _prune_shard(keyed, combiners):
    (index, _), (_, accumulator) = keyed
    combiner = combiners[index]
    if isinstance(combiner, VocabularyCombiner):
        pruned, distinct = combiner.prune(accumulator)
        return index, (index, pruned, distinct)
    return index, (index, accumulator, 0)


def _results_of(plan, phases: int, dicts) -> dict:
    """The results of the first `phases` phases, keyed by analyzer node index, from the
    phases' result dicts; an analyzer that saw no data gets its combiner's result on an empty
    accumulator (TFT's defaults)."""
    results = {}
    for d in dicts:
        results.update(d)
    for phase in plan.phases[:phases]:
        for step in phase.steps:
            if step.node_index not in results:
                empty = step.combiner.create_accumulator()
                results[step.node_index] = step.combiner.extract_output(empty)
    return results


def _needed_results(plan, phase_index: int, phase_results: list) -> list:
    """Earlier phases' results that phase `phase_index`'s inputs depend on, filtered where
    they are made: a phase that reads one mean gets that mean as its side input, not every
    vocabulary (the others are bound to placeholder results it never evaluates)."""
    wanted = {i for step in plan.phases[phase_index].steps for i in step.input_ids}
    needed = {i for i, flag in enumerate(ir.needed_nodes(plan.graph, wanted)) if flag}
    out = []
    for j, results in enumerate(phase_results):
        keep = frozenset(s.node_index for s in plan.phases[j].steps) & needed
        if keep:
            out.append(results | f"Phase{j}For{phase_index}" >> beam.Filter(
                lambda item, keep: item[0] in keep, keep))
    return out


def _finalize(_, plan, *dicts) -> TransformFnArtifact:
    graph, assets = finalize(plan, _results_of(plan, len(plan.phases), dicts))
    return TransformFnArtifact(graph_to_bytes(graph), dict(assets))


class _AnalyzePhase(beam.PTransform):
    """Batches -> (analyzer node index, result) for each analyzer of one phase.

    Earlier phases' results arrive as AsDict side inputs of their keyed PCollections (no
    singleton dict is rebuilt and re-encoded at each phase: vocabularies are large).
    """

    def __init__(self, plan, phase_index, shards, earlier):
        super().__init__()
        self._plan, self._index, self._shards = plan, phase_index, shards
        self._earlier = earlier

    def expand(self, batches):
        steps = self._plan.phases[self._index].steps
        combiners = [step.combiner for step in steps]
        side_inputs = [beam.pvalue.AsDict(e) for e in self._earlier]
        return (
            batches
            | "Accumulate" >> beam.ParDo(
                _AccumulatePhase(self._plan, self._index, self._shards), *side_inputs)
            | "MergePerShard" >> beam.CombinePerKey(_MergeAccumulators(combiners))
            | "PruneShards" >> beam.Map(_prune_shard, combiners)
            | "MergeShards" >> beam.CombinePerKey(_MergeShards(combiners))
            | "ByNode" >> beam.MapTuple(lambda i, result: (steps[i].node_index, result)))


class AnalyzeDataset(TupleInputMixin, beam.PTransform):
    """(raw_data, raw_metadata) -> transform_fn, as TFT's AnalyzeDataset.

    raw_data: a PCollection of pyarrow RecordBatches (per-row dicts are accepted and batched;
      a lazy source's SourceSplits are read by each phase).
    raw_metadata: a DatasetMetadata or a feature-spec dict.
    Returns transform_fn = (PCollection with one TransformFnArtifact, transformed metadata).
    """

    def __init__(self, preprocessing_fn, output_record_batches=True):
        super().__init__()
        self._preprocessing_fn = preprocessing_fn
        del output_record_batches  # always RecordBatches

    def expand(self, dataset):
        raw_data, raw_metadata = dataset
        spec = feature_spec_of(raw_metadata)
        batches = ConsumerBatches(raw_data, spec, Context.get().desired_batch_size)
        return analyze_batches(batches, spec, self._preprocessing_fn)


def analyze_batches(batches, spec: dict, preprocessing_fn):
    """RecordBatches -> transform_fn = (PCollection[TransformFnArtifact], output metadata).

    batches: a function label -> PCollection of RecordBatches (ConsumerBatches), called
    once per phase.
    """
    check_runner(batches.pipeline)
    plan = make_plan(trace(preprocessing_fn, spec))
    shards = Context.get().vocabulary_shards
    phase_results = []  # per phase: PCollection of (analyzer node index, result)
    for phase in plan.phases:
        earlier = _needed_results(plan, phase.index, phase_results)
        phase_results.append(batches(f"Phase{phase.index}") | f"Phase{phase.index}" >>
                             _AnalyzePhase(plan, phase.index, shards, earlier))
    artifact = (batches.pipeline | "FinalizeTrigger" >> beam.Create([None])
                | "Finalize" >> beam.Map(_finalize, plan,
                                         *[beam.pvalue.AsDict(r) for r in phase_results]))
    return artifact, DatasetMetadata(output_spec(plan.graph))
