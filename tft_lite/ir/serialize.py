"""Graphs <-> bytes: the versioned protobuf file format of a transform graph.

The descriptors are built in Python (like io/protos.py), under package `tft_lite.graph`, so no
protoc and no generated code. A file is one `GraphFile` message:

  magic    "tft_lite.graph"
  version  {major, minor}: a reader rejects a newer major version before parsing anything
           else; a newer minor version parses (new ops then fail verify by name)
  graph    the serialized `Graph` message
  sha256   of `graph`: a truncated or edited file fails loudly instead of loading a wrong graph

Loading never executes code: the file holds only op names, numbers, strings and typed tensors
(little-endian raw bytes, or a list of byte strings), interpreted by fixed tables. Writing is
deterministic: repeated fields in graph order, attributes sorted by name, deterministic protobuf
serialization, so the same graph always gives the same bytes.

Imports numpy, protobuf and the ir layer only.
"""
from __future__ import annotations

import hashlib

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from tft_lite.errors import GraphError
from tft_lite.ir import nodes as ir
from tft_lite.ir.ops import OPS
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature, normalize_schema
from tft_lite.ir.verify import verify

FORMAT_MAGIC = "tft_lite.graph"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_P = ".tft_lite.graph."


def _field(name, number, ftype, label=_OPT, type_name=None, oneof=None):
    field = _F(name=name, number=number, type=ftype, label=label)
    if type_name:
        field.type_name = _P + type_name
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _message(name, fields, oneofs=()):
    msg = descriptor_pb2.DescriptorProto(name=name, field=fields)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    return msg


def _graph_file() -> descriptor_pb2.FileDescriptorProto:
    m, s, i, b = _F.TYPE_MESSAGE, _F.TYPE_STRING, _F.TYPE_INT64, _F.TYPE_BYTES
    return descriptor_pb2.FileDescriptorProto(
        name="tft_lite/graph.proto", package="tft_lite.graph", syntax="proto3",
        message_type=[
            _message("Version", [_field("major", 1, _F.TYPE_UINT32),
                                 _field("minor", 2, _F.TYPE_UINT32)]),
            # Numeric tensors: little-endian C-order bytes in `data`; strings in `strings`.
            _message("Tensor", [_field("dtype", 1, s), _field("shape", 2, i, _REP),
                                _field("data", 3, b), _field("strings", 4, b, _REP)]),
            _message("IntList", [_field("value", 1, i, _REP)]),
            _message("BytesList", [_field("value", 1, b, _REP)]),
            _message("AttrValue", [
                _field("i", 1, i, oneof=0), _field("f", 2, _F.TYPE_DOUBLE, oneof=0),
                _field("b", 3, _F.TYPE_BOOL, oneof=0), _field("s", 4, s, oneof=0),
                _field("ints", 5, m, type_name="IntList", oneof=0),
                _field("bytes_list", 6, m, type_name="BytesList", oneof=0),
                _field("tensor", 7, m, type_name="Tensor", oneof=0)], oneofs=["value"]),
            _message("Attr", [_field("name", 1, s), _field("value", 2, m, type_name="AttrValue")]),
            # shape dims of -1 are unknown until run time.
            _message("ValueInfo", [_field("id", 1, i), _field("dtype", 2, s),
                                   _field("kind", 3, s), _field("shape", 4, i, _REP)]),
            _message("Node", [_field("op", 1, s), _field("inputs", 2, i, _REP),
                              _field("attrs", 3, m, _REP, type_name="Attr"),
                              _field("outputs", 4, m, _REP, type_name="ValueInfo")]),
            # kind "fixed_len" (shape, optional default_value) or "var_len".
            _message("FeatureInput", [_field("name", 1, s), _field("kind", 2, s),
                                      _field("dtype", 3, s), _field("shape", 4, i, _REP),
                                      _field("default_value", 5, m, type_name="Tensor"),
                                      _field("value", 6, m, type_name="ValueInfo")]),
            _message("Output", [_field("name", 1, s), _field("value", 2, i)]),
            _message("Graph", [_field("inputs", 1, m, _REP, type_name="FeatureInput"),
                               _field("nodes", 2, m, _REP, type_name="Node"),
                               _field("outputs", 3, m, _REP, type_name="Output")]),
            _message("GraphFile", [_field("magic", 1, s),
                                   _field("version", 2, m, type_name="Version"),
                                   _field("graph", 3, b), _field("sha256", 4, b)]),
        ])


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_graph_file())


def _cls(name):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tft_lite.graph." + name))


GraphFileProto = _cls("GraphFile")
GraphProto = _cls("Graph")
TensorProto = _cls("Tensor")


# --- tensors ---------------------------------------------------------------------------------

_TENSOR_DTYPES = {"bool": "|b1", "int32": "<i4", "int64": "<i8", "float32": "<f4",
                  "float64": "<f8"}


def _dtype_name(arr: np.ndarray) -> str:
    return "string" if arr.dtype.kind == "O" else arr.dtype.name


def tensor_to_proto(arr: np.ndarray, proto) -> None:
    """Fills a Tensor message from a numpy array (object arrays hold bytes)."""
    arr = np.asarray(arr)
    name = _dtype_name(arr)
    proto.dtype = name
    proto.shape.extend(int(d) for d in arr.shape)
    if name == "string":
        proto.strings.extend(bytes(v) for v in arr.reshape(-1))
    elif name in _TENSOR_DTYPES:
        proto.data = np.ascontiguousarray(arr, dtype=_TENSOR_DTYPES[name]).tobytes()
    else:
        raise GraphError(f"cannot store a tensor of dtype {arr.dtype}")


def tensor_from_proto(proto) -> np.ndarray:
    shape = tuple(int(d) for d in proto.shape)
    if any(d < 0 for d in shape):
        raise GraphError(f"tensor has a negative dimension: {shape}")
    size = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == "string":
        if len(proto.strings) != size:
            raise GraphError(f"string tensor of shape {shape} holds {len(proto.strings)} values")
        arr = np.empty(size, dtype=object)
        arr[:] = list(proto.strings)
        return arr.reshape(shape)
    if proto.dtype not in _TENSOR_DTYPES:
        raise GraphError(f"unknown tensor dtype {proto.dtype!r}")
    dtype = np.dtype(_TENSOR_DTYPES[proto.dtype])
    if len(proto.data) != size * dtype.itemsize:
        raise GraphError(f"tensor of shape {shape} {proto.dtype} needs "
                         f"{size * dtype.itemsize} bytes, has {len(proto.data)}")
    return np.frombuffer(proto.data, dtype=dtype).astype(proto.dtype).reshape(shape)


# --- attributes, values, nodes ---------------------------------------------------------------

def _attr_to_proto(value, attr_type: str, proto) -> None:
    if attr_type == "int":
        proto.i = int(value)
    elif attr_type == "float":
        proto.f = float(value)
    elif attr_type == "bool":
        proto.b = bool(value)
    elif attr_type == "str":
        proto.s = value
    elif attr_type == "ints":
        proto.ints.SetInParent()
        proto.ints.value.extend(int(v) for v in value)
    elif attr_type == "bytes_list":
        proto.bytes_list.SetInParent()
        proto.bytes_list.value.extend(value)
    else:
        tensor_to_proto(value, proto.tensor)


def _attr_from_proto(proto):
    which = proto.WhichOneof("value")
    if which is None:
        raise GraphError("attribute without a value")
    if which in ("ints", "bytes_list"):
        return tuple(getattr(proto, which).value)
    if which == "tensor":
        return tensor_from_proto(proto.tensor)
    return getattr(proto, which)


def _value_to_proto(value: ir.Value, proto) -> None:
    proto.id, proto.dtype, proto.kind = value.id, value.dtype, value.kind
    proto.shape.extend(-1 if d is None else int(d) for d in value.shape)


def _value_from_proto(proto) -> ir.Value:
    shape = tuple(None if d == -1 else int(d) for d in proto.shape)
    return ir.Value(int(proto.id), proto.dtype, proto.kind, shape)


def _node_to_proto(node: ir.Node, proto) -> None:
    proto.op = node.op
    proto.inputs.extend(node.inputs)
    attr_types = dict(OPS[node.op].attrs) if node.op in OPS else {}
    for name in sorted(node.attrs):
        attr = proto.attrs.add(name=name)
        _attr_to_proto(node.attrs[name], attr_types.get(name, "tensor"), attr.value)
    for value in node.outputs:
        _value_to_proto(value, proto.outputs.add())


def _node_from_proto(proto) -> ir.Node:
    attrs = {a.name: _attr_from_proto(a.value) for a in proto.attrs}
    return ir.Node(proto.op, tuple(int(i) for i in proto.inputs), attrs,
                   tuple(_value_from_proto(v) for v in proto.outputs))


def _input_to_proto(name, spec, value: ir.Value, proto) -> None:
    proto.name, proto.dtype = name, spec.dtype
    if isinstance(spec, VarLenFeature):
        proto.kind = "var_len"
    else:
        proto.kind = "fixed_len"
        proto.shape.extend(spec.shape)
        if spec.default_value is not None:
            tensor_to_proto(np.asarray(spec.default_value), proto.default_value)
    _value_to_proto(value, proto.value)


def _input_from_proto(proto):
    if proto.kind == "var_len":
        spec = VarLenFeature(proto.dtype)
    elif proto.kind == "fixed_len":
        default = (tensor_from_proto(proto.default_value)
                   if proto.HasField("default_value") else None)
        if default is not None and default.dtype.kind != "O":
            default = default.tolist()
        elif default is not None:
            default = list(default)
        spec = FixedLenFeature(list(proto.shape), proto.dtype, default)
    else:
        raise GraphError(f"feature {proto.name!r}: unknown input kind {proto.kind!r}")
    return spec, _value_from_proto(proto.value)


# --- whole graphs ----------------------------------------------------------------------------

def graph_to_bytes(graph: ir.Graph) -> bytes:
    """The deterministic file bytes of `graph` (a GraphFile message)."""
    proto = GraphProto()
    for name, spec in graph.input_spec.items():
        _input_to_proto(name, spec, graph.inputs[name], proto.inputs.add())
    for node in graph.nodes:
        _node_to_proto(node, proto.nodes.add())
    for name, value_id in graph.outputs.items():
        proto.outputs.add(name=name, value=value_id)
    payload = proto.SerializeToString(deterministic=True)
    wrapper = GraphFileProto(magic=FORMAT_MAGIC, graph=payload,
                             sha256=hashlib.sha256(payload).digest())
    wrapper.version.major, wrapper.version.minor = FORMAT_MAJOR, FORMAT_MINOR
    return wrapper.SerializeToString(deterministic=True)


def graph_from_bytes(data: bytes, *, allow_analyzers: bool = False) -> ir.Graph:
    """Parses and verifies graph file bytes.

    Raises:
      GraphError: not a graph file, truncated, checksum mismatch, newer major version, or a
        graph that fails `verify`.
    """
    wrapper = GraphFileProto()
    try:
        wrapper.ParseFromString(bytes(data))
    except (message.DecodeError, ValueError) as exc:
        raise GraphError(f"not a tft_lite graph file, or truncated: {exc}") from exc
    if wrapper.magic != FORMAT_MAGIC:
        raise GraphError(f"not a tft_lite graph file (magic {wrapper.magic!r}, "
                         f"expected {FORMAT_MAGIC!r})")
    _check_version(wrapper.version.major, wrapper.version.minor)
    if len(wrapper.sha256) != 32:
        raise GraphError("graph file is truncated: its sha256 checksum is missing")
    if hashlib.sha256(wrapper.graph).digest() != wrapper.sha256:
        raise GraphError("graph file is corrupt or was edited: sha256 of the graph does not "
                         "match the recorded checksum")
    proto = GraphProto()
    try:
        proto.ParseFromString(wrapper.graph)
    except (message.DecodeError, ValueError) as exc:
        raise GraphError(f"graph message cannot be parsed: {exc}") from exc
    graph = _graph_from_proto(proto)
    verify(graph, allow_analyzers=allow_analyzers)
    return graph


def _check_version(major: int, minor: int) -> None:
    if major != FORMAT_MAJOR:
        newer = "newer" if major > FORMAT_MAJOR else "older"
        raise GraphError(f"graph format version {major}.{minor} is {newer} than the "
                         f"{FORMAT_MAJOR}.x this tft_lite reads; upgrade or re-run analyze")


def _graph_from_proto(proto) -> ir.Graph:
    specs, inputs = {}, {}
    for item in proto.inputs:
        specs[item.name], inputs[item.name] = _input_from_proto(item)
    try:
        specs = normalize_schema(specs)
    except ValueError as exc:
        raise GraphError(f"graph inputs have an invalid feature spec: {exc}") from exc
    nodes = tuple(_node_from_proto(n) for n in proto.nodes)
    outputs = {o.name: int(o.value) for o in proto.outputs}
    return ir.Graph(specs, dict(sorted(inputs.items())), nodes, dict(sorted(outputs.items())))
