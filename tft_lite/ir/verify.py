"""verify(graph): the structural checks every graph passes before anyone runs it.

Checks single assignment, use after definition, known ops with their input and output counts,
attribute names and types (against ops.py), value kinds and dtypes, outputs that exist and have
a batch dimension, asset file names that stay inside assets/, and (for serving graphs) that no
analyzer is left. A failure raises GraphError naming the node index and op, with the nodes
around it reprinted (as JAX's check_jaxpr does). Imports numpy and the ir layer only.
"""
from __future__ import annotations

import numpy as np

from tft_lite.errors import GraphError
from tft_lite.ir import nodes as ir
from tft_lite.ir.ops import OPS

_OUTPUT_DTYPES = ("float32", "int64", "string")  # what a tf.train.Feature holds
_NUMPY_KINDS = {"bool": "b", "int32": "i", "int64": "i", "float32": "f", "float64": "f",
                "string": "O"}


def verify(graph: ir.Graph, *, allow_analyzers: bool = False) -> None:
    """Raises GraphError if `graph` is malformed; returns None otherwise."""
    defined: dict[int, ir.Value] = {}
    for name, value in graph.inputs.items():
        if name not in graph.input_spec:
            raise GraphError(f"graph input {name!r} has no feature spec")
        if value.kind not in ir.BATCH_KINDS:
            raise GraphError(f"graph input {name!r} must be dense or ragged, got {value.kind}")
        _define(defined, value, f"input {name!r}")
    for index, node in enumerate(graph.nodes):
        try:
            _check_node(node, defined, allow_analyzers)
        except GraphError as exc:
            raise GraphError(f"node {index} ({node.op}): {exc}\n{_context(graph, index)}") from exc
        for value in node.outputs:
            _define(defined, value, f"node {index} ({node.op})")
    for name, value_id in graph.outputs.items():
        if value_id not in defined:
            raise GraphError(f"output {name!r} refers to undefined value %{value_id}")
        if not defined[value_id].has_batch:
            raise GraphError(f"output {name!r} (%{value_id}) has no batch dimension")
        if defined[value_id].dtype not in _OUTPUT_DTYPES:
            raise GraphError(f"output {name!r} (%{value_id}) has dtype "
                             f"{defined[value_id].dtype}, not one of {_OUTPUT_DTYPES}")


def _define(defined: dict, value: ir.Value, where: str) -> None:
    if not isinstance(value, ir.Value):
        raise GraphError(f"{where}: outputs must be Values, got {type(value).__name__}")
    if value.id in defined:
        raise GraphError(f"{where}: value %{value.id} is assigned twice")
    if value.kind not in ir.KINDS:
        raise GraphError(f"{where}: value %{value.id} has unknown kind {value.kind!r}")
    if value.dtype not in ir.DTYPES:
        raise GraphError(f"{where}: value %{value.id} has unknown dtype {value.dtype!r}")
    if not all(d is None or (isinstance(d, int) and d >= 0) for d in value.shape):
        raise GraphError(f"{where}: value %{value.id} has a bad shape {value.shape!r}")
    defined[value.id] = value


def _check_node(node: ir.Node, defined: dict, allow_analyzers: bool) -> None:
    opdef = OPS.get(node.op)
    if opdef is None:
        raise GraphError(f"unknown op {node.op!r} (written by a newer tft_lite?)")
    if ir.is_analyzer(node.op) and not allow_analyzers:
        raise GraphError("analyzer left in a graph meant for serving (bind analyzers first)")
    if len(node.inputs) != opdef.num_inputs:
        raise GraphError(f"expected {opdef.num_inputs} inputs, got {len(node.inputs)}")
    if len(node.outputs) != opdef.num_outputs:
        raise GraphError(f"expected {opdef.num_outputs} outputs, got {len(node.outputs)}")
    for value_id in node.inputs:
        if value_id not in defined:
            raise GraphError(f"input %{value_id} is used before it is defined")
    expected = dict(opdef.attrs)
    if set(node.attrs) != set(expected):
        raise GraphError(f"attributes {sorted(node.attrs)} != expected {sorted(expected)}")
    for name, attr_type in expected.items():
        if not _ATTR_CHECKS[attr_type](node.attrs[name]):
            raise GraphError(f"attribute {name!r} must be {attr_type}, got "
                             f"{type(node.attrs[name]).__name__}")
    if node.op == "asset":
        _check_asset_name(node.attrs["filename"])
    if node.op == "constant":
        _check_tensor_dtype(node.attrs["value"], node.outputs[0])


def _check_asset_name(filename: str) -> None:
    """Asset names are plain file names: no directories, so loading stays inside assets/."""
    if (not filename or filename in (".", "..") or "/" in filename or "\\" in filename
            or "\0" in filename):
        raise GraphError(f"asset file name {filename!r} must be a plain file name")


def _check_tensor_dtype(value: np.ndarray, out: ir.Value) -> None:
    if value.dtype.kind != _NUMPY_KINDS[out.dtype] or (
            out.dtype != "string" and value.dtype != np.dtype(out.dtype)):
        raise GraphError(f"constant of numpy dtype {value.dtype} declared {out.dtype}")
    if tuple(value.shape) != tuple(out.shape):
        raise GraphError(f"constant of shape {value.shape} declared {out.shape}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_tensor(v) -> bool:
    if not isinstance(v, np.ndarray) or v.dtype.kind not in "biufO":
        return False
    return v.dtype.kind != "O" or all(isinstance(x, bytes) for x in v.reshape(-1))


_ATTR_CHECKS = {
    "int": _is_int,
    "float": lambda v: isinstance(v, (float, int, np.floating)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, (bool, np.bool_)),
    "str": lambda v: isinstance(v, str),
    "ints": lambda v: isinstance(v, (tuple, list)) and all(_is_int(x) for x in v),
    "bytes_list": lambda v: isinstance(v, (tuple, list)) and all(isinstance(x, bytes) for x in v),
    "tensor": _is_tensor,
}


def _context(graph: ir.Graph, index: int, radius: int = 2) -> str:
    """The nodes around `index`, the failing one marked, for the error message."""
    lines = []
    for i in range(max(0, index - radius), min(len(graph.nodes), index + radius + 1)):
        marker = ">>" if i == index else "  "
        lines.append(marker + ir.format_node(i, graph.nodes[i]))
    return "\n".join(lines)
