"""Type inference at trace time: op name -> rule(*input Values, **attrs) -> output types.

Each rule checks what TensorFlow would reject when the preprocessing_fn is traced (mixed
dtypes, float-only math on integers, incompatible shapes, a ragged tensor where a dense one is
needed) and returns one (dtype, kind, shape) triple per output. The tracer adds the user's
source line to the error. Same table-of-rules shape as the numpy interpreter.

Imports the ir layer only.
"""
from __future__ import annotations

import numpy as np

from tft_lite.errors import GraphError, TraceError
from tft_lite.ir.nodes import ASSET, CONST, DENSE, RAGGED, Value

INFER: dict = {}
NUMERIC = ("int32", "int64", "float32", "float64")
FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
_BATCH = "batch"  # the batch dimension while broadcasting


def infer_rule(*ops):
    """Registers the decorated function as the type rule of `ops`."""
    def register(fn):
        for op in ops:
            INFER[op] = fn
        return fn
    return register


def _check_dtype(value: Value, allowed, what: str):
    if value.dtype not in allowed:
        raise TraceError(f"{what} needs a {' or '.join(allowed)} tensor, got {value.dtype}")


def _same_dtype(values, what: str):
    dtypes = sorted({v.dtype for v in values})
    if len(dtypes) > 1:
        raise TraceError(f"{what}: dtype mismatch {' vs '.join(v.dtype for v in values)} "
                         "(TF does not convert implicitly; use tft_lite.cast)")
    return dtypes[0]


def _broadcast_dim(a, b):
    if a == b or b == 1:
        return a
    if a == 1:
        return b
    if _BATCH in (a, b):
        raise TraceError("shapes do not broadcast: a fixed dimension meets the batch dimension")
    if a is None or b is None:
        return a if b is None else b
    raise TraceError(f"shapes do not broadcast: dimension {a} vs {b}")


def broadcast(values, what: str) -> tuple:
    """(kind, shape) of an elementwise result, with TF/numpy broadcasting over the batch."""
    kinds = {v.kind for v in values}
    if ASSET in kinds:
        raise TraceError(f"{what}: a vocabulary file is not a numeric tensor")
    if RAGGED in kinds:
        if DENSE in kinds:
            raise TraceError(f"{what}: cannot combine a ragged (VarLen) tensor with a dense one; "
                             "densify it first (tft_lite.fill_missing / "
                             "sparse_tensor_to_dense_with_shape)")
        for v in values:
            if v.kind == CONST and int(np.prod([d or 0 for d in v.shape])) != 1:
                raise TraceError(f"{what}: a ragged tensor combines only with scalars, got "
                                 f"shape {list(v.shape)}")
        return RAGGED, ()
    shapes = [((_BATCH,) + tuple(v.shape)) if v.kind == DENSE else tuple(v.shape)
              for v in values]
    rank = max(len(s) for s in shapes)
    result = [1] * rank
    try:
        for shape in shapes:
            padded = (1,) * (rank - len(shape)) + shape
            result = [_broadcast_dim(a, b) for a, b in zip(result, padded)]
    except GraphError as exc:
        raise TraceError(f"{what}: {exc}: {' and '.join(_shape_text(v) for v in values)}") \
            from None
    if DENSE not in kinds:
        return CONST, tuple(result)
    if result[0] != _BATCH:
        raise TraceError(f"{what}: batch dimensions do not line up: "
                         f"{' and '.join(_shape_text(v) for v in values)}")
    return DENSE, tuple(result[1:])


def _shape_text(v: Value) -> str:
    if v.kind == RAGGED:
        return "ragged [batch, (ragged)]"
    dims = (["batch"] if v.kind == DENSE else []) + ["?" if d is None else str(d)
                                                       for d in v.shape]
    return f"[{', '.join(dims)}]"


# --- elementwise -------------------------------------------------------------------------------

_FLOAT_UNARY = ("sqrt", "exp", "expm1", "log", "log1p", "sigmoid", "floor", "ceil")


@infer_rule(*_FLOAT_UNARY)
def _float_unary(x):
    _check_dtype(x, FLOATS, "this op")
    return [(x.dtype,) + broadcast([x], "op")]


@infer_rule("negative", "abs", "sign", "square", "round")
def _numeric_unary(x):
    _check_dtype(x, NUMERIC, "this op")
    return [(x.dtype,) + broadcast([x], "op")]


@infer_rule("is_nan", "is_inf", "is_finite")
def _float_predicate(x):
    _check_dtype(x, FLOATS, "is_nan/is_inf/is_finite")
    return [("bool",) + broadcast([x], "op")]


@infer_rule("logical_not")
def _logical_not(x):
    _check_dtype(x, ("bool",), "logical_not")
    return [("bool",) + broadcast([x], "logical_not")]


@infer_rule("add", "subtract", "multiply", "floor_divide", "mod", "pow", "maximum", "minimum")
def _arithmetic(x, y):
    dtype = _same_dtype([x, y], "arithmetic")
    _check_dtype(x, NUMERIC, "arithmetic")
    return [(dtype,) + broadcast([x, y], "arithmetic")]


@infer_rule("divide")
def _divide(x, y):
    dtype = _same_dtype([x, y], "divide")
    _check_dtype(x, NUMERIC, "divide")
    return [("float64" if dtype in INTS else dtype,) + broadcast([x, y], "divide")]


@infer_rule("equal", "not_equal")
def _equality(x, y):
    _same_dtype([x, y], "comparison")
    return [("bool",) + broadcast([x, y], "comparison")]


@infer_rule("less", "less_equal", "greater", "greater_equal")
def _ordering(x, y):
    _same_dtype([x, y], "comparison")
    _check_dtype(x, NUMERIC, "comparison")
    return [("bool",) + broadcast([x, y], "comparison")]


@infer_rule("logical_and", "logical_or", "logical_xor")
def _logical(x, y):
    _check_dtype(x, ("bool",), "logical op")
    _check_dtype(y, ("bool",), "logical op")
    return [("bool",) + broadcast([x, y], "logical op")]


@infer_rule("where")
def _where(cond, x, y):
    _check_dtype(cond, ("bool",), "where condition")
    dtype = _same_dtype([x, y], "where")
    return [(dtype,) + broadcast([cond, x, y], "where")]


@infer_rule("clip")
def _clip(x, lo, hi):
    dtype = _same_dtype([x, lo, hi], "clip_by_value")
    _check_dtype(x, NUMERIC, "clip_by_value")
    return [(dtype,) + broadcast([x, lo, hi], "clip_by_value")]


@infer_rule("cast")
def _cast(x, *, dtype):
    if "string" in (x.dtype, dtype):
        raise TraceError(f"cast from {x.dtype} to {dtype}: use to_number for strings")
    return [(dtype,) + broadcast([x], "cast")]


# --- structure ---------------------------------------------------------------------------------

@infer_rule("constant")
def _constant(*, value):
    dtype = "string" if value.dtype == object else value.dtype.name
    return [(dtype, CONST, tuple(value.shape))]


def _row_axis(x: Value, axis: int, what: str) -> int:
    """Index into the per-row shape of a dense value for a full-rank `axis` (>= 1)."""
    if x.kind == CONST:
        if not 0 <= axis < len(x.shape):
            raise TraceError(f"{what}: axis {axis} is out of range for shape {list(x.shape)}")
        return axis
    if x.kind != DENSE:
        raise TraceError(f"{what} needs a dense tensor, got {x.kind}")
    if not 1 <= axis <= len(x.shape):
        raise TraceError(f"{what}: axis {axis} is out of range for a tensor of rank "
                         f"{len(x.shape) + 1} (axis 0 is the batch: use an analyzer instead)")
    return axis - 1


@infer_rule("squeeze")
def _squeeze(x, *, axis):
    i = _row_axis(x, axis, "squeeze")
    if x.shape[i] not in (1, None):
        raise TraceError(f"squeeze: axis {axis} has size {x.shape[i]}, not 1")
    return [(x.dtype, x.kind, x.shape[:i] + x.shape[i + 1:])]


@infer_rule("expand_dims")
def _expand_dims(x, *, axis):
    limit = len(x.shape) + (1 if x.kind == DENSE else 0)
    low = 1 if x.kind == DENSE else 0
    if x.kind not in (DENSE, CONST) or not low <= axis <= limit:
        raise TraceError(f"expand_dims: axis {axis} is out of range for {_shape_text(x)}")
    i = axis - low
    return [(x.dtype, x.kind, x.shape[:i] + (1,) + x.shape[i:])]


# --- strings -----------------------------------------------------------------------------------

@infer_rule("lower", "upper", "strip", "regex_replace", "substr")
def _string_to_string(x, **_attrs):
    _check_dtype(x, ("string",), "string op")
    return [("string", x.kind, x.shape)]


@infer_rule("length")
def _length(x):
    _check_dtype(x, ("string",), "strings.length")
    return [("int32", x.kind, x.shape)]


@infer_rule("to_number")
def _to_number(x, *, dtype):
    _check_dtype(x, ("string",), "strings.to_number")
    if dtype not in NUMERIC:
        raise TraceError(f"strings.to_number: out_type must be one of {NUMERIC}, got {dtype}")
    return [(dtype, x.kind, x.shape)]


@infer_rule("split")
def _split(x, *, sep):
    _check_dtype(x, ("string",), "strings.split")
    if x.kind != DENSE or x.shape != ():
        raise TraceError(f"strings.split needs a dense [batch] string tensor, got "
                         f"{_shape_text(x)}")
    return [("string", RAGGED, ())]


# --- ragged ------------------------------------------------------------------------------------

def _check_ragged(x: Value, what: str):
    if x.kind != RAGGED:
        raise TraceError(f"{what} needs a ragged (VarLen) tensor, got {_shape_text(x)}")


@infer_rule("fill_missing")
def _fill_missing(x, *, default_value):
    _check_ragged(x, "fill_missing")
    return [(x.dtype, DENSE, ())]


@infer_rule("to_dense")
def _to_dense(x, *, width, default_value):
    _check_ragged(x, "sparse_tensor_to_dense_with_shape")
    return [(x.dtype, DENSE, (width,))]


@infer_rule("row_lengths")
def _row_lengths(x):
    _check_ragged(x, "row_lengths")
    return [("int64", DENSE, ())]


@infer_rule("reduce_sum", "reduce_mean", "reduce_min", "reduce_max")
def _reduce(x, *, axis):
    _check_dtype(x, NUMERIC, "reduction")
    if x.kind == RAGGED:
        if axis != 1:
            raise TraceError(f"a ragged tensor reduces over axis 1 only, got axis {axis}")
        return [(x.dtype, DENSE, ())]
    i = _row_axis(x, axis, "reduction")
    return [(x.dtype, x.kind, x.shape[:i] + x.shape[i + 1:])]


# --- mappers -----------------------------------------------------------------------------------

def _batch_only(x: Value, what: str):
    if x.kind not in (DENSE, RAGGED):
        raise TraceError(f"{what} needs a tensor with a batch dimension, got a {x.kind} value")


@infer_rule("hash_strings")
def _hash_strings(x, *, hash_buckets, key):
    _check_dtype(x, ("string",), "hash_strings")
    return [("int64", x.kind, x.shape)]


@infer_rule("apply_buckets")
def _apply_buckets(x, boundaries):
    _check_dtype(x, NUMERIC, "apply_buckets")
    if boundaries.kind != CONST or len(boundaries.shape) != 2:
        raise TraceError(f"apply_buckets: bucket_boundaries must be a rank-2 constant or "
                         f"analyzer result, got {_shape_text(boundaries)}")
    return [("int64", x.kind, x.shape)]


@infer_rule("apply_vocabulary")
def _apply_vocabulary(x, vocabulary, **_attrs):
    _check_dtype(x, ("string",) + INTS, "apply_vocabulary")
    if vocabulary.kind != ASSET:
        raise TraceError("apply_vocabulary: deferred_vocab_filename_tensor must be the result "
                         "of tft_lite.vocabulary")
    return [("int64", x.kind, x.shape)]


# --- analyzers ---------------------------------------------------------------------------------

_SUM_DTYPES = {"float32": "float32", "float64": "float64", "int32": "int64", "int64": "int64"}


def _reduced_shape(x: Value, reduce_instance_dims: bool, what: str) -> tuple:
    _batch_only(x, what)
    if reduce_instance_dims:
        return ()
    if x.kind == RAGGED:
        raise TraceError(f"{what}: reduce_instance_dims=False needs a dense tensor")
    if None in x.shape:
        raise TraceError(f"{what}: reduce_instance_dims=False needs a fully known row shape")
    return x.shape


@infer_rule("analyzer_min", "analyzer_max")
def _min_or_max(x, *, reduce_instance_dims):
    _check_dtype(x, NUMERIC, "min/max")
    return [(x.dtype, CONST, _reduced_shape(x, reduce_instance_dims, "min/max"))]


@infer_rule("analyzer_min_and_max")
def _min_and_max(x, *, reduce_instance_dims):
    return _min_or_max(x, reduce_instance_dims=reduce_instance_dims) * 2


@infer_rule("analyzer_sum")
def _sum(x, *, reduce_instance_dims):
    _check_dtype(x, NUMERIC, "sum")
    return [(_SUM_DTYPES[x.dtype], CONST, _reduced_shape(x, reduce_instance_dims, "sum"))]


@infer_rule("analyzer_size")
def _size(x, *, reduce_instance_dims):
    return [("int64", CONST, _reduced_shape(x, reduce_instance_dims, "size"))]


@infer_rule("analyzer_mean", "analyzer_var")
def _mean_or_var(x, *, reduce_instance_dims, output_dtype):
    _check_dtype(x, NUMERIC, "mean/var")
    if output_dtype and output_dtype not in FLOATS:
        raise TraceError(f"mean/var: output_dtype must be float32 or float64, got {output_dtype}")
    dtype = output_dtype or (x.dtype if x.dtype in FLOATS else "float32")
    return [(dtype, CONST, _reduced_shape(x, reduce_instance_dims, "mean/var"))]


@infer_rule("analyzer_mean_and_var")
def _mean_and_var(x, *, reduce_instance_dims, output_dtype):
    return _mean_or_var(x, reduce_instance_dims=reduce_instance_dims,
                        output_dtype=output_dtype) * 2


@infer_rule("analyzer_vocabulary")
def _vocabulary(x, **_attrs):
    _batch_only(x, "vocabulary")
    _check_dtype(x, ("string",) + INTS, "vocabulary")
    return [("string", ASSET, ())]


@infer_rule("analyzer_quantiles")
def _quantiles(x, *, num_buckets, epsilon, reduce_instance_dims):
    _check_dtype(x, NUMERIC, "quantiles")
    feature = _reduced_shape(x, reduce_instance_dims, "quantiles")
    return [("float32", CONST, (feature or (1,)) + (num_buckets - 1,))]
