"""Every op a transform graph may hold, with its arity and typed attributes: the IR's vocabulary.

One line per op, so `grep '"op_name"'` finds what it means. Behaviour lives elsewhere, in one
rule table per interpreter: serving/rules.py (numpy), trace/infer.py (types), plan.py
(analyzers -> combiners). `verify.py` checks graphs against this table. Imports nothing.

Shapes: `x` stands for a batch value (dense [batch, *s] or ragged); elementwise ops broadcast
like numpy/TF and keep the batch dimension; ops on const values stay const. Semantics are
TensorFlow's (the TF function each op mirrors is named). Conventions for "absent" attrs,
since attrs are never None: top_k 0, frequency_threshold 0.0, output_dtype "" and key [].

Attribute types: int, float, bool, str, ints, bytes_list, tensor (a typed numpy array).
Changing an op's meaning or removing an op needs a new major format version (serialize.py);
adding an op or an attribute with a default is a minor version.
"""
from __future__ import annotations

from dataclasses import dataclass

ELEMENTWISE, STRUCTURAL, STRING, RAGGED, MAPPER, ANALYZER = (
    "elementwise", "structural", "string", "ragged", "mapper", "analyzer")
ATTR_TYPES = ("int", "float", "bool", "str", "ints", "bytes_list", "tensor")


@dataclass(frozen=True)
class OpDef:
    """An op's static contract: input count, attribute names and types, output count."""

    name: str
    category: str
    num_inputs: int
    attrs: tuple[tuple[str, str], ...] = ()
    num_outputs: int = 1


OPS: dict[str, OpDef] = {}


def _op(name, category, num_inputs, attrs=(), num_outputs=1):
    OPS[name] = OpDef(name, category, num_inputs, tuple(attrs), num_outputs)


_REDUCE = [("reduce_instance_dims", "bool")]
_MOMENTS = _REDUCE + [("output_dtype", "str")]

# --- structural ------------------------------------------------------------------------------
_op("constant", STRUCTURAL, 0, [("value", "tensor")])       # const: the literal tensor
_op("asset", STRUCTURAL, 0, [("filename", "str"), ("sha256", "str")])  # asset: file in assets/
_op("cast", ELEMENTWISE, 1, [("dtype", "str")])             # tf.cast (float->int truncates)
_op("squeeze", STRUCTURAL, 1, [("axis", "int")])            # tf.squeeze(x, axis), axis >= 1
_op("expand_dims", STRUCTURAL, 1, [("axis", "int")])        # tf.expand_dims(x, axis), axis >= 1

# --- elementwise, unary (float-only ones reject ints at trace time, as TF does) ----------------
_op("negative", ELEMENTWISE, 1)      # -x
_op("abs", ELEMENTWISE, 1)           # tf.abs
_op("sign", ELEMENTWISE, 1)          # tf.sign
_op("square", ELEMENTWISE, 1)        # tf.square
_op("sqrt", ELEMENTWISE, 1)          # tf.sqrt (float)
_op("exp", ELEMENTWISE, 1)           # tf.exp (float)
_op("expm1", ELEMENTWISE, 1)         # tf.math.expm1 (float)
_op("log", ELEMENTWISE, 1)           # tf.math.log (float)
_op("log1p", ELEMENTWISE, 1)         # tf.math.log1p (float)
_op("sigmoid", ELEMENTWISE, 1)       # tf.math.sigmoid (float)
_op("floor", ELEMENTWISE, 1)         # tf.floor (float)
_op("ceil", ELEMENTWISE, 1)          # tf.math.ceil (float)
_op("round", ELEMENTWISE, 1)         # tf.round: half to even
_op("is_nan", ELEMENTWISE, 1)        # tf.math.is_nan -> bool
_op("is_inf", ELEMENTWISE, 1)        # tf.math.is_inf -> bool
_op("is_finite", ELEMENTWISE, 1)     # tf.math.is_finite -> bool
_op("logical_not", ELEMENTWISE, 1)   # tf.logical_not (bool)

# --- elementwise, binary (both operands of one dtype, as TF requires) -------------------------
_op("add", ELEMENTWISE, 2)            # x + y
_op("subtract", ELEMENTWISE, 2)       # x - y
_op("multiply", ELEMENTWISE, 2)       # x * y
_op("divide", ELEMENTWISE, 2)         # x / y (tf.math.truediv: int32/int64 -> float64)
_op("floor_divide", ELEMENTWISE, 2)   # x // y (tf.math.floordiv)
_op("mod", ELEMENTWISE, 2)            # x % y (tf.math.floormod: sign of y)
_op("pow", ELEMENTWISE, 2)            # x ** y
_op("maximum", ELEMENTWISE, 2)        # tf.maximum (NaN propagates)
_op("minimum", ELEMENTWISE, 2)        # tf.minimum (NaN propagates)
_op("equal", ELEMENTWISE, 2)          # x == y -> bool
_op("not_equal", ELEMENTWISE, 2)      # x != y -> bool
_op("less", ELEMENTWISE, 2)           # x < y -> bool
_op("less_equal", ELEMENTWISE, 2)     # x <= y -> bool
_op("greater", ELEMENTWISE, 2)        # x > y -> bool
_op("greater_equal", ELEMENTWISE, 2)  # x >= y -> bool
_op("logical_and", ELEMENTWISE, 2)    # x & y (bool)
_op("logical_or", ELEMENTWISE, 2)     # x | y (bool)
_op("logical_xor", ELEMENTWISE, 2)    # x ^ y (bool)
_op("where", ELEMENTWISE, 3)          # tf.where(cond, x, y), broadcasting (where_v2)
_op("clip", ELEMENTWISE, 3)           # tf.clip_by_value(x, lo, hi)

# --- strings (bytes; ASCII case and whitespace rules, as TF's defaults) ------------------------
_op("lower", STRING, 1)                                     # tf.strings.lower
_op("upper", STRING, 1)                                     # tf.strings.upper
_op("strip", STRING, 1)                                     # tf.strings.strip
_op("length", STRING, 1)                                    # tf.strings.length -> int32 bytes
_op("substr", STRING, 1, [("pos", "int"), ("length", "int")])  # tf.strings.substr, BYTE unit
_op("regex_replace", STRING, 1,                             # tf.strings.regex_replace (RE2)
    [("pattern", "str"), ("rewrite", "str"), ("replace_global", "bool")])
_op("to_number", STRING, 1, [("dtype", "str")])             # tf.strings.to_number
_op("split", STRING, 1, [("sep", "str")])                   # tf.strings.split -> ragged; sep ""
#                                                             splits on whitespace, drops empties

# --- ragged (VarLen) -> dense, and per-row reductions ------------------------------------------
_op("fill_missing", RAGGED, 1, [("default_value", "tensor")])  # ragged (<= 1 per row) -> [batch]
_op("to_dense", RAGGED, 1,                                  # sparse_tensor_to_dense_with_shape:
    [("width", "int"), ("default_value", "tensor")])        # ragged -> [batch, width]
_op("row_lengths", RAGGED, 1)                               # values per row -> int64 [batch]
_op("reduce_sum", RAGGED, 1, [("axis", "int")])             # tf.reduce_sum over one row axis
_op("reduce_mean", RAGGED, 1, [("axis", "int")])            # tf.reduce_mean (empty row: NaN)
_op("reduce_min", RAGGED, 1, [("axis", "int")])             # tf.reduce_min (empty: dtype max)
_op("reduce_max", RAGGED, 1, [("axis", "int")])             # tf.reduce_max (empty: dtype lowest)

# --- mappers that read analyzer results --------------------------------------------------------
_op("hash_strings", MAPPER, 1,                              # tft.hash_strings -> int64
    [("hash_buckets", "int"), ("key", "ints")])             # key [] = FarmHash, [k0,k1] = SipHash
_op("apply_buckets", MAPPER, 2)                             # (x, boundaries[1, n]) -> int64,
#                                                             searchsorted right; NaN -> n
_op("apply_vocabulary", MAPPER, 2,                          # (x, vocabulary asset) -> int64 ids;
    [("default_value", "int"), ("num_oov_buckets", "int"),  # OOV: size + Fingerprint64 % oov
     ("store_frequency", "bool")])                          # store_frequency: "count token" lines

# --- analyzers: batch value in, const values out (traced graphs only) --------------------------
_op("analyzer_min", ANALYZER, 1, _REDUCE)           # tft.min -> x.dtype [] (or per-row shape)
_op("analyzer_max", ANALYZER, 1, _REDUCE)           # tft.max -> x.dtype []
_op("analyzer_min_and_max", ANALYZER, 1, _REDUCE, num_outputs=2)  # (min, max), x.dtype []
_op("analyzer_sum", ANALYZER, 1, _REDUCE)           # tft.sum -> float32/float64/int64 []
_op("analyzer_size", ANALYZER, 1, _REDUCE)          # tft.size -> int64 []
_op("analyzer_mean", ANALYZER, 1, _MOMENTS)         # tft.mean -> float (int -> float32) []
_op("analyzer_var", ANALYZER, 1, _MOMENTS)          # tft.var -> float [] (population)
_op("analyzer_mean_and_var", ANALYZER, 1, _MOMENTS, num_outputs=2)  # (mean, var), float []
_op("analyzer_vocabulary", ANALYZER, 1,             # tft.vocabulary -> asset (text file)
    [("vocab_filename", "str"), ("top_k", "int"), ("frequency_threshold", "float"),
     ("store_frequency", "bool"), ("reserved_tokens", "bytes_list"), ("file_format", "str")])
_op("analyzer_quantiles", ANALYZER, 1,              # tft.quantiles -> float32 [1, n - 1]
    [("num_buckets", "int"), ("epsilon", "float"), ("reduce_instance_dims", "bool")])
