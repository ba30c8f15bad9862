"""The single-instance interpreter: a graph's per-row part as a straight-line plan over scalars.

`transform_instance` used to run the batch interpreter on a batch of one, which costs ~1 ms:
every node pays for Arrow conversions and numpy calls on 1-element arrays. A serving request
is one row, so an `InstancePlan` is prepared once per graph and output list: raw features are
converted straight to numpy scalars (np.float32 / np.int64) or bytes, constants are already
scalars, and each node is one step `slots[out] = fn(slots[a], slots[b])` whose function was
chosen when the plan was built (SCALAR_RULES: op -> builder). A `where` whose condition is a
constant becomes an alias; a vocabulary lookup calls the C table's `get` for the one token.

The plan computes exactly what the batch rules compute for a one-row batch: numpy scalar
arithmetic and ufuncs are the same IEEE operations on the same dtypes, casts go through the
same numpy cast loops (a one-element buffer), and bucketing compares the same values. Where an
op, a feature kind or an instance value is not covered, the plan declines (builder returns
None, or `run` returns None) and the caller uses the batch interpreter, which also produces
every error message.

Imports numpy and the ir/kernels/serving layers only.
"""
from __future__ import annotations

import bisect
import operator
import threading

import numpy as np

from tft_lite.ir import nodes as ir
from tft_lite.ir.schema import FixedLenFeature
from tft_lite.kernels.hashing import hash_strings
from tft_lite.serving.rules import _BINARY, _DTYPE_MAX, _UNARY, _cast_fn, _clip_fn

SCALAR_RULES: dict = {}
_ALIAS = object()  # a builder's answer for "the output is input k": (_ALIAS, k)
# numpy scalar operators run the same IEEE operation as the ufunc, ~10x faster to call.
_OPERATORS = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul,
              "divide": operator.truediv}
_SCALAR_DTYPES = ("float32", "int64", "string")
_STRING_OPS = ("apply_vocabulary", "hash_strings")  # the only rules here that take bytes


class _Decline(Exception):
    """The instance plan cannot run this graph, or this instance, exactly: use the batch path."""


def scalar_rule(*ops):
    """Registers fn(node, consts, types) -> step function | (_ALIAS, k) | None for `ops`.

    consts[i] is input i's constant value, or None for a per-row input; types[i] its Value.
    The step function takes all inputs, constants included, as the batch rule does.
    """
    def register(fn):
        for op in ops:
            SCALAR_RULES[op] = fn
        return fn
    return register


def _to_dtype(dtype: str):
    """A cast into `dtype` through a one-element array: numpy's own cast loop, scalar out.

    Each thread has its own buffer, so concurrent transform_instance calls stay correct.
    """
    local = threading.local()

    def convert(value):
        try:
            buffer = local.buffer
        except AttributeError:
            buffer = local.buffer = np.zeros(1, dtype)
        buffer[0] = value
        return buffer[0]
    return convert


@scalar_rule(*_UNARY)
def _unary(node, consts, types):
    return _UNARY[node.op]


@scalar_rule(*_BINARY)
def _binary(node, consts, types):
    if node.op in ("equal", "not_equal"):  # the batch rule wraps these in np.asarray
        return np.equal if node.op == "equal" else np.not_equal
    return _OPERATORS.get(node.op, _BINARY[node.op])


@scalar_rule("where")
def _where(node, consts, types):
    cond, x, y = consts[0], types[1], types[2]
    if cond is not None and np.ndim(cond) == 0 and (x.dtype, x.kind, x.shape) == (
            y.dtype, y.kind, y.shape) and x.kind == ir.DENSE:
        return (_ALIAS, 1 if cond else 2)
    return _where_scalar


def _where_scalar(cond, x, y):
    return np.where(cond, x, y)[()]


@scalar_rule("clip")
def _clip(node, consts, types):
    return _clip_fn


@scalar_rule("cast")
def _cast(node, consts, types):
    dtype, source = node.attrs["dtype"], types[0].dtype
    if dtype in ("float32", "float64") and source in ("int32", "int64", "float32", "float64"):
        return _to_dtype(dtype)  # casts that never fail: same loop as astype
    return lambda x: _cast_fn(x, dtype)[()]


@scalar_rule("apply_buckets")
def _apply_buckets(node, consts, types):
    boundaries = consts[1]
    if boundaries is None:
        return None
    flat = np.asarray(boundaries).reshape(-1)
    dtype = types[0].dtype
    # rules._apply_buckets: both sides in the dtype that holds the larger values.
    common = dtype if _DTYPE_MAX[dtype] > _DTYPE_MAX[flat.dtype.name] else flat.dtype.name
    bounds, to_common, to_int64 = flat.astype(common).tolist(), _to_dtype(common), \
        _to_dtype("int64")
    if not all(a <= b for a, b in zip(bounds, bounds[1:])):
        return None  # searchsorted's answer on unsorted boundaries is not bisect's

    def bucket(x, _boundaries):
        return to_int64(bisect.bisect_right(bounds, to_common(x).item()))
    return bucket


@scalar_rule("apply_vocabulary")
def _apply_vocabulary(node, consts, types):
    if consts[1] is None or types[0].dtype != "string":
        return None
    attrs = node.attrs
    vocab = consts[1].vocabulary(attrs["store_frequency"])
    get, size, to_int64 = vocab.lookup.get_bytes, vocab.size, _to_dtype("int64")
    buckets = attrs["num_oov_buckets"]
    # As rules._apply_vocabulary: one OOV bucket is always `size` (Fingerprint64 % 1 == 0).
    absent = size if buckets == 1 else attrs["default_value"] if buckets == 0 else None

    def lookup(token, _asset):
        index = get(token)
        if index < 0:
            index = absent if absent is not None else size + int(
                hash_strings([token], buckets)[0])
        return to_int64(index)
    return lookup


@scalar_rule("hash_strings")
def _hash_strings(node, consts, types):
    if types[0].dtype != "string":
        return None
    buckets, key = node.attrs["hash_buckets"], list(node.attrs["key"]) or None
    return lambda token: hash_strings([token], buckets, key)[0]


# --- features ----------------------------------------------------------------------------------

def _feature_reader(name, spec):
    """fn(instance) -> scalar for a FixedLen scalar feature, raising _Decline when unsure."""
    if not isinstance(spec, FixedLenFeature) or tuple(spec.shape) != () or \
            spec.dtype not in _SCALAR_DTYPES:
        raise _Decline(name)
    default = None
    if spec.default_value is not None:
        default = np.asarray(spec.default_value).reshape(-1)[:1].tolist()[0]
    if spec.dtype == "string":
        if isinstance(default, str):
            default = default.encode("utf-8")
        return _string_reader(name, default)
    exact_type = float if spec.dtype == "float32" else int
    convert = _to_dtype(spec.dtype)
    if default is not None:
        default = convert(default)  # as the batch path's np.full of the spec dtype

    def read(instance):
        value = instance.get(name)
        if type(value) is exact_type:  # bool, numpy and other values: the batch path
            try:
                return convert(value)
            except Exception:  # noqa: BLE001 - out of range, warning as error: the batch
                raise _Decline(name) from None  # path gives the answer or the error
        if value is None and default is not None:
            return default
        raise _Decline(name)
    return read


def _string_reader(name, default):
    def read(instance):
        value = instance.get(name)
        if type(value) is bytes:
            return value
        if type(value) is str:
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError:
                raise _Decline(name) from None
        if value is None and default is not None:
            return default
        raise _Decline(name)
    return read


# --- the plan ----------------------------------------------------------------------------------

class InstancePlan:
    """Outputs `names` of a prepared graph for one instance, as a list of scalar steps.

    Build with `InstancePlan.build(program, names)`, which returns None when some needed op,
    feature or value kind has no exact scalar rule.
    """

    def __init__(self, program, names):
        graph = program.graph
        wanted = [graph.outputs[name] for name in names]
        needed, features, _ = program._plan(wanted)
        types = ir.value_types(graph)
        slot = {}
        initial = []

        def place(value_id, value):
            slot[value_id] = len(initial)
            initial.append(value)

        self.readers = []
        for name in features:
            place(graph.inputs[name].id, None)
            self.readers.append((slot[graph.inputs[name].id],
                                 _feature_reader(name, graph.input_spec[name])))
        self.steps = []
        for index, node in enumerate(graph.nodes):
            if not needed[index] or all(v.id in program.constants for v in node.outputs):
                continue
            self._add_step(node, program.constants, types, slot, place)
        for value_id in wanted:
            if not types[value_id].has_batch or value_id not in slot:
                raise _Decline(f"output %{value_id}")
        self.initial = initial
        self.outputs = [(name, slot[value_id]) for name, value_id in zip(names, wanted)]

    @classmethod
    def build(cls, program, names):
        try:
            return cls(program, names)
        except (_Decline, KeyError, TypeError, ValueError):  # e.g. an unexpected attr dtype
            return None

    def _add_step(self, node, constants, types, slot, place):
        out_type = node.outputs[0]
        if len(node.outputs) != 1 or out_type.kind != ir.DENSE or out_type.shape != () or \
                node.op not in SCALAR_RULES:
            raise _Decline(node.op)
        if node.op not in _STRING_OPS and (out_type.dtype == "string" or any(
                types[i].dtype == "string" for i in node.inputs)):
            raise _Decline(node.op)  # numpy scalars of bytes are not the batch's object arrays
        consts, args = [], []
        for value_id in node.inputs:
            if value_id in constants:
                value = constants[value_id]
                if isinstance(value, np.ndarray) and value.ndim == 0:
                    value = value[()]  # scalar operands keep numpy's scalar fast paths
                consts.append(value)
                if value_id not in slot:
                    place(value_id, value)
            elif types[value_id].kind != ir.DENSE or types[value_id].shape != ():
                raise _Decline(node.op)
            else:
                consts.append(None)
            args.append(slot[value_id])
        fn = SCALAR_RULES[node.op](node, consts, [types[i] for i in node.inputs])
        if fn is None:
            raise _Decline(node.op)
        out = node.outputs[0].id
        if isinstance(fn, tuple) and fn[0] is _ALIAS:
            slot[out] = args[fn[1]]
            return
        place(out, None)
        if len(args) == 1:
            self.steps.append((fn, args[0], None, slot[out]))
        elif len(args) == 2:
            self.steps.append((fn, args[0], args[1], slot[out]))
        else:
            self.steps.append((fn, None, tuple(args), slot[out]))

    def run(self, instance) -> dict | None:
        """{output: numpy scalar or bytes}, or None when the batch path must handle it."""
        slots = list(self.initial)
        try:
            for index, read in self.readers:
                slots[index] = read(instance)
        except _Decline:
            return None
        try:
            with np.errstate(all="ignore"):  # as the batch interpreter: TF is silent too
                for fn, a, b, out in self.steps:
                    if b is None:
                        slots[out] = fn(slots[a])
                    elif a is None:
                        slots[out] = fn(*[slots[i] for i in b])
                    else:
                        slots[out] = fn(slots[a], slots[b])
        except Exception:  # noqa: BLE001 - the batch path re-runs it and reports the error
            return None
        return {name: slots[index] for name, index in self.outputs}
