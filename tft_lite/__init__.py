"""tft_lite: TensorFlow Transform without TensorFlow.

Port a preprocessing_fn by replacing `import tensorflow_transform as tft` with
`import tft_lite as tft` (and tf.math / tf.strings / tf.where / tf.cast calls with
tft.math / tft.strings / tft.where / tft.cast), then:

    graph = tft.analyze(preprocessing_fn, record_batches, raw_feature_spec)
    outputs = graph.transform(batch)      # dict of numpy arrays
    graph.save("output/transform")        # tft_lite.serving.load(...) reads it back

Layers, bottom up (a lower layer never imports a higher one):
  ir/         feature specs, graph nodes and ops, serialization (numpy + protobuf only)
  io/         TFRecord framing and the tf.train.Example codec
  kernels/    hashing, vocabulary lookup, token handling
  analyzers/  pure mergeable accumulators (numpy/pyarrow only)
  serving/    loads a transform graph and applies it with numpy
  trace/      symbolic tensors recording a preprocessing_fn into an ir.Graph
  plan.py, local.py   analyzer phases; in-process analysis
  beam/       Apache Beam PTransforms (the only place apache_beam is imported)

The public API below is loaded lazily (PEP 562), so `import tft_lite.serving` does not pull
in the tracer and `import tft_lite` stays light.
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "tft_lite.local": ["analyze"],
    "tft_lite.trace.analyzers": ["min", "max", "sum", "size", "mean", "var", "vocabulary",
                                 "quantiles"],
    "tft_lite.trace.mappers": ["scale_to_z_score", "scale_to_0_1", "scale_by_min_max",
                               "compute_and_apply_vocabulary", "apply_vocabulary",
                               "bucketize", "apply_buckets", "hash_strings"],
    "tft_lite.trace.api": [
        "log", "log1p", "exp", "expm1", "sqrt", "square", "abs", "sign", "negative", "sigmoid",
        "floor", "ceil", "round", "is_nan", "is_inf", "is_finite", "logical_not", "logical_and",
        "logical_or", "add", "subtract", "multiply", "divide", "floordiv", "floormod", "pow",
        "maximum", "minimum", "equal", "not_equal", "less", "less_equal", "greater",
        "greater_equal", "where", "clip_by_value", "cast", "squeeze", "expand_dims",
        "fill_missing", "sparse_tensor_to_dense_with_shape", "row_lengths", "reduce_sum",
        "reduce_mean", "reduce_min", "reduce_max", "lower", "upper", "strip", "substr",
        "regex_replace", "to_number", "split", "constant", "math", "strings"],
    "tft_lite.trace": ["Tensor"],  # the tracer itself: tft_lite.trace.trace
    "tft_lite.serving.graph": ["TransformGraph"],
    "tft_lite.ir.schema": ["FixedLenFeature", "VarLenFeature"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tft_lite' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
