"""Quantiles analyzer: a pure-numpy, mergeable replica of TFT's quantiles sketch.

`QuantilesCombiner` computes the bucket boundaries of `tft.quantiles(x, num_buckets, epsilon)`
and `tft.bucketize(x, num_buckets, epsilon=None)`.

Where the algorithm comes from
------------------------------
TFT (tensorflow_transform/analyzers.py, `QuantilesCombiner`) wraps tfx_bsl's C++
`QuantilesSketch` (tfx_bsl/cc/sketches/quantiles_sketch.cc), which runs one
`WeightedQuantilesStream` per feature (weighted_quantiles_stream.h, _summary.h, _buffer.h,
originally tensorflow/core/kernels/boosted_trees/quantiles/). This module re-implements that
algorithm step for step with vectorized numpy, so that the same sequence of
add_input / merge_accumulators / compact / extract_output calls yields bit-identical
float64 quantiles (then cast to float32, as TFT does):

* The sketch runs its streams with eps' = epsilon / 3 and max_num_elements = 2**32.
  `_quantile_specs` derives (max_level, block_size) from them, e.g. epsilon=0.01 gives
  block_size=5701; the raw buffer holds 2 * block_size entries.
* Buffer: values (with weights) are appended in arrival order. When it holds exactly
  2 * block_size entries it is sorted, equal values are folded (weights summed) into an exact
  summary (value, weight, min_rank, max_rank), which is compressed to ~block_size entries
  and propagated up a multi-level chain (level l merges, and if over block_size + 1
  entries compresses and moves up), as in the GK / "squawd" design.
* Merging accumulators pushes the other stream's raw buffer entries, then each of its level
  summaries (compressed first) into the first accumulator. `compact` replaces a stream by
  its (compressed) final summary, once per sketch (TFT's `compacted` flag).
* extract_output finalizes (flush buffer, merge all levels, no further compression) and
  makes num_quantiles + 1 rank queries (d = rank * W / num_quantiles) returning min, the
  num_quantiles - 1 inner boundaries and max; TFT then drops min and max.

Exact TFT rules replicated here
-------------------------------
* NaN values (and, with weights, NaN or <= 0 weights) are ignored. +/-inf are ordinary
  values and can become boundaries. (pyarrow nulls are rejected, as by every tft_lite
  analyzer; TF tensors have no nulls, tfx_bsl's sketch would skip them.)
* Integer inputs are converted to float64 (large int64 values may round, as in tfx_bsl).
* Output: one float32 array (bucket_numpy_dtype); with reduce_instance_dims (the default)
  its shape is [1, num_buckets - 1], as `tft.quantiles` returns; elementwise it is
  feature_shape + [num_buckets - 1]. Boundaries may repeat (e.g. few distinct values).
* No input at all: zeros of the output shape.
* Default epsilon (`epsilon=None`, tft.bucketize's rule): min(1 / num_buckets, 0.01).

Guarantees
----------
* If a feature has at most block_size distinct values (5701 for epsilon=0.01), no
  compression ever drops an entry: the result is exact, a function of the multiset of
  (value, weight) only, so any batch split or merge order gives identical output.
* Otherwise memory stays bounded: a buffer of 2 * block_size raw values plus at most
  max_level summaries of <= block_size + 1 entries, i.e. O(1/eps * log^2(eps n)) per feature
  (~37k entries, ~1 MB pickled, for epsilon=0.01 after 1e6 values; ~6k after compact). The
  rank of every returned boundary is within epsilon * W (W = total weight) of its target
  i * W / num_buckets: tfx_bsl's bound for its add -> compact -> merge -> extract graph
  (each compression level gets epsilon / 3); tests check it on 1e6 values for flat, Beam-like
  (fanout 10) and deep compacting merge trees, where the observed error stays below
  0.15 * epsilon * W. The exact output then depends on the batch split / merge order, as it
  does in TFT (Beam's partitioning).
* Numerics equal tfx_bsl's for integer-valued weights (always the case without weights);
  non-integer weights of equal values may be summed in a different order (last-ulp effects).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from tft_lite.analyzers.base import Combiner, as_numpy, single_input
from tft_lite.errors import SchemaError

__all__ = ["QuantilesCombiner", "default_epsilon"]

# tfx_bsl's QuantilesSketch divides epsilon by the height of its computation graph (3).
_SKETCH_GRAPH_HEIGHT = 3
# TFT's QuantilesCombiner: "expected upper bound on the total number of input elements".
_DEFAULT_MAX_NUM_VALUES = 1 << 32
# Summaries are float64 arrays of shape (4, m): rows value, weight, min_rank, max_rank.
_VALUE, _WEIGHT, _MIN_RANK, _MAX_RANK = 0, 1, 2, 3
_EMPTY_SUMMARY = np.empty((4, 0), dtype=np.float64)
_EMPTY_SUMMARY.setflags(write=False)
_EMPTY_VALUES = np.empty((0,), dtype=np.float64)
_EMPTY_VALUES.setflags(write=False)
# Below this size the scalar (reference) compression is as fast as the vectorized one.
_SMALL_COMPRESS = 48


def default_epsilon(num_buckets: int) -> float:
    """tft.bucketize's default error tolerance: min(1 / num_buckets, 0.01)."""
    return min(1.0 / num_buckets, 0.01)


def _quantile_specs(eps: float, max_elements: int) -> tuple[int, int]:
    """(max_level, block_size) exactly as WeightedQuantilesStream::GetQuantileSpecs."""
    if eps <= np.finfo(np.float64).eps:
        return 1, max(int(max_elements), 2)
    max_level, block_size = 1, 2
    while (1 << max_level) * block_size < max_elements:
        block_size = int(math.ceil(max_level / eps)) + 1
        max_level += 1
    return max_level, max(block_size, 2)


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _summary_from_sorted(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Exact summary of sorted values: equal values folded, ranks are running weight sums."""
    n = values.size
    if n == 0:
        return _EMPTY_SUMMARY
    is_new = np.empty(n, dtype=bool)
    is_new[0] = True
    np.not_equal(values[1:], values[:-1], out=is_new[1:])
    starts = np.flatnonzero(is_new)
    out = np.empty((4, starts.size), dtype=np.float64)
    out[_VALUE] = values[starts]
    if weights is None:
        out[_WEIGHT] = np.diff(np.append(starts, n))
    elif starts.size == n:
        out[_WEIGHT] = weights
    else:
        out[_WEIGHT] = np.add.reduceat(weights, starts)
    np.cumsum(out[_WEIGHT], out=out[_MAX_RANK])
    out[_MIN_RANK, 0] = 0.0
    out[_MIN_RANK, 1:] = out[_MAX_RANK, :-1]
    return out


def _merge(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """WeightedQuantilesSummary::Merge, vectorized (ranks of both sides interleaved)."""
    n1, n2 = base.shape[1], other.shape[1]
    if n2 == 0:
        return base
    if n1 == 0:
        return other
    v1, w1, mn1, mx1 = base
    v2, w2, mn2, mx2 = other
    next_min1, prev_max1 = mn1 + w1, mx1 - w1
    next_min2, prev_max2 = mn2 + w2, mx2 - w2

    j1 = np.searchsorted(v2, v1, side="left")  # entries of `other` below each base value
    j2 = np.searchsorted(v1, v2, side="left")
    eq1 = j1 < n2
    eq1[eq1] = v2[j1[eq1]] == v1[eq1]
    eq2 = j2 < n1
    eq2[eq2] = v1[j2[eq2]] == v2[eq2]

    # Base entries: min rank adds the next-min-rank of the last smaller `other` entry, max rank
    # the prev-max-rank of the first larger one (or other's total weight when none is larger).
    jm1 = np.maximum(j1 - 1, 0)
    jc1 = np.minimum(j1, n2 - 1)
    a_w = w1.copy()
    a_min = mn1 + np.where(j1 > 0, next_min2[jm1], 0.0)
    a_max = mx1 + np.where(j1 < n2, prev_max2[jc1], mx2[-1])
    if eq1.any():
        je = j1[eq1]
        a_w[eq1] = w1[eq1] + w2[je]
        a_min[eq1] = mn1[eq1] + mn2[je]
        a_max[eq1] = mx1[eq1] + mx2[je]

    only2 = ~eq2
    jo = j2[only2]
    b_min = mn2[only2] + np.where(jo > 0, next_min1[np.maximum(jo - 1, 0)], 0.0)
    b_max = mx2[only2] + np.where(jo < n1, prev_max1[np.minimum(jo, n1 - 1)], mx1[-1])

    # Output positions: each side's index plus the number of entries of the other side before it.
    eq_before = np.zeros(n2 + 1, dtype=np.int64)
    np.cumsum(eq2, out=eq_before[1:])
    pos1 = np.arange(n1) + (j1 - eq_before[j1])
    k2 = np.flatnonzero(only2)
    pos2 = (k2 - eq_before[k2]) + jo
    out = np.empty((4, n1 + k2.size), dtype=np.float64)
    out[:, pos1] = (v1, a_w, a_min, a_max)
    out[:, pos2] = (v2[only2], w2[only2], b_min, b_max)
    return out


def _compress_reference(summary: np.ndarray, size_hint: int, min_eps: float) -> np.ndarray:
    """Scalar port of WeightedQuantilesSummary::Compress (reference and fallback)."""
    n = summary.shape[1]
    size_hint = max(int(size_hint), 2)
    if n <= size_hint:
        return summary
    _, w, mn, mx = summary
    eps_delta = float(mx[-1]) * max(1.0 / size_hint, min_eps)
    prev_max = (mx - w).tolist()
    next_min = (mn + w).tolist()
    keep = [0]
    add_acc, add_step = 0, n
    read = 0
    while read + 1 != n:
        nxt = read + 1
        while nxt != n and add_acc < add_step and prev_max[nxt] - next_min[read] <= eps_delta:
            add_acc += size_hint
            nxt += 1
        read = read + 1 if read == nxt - 1 else nxt - 1
        keep.append(read)
        add_acc -= add_step
    if keep[-1] != n - 1:  # never taken once the loop ran; kept for fidelity
        keep.append(n - 1)
    return summary[:, keep]


def _compress_select(prev_max: np.ndarray, next_min: np.ndarray, size_hint: int,
                     eps_delta: float) -> np.ndarray:
    """Indices kept by Compress, simulating its greedy scan in vectorized segments.

    Scan state: read index i and integer accumulator a. One step extends the candidate
    k = min(ceil((n - a) / s), reach(i)) times, where reach(i) counts the consecutive
    j > i with prev_max[j] - next_min[i] <= delta, then moves i by max(k, 1) and sets
    a += s*k - n. While the accumulator is the binding limit, a_t = (a - t*n) mod s in closed
    form, so a whole run of such steps is computed at once and checked with one vectorized
    rank test (prev_max non-decreasing makes the test monotone in j); a step limited by the
    rank test ends the run and is taken on its own.
    """
    n = prev_max.size
    s = size_hint
    pieces = [np.zeros(1, dtype=np.int64)]
    i, a = 0, 0
    window = n  # upper bound on steps computed in one go (adapted below)
    while i < n - 1:
        steps = min(window, (n - 1 - i) * s // n + 2)
        t = np.arange(1, steps + 1, dtype=np.int64)
        acc = np.mod(a - t * n, s)
        prev_acc = np.empty_like(acc)
        prev_acc[0] = a
        prev_acc[1:] = acc[:-1]
        k = (acc - prev_acc + n) // s
        pos = i + np.cumsum(k)
        prev_pos = np.empty_like(pos)
        prev_pos[0] = i
        prev_pos[1:] = pos[:-1]
        stop = pos > n - 1
        pos_c = np.minimum(pos, n - 1)
        stop |= prev_max[pos_c] - next_min[np.minimum(prev_pos, n - 1)] > eps_delta
        b = int(np.argmax(stop)) if stop.any() else steps
        if b:
            pieces.append(pos[:b])
            i, a = int(pos[b - 1]), int(acc[b - 1])
        if b == steps:
            window *= 2
            continue
        if i >= n - 1:
            break
        # A step cut short by the rank test (or by the end of the summary).
        k_acc = (n - a + s - 1) // s
        hi = min(i + k_acc, n - 1)
        fails = prev_max[i + 1 : hi + 1] - next_min[i] > eps_delta
        kk = int(np.argmax(fails)) if fails.any() else hi - i
        i += max(kk, 1)
        a += s * kk - n
        pieces.append(np.array([i], dtype=np.int64))
        window = max(64, 2 * b)
    keep = np.concatenate(pieces)
    if keep[-1] != n - 1:
        keep = np.append(keep, n - 1)
    return keep


def _compress(summary: np.ndarray, size_hint: int, min_eps: float) -> np.ndarray:
    """WeightedQuantilesSummary::Compress: keep ~size_hint entries, error grows <= delta."""
    n = summary.shape[1]
    size_hint = max(int(size_hint), 2)
    if n <= size_hint:
        return summary
    _, w, mn, mx = summary
    prev_max = mx - w
    if n < _SMALL_COMPRESS or not bool(np.all(prev_max[1:] >= prev_max[:-1])):
        return _compress_reference(summary, size_hint, min_eps)
    eps_delta = float(mx[-1]) * max(1.0 / size_hint, min_eps)
    keep = _compress_select(prev_max, mn + w, size_hint, eps_delta)
    return summary[:, keep]


def _generate_quantiles_reference(summary: np.ndarray, num_quantiles: int) -> np.ndarray:
    """Scalar port of GenerateQuantilesAndCumulativeWeights (values only)."""
    v, w, mn, mx = (row.tolist() for row in summary)
    m = len(v)
    num_quantiles = max(int(num_quantiles), 2)
    total = mx[-1]
    out = []
    cur = 0
    for rank in range(num_quantiles + 1):
        d_2 = 2 * (rank * total / num_quantiles)
        nxt = cur + 1
        while nxt < m and d_2 >= mn[nxt] + mx[nxt]:
            nxt += 1
        cur = nxt - 1
        if nxt == m or d_2 < (mn[cur] + w[cur]) + (mx[nxt] - w[nxt]):
            out.append(v[cur])
        else:
            out.append(v[nxt])
    return np.array(out, dtype=np.float64)


def _generate_quantiles(summary: np.ndarray, num_quantiles: int) -> np.ndarray:
    """min, num_quantiles - 1 boundaries and max of a final summary (float64)."""
    v, w, mn, mx = summary
    m = v.size
    num_quantiles = max(int(num_quantiles), 2)
    mid = mn + mx
    if m < 2 or not bool(np.all(mid[2:] >= mid[1:-1])):
        return _generate_quantiles_reference(summary, num_quantiles)
    ranks = np.arange(num_quantiles + 1, dtype=np.float64)
    d_2 = 2.0 * (ranks * mx[-1] / float(num_quantiles))
    nxt = 1 + np.searchsorted(mid[1:], d_2, side="right")
    cur = nxt - 1
    inside = nxt < m
    nxt_c = np.minimum(nxt, m - 1)
    take_cur = ~inside | (d_2 < (mn[cur] + w[cur]) + (mx[nxt_c] - w[nxt_c]))
    return np.where(take_cur, v[cur], v[nxt_c])


# --------------------------------------------------------------------------------------------
# Streams (one per feature). A stream is the tuple (buffer_values, buffer_weights, levels):
# buffer_weights is None for unweighted combiners (all weights 1), levels a tuple of summaries.
# --------------------------------------------------------------------------------------------


class _StreamParams:
    __slots__ = ("eps", "block_size", "buffer_size")

    def __init__(self, eps: float, max_elements: int):
        self.eps = eps
        _, self.block_size = _quantile_specs(eps, max_elements)
        self.buffer_size = min(self.block_size << 1, int(max_elements))


def _push_summary(levels: list, summary: np.ndarray, p: _StreamParams) -> None:
    """WeightedQuantilesStream::PushSummary / PushBuffer + PropagateLocalSummary."""
    local = _compress(summary, p.block_size, p.eps)
    if local.shape[1] == 0:
        return
    level = 0
    while True:
        if len(levels) <= level:
            levels.append(_EMPTY_SUMMARY)
        current = levels[level]
        local = _merge(local, current)
        if current.shape[1] == 0 or local.shape[1] <= p.block_size + 1:
            levels[level] = local
            return
        local = _compress(local, p.block_size, p.eps)
        levels[level] = _EMPTY_SUMMARY
        level += 1


def _flush(levels: list, values: np.ndarray, weights: np.ndarray | None, p: _StreamParams):
    """Sort a full buffer into an exact summary and push it (PushBuffer)."""
    if values.size == 0:
        return
    if weights is None:
        summary = _summary_from_sorted(np.sort(values), None)
    else:
        order = np.argsort(values, kind="stable")
        summary = _summary_from_sorted(values[order], weights[order])
    _push_summary(levels, summary, p)


def _push_entries(stream, values, weights, p: _StreamParams):
    """PushEntry for each (value, weight) in order; flushes whenever the buffer fills."""
    buf_v, buf_w, levels = stream
    m = values.size
    if m == 0:
        return stream
    cap = p.buffer_size
    nb = buf_v.size
    if nb + m < cap:
        new_v = np.concatenate((buf_v, values))
        new_w = None if weights is None else np.concatenate((buf_w, weights))
        return new_v, new_w, levels
    levels = list(levels)
    first = cap - nb
    _flush(
        levels,
        np.concatenate((buf_v, values[:first])),
        None if weights is None else np.concatenate((buf_w, weights[:first])),
        p,
    )
    rest = m - first
    full = rest // cap
    if full:
        block_v = values[first : first + full * cap].reshape(full, cap)
        if weights is None:
            sorted_v = np.sort(block_v, axis=1)
            for row in sorted_v:
                _push_summary(levels, _summary_from_sorted(row, None), p)
        else:
            block_w = weights[first : first + full * cap].reshape(full, cap)
            order = np.argsort(block_v, axis=1, kind="stable")
            sorted_v = np.take_along_axis(block_v, order, axis=1)
            sorted_w = np.take_along_axis(block_w, order, axis=1)
            for row_v, row_w in zip(sorted_v, sorted_w):
                _push_summary(levels, _summary_from_sorted(row_v, row_w), p)
    tail = first + full * cap
    new_v = values[tail:].copy()
    new_w = None if weights is None else weights[tail:].copy()
    return new_v, new_w, tuple(levels)


def _finalize(stream, p: _StreamParams) -> np.ndarray:
    """WeightedQuantilesStream::Finalize on a copy: flush the buffer, merge all levels."""
    buf_v, buf_w, levels = stream
    levels = list(levels)
    _flush(levels, buf_v, buf_w, p)
    final = _EMPTY_SUMMARY
    for summary in levels:
        final = _merge(final, summary)
    return final


def _merge_streams(stream, other, p: _StreamParams):
    """WeightedQuantilesStream::PushStream: other's raw buffer, then each of its levels."""
    o_v, o_w, o_levels = other
    if stream[1] is not None and o_w is None:
        o_w = np.ones(o_v.size)
    stream = _push_entries(stream, o_v, o_w, p)
    if not any(s.shape[1] for s in o_levels):
        return stream
    buf_v, buf_w, levels = stream
    levels = list(levels)
    for summary in o_levels:
        _push_summary(levels, summary, p)
    return buf_v, buf_w, tuple(levels)


def _compact_stream(stream, p: _StreamParams):
    final = _finalize(stream, p)
    levels: list = []
    _push_summary(levels, final, p)
    return stream[0][:0], None if stream[1] is None else stream[1][:0], tuple(levels)


# --------------------------------------------------------------------------------------------
# Input conversion
# --------------------------------------------------------------------------------------------


def _as_float64(x, what: str) -> np.ndarray:
    """Flattened float64 view-or-copy of a numpy / pyarrow / sequence input (nulls rejected).

    Every numeric type is converted to float64, as tfx_bsl does (large int64 values round).
    """
    arr = as_numpy(x)
    if arr.dtype.kind not in "biuf":
        raise SchemaError(f"quantiles: {what} must be numeric, got dtype {arr.dtype}")
    return np.ravel(arr).astype(np.float64, copy=False)


class _Derived:
    """Everything QuantilesCombiner derives from its config (kept out of the instance)."""

    __slots__ = ("epsilon", "params", "output_shape", "num_streams")

    def __init__(self, num_quantiles, epsilon, output_shape, include_max_and_min, feature_shape,
                 max_num_values):
        self.epsilon = default_epsilon(num_quantiles) if epsilon is None else float(epsilon)
        self.params = _StreamParams(self.epsilon / _SKETCH_GRAPH_HEIGHT, int(max_num_values))
        fshape = list(feature_shape)
        num_outputs = num_quantiles + 1 if include_max_and_min else num_quantiles - 1
        if output_shape is None:
            self.output_shape = tuple((fshape if fshape else [1]) + [num_outputs])
        else:
            self.output_shape = tuple(output_shape)
        self.num_streams = int(np.prod(fshape, dtype=np.int64))


@functools.lru_cache(maxsize=256)
def _derive(num_quantiles, epsilon, output_shape, include_max_and_min, feature_shape,
            max_num_values) -> _Derived:
    return _Derived(num_quantiles, epsilon, output_shape, include_max_and_min, feature_shape,
                    max_num_values)


def _shape_tuple(shape, what: str):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = [shape]
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{what} must have non-negative dims, got {shape!r}")
    return dims


# --------------------------------------------------------------------------------------------
# Combiner
# --------------------------------------------------------------------------------------------


class QuantilesCombiner(Combiner):
    """Approximate quantiles with TFT's sketch; mergeable, picklable accumulators.

    Args:
      num_quantiles: number of buckets (num_buckets in tft.quantiles / tft.bucketize), >= 2.
      epsilon: error tolerance; None means tft.bucketize's default min(1/num_buckets, 0.01).
      bucket_numpy_dtype: output dtype (TFT uses float32 for every input type).
      has_weights: batches are (values, weights); weights are per row of `values`.
      output_shape: output shape; None means what tft.quantiles produces:
        (feature_shape or [1]) + [num_outputs]. (TFT's QuantilesCombiner class alone would
        default to feature_shape + [num_outputs]; pass that explicitly to get it.)
      include_max_and_min: also return min and max (num_quantiles + 1 outputs).
      feature_shape: per-instance shape for elementwise quantiles (reduce_instance_dims=False,
        values arrive as [batch] + feature_shape); None or [] reduces all values together.
      max_num_values: the sketch's expected upper bound on values per feature (TFT: 2**32).

    The accumulator is the plain tuple (streams, compacted) where streams holds, per feature,
    (buffer_values, buffer_weights_or_None, levels) with levels a tuple of (4, m) float64
    summaries (value, weight, min_rank, max_rank). Accumulators are never mutated in place.

    Determinism: bit-identical output for any batch split / merge order / compaction as long
    as each feature has at most `block_size` distinct values (5701 for epsilon=0.01). Beyond
    that the output depends on the order (as TFT's does) but the rank error of every boundary
    stays within epsilon * total_weight.
    """

    def __init__(
        self,
        num_quantiles,
        epsilon=None,
        bucket_numpy_dtype=np.float32,
        has_weights=False,
        output_shape=None,
        include_max_and_min=False,
        feature_shape=None,
        max_num_values=_DEFAULT_MAX_NUM_VALUES,
    ):
        self.num_quantiles = num_quantiles
        self.epsilon = epsilon
        self.bucket_numpy_dtype = bucket_numpy_dtype
        self.has_weights = has_weights
        self.output_shape = output_shape
        self.include_max_and_min = include_max_and_min
        self.feature_shape = feature_shape
        self.max_num_values = max_num_values
        # Validation only; derived values are recomputed (cached) in `_derived`.
        if isinstance(num_quantiles, bool) or not isinstance(num_quantiles, (int, np.integer)):
            raise TypeError(f"num_quantiles must be an int, got {type(num_quantiles).__name__}")
        if num_quantiles < 2:
            raise ValueError(
                f"num_quantiles must be >= 2 (tfx_bsl's sketch rejects {num_quantiles})"
            )
        if epsilon is not None and not float(epsilon) > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        if int(max_num_values) < 1:
            raise ValueError(f"max_num_values must be >= 1, got {max_num_values!r}")
        np.dtype(bucket_numpy_dtype)
        d = self._derived
        if d.num_streams < 1:
            raise ValueError(f"feature_shape must have a positive size, got {feature_shape!r}")
        if int(np.prod(d.output_shape, dtype=np.int64)) != d.num_streams * (
            num_quantiles + 1 if include_max_and_min else num_quantiles - 1
        ):
            raise ValueError(f"output_shape {output_shape!r} does not fit the outputs")

    @property
    def _derived(self) -> _Derived:
        return _derive(
            int(self.num_quantiles),
            None if self.epsilon is None else float(self.epsilon),
            _shape_tuple(self.output_shape, "output_shape"),
            bool(self.include_max_and_min),
            _shape_tuple(self.feature_shape, "feature_shape") or (),
            int(self.max_num_values),
        )

    # Derived facts (handy for callers and tests).
    @property
    def effective_epsilon(self) -> float:
        return self._derived.epsilon

    @property
    def block_size(self) -> int:
        """Entries per compressed summary; <= this many distinct values are kept exactly."""
        return self._derived.params.block_size

    @property
    def result_shape(self) -> tuple:
        return self._derived.output_shape

    def create_accumulator(self):
        empty_w = _EMPTY_VALUES if self.has_weights else None
        num_streams = self._derived.num_streams
        return tuple((_EMPTY_VALUES, empty_w, ()) for _ in range(num_streams)), False

    def add_input(self, accumulator, batch):
        d = self._derived
        streams, compacted = accumulator
        k = d.num_streams
        if self.has_weights:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError("quantiles with has_weights=True takes (values, weights) batches")
            values = _as_float64(batch[0], "values")
            weights = _as_float64(batch[1], "weights")
            if values.size != weights.size * k:
                raise SchemaError(
                    f"quantiles: {values.size} values do not match {weights.size} weights "
                    f"x {k} features"
                )
        else:
            values = _as_float64(single_input(batch), "values")
            weights = None
            if values.size % k:
                raise SchemaError(
                    f"quantiles: {values.size} values are not a multiple of {k} features"
                )
        if values.size == 0:
            return accumulator
        new_streams = []
        for f, stream in enumerate(streams):
            v = values if k == 1 else values[f::k]
            if weights is None:
                nan = np.isnan(v)
                w = None
                if nan.any():
                    v = v[~nan]
            else:
                w = weights
                keep = ~np.isnan(v) & (w > 0)  # NaN weights compare False
                if not keep.all():
                    v, w = v[keep], w[keep]
            new_streams.append(_push_entries(stream, v, w, d.params))
        return tuple(new_streams), compacted

    def merge_accumulators(self, accumulators):
        params = self._derived.params
        accumulators = iter(accumulators)
        streams, compacted = next(accumulators)
        for other_streams, other_compacted in accumulators:
            streams = tuple(_merge_streams(s, o, params) for s, o in zip(streams, other_streams))
            compacted = compacted or other_compacted
        return streams, compacted

    def compact(self, accumulator):
        streams, compacted = accumulator
        if compacted:  # tfx_bsl compacts a sketch at most once
            return accumulator
        params = self._derived.params
        return tuple(_compact_stream(s, params) for s in streams), True

    def extract_output(self, accumulator):
        d = self._derived
        streams, _ = accumulator
        per_stream = []
        for stream in streams:
            final = _finalize(stream, d.params)
            per_stream.append(
                None if final.shape[1] == 0 else _generate_quantiles(final, self.num_quantiles)
            )
        if all(q is None for q in per_stream):
            return (np.zeros(d.output_shape, dtype=self.bucket_numpy_dtype),)
        if any(q is None for q in per_stream):
            empty = [i for i, q in enumerate(per_stream) if q is None]
            raise ValueError(
                f"quantiles: features {empty} received no (non-NaN) values while others did; "
                "TFT fails on this too"
            )
        result = np.array(per_stream, dtype=self.bucket_numpy_dtype)
        if not self.include_max_and_min:
            result = result[:, 1:-1]
        return (np.reshape(result, d.output_shape),)
