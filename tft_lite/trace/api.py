"""Elementwise, string and ragged ops for preprocessing_fn, under TensorFlow's names.

Porting rule: `tf.math.log1p(x)` -> `tft_lite.log1p(x)` (or `tft_lite.math.log1p(x)`),
`tf.strings.lower(s)` -> `tft_lite.strings.lower(s)`, `tf.where` -> `tft_lite.where`,
`tf.cast(x, tf.float32)` -> `tft_lite.cast(x, "float32")`. Python scalars take the other
operand's dtype, as in TF; tensors of different dtypes are an error, as in TF. Every function
only records a node (see trace/tensor.py); semantics are in serving/rules.py.
"""
from __future__ import annotations

from types import SimpleNamespace

from tft_lite.trace.tensor import Tensor, as_tensor, constant, current, normalize_dtype, \
    to_array, trace_error


def _unary(op, x):
    return current().emit(op, [as_tensor(x)], {})


def _binary(op, x, y):
    if not isinstance(x, Tensor):
        x = as_tensor(x, y if isinstance(y, Tensor) else None)
    return current().emit(op, [x, as_tensor(y, x)], {})


# --- math --------------------------------------------------------------------------------------

def log(x, name=None):
    """tf.math.log (float tensors)."""
    return _unary("log", x)


def log1p(x, name=None):
    """tf.math.log1p (float tensors)."""
    return _unary("log1p", x)


def exp(x, name=None):
    """tf.math.exp (float tensors)."""
    return _unary("exp", x)


def expm1(x, name=None):
    """tf.math.expm1 (float tensors)."""
    return _unary("expm1", x)


def sqrt(x, name=None):
    """tf.math.sqrt (float tensors)."""
    return _unary("sqrt", x)


def square(x, name=None):
    """tf.math.square."""
    return _unary("square", x)


def abs(x, name=None):  # noqa: A001 - TF's name
    """tf.math.abs."""
    return _unary("abs", x)


def sign(x, name=None):
    """tf.math.sign."""
    return _unary("sign", x)


def negative(x, name=None):
    """tf.math.negative."""
    return _unary("negative", x)


def sigmoid(x, name=None):
    """tf.math.sigmoid (float tensors)."""
    return _unary("sigmoid", x)


def floor(x, name=None):
    """tf.math.floor (float tensors)."""
    return _unary("floor", x)


def ceil(x, name=None):
    """tf.math.ceil (float tensors)."""
    return _unary("ceil", x)


def round(x, name=None):  # noqa: A001 - TF's name
    """tf.math.round: half to even."""
    return _unary("round", x)


def is_nan(x, name=None):
    """tf.math.is_nan -> bool."""
    return _unary("is_nan", x)


def is_inf(x, name=None):
    """tf.math.is_inf -> bool."""
    return _unary("is_inf", x)


def is_finite(x, name=None):
    """tf.math.is_finite -> bool."""
    return _unary("is_finite", x)


def logical_not(x, name=None):
    """tf.math.logical_not."""
    return _unary("logical_not", x)


def add(x, y, name=None):
    """tf.math.add."""
    return _binary("add", x, y)


def subtract(x, y, name=None):
    """tf.math.subtract."""
    return _binary("subtract", x, y)


def multiply(x, y, name=None):
    """tf.math.multiply."""
    return _binary("multiply", x, y)


def divide(x, y, name=None):
    """tf.math.divide (true division: integers give float64)."""
    return _binary("divide", x, y)


def floordiv(x, y, name=None):
    """tf.math.floordiv."""
    return _binary("floor_divide", x, y)


def floormod(x, y, name=None):
    """tf.math.floormod (result has the sign of y)."""
    return _binary("mod", x, y)


def pow(x, y, name=None):  # noqa: A001 - TF's name
    """tf.math.pow."""
    return _binary("pow", x, y)


def maximum(x, y, name=None):
    """tf.math.maximum."""
    return _binary("maximum", x, y)


def minimum(x, y, name=None):
    """tf.math.minimum."""
    return _binary("minimum", x, y)


def equal(x, y, name=None):
    """tf.math.equal -> bool."""
    return _binary("equal", x, y)


def not_equal(x, y, name=None):
    """tf.math.not_equal -> bool."""
    return _binary("not_equal", x, y)


def less(x, y, name=None):
    """tf.math.less -> bool."""
    return _binary("less", x, y)


def less_equal(x, y, name=None):
    """tf.math.less_equal -> bool."""
    return _binary("less_equal", x, y)


def greater(x, y, name=None):
    """tf.math.greater -> bool."""
    return _binary("greater", x, y)


def greater_equal(x, y, name=None):
    """tf.math.greater_equal -> bool."""
    return _binary("greater_equal", x, y)


def logical_and(x, y, name=None):
    """tf.math.logical_and."""
    return _binary("logical_and", x, y)


def logical_or(x, y, name=None):
    """tf.math.logical_or."""
    return _binary("logical_or", x, y)


def where(condition, x, y, name=None):
    """tf.where(condition, x, y) with broadcasting; x and y share one dtype."""
    if not isinstance(x, Tensor):
        x = as_tensor(x, y if isinstance(y, Tensor) else None)
    return current().emit("where", [as_tensor(condition), x, as_tensor(y, x)], {})


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """tf.clip_by_value."""
    t = as_tensor(t)
    return current().emit("clip", [t, as_tensor(clip_value_min, t),
                                   as_tensor(clip_value_max, t)], {})


def cast(x, dtype, name=None):
    """tf.cast: dtype "float32", "int64", np.float32, tf.float32, ... (not strings)."""
    x = as_tensor(x)
    dtype = normalize_dtype(dtype)
    if dtype == x.dtype:
        return x
    return current().emit("cast", [x], {"dtype": dtype})


# --- shape -------------------------------------------------------------------------------------

def _axis(x: Tensor, axis, what: str) -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise trace_error(f"{what}: axis must be an int, got {axis!r}")
    rank = 2 if x.is_ragged else len(x.shape)
    return axis + rank if axis < 0 else axis


def squeeze(input, axis, name=None):  # noqa: A002 - TF's name
    """tf.squeeze(input, axis) for one explicit axis (axis 0 is the batch)."""
    x = as_tensor(input)
    return current().emit("squeeze", [x], {"axis": _axis(x, axis, "squeeze")})


def expand_dims(input, axis, name=None):  # noqa: A002 - TF's name
    """tf.expand_dims(input, axis), axis >= 1 for batch tensors."""
    x = as_tensor(input)
    rank = len(x.shape)
    axis = axis + rank + 1 if axis < 0 else axis
    return current().emit("expand_dims", [x], {"axis": axis})


def _default(x: Tensor, default_value):
    if default_value is None:
        default_value = b"" if x.dtype == "string" else 0
    return to_array(default_value, x.dtype).reshape(())


def fill_missing(x, default_value=None):
    """VarLen (at most one value per row) -> dense [batch]; empty rows get default_value.

    The default is 0, or b"" for strings (TFT examples' `_fill_in_missing`). A row with two
    or more values raises at run time, naming the row.
    """
    x = as_tensor(x)
    return current().emit("fill_missing", [x], {"default_value": _default(x, default_value)})


def sparse_tensor_to_dense_with_shape(x, shape, default_value=0):
    """TFT's mapper: VarLen -> dense [batch, shape[1]], missing values = default_value."""
    x = as_tensor(x)
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise trace_error(f"shape must be [batch, width] with an int width, got {shape!r}")
    return current().emit("to_dense", [x], {"width": shape[1],
                                            "default_value": _default(x, default_value)})


def row_lengths(x):
    """Number of values in each row of a VarLen/ragged tensor -> int64 [batch]."""
    return _unary("row_lengths", x)


def _reduce(op, input_tensor, axis, keepdims):
    x = as_tensor(input_tensor)
    if keepdims:
        raise trace_error(f"{op}: keepdims=True is not supported; use expand_dims")
    if axis is None or axis == 0:
        raise trace_error(f"{op}: reducing over the batch (axis {axis}) is an analyzer; use "
                          "tft_lite.sum / mean / min / max")
    return current().emit(op, [x], {"axis": _axis(x, axis, op)})


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None):
    """tf.reduce_sum over one per-row axis (ragged: axis 1, empty rows give 0)."""
    return _reduce("reduce_sum", input_tensor, axis, keepdims)


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None):
    """tf.reduce_mean over one per-row axis (ragged: empty rows give NaN)."""
    return _reduce("reduce_mean", input_tensor, axis, keepdims)


def reduce_min(input_tensor, axis=None, keepdims=False, name=None):
    """tf.reduce_min over one per-row axis (ragged: empty rows give the dtype's max)."""
    return _reduce("reduce_min", input_tensor, axis, keepdims)


def reduce_max(input_tensor, axis=None, keepdims=False, name=None):
    """tf.reduce_max over one per-row axis (ragged: empty rows give the dtype's lowest)."""
    return _reduce("reduce_max", input_tensor, axis, keepdims)


# --- strings -----------------------------------------------------------------------------------

def _byte_unit(unit):
    if unit != "BYTE":
        raise trace_error(f"only unit='BYTE' is supported, got {unit!r}")


def lower(input, encoding="", name=None):  # noqa: A002 - TF's name
    """tf.strings.lower (ASCII letters)."""
    return _unary("lower", input)


def upper(input, encoding="", name=None):  # noqa: A002
    """tf.strings.upper (ASCII letters)."""
    return _unary("upper", input)


def strip(input, name=None):  # noqa: A002
    """tf.strings.strip: ASCII whitespace at both ends."""
    return _unary("strip", input)


def length(input, unit="BYTE", name=None):  # noqa: A002
    """tf.strings.length in bytes -> int32."""
    _byte_unit(unit)
    return _unary("length", input)


def substr(input, pos, len, unit="BYTE", name=None):  # noqa: A002
    """tf.strings.substr(input, pos, len): bytes; negative pos counts from the end."""
    _byte_unit(unit)
    if not isinstance(pos, int) or not isinstance(len, int) or len < 0:
        raise trace_error(f"substr: pos and len must be ints, len >= 0; got {pos!r}, {len!r}")
    return current().emit("substr", [as_tensor(input)], {"pos": pos, "length": len})


def regex_replace(input, pattern, rewrite, replace_global=True, name=None):  # noqa: A002
    """tf.strings.regex_replace (RE2 syntax, rewrite groups as \\1)."""
    return current().emit("regex_replace", [as_tensor(input)], {
        "pattern": pattern, "rewrite": rewrite, "replace_global": bool(replace_global)})


def to_number(string_tensor, out_type="float32", name=None):
    """tf.strings.to_number; a value that does not parse fails naming its row."""
    return current().emit("to_number", [as_tensor(string_tensor)],
                          {"dtype": normalize_dtype(out_type)})


def split(input, sep=None, maxsplit=-1, name=None):  # noqa: A002
    """tf.strings.split -> ragged; sep None splits on whitespace and drops empty pieces."""
    if maxsplit != -1:
        raise trace_error("split: maxsplit is not supported")
    return current().emit("split", [as_tensor(input)], {"sep": sep or ""})


math = SimpleNamespace(
    log=log, log1p=log1p, exp=exp, expm1=expm1, sqrt=sqrt, square=square, abs=abs, sign=sign,
    negative=negative, sigmoid=sigmoid, floor=floor, ceil=ceil, round=round, is_nan=is_nan,
    is_inf=is_inf, is_finite=is_finite, logical_not=logical_not, logical_and=logical_and,
    logical_or=logical_or, add=add, subtract=subtract, multiply=multiply, divide=divide,
    floordiv=floordiv, floormod=floormod, pow=pow, maximum=maximum, minimum=minimum,
    equal=equal, not_equal=not_equal, less=less, less_equal=less_equal, greater=greater,
    greater_equal=greater_equal, reduce_sum=reduce_sum, reduce_mean=reduce_mean,
    reduce_min=reduce_min, reduce_max=reduce_max)
strings = SimpleNamespace(lower=lower, upper=upper, strip=strip, length=length, substr=substr,
                          regex_replace=regex_replace, to_number=to_number, split=split)

__all__ = [name for name, value in list(globals().items())
           if callable(value) and not name.startswith("_") and value.__module__ == __name__]
__all__ += ["constant", "math", "strings"]
