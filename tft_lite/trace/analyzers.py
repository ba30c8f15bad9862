"""TFT's analyzers with TFT's names and signatures: each records one analyzer node.

An analyzer reduces a batch tensor over the whole dataset; its result is a const tensor (or,
for `vocabulary`, a reference to the vocabulary file) that later ops may use like any
constant. Phases (an analyzer fed by another's result) are found later, by plan.py. Ragged
(VarLen) inputs are reduced over their present values. Arguments TFT has but tft_lite does
not implement (weights, labels, ...) raise at trace time rather than being ignored.
"""
from __future__ import annotations

import re

from tft_lite.trace.tensor import as_tensor, current, normalize_dtype, trace_error

VOCAB_FILENAME_PREFIX = "vocab_"
VOCAB_FREQUENCY_FILENAME_PREFIX = "vocab_frequency_"


def _analyze(op, x, attrs, scope):
    x = as_tensor(x)
    with current().name_scope(scope):
        return current().emit(op, [x], attrs)


def min(x, reduce_instance_dims=True, name=None):  # noqa: A001 - TFT's name
    """tft.min: the minimum of x (NaN propagates), x.dtype, shape [] or the row shape."""
    return _analyze("analyzer_min", x, {"reduce_instance_dims": bool(reduce_instance_dims)},
                    name or "min")


def max(x, reduce_instance_dims=True, name=None):  # noqa: A001 - TFT's name
    """tft.max: the maximum of x (NaN propagates)."""
    return _analyze("analyzer_max", x, {"reduce_instance_dims": bool(reduce_instance_dims)},
                    name or "max")


def _min_and_max(x, reduce_instance_dims=True, name=None):
    """TFT's analyzers._min_and_max: (min, max) from one pass."""
    return _analyze("analyzer_min_and_max", x,
                    {"reduce_instance_dims": bool(reduce_instance_dims)}, name or "min_and_max")


def sum(x, reduce_instance_dims=True, name=None):  # noqa: A001 - TFT's name
    """tft.sum: float32 -> float32, float64 -> float64, integers -> int64."""
    return _analyze("analyzer_sum", x, {"reduce_instance_dims": bool(reduce_instance_dims)},
                    name or "sum")


def size(x, reduce_instance_dims=True, name=None):
    """tft.size: number of values (for VarLen: present values), int64."""
    return _analyze("analyzer_size", x, {"reduce_instance_dims": bool(reduce_instance_dims)},
                    name or "size")


def _moments_attrs(reduce_instance_dims, output_dtype):
    return {"reduce_instance_dims": bool(reduce_instance_dims),
            "output_dtype": "" if output_dtype is None else normalize_dtype(output_dtype)}


def mean(x, reduce_instance_dims=True, name=None, output_dtype=None):
    """tft.mean: NaN/inf ignored; no finite value -> 0; integers -> float32."""
    return _analyze("analyzer_mean", x, _moments_attrs(reduce_instance_dims, output_dtype),
                    name or "mean")


def var(x, reduce_instance_dims=True, name=None, output_dtype=None):
    """tft.var: population variance (ddof 0), NaN/inf ignored."""
    return _analyze("analyzer_var", x, _moments_attrs(reduce_instance_dims, output_dtype),
                    name or "var")


def _mean_and_var(x, reduce_instance_dims=True, name=None, output_dtype=None):
    """TFT's analyzers._mean_and_var: (mean, var) from one pass."""
    return _analyze("analyzer_mean_and_var", x,
                    _moments_attrs(reduce_instance_dims, output_dtype), name or "mean_and_var")


def quantiles(x, num_buckets, epsilon, weights=None, reduce_instance_dims=True, name=None):
    """tft.quantiles: float32 boundaries [1, num_buckets - 1] (TFT's sketch, NaN ignored)."""
    if weights is not None:
        raise trace_error("tft_lite.quantiles does not support weights yet")
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, int) or num_buckets < 2:
        raise trace_error(f"num_buckets must be an int >= 2, got {num_buckets!r}")
    if not float(epsilon) > 0:
        raise trace_error(f"epsilon must be positive, got {epsilon!r}")
    return _analyze("analyzer_quantiles", x, {
        "num_buckets": num_buckets, "epsilon": float(epsilon),
        "reduce_instance_dims": bool(reduce_instance_dims)}, name or "quantiles")


def sanitized_vocab_filename(filename=None, prefix=None, scope=""):
    """TFT's rule: non-word characters -> '_', whitespace runs -> '-'."""
    if filename is None:
        filename = prefix + scope
    filename = re.sub(r"[^\w\s-]", "_", filename).strip()
    return re.sub(r"[-\s]+", "-", filename)


_UNSUPPORTED = ("weights", "labels", "key_fn", "coverage_top_k", "coverage_frequency_threshold")


def vocabulary(x, *, top_k=None, frequency_threshold=None, vocab_filename=None,
               store_frequency=False, reserved_tokens=None, weights=None, labels=None,
               use_adjusted_mutual_info=False, min_diff_from_avg=None, coverage_top_k=None,
               coverage_frequency_threshold=None, key_fn=None, fingerprint_shuffle=False,
               file_format="text", name=None):
    """tft.vocabulary (frequency ordering): returns a reference to the vocabulary file.

    The file is named vocab_filename, or after the name scope as TFT does
    (vocab_vocabulary, vocab_compute_and_apply_vocabulary_1_vocabulary, ...).
    """
    given = dict(weights=weights, labels=labels, key_fn=key_fn, coverage_top_k=coverage_top_k,
                 coverage_frequency_threshold=coverage_frequency_threshold)
    unsupported = [k for k in _UNSUPPORTED if given[k] is not None]
    if unsupported or fingerprint_shuffle or use_adjusted_mutual_info:
        raise trace_error(f"tft_lite.vocabulary does not support {unsupported or 'this option'}")
    if file_format != "text":
        raise trace_error(f"file_format {file_format!r} is not supported; use 'text'")
    attrs = {"top_k": _top_k(top_k), "store_frequency": bool(store_frequency),
             "frequency_threshold": _threshold(frequency_threshold),
             "reserved_tokens": _reserved(reserved_tokens), "file_format": file_format}
    tracer = current()
    x = as_tensor(x)
    with tracer.name_scope(name or "vocabulary") as scope:
        prefix = None if vocab_filename is not None else (
            VOCAB_FREQUENCY_FILENAME_PREFIX if store_frequency else VOCAB_FILENAME_PREFIX)
        filename = sanitized_vocab_filename(vocab_filename, prefix, scope.replace("/", "_"))
        _check_unique_filename(tracer, filename)
        attrs["vocab_filename"] = filename
        return tracer.emit("analyzer_vocabulary", [x], attrs)


def _top_k(top_k) -> int:
    if top_k is None:
        return 0
    if int(top_k) <= 0:
        raise trace_error(f"top_k must be positive, but got: {top_k!r}")
    return int(top_k)


def _threshold(frequency_threshold) -> float:
    if frequency_threshold is None:
        return 0.0
    if float(frequency_threshold) < 0:
        raise trace_error(f"frequency_threshold must be non-negative, but got: "
                          f"{frequency_threshold!r}")
    return float(frequency_threshold)


def _reserved(tokens) -> tuple:
    if tokens is None:
        return ()
    return tuple(t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in tokens)


def _check_unique_filename(tracer, filename: str) -> None:
    for node in tracer.nodes:
        if node.op == "analyzer_vocabulary" and node.attrs["vocab_filename"] == filename:
            raise trace_error(f"vocab_filename {filename!r} is used twice in this "
                              "preprocessing_fn; it must be unique")
