"""Symbolic tensors and the tracer that records them into an ir.Graph.

`trace(preprocessing_fn, raw_feature_spec)` calls the user's function once with one symbolic
`Tensor` per raw feature. Every operation on tensors (operators, tft_lite.log, tft_lite.mean,
...) goes through `emit`, which checks types with trace/infer.py and appends a node. Nothing is
computed. A mistake (unknown feature, dtype or shape mismatch) raises at once, naming the line
of the user's code, found by walking the stack to the first frame outside tft_lite.

The tracer also keeps TF's name-scope counter, because TFT names default vocabulary files
after the scope (vocab_compute_and_apply_vocabulary_1_vocabulary).
"""
from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading

import numpy as np

from tft_lite.errors import GraphError, SchemaError, TftLiteError, TraceError
from tft_lite.ir import nodes as ir
from tft_lite.ir.schema import VarLenFeature
from tft_lite.trace.infer import INFER

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STATE = threading.local()
_DTYPE_ALIASES = {"float": "float32", "int": "int64", "str": "string", "bytes": "string",
                  "object": "string", "double": "float64"}


def user_location() -> str:
    """'file:line: code' of the innermost stack frame outside the tft_lite package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}: {code}"


def trace_error(message: str, cls=TraceError) -> TftLiteError:
    """An error for a mistake in the user's preprocessing_fn, pointing at their line."""
    return cls(f"{message}\n  at {user_location()}")


def normalize_dtype(dtype) -> str:
    """A dtype name from ir.nodes.DTYPES for "float32", np.float32, tf.float32, ..."""
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None)
    if name is None:
        name = np.dtype(dtype).name if isinstance(dtype, type) else str(dtype)
    name = _DTYPE_ALIASES.get(name, name)
    if name.startswith(("bytes", "str")):
        name = "string"
    if name not in ir.DTYPES:
        raise trace_error(f"unsupported dtype {dtype!r}; expected one of {ir.DTYPES}",
                          TraceError)
    return name


class Tracer:
    """Records nodes for one trace: value ids, nodes, their source lines, name scopes."""

    def __init__(self):
        self.nodes: list[ir.Node] = []
        self.source: list[str] = []
        self._next_id = 0
        self._names_in_use: dict[str, int] = {}
        self._scopes: list[str] = []

    def new_value(self, dtype, kind, shape) -> ir.Value:
        value = ir.Value(self._next_id, dtype, kind, tuple(shape))
        self._next_id += 1
        return value

    def emit(self, op: str, inputs, attrs: dict):
        """Appends `op(*inputs, **attrs)`; returns its output Tensor (or a tuple of them)."""
        tensors = [t if isinstance(t, Tensor) else constant(t) for t in inputs]
        for t in tensors:
            if t.tracer is not self:
                raise trace_error("a tensor from another trace was used in this one")
        try:
            types = INFER[op](*[t.value for t in tensors], **attrs)
        except GraphError as exc:
            raise trace_error(f"{op}: {exc}") from None
        outputs = tuple(self.new_value(*t) for t in types)
        self.nodes.append(ir.Node(op, tuple(t.value.id for t in tensors), dict(attrs), outputs))
        self.source.append(user_location())
        result = tuple(Tensor(self, v) for v in outputs)
        return result[0] if len(result) == 1 else result

    @contextlib.contextmanager
    def name_scope(self, name: str):
        """TF's name_scope: a unique full scope name ('a/b', then 'a_1/b', ...)."""
        full = "/".join(self._scopes + [name])
        unique = self._unique_name(full)
        self._scopes.append(unique.rsplit("/", 1)[-1])
        try:
            yield unique
        finally:
            self._scopes.pop()

    def _unique_name(self, name: str) -> str:
        """tf.Graph.unique_name: case-insensitive counter per full name."""
        key = name.lower()
        count = self._names_in_use.get(key, 0)
        self._names_in_use[key] = count + 1
        if count == 0:
            return name
        base = key
        while key in self._names_in_use:
            key = f"{base}_{count}"
            count += 1
        self._names_in_use[key] = 1
        return f"{name}_{count - 1}"


def current() -> Tracer:
    tracer = getattr(_STATE, "tracer", None)
    if tracer is None:
        raise trace_error("tft_lite ops run only inside a preprocessing_fn given to "
                          "tft_lite.analyze (or tft_lite.trace.trace)")
    return tracer


@contextlib.contextmanager
def _active(tracer: Tracer):
    previous = getattr(_STATE, "tracer", None)
    _STATE.tracer = tracer
    try:
        yield tracer
    finally:
        _STATE.tracer = previous


def constant(value, dtype=None) -> "Tensor":
    """A const tensor from a Python/numpy value (TF's conversion: int -> int32 unless told)."""
    return current().emit("constant", [], {"value": to_array(value, dtype)})


def to_array(value, dtype=None) -> np.ndarray:
    """numpy array for a literal, following tf.convert_to_tensor's dtype rules."""
    if isinstance(value, Tensor):
        raise trace_error("expected a literal value, got a symbolic Tensor")
    arr = np.asarray(value)
    if arr.dtype.kind in "USO":
        flat = [v.encode("utf-8") if isinstance(v, str) else v for v in arr.reshape(-1)]
        if not all(isinstance(v, bytes) for v in flat):
            raise trace_error(f"cannot make a tensor of {value!r}")
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        arr = out.reshape(arr.shape)
        if dtype is not None and normalize_dtype(dtype) != "string":
            raise trace_error(f"cannot convert string {value!r} to {normalize_dtype(dtype)}")
        return arr
    if dtype is None:
        if not isinstance(value, np.ndarray) and arr.dtype.kind == "i":
            fits = arr.size == 0 or (arr.min() >= -2**31 and arr.max() < 2**31)
            return arr.astype(np.int32 if fits else np.int64)
        if not isinstance(value, np.ndarray) and arr.dtype.kind == "f":
            return arr.astype(np.float32)
        return arr
    name = normalize_dtype(dtype)
    if name == "string" or (arr.dtype.kind == "f" and name not in ("float32", "float64")):
        raise trace_error(f"cannot convert {value!r} to a {name} tensor (TF refuses too)")
    return arr.astype(np.dtype(bool if name == "bool" else name))


def as_tensor(x, like: "Tensor | None" = None) -> "Tensor":
    """x itself if a Tensor; else a constant, of `like`'s dtype when given (TF's rule)."""
    if isinstance(x, Tensor):
        return x
    return constant(x, like.dtype if like is not None else None)


def _binary(op):
    def method(self, other):
        return current().emit(op, [self, as_tensor(other, self)], {})
    method.__name__ = f"__{op}__"
    return method


def _reflected(op):
    def method(self, other):
        return current().emit(op, [as_tensor(other, self), self], {})
    method.__name__ = f"__r{op}__"
    return method


class Tensor:
    """A symbolic tensor: a Value of the graph being traced. Operators record nodes."""

    __array_priority__ = 1000  # numpy scalars on the left defer to our reflected operators

    def __init__(self, tracer: Tracer, value: ir.Value):
        self.tracer = tracer
        self.value = value

    @property
    def dtype(self) -> str:
        return self.value.dtype

    @property
    def shape(self) -> tuple:
        """TF-style shape: (None, *row shape) for batch tensors, None for ragged rows."""
        if self.value.kind == ir.DENSE:
            return (None,) + self.value.shape
        if self.value.kind == ir.RAGGED:
            return (None, None)
        return self.value.shape

    @property
    def is_ragged(self) -> bool:
        return self.value.kind == ir.RAGGED

    __add__, __radd__ = _binary("add"), _reflected("add")
    __sub__, __rsub__ = _binary("subtract"), _reflected("subtract")
    __mul__, __rmul__ = _binary("multiply"), _reflected("multiply")
    __truediv__, __rtruediv__ = _binary("divide"), _reflected("divide")
    __floordiv__, __rfloordiv__ = _binary("floor_divide"), _reflected("floor_divide")
    __mod__, __rmod__ = _binary("mod"), _reflected("mod")
    __pow__, __rpow__ = _binary("pow"), _reflected("pow")
    __and__, __rand__ = _binary("logical_and"), _reflected("logical_and")
    __or__, __ror__ = _binary("logical_or"), _reflected("logical_or")
    __xor__, __rxor__ = _binary("logical_xor"), _reflected("logical_xor")
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")
    __hash__ = object.__hash__

    def __neg__(self):
        return current().emit("negative", [self], {})

    def __abs__(self):
        return current().emit("abs", [self], {})

    def __invert__(self):
        return current().emit("logical_not", [self], {})

    def __pos__(self):
        return self

    def __bool__(self):
        raise trace_error("a symbolic Tensor has no truth value at trace time; use "
                          "tft_lite.where(cond, x, y) instead of if/and/or")

    def __array__(self, *args, **kwargs):
        raise trace_error("a symbolic Tensor cannot become a numpy array; use tft_lite ops")

    def __iter__(self):
        raise trace_error("a symbolic Tensor cannot be iterated")

    def __repr__(self):
        return f"<tft_lite.Tensor {ir.format_value(self.value)}>"


class _Inputs(dict):
    """The dict given to preprocessing_fn; an unknown feature name is a SchemaError."""

    def __missing__(self, name):
        raise trace_error(f"unknown feature {name!r}; the raw feature spec has "
                          f"{sorted(self)}", SchemaError)


def _input_value(tracer: Tracer, name: str, spec) -> ir.Value:
    if isinstance(spec, VarLenFeature):
        return tracer.new_value(spec.dtype, ir.RAGGED, ())
    if not hasattr(spec, "shape") or type(spec).__name__ != "FixedLenFeature":
        raise SchemaError(f"feature {name!r}: tft_lite traces FixedLenFeature and "
                          f"VarLenFeature only, got {type(spec).__name__}")
    return tracer.new_value(spec.dtype, ir.DENSE, tuple(spec.shape))


def trace(preprocessing_fn, input_spec: dict) -> ir.Graph:
    """Calls preprocessing_fn once on symbolic inputs; returns the traced graph.

    Args:
      preprocessing_fn: dict of name -> Tensor -> dict of name -> Tensor.
      input_spec: normalized raw feature spec (ir.schema.normalize_schema).

    Raises:
      SchemaError: unknown feature or unsupported spec. GraphError: bad op or output.
    """
    tracer = Tracer()
    values = {name: _input_value(tracer, name, spec) for name, spec in input_spec.items()}
    inputs = _Inputs({name: Tensor(tracer, v) for name, v in values.items()})
    with _active(tracer):
        outputs = preprocessing_fn(inputs)
    return ir.Graph(dict(input_spec), values, tuple(tracer.nodes),
                    _output_ids(tracer, outputs, preprocessing_fn), tuple(tracer.source))


def _output_ids(tracer: Tracer, outputs, fn) -> dict:
    where = getattr(fn, "__code__", None)
    where = f"{where.co_filename}:{where.co_firstlineno}" if where else repr(fn)
    if not isinstance(outputs, dict) or not outputs:
        raise TraceError(f"preprocessing_fn must return a non-empty dict of name -> Tensor, "
                         f"got {type(outputs).__name__} (defined at {where})")
    ids = {}
    for name in sorted(outputs):
        tensor = outputs[name]
        if not isinstance(name, str) or not isinstance(tensor, Tensor) or \
                tensor.tracer is not tracer:
            raise TraceError(f"output {name!r} must be a tft_lite Tensor of this trace, got "
                             f"{type(tensor).__name__} (preprocessing_fn at {where})")
        if tensor.dtype not in ("float32", "int64", "string"):
            raise TraceError(f"output {name!r} has dtype {tensor.dtype}; outputs are float32, "
                             f"int64 or string, as in TFT: add tft_lite.cast (preprocessing_fn "
                             f"at {where})")
        if not tensor.value.has_batch:
            raise TraceError(f"output {name!r} has no batch dimension (an analyzer result or "
                             f"constant); broadcast it, e.g. x * 0 + value (preprocessing_fn "
                             f"at {where})")
        ids[name] = tensor.value.id
    return ids
