"""TFT's frequency vocabulary (tft.vocabulary without weights/labels) and its text file format.

Imports numpy and pyarrow (pyarrow.compute does the counting); the file helpers also use the
standard library's os/tempfile. No TensorFlow, no Beam.

What TFT 1.21 does, and what VocabularyCombiner reproduces (sources: analyzers.py
`vocabulary`, `get_vocab_newline_characters_regex`, `_EMPTY_STRING_OR_NEWLINE_CHARS_REGEX`,
`get_empy_vocabulary_dummy_value`; tf_utils.py `reduce_batch_weighted_counts`,
`maybe_format_vocabulary_input`, `_split_vocabulary_entries`; beam/analyzer_impls.py
`_VocabularyAccumulateImpl`, `_ApplyThresholdsAndTopK`, `_OrderElementsFn`,
`_count_and_token_to_bytes`, `maybe_add_empty_vocabulary_dummy`,
`_VocabularyOrderAndWriteImpl`):

* Tokens are bytes. Integer inputs are counted as their decimal text (b"-5"); every
  occurrence counts (no per-row dedup).
* Filtering: only for string input with file_format="text", tokens matching the RE2 regex
  `^$|\\C*[\\n\\r]\\C*` are dropped before counting: the empty token and any token containing
  b"\\n" or b"\\r" anywhere. Nothing else is filtered or escaped (spaces, tabs, non-UTF-8
  bytes stay as they are). With file_format="tfrecord_gzip" nothing is filtered.
* frequency_threshold: if > 0, keep tokens with count >= threshold (float compare). Applied
  before top_k. top_k (int > 0): keep the first top_k of the order below.
* Order: count descending, then token bytes descending (Python `sorted(reverse=True)` of
  (count, token) pairs; bytes compare as unsigned, shorter prefix first).
* reserved_tokens: removed from the counted tokens (after top_k) and prepended, in the given
  order, with count -1.
* Empty result: TFT writes one dummy entry with count 1: b"49d0cd50-04bb-48c0-bc6f-5b575dce351a"
  for string input, b"-1" for integer input. With top_k the dummy is added right after top_k
  (so reserved tokens come before it); without top_k only when nothing (reserved tokens
  included) is left.
* Text file (beam.io.WriteToText, shard_name_template=""): every entry followed by b"\\n",
  including the last; no header. store_frequency=True writes b"<count> <token>\\n" with the
  count in decimal. An empty vocabulary file never occurs (dummy). TFT decodes tokens as UTF-8
  to format the frequency line, so it *crashes* on non-UTF-8 tokens with store_frequency=True;
  here the raw bytes are written instead (identical bytes for every token TFT accepts).
* compute_and_apply_vocabulary (a mapper, not this analyzer) additionally replaces b" " by
  b"__SPACE__" in string tokens when store_frequency=True and file_format="text":
  `maybe_format_vocabulary_input` below does that, for callers that implement the mapper.

Accumulator and top_k design note:
  A "run" is (offsets int64, data uint8, counts int64): distinct tokens as Arrow large_binary
  buffers held in numpy arrays, with their counts. A batch becomes one run via
  pyarrow.compute.value_counts (the empty/newline filter then runs on the distinct tokens
  only); runs are merged ("folded") by one dictionary_encode and an integer scatter-add.
  The accumulator is a dict of run lists (plain picklable data; {} when empty):
    -1: pending runs, any tokens; folded together when pending entries reach the main run.
    0.._SHARDS-1: the runs of one hash shard (`_shard_hash`); a token's every occurrence
        is in one shard, so shards never need to meet until extract_output.
  While the accumulator is small (< _SHARD_MIN pending entries) only key -1 exists, as an
  unsharded list (no hashing cost). Once pending holds _SHARD_MIN entries, or there are
  shards, every pending run is cut into the shards as it is, and each shard folds its own
  runs (same "pending >= main" rule), so any fold touches ~1/_SHARDS of the data and the
  peak memory is the accumulator plus a small transient, not several copies of it. Large
  batches of mostly new tokens are counted in slices of _COUNT_SLICE values (one
  value_counts hash table over them costs several times the batch).
  compact() gives a canonical form: one run sorted by token (under -1 when there are fewer
  than _SHARD_MIN distinct tokens, else one per shard).
  Exact top_k cannot be bounded below the number of distinct tokens: a token that is rare in
  every batch can still be globally frequent, and TFT's exact vocabulary keeps every distinct
  token until the final Top.Of. A bounded pre-aggregation (e.g. Space-Saving / Misra-Gries,
  like tft.experimental.approximate_vocabulary) would change results, so it is not done here.
  extract_output folds one shard at a time and keeps its frequency_threshold + top_k
  candidates (exact: the shard holds all occurrences of its tokens, and the order is total),
  then selects the global top_k from the union of candidates by a count threshold
  (np.partition; only tokens tied at the threshold are sorted) and sorts only those.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tft_lite.analyzers.base import Combiner, single_input
from tft_lite.kernels.tokens import as_binary_array, is_integer_tokens

__all__ = [
    "DUMMY_INT_TOKEN",
    "DUMMY_STRING_TOKEN",
    "VocabularyCombiner",
    "maybe_format_vocabulary_input",
    "read_vocabulary_file",
    "token_shards",
    "vocabulary_file_bytes",
    "write_vocabulary_file",
]

DUMMY_STRING_TOKEN = b"49d0cd50-04bb-48c0-bc6f-5b575dce351a"
DUMMY_INT_TOKEN = b"-1"
_FILE_FORMATS = ("text", "tfrecord_gzip")
_FOLD_MIN_PENDING = 1 << 16
_MAX_RUNS = 64
_SHARDS = 64  # hash shards of a large accumulator (power of two)
_SHARD_MIN = 1 << 19  # pending entries before the accumulator is sharded
_PENDING = -1  # accumulator key of the unsharded runs
_HASH_SLICE = 1 << 16  # tokens per slice when hashing for the shards
_COUNT_SLICE = 1 << 18  # values per value_counts call once the accumulator is sharded

_SORT_KEYS = [("count", "descending"), ("token", "descending")]


# ----------------------------------------------------------------------------- runs


def _empty_run():
    return (np.zeros(1, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.int64))


def _run_from_arrow(tokens: pa.Array, counts: pa.Array):
    tokens = tokens.cast(pa.large_binary()) if tokens.type != pa.large_binary() else tokens
    n = len(tokens)
    if n == 0:
        return _empty_run()
    _, offsets_buf, data_buf = tokens.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[tokens.offset: tokens.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)[start:end].copy()
        if data_buf is not None and end > start
        else np.zeros(0, np.uint8)
    )
    counts = counts.to_numpy(zero_copy_only=False).astype(np.int64, copy=True)
    return (offsets - start, data, counts)


def _run_to_arrow(run):
    offsets, data, counts = run
    n = len(counts)
    tokens = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return tokens, pa.array(counts, type=pa.int64())


def _fold(runs):
    """One run with the summed counts of all runs (distinct tokens, unspecified order)."""
    runs = [r for r in runs if len(r[2])]
    if not runs:
        return _empty_run()
    if len(runs) == 1:
        return runs[0]
    parts = [_run_to_arrow(r) for r in runs]
    # One hash pass (dictionary_encode) and an integer scatter-add; several times faster
    # than an Arrow group_by. bincount sums in float64, exact while the total is < 2**53.
    encoded = pc.dictionary_encode(pa.concat_arrays([t for t, _ in parts]))
    index = encoded.indices.to_numpy()
    counts = np.concatenate([r[2] for r in runs])
    size = len(encoded.dictionary)
    if int(counts.sum()) < (1 << 53):
        summed = np.bincount(index, weights=counts, minlength=size).astype(np.int64)
    else:
        summed = np.zeros(size, np.int64)
        np.add.at(summed, index, counts)
    return _run_from_arrow(encoded.dictionary, pa.array(summed))


def _maybe_fold(runs):
    if len(runs) <= 1:
        return runs
    sizes = [len(r[2]) for r in runs]
    main = max(sizes)
    pending = sum(sizes) - main
    if pending >= max(main, _FOLD_MIN_PENDING) or len(runs) > _MAX_RUNS:
        return [_fold(runs)]
    return runs


def _top_k(table: pa.Table, k: int) -> pa.Table:
    """The k first rows of `table` (token, count) in _SORT_KEYS order, in no given order.

    Same rows as select_k_unstable(table, k, _SORT_KEYS), ~3x faster: the k-th largest count
    comes from np.partition; every token above it is in, and only the tokens tied at it
    are ordered (token descending) to fill the remaining places.
    """
    if table.num_rows <= k:
        return table
    counts = table.column("count").to_numpy()
    cut = np.partition(counts, counts.size - k)[counts.size - k]
    above = np.flatnonzero(counts > cut)
    tied = np.flatnonzero(counts == cut)
    need = k - above.size
    if need < tied.size:
        order = pc.array_sort_indices(table.column("token").take(tied), order="descending")
        tied = tied[order.to_numpy()[:need]]
    return table.take(np.concatenate([above, tied]))


# ----------------------------------------------------------------------------- sharded accumulator


def _entries(runs) -> int:
    return sum(len(r[2]) for r in runs)


def _split_run(run, shard, num_shards: int) -> list:
    """`run` cut into num_shards runs by the shard index of each token (empty runs included)."""
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(num_shards + 1))
    tokens, counts = _run_to_arrow(run)
    tokens, counts = tokens.take(pa.array(order)), counts.take(pa.array(order))
    return [_run_from_arrow(tokens.slice(a, b - a), counts.slice(a, b - a))
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def _distribute(run) -> list:
    """`run` cut into the _SHARDS internal shards (by `_shard_hash`)."""
    shard = _shard_hash(run) & np.uint64(_SHARDS - 1)
    return _split_run(run, shard.astype(np.int64), _SHARDS)


def _shard_hash(run) -> np.ndarray:
    """uint64 hash of each token of `run` from its length and three 8-byte words (first,
    middle, last); a few vectorized gathers, ~10x cheaper than the byte-wise `_token_hash`.

    Only balances the internal shards: tokens equal in those words share a shard, which is
    still exact, just less even. Deterministic across processes (accumulators pickled on
    different workers merge shard by shard). Done in slices to bound the temporaries.
    """
    offsets, data, _ = run
    n = len(offsets) - 1
    out = np.zeros(n, np.uint64)
    for a in range(0, n, _HASH_SLICE):
        b = min(a + _HASH_SLICE, n)
        lo, hi = int(offsets[a]), int(offsets[b])
        out[a:b] = _shard_hash_slice(offsets[a:b + 1] - lo, data[lo:hi])
    return out


def _shard_hash_slice(offsets, data) -> np.ndarray:
    padded = np.zeros(len(data) + 16, np.uint8)
    padded[8:8 + len(data)] = data
    words = np.lib.stride_tricks.sliding_window_view(padded, 8)  # words[i] = bytes i-8..i-1
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    take = np.minimum(lengths, 8).astype(np.uint64)
    with np.errstate(over="ignore"):
        # mask of the low `take` bytes (little-endian view): the word's own token bytes.
        mask = np.where(take == 8, np.uint64(0xFFFFFFFFFFFFFFFF),
                        (np.uint64(1) << (take * np.uint64(8))) - np.uint64(1))
        first = np.ascontiguousarray(words[starts + 8]).view("<u8").ravel() & mask
        last_at = np.maximum(ends - 8, starts)
        last = np.ascontiguousarray(words[last_at + 8]).view("<u8").ravel() & mask
        middle_at = np.maximum(starts + lengths // 2 - 4, starts)
        middle = np.ascontiguousarray(words[middle_at + 8]).view("<u8").ravel() & mask
        h = _mix64(first ^ (lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)))
        h = _mix64(h ^ middle)
        return _mix64(h ^ last)


def _settle(acc: dict) -> dict:
    """Folds what the size rules say should be folded; modifies and returns `acc`.

    Small accumulators keep unsharded pending runs (folded when the pending entries reach
    the main run). Once there are shards, or pending holds _SHARD_MIN entries, every pending
    run is cut into the shards as is (no fold of the whole), and each shard folds its own
    runs by the same rule.
    """
    pending = acc.pop(_PENDING, [])
    if pending and (any(k != _PENDING for k in acc) or _entries(pending) >= _SHARD_MIN):
        while pending:
            for i, piece in enumerate(_distribute(pending.pop())):
                if len(piece[2]):
                    acc.setdefault(i, []).append(piece)
    elif pending:
        acc[_PENDING] = _maybe_fold(pending)
    for key in list(acc):
        if key != _PENDING:
            acc[key] = _maybe_fold(acc[key])
        if not acc[key]:
            del acc[key]
    return acc


def _groups(acc: dict):
    """(key, run list) pairs whose run lists have pairwise disjoint tokens and cover `acc`
    (pending runs are cut into the shards when there are shards). Does not modify `acc`."""
    pending = acc.get(_PENDING, [])
    shard_keys = sorted(k for k in acc if k != _PENDING)
    if not shard_keys:
        return [(_PENDING, pending)] if pending else []
    groups = {k: list(acc[k]) for k in shard_keys}
    if pending:
        for i, piece in enumerate(_distribute(_fold(pending))):
            if len(piece[2]):
                groups.setdefault(i, []).append(piece)
    return [(k, groups[k]) for k in sorted(groups)]


def _sorted_run(tokens: pa.Array, counts: pa.Array):
    order = pc.sort_indices(tokens)
    return _run_from_arrow(tokens.take(order), counts.take(order))


_EMPTY_TABLE = pa.table({"token": pa.array([], pa.large_binary()),
                         "count": pa.array([], pa.int64())})


def _as_token_bytes(token) -> bytes:
    if isinstance(token, bytes):
        return token
    if isinstance(token, str):
        return token.encode("utf-8")
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool):
        return str(int(token)).encode("ascii")
    if isinstance(token, np.bytes_):
        return bytes(token)
    raise TypeError(f"reserved token must be str, bytes or int, got {token!r}")


# ----------------------------------------------------------------------------- combiner


class VocabularyCombiner(Combiner):
    """Counts tokens; extract_output gives the vocabulary exactly as TFT writes it.

    Config (keywords, stored unchanged):
      top_k: None or int > 0.
      frequency_threshold: None or number >= 0 (count >= threshold kept; <= 1 is a no-op).
      store_frequency: only recorded for the file writer (`write_vocabulary_file`).
      reserved_tokens: None or a sequence of str/bytes tokens put first with count -1.
      file_format: "text" (filters empty/newline tokens) or "tfrecord_gzip" (no filter).
      input_dtype: "string" or an integer dtype name ("int64", ...): says which dummy token an
        empty vocabulary gets, and batches of the other kind are rejected.

    Input: a 1-tuple (tokens,) of any shape (flattened); for ragged/VarLen features the flat
    values. Output of extract_output: (tokens: object array of bytes, counts: int64 array,
    unpruned_size: int64 scalar = max(#distinct counted tokens, 1) + #reserved_tokens, which is
    TFT's "unpruned vocab size" annotation).
    """

    def __init__(
        self,
        *,
        top_k=None,
        frequency_threshold=None,
        store_frequency=False,
        reserved_tokens=None,
        file_format="text",
        input_dtype="string",
    ):
        self.top_k = top_k
        self.frequency_threshold = frequency_threshold
        self.store_frequency = store_frequency
        self.reserved_tokens = reserved_tokens
        self.file_format = file_format
        self.input_dtype = input_dtype
        if top_k is not None:
            if isinstance(top_k, bool) or int(top_k) != top_k or int(top_k) <= 0:
                raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        if frequency_threshold is not None and float(frequency_threshold) < 0:
            raise ValueError(
                f"frequency_threshold must be non-negative, got {frequency_threshold!r}"
            )
        if file_format not in _FILE_FORMATS:
            raise ValueError(f"file_format must be one of {_FILE_FORMATS}, got {file_format!r}")
        self._check_input_dtype()
        if reserved_tokens is not None:
            [_as_token_bytes(t) for t in reserved_tokens]

    def _check_input_dtype(self):
        if self.input_dtype in ("string", "bytes", "str"):
            return False
        try:
            kind = np.dtype(self.input_dtype).kind
        except TypeError:
            kind = None
        if kind not in ("i", "u"):
            raise ValueError(
                f"input_dtype must be 'string' or an integer dtype, got {self.input_dtype!r}"
            )
        return True

    def _is_integer_input(self) -> bool:
        return self._check_input_dtype()

    # -- contract

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, batch):
        values = single_input(batch)
        integer = is_integer_tokens(values)
        if integer != self._is_integer_input():
            raise TypeError(
                f"vocabulary configured with input_dtype={self.input_dtype!r} got "
                f"{'integer' if integer else 'string'} tokens"
            )
        tokens = as_binary_array(values)
        if len(tokens) == 0:
            return accumulator
        # Large batches of mostly distinct tokens are counted in slices: the hash table of
        # one value_counts over them costs several times the batch, and the runs of the
        # slices are folded shard by shard anyway. Slicing goes on while the accumulator is
        # sharded or the first slice was mostly new tokens; otherwise one call counts the
        # rest (few distinct tokens: one run is cheaper to fold).
        pending = accumulator.setdefault(_PENDING, [])
        start, step = 0, min(_COUNT_SLICE, len(tokens))
        while start < len(tokens):
            part = tokens.slice(start, step)
            run = self._count(part, integer)
            if run is not None:
                pending.append(run)
            if start == 0 and not any(k != _PENDING for k in accumulator) and (
                    run is None or 4 * len(run[2]) < len(part)):
                step = len(tokens)
            start += len(part)
        return _settle(accumulator)

    def _count(self, tokens, integer):
        """The run of distinct tokens (after TFT's filter) and counts of `tokens`, or None."""
        counted = pc.value_counts(tokens)
        distinct, counts = counted.field("values"), counted.field("counts")
        if not integer and self.file_format == "text":
            # TFT's filter, applied to the distinct tokens (far fewer than the values).
            drop = pc.or_(
                pc.equal(pc.binary_length(distinct), 0),
                pc.or_(pc.match_substring(distinct, "\n"),
                       pc.match_substring(distinct, "\r")),
            )
            if pc.any(drop).as_py():
                keep = pc.invert(drop)
                distinct, counts = distinct.filter(keep), counts.filter(keep)
                if len(distinct) == 0:
                    return None
        return _run_from_arrow(distinct, counts)

    def merge_accumulators(self, accumulators):
        # Only the dict and lists are new; run arrays are never modified.
        merged = {}
        for acc in accumulators:
            for key, runs in acc.items():
                merged.setdefault(key, []).extend(runs)
        return _settle(merged)

    def compact(self, accumulator):
        runs = [(key, _fold(group)) for key, group in _groups(accumulator)]
        runs = [(key, run) for key, run in runs if len(run[2])]
        if not runs:
            return {}
        if sum(len(run[2]) for _, run in runs) < _SHARD_MIN:
            parts = [_run_to_arrow(run) for _, run in runs]
            return {_PENDING: [_sorted_run(pa.concat_arrays([t for t, _ in parts]),
                                           pa.concat_arrays([c for _, c in parts]))]}
        if runs[0][0] == _PENDING:
            runs = list(enumerate(_distribute(runs[0][1])))
        return {key: [_sorted_run(*_run_to_arrow(run))] for key, run in runs if len(run[2])}

    def _candidates(self, accumulator):
        """(table of the tokens that can survive threshold and top_k, #distinct tokens).

        One shard at a time: each is folded, filtered by frequency_threshold and cut to its
        top_k, which is exact since a shard holds every occurrence of its tokens.
        """
        parts, distinct = [], 0
        threshold = self.frequency_threshold
        for _, group in _groups(accumulator):
            run = _fold(group)
            distinct += len(run[2])
            tokens, counts = _run_to_arrow(run)
            table = pa.table({"token": tokens, "count": counts})
            if threshold is not None and float(threshold) > 0:
                table = table.filter(pc.greater_equal(pc.cast(table.column("count"),
                                                              pa.float64()), float(threshold)))
            if self.top_k is not None:
                table = _top_k(table, int(self.top_k))
            if table.num_rows:
                parts.append(table)
        if not parts:
            return _EMPTY_TABLE, distinct
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        if self.top_k is not None:
            table = _top_k(table, int(self.top_k))
        return table, distinct

    def extract_output(self, accumulator):
        return self._output(*self._sorted_candidates(accumulator))

    def extract_arrow_output(self, accumulator):
        """extract_output with the tokens as a pyarrow binary array, when no reserved tokens
        or dummy entry are involved (else extract_output's own result). The Beam analysis
        moves and binds these: building, pickling and unpickling ~100k bytes objects per
        vocabulary cost more than the top_k itself."""
        table, unpruned = self._sorted_candidates(accumulator)
        if self.reserved_tokens or not table.num_rows:
            return self._output(table, unpruned)
        return (table.column("token").combine_chunks(),
                table.column("count").to_numpy().astype(np.int64),
                np.array(max(unpruned, 1), dtype=np.int64))

    def _sorted_candidates(self, accumulator):
        table, unpruned = self._candidates(accumulator)
        return table.take(pc.sort_indices(table, sort_keys=_SORT_KEYS)), unpruned

    def _output(self, table, unpruned):
        out_tokens = table.column("token").to_numpy()  # object array of bytes
        out_counts = table.column("count").to_numpy().astype(np.int64)
        dummy = DUMMY_INT_TOKEN if self._is_integer_input() else DUMMY_STRING_TOKEN
        if self.top_k is not None and not len(out_tokens):
            out_tokens, out_counts = [dummy], [1]
        reserved = [] if self.reserved_tokens is None else [
            _as_token_bytes(t) for t in self.reserved_tokens
        ]
        if reserved:
            reserved_set = set(reserved)
            kept = [(t, c) for t, c in zip(list(out_tokens), list(out_counts))
                    if t not in reserved_set]
            out_tokens = reserved + [t for t, _ in kept]
            out_counts = [-1] * len(reserved) + [c for _, c in kept]
        if not len(out_tokens):
            out_tokens, out_counts = [dummy], [1]
        token_array = np.empty(len(out_tokens), dtype=object)
        token_array[:] = out_tokens
        return (
            token_array,
            np.array(out_counts, dtype=np.int64),
            np.array(max(unpruned, 1) + len(reserved), dtype=np.int64),
        )

    # -- distributed counting (used by the Beam runner; pure functions of accumulators)

    def split(self, accumulator, num_shards: int) -> list:
        """Splits an accumulator into `num_shards` by a hash of the token bytes.

        Every occurrence of a token lands in the same shard whichever worker counted it, so
        shards can be merged and pruned independently and the union of their results is the
        global result (token_shards is deterministic across processes and machines).
        """
        out = [[] for _ in range(num_shards)]
        for _, group in _groups(accumulator):
            run = _fold(group)
            if not len(run[2]):
                continue
            tokens, _ = _run_to_arrow(run)
            pieces = _split_run(run, token_shards(tokens, num_shards), num_shards)
            for i, piece in enumerate(pieces):
                if len(piece[2]):
                    out[i].append(piece)
        return [{_PENDING: runs} if runs else {} for runs in out]

    def prune(self, accumulator) -> tuple:
        """(accumulator holding only tokens that can survive threshold and top_k, #distinct).

        Valid on a shard that holds every occurrence of its tokens (see `split`): a token
        outside its shard's top_k cannot be in the global top_k. The distinct count lets the
        caller restore extract_output's unpruned size (`with_unpruned_size`).
        """
        table, distinct = self._candidates(accumulator)
        if table.num_rows == 0:
            return {}, distinct
        return {_PENDING: [_run_from_arrow(table.column("token").combine_chunks(),
                                           table.column("count").combine_chunks())]}, distinct

    def with_unpruned_size(self, outputs: tuple, distinct: int) -> tuple:
        """extract_output's result with the unpruned size of `distinct` counted tokens."""
        reserved = 0 if self.reserved_tokens is None else len(self.reserved_tokens)
        return outputs[0], outputs[1], np.array(max(distinct, 1) + reserved, dtype=np.int64)

    def output_dtypes(self):
        return (np.dtype(object), np.dtype(np.int64), np.dtype(np.int64))


def token_shards(tokens: pa.Array, num_shards: int) -> np.ndarray:
    """Shard index in [0, num_shards) of each token, from a hash of its bytes (vectorized).

    A polynomial hash over the bytes (numpy uint64 arithmetic, which wraps), finished with
    murmur3's mixer; the same token gives the same shard in every process.
    """
    return (_token_hash(tokens) % np.uint64(num_shards)).astype(np.int64)


def _token_hash(tokens: pa.Array) -> np.ndarray:
    """uint64 hash of each token's bytes (see token_shards)."""
    tokens = as_binary_array(tokens)
    n = len(tokens)
    if n == 0:
        return np.zeros(0, np.uint64)
    offsets = np.frombuffer(tokens.buffers()[1], np.int64)[tokens.offset:tokens.offset + n + 1]
    data_buf = tokens.buffers()[2]
    start = int(offsets[0])
    data = (np.frombuffer(data_buf, np.uint8)[start:int(offsets[-1])]
            if data_buf is not None else np.zeros(0, np.uint8)).astype(np.uint64)
    lengths = np.diff(offsets)
    position = np.arange(len(data), dtype=np.uint64) - np.repeat(
        (offsets[:-1] - start).astype(np.uint64), lengths)
    with np.errstate(over="ignore"):
        terms = (data + np.uint64(1)) * _mix64(position + np.uint64(0x9E3779B97F4A7C15))
        sums = np.zeros(n, np.uint64)
        nonempty = lengths > 0
        if len(data):
            sums[nonempty] = np.add.reduceat(terms, (offsets[:-1] - start)[nonempty])
        return _mix64(sums ^ (lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)))


def _mix64(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def maybe_format_vocabulary_input(values) -> pa.LargeBinaryArray:
    """TFT's tf_utils.maybe_format_vocabulary_input for string tokens: b" " -> b"__SPACE__".

    TFT applies it in compute_and_apply_vocabulary when store_frequency=True and
    file_format="text" (not in the vocabulary analyzer itself). Integer tokens pass unchanged
    (as their decimal text).
    """
    tokens = as_binary_array(values)
    if is_integer_tokens(values):
        return tokens
    return pc.replace_substring(tokens, " ", "__SPACE__")


# ----------------------------------------------------------------------------- file format


def vocabulary_file_bytes(tokens, counts=None, *, store_frequency=False) -> bytes:
    """The exact bytes TFT writes for a text vocabulary: one entry per line, each ending "\\n".

    With store_frequency each line is b"<count> <token>". Tokens containing b"\\n" or b"\\r"
    cannot be represented (TFT filters them before writing) and raise ValueError.
    """
    fast = _file_bytes_arrow(tokens, counts, store_frequency)
    if fast is not None:
        return fast
    return _file_bytes_python(tokens, counts, store_frequency)


def _file_bytes_python(tokens, counts, store_frequency) -> bytes:
    """vocabulary_file_bytes one token at a time (any token type; names a bad entry)."""
    lines = []
    token_list = [_as_token_bytes(t) for t in tokens]
    if store_frequency:
        if counts is None:
            raise ValueError("store_frequency=True needs counts")
        count_list = np.asarray(counts).tolist()
        if len(count_list) != len(token_list):
            raise ValueError(f"{len(token_list)} tokens but {len(count_list)} counts")
    for i, token in enumerate(token_list):
        if b"\n" in token or b"\r" in token:
            raise ValueError(
                f"vocabulary entry {i} ({token!r}) contains a newline or carriage return "
                "and cannot be stored in a text vocabulary file"
            )
        if store_frequency:
            count = count_list[i]
            if isinstance(count, float) and count.is_integer():
                count = int(count)
            lines.append(str(count).encode("ascii") + b" " + token)
        else:
            lines.append(token)
    return b"".join(line + b"\n" for line in lines)


def _file_bytes_arrow(tokens, counts, store_frequency):
    """vocabulary_file_bytes in Arrow kernels, for bytes/str tokens and integer counts.

    None when the input needs the general path (other token types, float counts, a bad
    token to report, mismatched lengths): that path gives the same bytes or the error.
    """
    if isinstance(tokens, np.ndarray) and tokens.dtype != object:
        return None
    try:
        array = pa.array(tokens, type=pa.large_binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    if array.null_count or pc.any(pc.or_(pc.match_substring(array, "\n"),
                                         pc.match_substring(array, "\r"))).as_py():
        return None
    newline = pa.scalar(b"\n", pa.large_binary())
    if store_frequency:
        if counts is None or np.asarray(counts).dtype.kind not in "iu":
            return None
        counts = np.asarray(counts).reshape(-1)
        if len(counts) != len(array):
            return None
        text = pc.cast(pc.cast(pa.array(counts), pa.string()), pa.large_binary())
        lines = pc.binary_join_element_wise(text, array, pa.scalar(b" ", pa.large_binary()))
        lines = pc.binary_join_element_wise(lines, newline, pa.scalar(b"", pa.large_binary()))
    else:
        lines = pc.binary_join_element_wise(array, newline, pa.scalar(b"", pa.large_binary()))
    if len(lines) == 0:
        return b""
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[lines.offset:lines.offset + len(lines) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    return data_buf.slice(start, end - start).to_pybytes()


def write_vocabulary_file(path, tokens, counts=None, *, store_frequency=False) -> None:
    """Writes the vocabulary text file atomically (temp file in the same dir + os.replace)."""
    payload = vocabulary_file_bytes(tokens, counts, store_frequency=store_frequency)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_vocabulary_file(path, *, store_frequency=False):
    """Reads a text vocabulary as TF does: lines split on b"\\n", one trailing b"\\r" dropped.

    Returns (tokens: object array of bytes, counts: int64 array or None). With
    store_frequency each line is split on its first space into (count, token), like
    tf_utils._split_vocabulary_entries (so tokens may contain spaces).
    """
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    counts = None
    if store_frequency:
        parsed = []
        for i, line in enumerate(lines):
            count, sep, token = line.partition(b" ")
            if not sep:
                raise ValueError(f"{path}: line {i + 1} has no '<count> <token>' separator")
            try:
                parsed.append((int(count), token))
            except ValueError:
                raise ValueError(
                    f"{path}: line {i + 1} has a non-integer count {count!r}"
                ) from None
        counts = np.array([c for c, _ in parsed], dtype=np.int64)
        lines = [t for _, t in parsed]
    tokens = np.empty(len(lines), dtype=object)
    tokens[:] = lines
    return tokens, counts
