"""TFT's mappers with TFT's names, signatures and formulas, built from graph ops.

Each mapper is written the way tensorflow_transform/mappers.py computes it (same ops, same
order, same dtypes), so float32 results round like TFT's: e.g. scale_to_z_score is
where(sqrt(var) != 0, (x - mean) / sqrt(var), x - mean). The analyzers it needs are recorded
as analyzer nodes; a nested call such as bucketize(scale_to_z_score(x), 10) just makes the
second analyzer read the first one's result, and plan.py schedules it one phase later.
"""
from __future__ import annotations

from tft_lite.trace import analyzers
from tft_lite.trace.api import cast, regex_replace, sigmoid, sqrt, where
from tft_lite.trace.tensor import Tensor, as_tensor, constant, current, to_array, trace_error


def scale_to_z_score(x, elementwise=False, name=None, output_dtype=None):
    """tft.scale_to_z_score: (x - mean) / std (population); std 0 -> x - mean."""
    x = as_tensor(x)
    with current().name_scope(name or "scale_to_z_score"):
        x_mean, x_var = analyzers._mean_and_var(x, reduce_instance_dims=not elementwise,
                                                output_dtype=output_dtype)
        numerator = cast(x, x_mean.dtype) - x_mean
        denominator = sqrt(x_var)
        return where(denominator != 0, numerator / denominator, numerator)


def scale_by_min_max(x, output_min=0.0, output_max=1.0, elementwise=False, name=None):
    """tft.scale_by_min_max: to [output_min, output_max]; if min >= max (one distinct value
    or no data), sigmoid(x) projected on the range, exactly as TFT."""
    with current().name_scope(name or "scale_by_min_max"):
        return _scale_by_min_max(x, output_min, output_max, elementwise)


def scale_to_0_1(x, elementwise=False, name=None):
    """tft.scale_to_0_1: scale_by_min_max(x, 0, 1)."""
    with current().name_scope(name or "scale_to_0_1"):
        return _scale_by_min_max(x, 0, 1, elementwise)


def _scale_by_min_max(x, output_min, output_max, elementwise):
    if output_min >= output_max:
        raise trace_error("output_min must be less than output_max")
    x = cast(as_tensor(x), "float32")
    min_x, max_x = analyzers._min_and_max(x, reduce_instance_dims=not elementwise)
    numerator = x - min_x
    scaled = where(min_x < max_x, numerator / (max_x - min_x), sigmoid(x))
    return scaled * (output_max - output_min) + output_min


def compute_and_apply_vocabulary(x, *, default_value=-1, top_k=None, frequency_threshold=None,
                                 num_oov_buckets=0, vocab_filename=None, weights=None,
                                 labels=None, use_adjusted_mutual_info=False,
                                 min_diff_from_avg=0.0, coverage_top_k=None,
                                 coverage_frequency_threshold=None, key_fn=None,
                                 fingerprint_shuffle=False, file_format="text",
                                 store_frequency=False, reserved_tokens=None, name=None):
    """tft.compute_and_apply_vocabulary: vocabulary ids; OOV -> default_value, or with
    num_oov_buckets > 0 -> vocab_size + Fingerprint64(token) % num_oov_buckets."""
    x = as_tensor(x)
    with current().name_scope(name or "compute_and_apply_vocabulary"):
        if store_frequency and file_format == "text" and x.dtype == "string":
            x = regex_replace(x, " ", "__SPACE__")  # TFT's maybe_format_vocabulary_input
        vocab = analyzers.vocabulary(
            x, top_k=top_k, frequency_threshold=frequency_threshold,
            vocab_filename=vocab_filename, store_frequency=store_frequency, weights=weights,
            labels=labels, use_adjusted_mutual_info=use_adjusted_mutual_info,
            min_diff_from_avg=min_diff_from_avg, coverage_top_k=coverage_top_k,
            coverage_frequency_threshold=coverage_frequency_threshold, key_fn=key_fn,
            fingerprint_shuffle=fingerprint_shuffle, file_format=file_format,
            reserved_tokens=reserved_tokens)
        return _apply_vocabulary(x, vocab, default_value, num_oov_buckets, store_frequency)


def apply_vocabulary(x, deferred_vocab_filename_tensor, *, default_value=-1, num_oov_buckets=0,
                     lookup_fn=None, file_format="text", name=None):
    """tft.apply_vocabulary: looks x up in a vocabulary made by tft_lite.vocabulary."""
    if lookup_fn is not None or file_format != "text":
        raise trace_error("apply_vocabulary: lookup_fn and non-text formats are not supported")
    with current().name_scope(name or "apply_vocab"):
        return _apply_vocabulary(as_tensor(x), deferred_vocab_filename_tensor, default_value,
                                 num_oov_buckets, False)


def _apply_vocabulary(x, vocab, default_value, num_oov_buckets, store_frequency):
    if not isinstance(vocab, Tensor):
        raise trace_error("deferred_vocab_filename_tensor must be the result of "
                          "tft_lite.vocabulary")
    if int(num_oov_buckets) < 0:
        raise trace_error(f"num_oov_buckets must be >= 0, got {num_oov_buckets!r}")
    return current().emit("apply_vocabulary", [x, vocab], {
        "default_value": int(default_value), "num_oov_buckets": int(num_oov_buckets),
        "store_frequency": bool(store_frequency)})


def bucketize(x, num_buckets, epsilon=None, weights=None, elementwise=False, name=None):
    """tft.bucketize: quantile boundaries of x, then apply_buckets (NaN -> last bucket)."""
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, int):
        raise trace_error(f"num_buckets must be an int, got {type(num_buckets).__name__}")
    if num_buckets < 2:
        raise trace_error(f"Invalid num_buckets {num_buckets} (tft_lite needs >= 2)")
    if elementwise:
        raise trace_error("bucketize(elementwise=True) is not supported yet")
    x = as_tensor(x)
    with current().name_scope(name or "bucketize"):
        if epsilon is None:
            epsilon = min(1.0 / num_buckets, 0.01)
        boundaries = analyzers.quantiles(x, num_buckets, epsilon, weights=weights)
        return apply_buckets(x, boundaries)


def apply_buckets(x, bucket_boundaries, name=None):
    """tft.apply_buckets: index i with boundaries[i-1] <= x < boundaries[i]; NaN -> n."""
    if not isinstance(bucket_boundaries, Tensor):
        bucket_boundaries = constant(to_array(bucket_boundaries))
    with current().name_scope(name or "apply_buckets"):
        return current().emit("apply_buckets", [as_tensor(x), bucket_boundaries], {})


def hash_strings(strings, hash_buckets, key=None, name=None):
    """tft.hash_strings: FarmHash Fingerprint64 % buckets, or keyed SipHash with key."""
    strings = as_tensor(strings)
    if strings.dtype != "string":
        raise trace_error(f"Input to hash_strings must be a string tensor; got {strings.dtype}")
    if isinstance(hash_buckets, bool) or not isinstance(hash_buckets, int) or hash_buckets < 1:
        raise trace_error(f"hash_buckets must be a positive int, got {hash_buckets!r}")
    key = () if key is None else tuple(int(k) for k in key)
    if len(key) not in (0, 2):
        raise trace_error(f"key must hold two integers, got {key!r}")
    return current().emit("hash_strings", [strings], {"hash_buckets": hash_buckets, "key": key})
