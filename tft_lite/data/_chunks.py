"""Chunks and the iteration context: the two things every dataset passes along.

A dataset produces its elements in *chunks*, so that the hot path never touches single
records in Python. A chunk is either

    a list of elements                 (any elements: numpy arrays, bytes, tuples, dicts)
    a pyarrow Binary, LargeBinary or   (columnar: each entry is one serialized record)
      BinaryView array

Records read from TFRecord or text files travel as pyarrow arrays through interleave, shuffle,
take, skip and batch, which only slice, concatenate and `take` them (reordering turns them
into binary views, below); they become Python `bytes` only when user code asks for single
elements.

An `IterContext` travels down the pipeline when iteration starts: which worker shard to read
(PyTorch DataLoader workers) and whether errors are being ignored (ignore_errors()).
This module imports numpy and pyarrow only.
"""
from __future__ import annotations

import operator
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tft_lite.io.tfrecord import ReadStats


def is_columnar(chunk) -> bool:
    """True for a pyarrow array of records, False for a list of elements."""
    return isinstance(chunk, pa.Array)


def elements(chunk) -> list:
    """The chunk's elements as a Python list (records become bytes)."""
    return chunk.to_pylist() if isinstance(chunk, pa.Array) else chunk


def slice_chunk(chunk, start: int, stop: int):
    """Elements [start, stop) of a chunk; zero-copy for pyarrow arrays."""
    if isinstance(chunk, pa.Array):
        return chunk.slice(start, stop - start)
    return chunk[start:stop]


def concat(chunks: list):
    """One chunk holding the elements of `chunks` in order (columnar if all are)."""
    if len(chunks) == 1:
        return chunks[0]
    if all(isinstance(c, pa.Array) for c in chunks):
        types = {c.type for c in chunks}
        if len(types) > 1:  # binary next to large_binary or views: make all one type
            chunks = [as_views(c) if _VIEW is not None else c.cast(pa.large_binary())
                      for c in chunks]
        return pa.concat_arrays(chunks)
    out = []
    for chunk in chunks:
        out.extend(elements(chunk))
    return out


def take(parts: list, indices: np.ndarray):
    """Elements at `indices` (int64 numpy) of the concatenation of `parts`, in that order.

    Columnar parts are reordered as binary views (see below): the records are not copied.
    """
    if all(isinstance(p, pa.Array) for p in parts):
        if _VIEW is None:  # pyarrow without binary views: copy the records instead
            return concat(parts).take(indices)
        return _take_views(parts, indices)
    pool = concat(parts)
    if len(indices) == 0:
        return []
    if len(indices) == 1:
        return [pool[int(indices[0])]]
    return list(operator.itemgetter(*indices.tolist())(pool))


# --- records as binary views ------------------------------------------------------------------
# Arrow's binary_view layout keeps one 16-byte view per record: int32 length, then either the
# bytes themselves (length <= 12) or a 4-byte prefix, int32 index of a data buffer and int32
# offset into it. Reordering views with numpy moves 16 bytes per record instead of the record
# (~670 bytes for a Criteo Example), and the buffers are shared, not copied: interleave and
# shuffle leave the one copy of each record to parse_examples (decode_examples casts the
# views to contiguous large_binary). pyarrow has no take kernel for views, hence this code.

def _binary_view_type():
    """pa.binary_view() if this pyarrow can cast to it (pyarrow >= 16), else None."""
    try:
        view = pa.binary_view()
        pa.array([b"x"], pa.binary()).cast(view)
        return view
    except (AttributeError, NotImplementedError, pa.ArrowNotImplementedError):
        return None


_VIEW = _binary_view_type()
_INLINE_BYTES = 12
_COMPACT_SLACK_BYTES = 64 << 20


def as_views(chunk: pa.Array) -> pa.Array:
    """A binary array as binary views over the same data buffers (no copy)."""
    return chunk if chunk.type == _VIEW else chunk.cast(_VIEW)


def _view_parts(parts):
    """(int32 [n, 4] views of all parts back to back, their data buffers, de-duplicated)."""
    all_views, buffers, index_of = [], [], {}
    for part in parts:
        part = as_views(part)
        raw = part.buffers()
        views = np.frombuffer(raw[1], np.int32).reshape(-1, 4)[part.offset:part.offset +
                                                                 len(part)]
        remap = []
        for buffer in raw[2:]:
            key = (buffer.address, buffer.size)
            if key not in index_of:
                index_of[key] = len(buffers)
                buffers.append(buffer)
            remap.append(index_of[key])
        if remap != list(range(len(remap))):
            views = views.copy()
            far = views[:, 0] > _INLINE_BYTES
            views[far, 2] = np.array(remap, np.int32)[views[far, 2]]
        all_views.append(views)
    return np.concatenate(all_views) if len(all_views) > 1 else all_views[0], buffers


def _take_views(parts, indices) -> pa.Array:
    views, buffers = _view_parts(parts)
    views = views[indices]
    far = views[:, 0] > _INLINE_BYTES
    used = np.bincount(views[far, 2], minlength=len(buffers)) > 0
    if not used.all():  # drop buffers no view points into any more, so memory is freed
        remap = np.cumsum(used, dtype=np.int32) - 1
        views[far, 2] = remap[views[far, 2]]
        buffers = [b for b, keep in zip(buffers, used) if keep]
    return pa.Array.from_buffers(_VIEW, len(views), [None, pa.py_buffer(views)] + buffers)


def compact(chunk):
    """The views with records in mostly-dead data buffers copied out, so those can be freed.

    A shuffle buffer's views point into many read buffers (~25 MB each for GZIP), some kept
    alive by a handful of records. Once buffers under a quarter live pin more than
    _COMPACT_SLACK_BYTES, their live records are copied into one new buffer; records in
    well-used buffers stay where they are.
    """
    if not isinstance(chunk, pa.Array) or chunk.type != _VIEW:
        return chunk
    raw = chunk.buffers()
    buffers = raw[2:]
    sizes = np.array([b.size for b in buffers], dtype=np.int64)
    if sizes.sum() <= _COMPACT_SLACK_BYTES:
        return chunk
    views = np.frombuffer(raw[1], np.int32).reshape(-1, 4)[chunk.offset:chunk.offset +
                                                             len(chunk)]
    far = views[:, 0] > _INLINE_BYTES
    index = np.where(far, views[:, 2], 0)
    live = np.bincount(index[far], weights=views[far, 0], minlength=len(buffers))
    sparse = live * 4 < sizes
    if sizes[sparse].sum() <= _COMPACT_SLACK_BYTES:
        return chunk
    moved = np.flatnonzero(far & sparse[index])
    stay = far & ~sparse[index]
    copy = as_views(_take_views([chunk], moved).cast(pa.large_binary()))
    kept = [b for b, drop in zip(buffers, sparse) if not drop]
    out = views.copy()
    out[stay, 2] = (np.cumsum(~sparse) - 1)[index[stay]].astype(np.int32)
    copied = np.frombuffer(copy.buffers()[1], np.int32).reshape(-1, 4)[copy.offset:copy.offset +
                                                                       len(copy)].copy()
    copied[copied[:, 0] > _INLINE_BYTES, 2] += len(kept)
    out[moved] = copied
    return pa.Array.from_buffers(_VIEW, len(out), [None, pa.py_buffer(out)] + kept +
                                 copy.buffers()[2:])


def to_user(element):
    """What user code sees: a batch of records (pyarrow) becomes a numpy object array."""
    if isinstance(element, pa.Array) and (pa.types.is_binary(element.type) or
                                          pa.types.is_large_binary(element.type) or
                                          element.type == _VIEW):
        return element.to_numpy(zero_copy_only=False)
    return element


@dataclass
class ErrorStats(ReadStats):
    """What `Dataset.ignore_errors()` skipped: a ReadStats plus dropped elements.

    Attributes:
      records: records read by TFRecord sources upstream of ignore_errors().
      corrupt_records: corrupt records skipped (bad CRC; for a broken length or a truncated
        file, the rest of that file counts once), as in tft_lite.io.ReadStats.
      dropped_elements: elements dropped because a map/filter function raised on them.
      errors: every skipped error (CorruptRecordError, or the exception of the function).
    """

    dropped_elements: int = 0


class _ShardState:
    """Shared flag: did any source split its files by worker?"""

    def __init__(self):
        self.applied = False


class IterContext:
    """Per-iteration settings passed from the consumer down to the sources.

    Attributes:
      shard: (index, count) when this iteration is one of `count` workers, else None. The
        first file source upstream (list_files, TFRecordDataset or TextLineDataset over a
        file list) keeps only files index, index + count, ...; interleave's inner datasets
        get no shard, so each file is read by exactly one worker.
      errors: the ErrorStats of an enclosing ignore_errors(), or None (errors propagate).
    """

    def __init__(self, shard=None, errors: ErrorStats | None = None, state=None, lock=None):
        self.shard = shard
        self.errors = errors
        self.shard_state = state or _ShardState()
        self.lock = lock or threading.Lock()

    def derive(self, **changes) -> "IterContext":
        """A copy with some fields replaced; the shard flag and lock stay shared."""
        fields = {"shard": self.shard, "errors": self.errors}
        fields.update(changes)
        return IterContext(fields["shard"], fields["errors"], self.shard_state, self.lock)

    def shard_files(self, files: list) -> list:
        """This worker's share of a file list (all of it when not sharded)."""
        if self.shard is None:
            return list(files)
        self.shard_state.applied = True
        index, count = self.shard
        return list(files)[index::count]

    def drop(self, error: BaseException) -> None:
        """Counts an element dropped under ignore_errors()."""
        with self.lock:
            self.errors.dropped_elements += 1
            self.errors.errors.append(error)


class StatsSink:
    """Moves counts from one reader's private ReadStats into the shared ErrorStats.

    Each reader fills its own ReadStats (readers may run on several threads); `flush` adds
    what is new since the last flush under the context's lock.
    """

    def __init__(self, ctx: IterContext):
        self.ctx = ctx
        self.local = ReadStats()
        self._records = self._corrupt = self._errors = 0

    def flush(self) -> None:
        shared, local = self.ctx.errors, self.local
        if shared is None:
            return
        with self.ctx.lock:
            shared.records += local.records - self._records
            shared.corrupt_records += local.corrupt_records - self._corrupt
            shared.errors.extend(local.errors[self._errors:])
        self._records, self._corrupt = local.records, local.corrupt_records
        self._errors = len(local.errors)
