"""AnalyzeDataset on Beam: one pass over the data per phase of analyzers.

The plan (tft_lite/plan.py) groups analyzers into phases; for each phase:

  1. `_AccumulatePhase` (a DoFn) computes the phase's analyzer inputs for each RecordBatch
     and folds them into one partial accumulator per analyzer (one element per analyzer and
     batch leaves it, not one per row). A vocabulary's accumulator is split into hash shards
     of its tokens, so counting is distributed per token.
  2. `CombinePerKey(_MergeAccumulators)` merges partial accumulators per (analyzer, shard);
     the runner lifts it into per-bundle partial combines (pre-aggregation).
  3. A vocabulary shard keeps only the tokens that can survive `frequency_threshold` and
     `top_k` (every occurrence of a token is in one shard, so this is exact), and a second
     CombinePerKey per analyzer merges shard results and extracts the output; top_k never
     pulls all distinct tokens to one worker.
  4. The phase's results join the results of earlier phases in a singleton dict, the side
     input of the next phase.

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
from tft_lite.beam.batches import ConsumerBatches, record_batches_of
from tft_lite.beam.context import Context
from tft_lite.beam.metadata import TupleInputMixin, DatasetMetadata, feature_spec_of
from tft_lite.ir.serialize import graph_to_bytes
from tft_lite.plan import finalize, make_plan, phase_inputs
from tft_lite.serving.schema import output_spec
from tft_lite.trace import trace


class TransformFnArtifact(NamedTuple):
    """The element of a transform_fn PCollection: a data-only transform graph."""

    graph_bytes: bytes
    assets: dict  # asset file name -> bytes


class _AccumulatePhase(beam.DoFn):
    """Each batch's analyzer inputs -> one partial accumulator per analyzer (per shard).

    Partials are emitted from process(), not finish_bundle(): Beam 2.77's DaskRunner drops
    what a DoFn with side inputs yields in finish_bundle (tests/beam/test_runners.py). The
    per-bundle pre-aggregation is the runner's combiner lifting of the CombinePerKey below.
    """

    def __init__(self, plan, phase_index: int, vocabulary_shards: int):
        self._plan = plan
        self._phase = plan.phases[phase_index]
        self._shards = vocabulary_shards
        self._inputs = None

    def process(self, element, results):
        if self._inputs is None:
            self._inputs = phase_inputs(self._plan, self._phase.index, results)
        for batch in record_batches_of(element):
            yield from self._accumulate(batch)

    def _accumulate(self, batch):
        values = self._inputs(batch)
        for i, step in enumerate(self._phase.steps):
            combiner = step.combiner
            accumulator = combiner.add_input(combiner.create_accumulator(), values[i])
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
        return self._merge(present[0][0], self._combiners[present[0][0]], present)


class _MergeAccumulators(_IndexedCombineFn):
    """(index, accumulator) values merged per (analyzer, shard) key."""

    def _merge(self, index, combiner, present):
        return index, combiner.merge_accumulators([a for _, a in present])

    def compact(self, accumulator):
        if accumulator is None:
            return None
        return accumulator[0], self._combiners[accumulator[0]].compact(accumulator[1])

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
        outputs = combiner.extract_output(merged)
        if isinstance(combiner, VocabularyCombiner):
            outputs = combiner.with_unpruned_size(outputs, distinct)
        return outputs


def _prune_shard(keyed, combiners):
    (index, _), (_, accumulator) = keyed
    combiner = combiners[index]
    if isinstance(combiner, VocabularyCombiner):
        pruned, distinct = combiner.prune(accumulator)
        return index, (index, pruned, distinct)
    return index, (index, accumulator, 0)


def _phase_results(phase_dict, previous, steps):
    """Earlier results plus this phase's, keyed by analyzer node index; empty data gives
    each combiner's result on an empty accumulator (TFT's defaults)."""
    results = dict(previous)
    for i, step in enumerate(steps):
        if i in phase_dict:
            results[step.node_index] = phase_dict[i]
        else:
            empty = step.combiner.create_accumulator()
            results[step.node_index] = step.combiner.extract_output(empty)
    return results


def _finalize(results, plan) -> TransformFnArtifact:
    graph, assets = finalize(plan, results)
    return TransformFnArtifact(graph_to_bytes(graph), dict(assets))


class _AnalyzePhase(beam.PTransform):
    def __init__(self, plan, phase_index, shards):
        super().__init__()
        self._plan, self._index, self._shards = plan, phase_index, shards

    def expand(self, inputs):
        batches, results = inputs
        steps = self._plan.phases[self._index].steps
        combiners = [step.combiner for step in steps]
        phase_dict = (
            batches
            | "Accumulate" >> beam.ParDo(_AccumulatePhase(self._plan, self._index,
                                                          self._shards),
                                         results=beam.pvalue.AsSingleton(results))
            | "MergePerShard" >> beam.CombinePerKey(_MergeAccumulators(combiners))
            | "PruneShards" >> beam.Map(_prune_shard, combiners)
            | "MergeShards" >> beam.CombinePerKey(_MergeShards(combiners))
            | "ToDict" >> beam.combiners.ToDict())
        return phase_dict | "WithEarlier" >> beam.Map(
            _phase_results, previous=beam.pvalue.AsSingleton(results), steps=steps)


class AnalyzeDataset(TupleInputMixin, beam.PTransform):
    """(raw_data, raw_metadata) -> transform_fn, as TFT's AnalyzeDataset.

    raw_data: a PCollection of pyarrow RecordBatches (per-row dicts are accepted and batched).
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
    plan = make_plan(trace(preprocessing_fn, spec))
    shards = Context.get().vocabulary_shards
    results = batches.pipeline | "NoResults" >> beam.Create([{}])
    for phase in plan.phases:
        phase_batches = batches(f"Phase{phase.index}")
        results = (phase_batches, results) | f"Phase{phase.index}" >> _AnalyzePhase(
            plan, phase.index, shards)
    artifact = results | "Finalize" >> beam.Map(_finalize, plan)
    return artifact, DatasetMetadata(output_spec(plan.graph))
