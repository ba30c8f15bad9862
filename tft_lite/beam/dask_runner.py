"""Beam's DaskRunner with its ParDo translation fixed.

Use it as ``--runner=tft_lite.beam.dask_runner.DaskRunner``.

Apache Beam 2.77's DaskRunner (``apache_beam/runners/dask/``) translates a ParDo in
``transform_evaluator.py`` (``ParDo.apply`` and ``apply_dofn_to_bundle``) with two bugs:

1. ``ParDo.apply`` creates ONE ``OneReceiver`` (and one ``_OutputHandler`` holding it) per
   ParDo when the graph is built, and passes it to every ``map_partitions`` task. Its
   ``values`` list is never cleared, so when a worker process runs several partitions of a
   bag, or recomputes a bag (``DaskBagWindowedIterator.__iter__`` does ``list(self.bag)`` for
   every side input), each task returns the outputs of the earlier ones again: elements are
   duplicated (tft_lite's transform step saw every row 2-3 times).
2. ``apply_dofn_to_bundle`` takes the results BEFORE ``invoke_finish_bundle()``, so everything
   a DoFn yields from ``finish_bundle`` is dropped (tft_lite's batching DoFns emit there).

This runner is Beam's, with a ParDo op that builds the receivers and output handler inside
each partition's task and collects the outputs after ``finish_bundle``. It is installed by
overriding ``DaskRunner.to_dask_bag_visitor`` (a copy of Beam's visitor that looks ops up in
this module's table); Beam's globals are not touched. The visitor also fixes a third bug:
Beam's maps every output of a multi-output ParDo (``with_outputs``, e.g. tft_lite's dead
letters) to the producer's whole bag, so the main output's consumers also get the tagged
elements; ours selects each consumer's PCollection by its tag. Like Beam's, it computes only
the pipeline's last leaf: tft_lite funnels every output into one final commit step.
"""
from __future__ import annotations

import collections
import dataclasses

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
from apache_beam.runners.dask import dask_runner as _beam_dask
from apache_beam.runners.dask import transform_evaluator as te
from apache_beam.transforms.sideinputs import SideInputMap


def _run_bundle(items, fn, label, window_fn, side_inputs, args, kwargs):
    """One Dask partition = one bundle, with its own receivers."""
    receivers = te.OneReceiver()
    handler = _OutputHandler(
        window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
        per_element_output_counter=None, output_batch_converter=None,
        process_yields_batches=False, process_batch_yields_elements=False)
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(label, state=None),
        side_inputs=side_inputs, input_args=list(args), input_kwargs=kwargs,
        user_state_context=None, bundle_finalizer_param=beam.DoFn.BundleFinalizerParam())
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    # Values unwrapped as in Beam's op; tagged ones keep their tag for _select.
    return [beam.pvalue.TaggedOutput(v.tag, v.value.value)
            if isinstance(v, beam.pvalue.TaggedOutput) else v.value for v in receivers.values]


def _select(items, tag):
    """The elements of output `tag` (None: the main output) of a multi-output ParDo's bag."""
    if tag is None:
        return [x for x in items if not isinstance(x, beam.pvalue.TaggedOutput)]
    return [x.value for x in items if isinstance(x, beam.pvalue.TaggedOutput) and x.tag == tag]


class ParDo(te.DaskBagOp):
    """``transform_evaluator.ParDo`` without shared receivers and with finish_bundle outputs."""

    def apply(self, input_bag, side_inputs=None):
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = getattr(getattr(main_input, "windowing", None), "windowfn", None)
        return input_bag.map(te.get_windowed_value, window_fn).map_partitions(
            _run_bundle, transform.fn, transform.label, window_fn, side_inputs,
            list(args), kwargs)


TRANSLATIONS = {**te.TRANSLATIONS, beam.ParDo: ParDo}


class DaskRunner(_beam_dask.DaskRunner):
    """Beam's DaskRunner with the ParDo op above (see the module docstring)."""

    @staticmethod
    def to_dask_bag_visitor(bag_kwargs=None) -> PipelineVisitor:
        bag_kwargs = bag_kwargs or {}

        @dataclasses.dataclass
        class DaskBagVisitor(PipelineVisitor):
            # Beam's DaskBagVisitor (dask_runner.py), with ops from our TRANSLATIONS.
            bags: dict = dataclasses.field(default_factory=collections.OrderedDict)

            def bag_of(self, pcoll):
                bag = self.bags.get(pcoll.producer)
                if bag is not None and len(pcoll.producer.outputs) > 1:
                    bag = bag.map_partitions(_select, pcoll.tag)
                return bag

            def visit_transform(self, node) -> None:
                op = TRANSLATIONS.get(node.transform.__class__, te.NoOp)(
                    node, bag_kwargs=bag_kwargs)
                op_kws = {"input_bag": None, "side_inputs": None}
                if node.inputs:
                    bags = [None if isinstance(i, pvalue.PBegin) else self.bag_of(i)
                            for i in node.inputs
                            if isinstance(i, pvalue.PBegin) or i.producer in self.bags]
                    op_kws["input_bag"] = (bags[0] if len(bags) == 1
                                           and not isinstance(op, te.Flatten) else bags)
                if node.side_inputs:
                    op_kws["side_inputs"] = [
                        SideInputMap(type(si), si._view_options(), te.DaskBagWindowedIterator(
                            self.bag_of(si.pvalue), si._window_mapping_fn))
                        for si in node.side_inputs]
                self.bags[node] = op.apply(**op_kws)

        return DaskBagVisitor()
