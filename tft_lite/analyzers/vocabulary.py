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
  The accumulator is a list of "runs" (offsets int64, data uint8, counts int64): the distinct
  tokens of part of the data as Arrow large_binary buffers held in numpy arrays, with counts.
  A batch becomes one run via pyarrow.compute.value_counts (the empty/newline filter then
  runs on the distinct tokens only); runs are merged by one dictionary_encode and an
  integer scatter-add. Pending runs are folded into the main run as soon as they hold as many
  entries as it, so the accumulator stays within ~2x the number of distinct tokens.
  compact() folds everything into one run sorted by token (a canonical form).
  Exact top_k cannot be bounded below the number of distinct tokens: a token that is rare in
  every shard can still be globally frequent, and TFT's exact vocabulary keeps every distinct
  token until the final Top.Of. A bounded pre-aggregation (e.g. Space-Saving / Misra-Gries,
  like tft.experimental.approximate_vocabulary) would change results, so it is not done here;
  it could be added as a separate, explicitly approximate combiner with the same contract.
  extract_output selects the top_k by a count threshold (np.partition; only tokens tied at
  the threshold are sorted) and only sorts those.
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
        return []

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
                    return accumulator
        run = _run_from_arrow(distinct, counts)
        accumulator = list(accumulator)
        accumulator.append(run)
        return _maybe_fold(accumulator)

    def merge_accumulators(self, accumulators):
        runs = []
        for acc in accumulators:
            runs.extend(acc)
        return _maybe_fold(runs)

    def compact(self, accumulator):
        run = _fold(accumulator)
        if len(run[2]) == 0:
            return []
        tokens, counts = _run_to_arrow(run)
        order = pc.sort_indices(tokens)
        return [_run_from_arrow(tokens.take(order), counts.take(order))]

    def extract_output(self, accumulator):
        run = _fold(accumulator)
        tokens, counts = _run_to_arrow(run)
        unpruned = len(tokens)
        table = pa.table({"token": tokens, "count": counts})
        if self.frequency_threshold is not None and float(self.frequency_threshold) > 0:
            keep = pc.greater_equal(
                pc.cast(table.column("count"), pa.float64()), float(self.frequency_threshold)
            )
            table = table.filter(keep)
        if self.top_k is not None:
            table = _top_k(table, int(self.top_k))
        table = table.take(pc.sort_indices(table, sort_keys=_SORT_KEYS))
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
        run = _fold(accumulator)
        if not len(run[2]):
            return [[] for _ in range(num_shards)]
        tokens, counts = _run_to_arrow(run)
        shard = token_shards(tokens, num_shards)
        out = []
        for i in range(num_shards):
            keep = pa.array(shard == i)
            out.append([_run_from_arrow(tokens.filter(keep), counts.filter(keep))]
                       if pc.any(keep).as_py() else [])
        return out

    def prune(self, accumulator) -> tuple:
        """(accumulator holding only tokens that can survive threshold and top_k, #distinct).

        Valid on a shard that holds every occurrence of its tokens (see `split`): a token
        outside its shard's top_k cannot be in the global top_k. The distinct count lets the
        caller restore extract_output's unpruned size (`with_unpruned_size`).
        """
        run = _fold(accumulator)
        distinct = len(run[2])
        tokens, counts = _run_to_arrow(run)
        table = pa.table({"token": tokens, "count": counts})
        if self.frequency_threshold is not None and float(self.frequency_threshold) > 0:
            table = table.filter(pc.greater_equal(pc.cast(table.column("count"), pa.float64()),
                                                  float(self.frequency_threshold)))
        if self.top_k is not None:
            table = _top_k(table, int(self.top_k))
        if table.num_rows == 0:
            return [], distinct
        return [_run_from_arrow(table.column("token").combine_chunks(),
                                table.column("count").combine_chunks())], distinct

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
    tokens = as_binary_array(tokens)
    n = len(tokens)
    if n == 0:
        return np.zeros(0, np.int64)
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
        hashed = _mix64(sums ^ (lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)))
    return (hashed % np.uint64(num_shards)).astype(np.int64)


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
