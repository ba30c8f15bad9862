"""The transformed schema: a feature spec per output, plus TFT's integer domains.

Output specs follow the value types: dense [batch, *shape] -> FixedLenFeature(shape), ragged ->
VarLenFeature, with the output's dtype (the tracer admits only float32, int64 and string
outputs, as TFT does: the three kinds a tf.train.Feature holds). Integer domains are TFT's
schema overrides: an output produced directly by apply_vocabulary or apply_buckets gets
`int_domain {min max is_categorical: true}`, with bounds known only once the analyzers ran
(vocabulary size, number of boundaries). Like TFT, any op applied afterwards drops the
annotation. The domain rules are a table keyed by op, like every other interpreter here.

Imports the ir and serving layers only.
"""
from __future__ import annotations

import numpy as np

from tft_lite.ir import nodes as ir
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature

DOMAIN_RULES: dict = {}


def domain_rule(op):
    """Registers fn(node, constants) -> (min, max) as the integer-domain rule of `op`."""
    def register(fn):
        DOMAIN_RULES[op] = fn
        return fn
    return register


@domain_rule("apply_vocabulary")
def _vocabulary_domain(node: ir.Node, constants: dict):
    asset = constants[node.inputs[1]]
    size = asset.vocabulary_size(node.attrs["store_frequency"])
    oov, default = node.attrs["num_oov_buckets"], node.attrs["default_value"]
    if oov > 0:
        return 0, size + oov - 1
    return min(0, default), max(size - 1, default)


@domain_rule("apply_buckets")
def _buckets_domain(node: ir.Node, constants: dict):
    boundaries = np.asarray(constants[node.inputs[1]])
    return 0, int(boundaries.shape[-1])


def output_spec(graph: ir.Graph) -> dict:
    """Output name -> FixedLenFeature / VarLenFeature, sorted by name."""
    types = ir.value_types(graph)
    spec = {}
    for name, value_id in sorted(graph.outputs.items()):
        value = types[value_id]
        dtype = value.dtype
        if value.kind == ir.RAGGED:
            spec[name] = VarLenFeature(dtype)
        else:
            spec[name] = FixedLenFeature(list(value.shape), dtype)
    return spec


def int_domains(graph: ir.Graph, constants: dict) -> dict:
    """Output name -> (min, max, is_categorical) for outputs with a domain rule."""
    producer = ir.producers(graph)
    domains = {}
    for name, value_id in sorted(graph.outputs.items()):
        if value_id not in producer:
            continue
        node = graph.nodes[producer[value_id]]
        if node.op in DOMAIN_RULES:
            low, high = DOMAIN_RULES[node.op](node, constants)
            domains[name] = (int(low), int(high), True)
    return domains
