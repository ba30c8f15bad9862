"""`Dataset`: tf.data's API and semantics, over numpy and pyarrow instead of tensors.

A dataset is a recipe; iterating it runs the recipe. Each dataset class implements one
method, `_chunks(ctx)`, yielding its elements in chunks (see _chunks.py): lists of elements,
or pyarrow arrays of serialized records. Transformations wrap their input and rework its
chunks, so records read from files stay columnar through interleave, shuffle, take, skip and
batch, and `parse_examples` decodes a whole batch in one call of the C codec.

Elements are what tf.data's `as_numpy_iterator()` yields: numpy arrays and scalars, bytes,
and tuples / dicts of them. Functions given to map/filter/interleave receive a tuple element
unpacked into positional arguments, as in tf.data.

This layer sits above tft_lite.io and tft_lite.ir.schema and imports nothing else from the
package; torch is imported only by `as_torch()`.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from tft_lite.data import _chunks as chunks_
from tft_lite.data._chunks import ErrorStats, IterContext, elements, is_columnar, to_user
from tft_lite.data._threads import background, parallel_map
from tft_lite.data.structure import slices, stack

AUTOTUNE = -1  # let tft_lite pick a parallelism or buffer size (tf.data.AUTOTUNE)
_AUTOTUNE_PREFETCH = 4
_PIECE_SIZE = 128  # elements per task of a parallel map over small elements
_logger = logging.getLogger("tft_lite.data")


def _num_threads(value) -> int:
    """num_parallel_calls → worker threads (AUTOTUNE: one per CPU)."""
    if value == AUTOTUNE:
        return os.cpu_count() or 1
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"num_parallel_calls must be a positive int or AUTOTUNE, got {value!r}")
    return value


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)) or \
            value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def call_fn(fn, element):
    """fn(element), tf.data style: a plain tuple is unpacked into positional arguments.

    Functions marked `accepts_arrow = True` (parse_examples) get a batch of records as the
    pyarrow array it travels as; others get numpy (see _chunks.to_user).
    """
    if not getattr(fn, "accepts_arrow", False):
        element = to_user(element)
    return fn(*element) if type(element) is tuple else fn(element)


class Dataset:
    """A sequence of elements built from sources and transformations, like tf.data.Dataset.

    Iterate it (or `as_numpy_iterator()`) to get its elements; each iteration starts over,
    reading the files again and drawing new shuffle orders (reshuffle_each_iteration).
    """

    def _chunks(self, ctx: IterContext):
        raise NotImplementedError(f"{type(self).__name__} does not implement _chunks")

    def _elements(self, ctx: IterContext):
        for chunk in self._chunks(ctx):
            if is_columnar(chunk):
                yield from chunk.to_pylist()
            else:
                for element in chunk:
                    yield to_user(element)

    def __iter__(self):
        return self._elements(IterContext())

    def as_numpy_iterator(self):
        """An iterator over the elements: numpy arrays and scalars, bytes, tuples, dicts.

        VarLen features parsed by parse_examples stay pyarrow ListArrays (tf.data would give
        a SparseTensorValue); `.to_numpy(zero_copy_only=False)` makes them ragged numpy.
        """
        return iter(self)

    # --- sources ---------------------------------------------------------------------------

    @staticmethod
    def range(*args):
        """Like Python's range(start, stop, step); elements are numpy int64 scalars."""
        from tft_lite.data.sources import RangeDataset
        return RangeDataset(*args)

    @staticmethod
    def from_tensor_slices(tensors):
        """One element per row of `tensors` (an array, list, or tuple / dict of them)."""
        from tft_lite.data.sources import TensorSlicesDataset
        return TensorSlicesDataset(tensors)

    @staticmethod
    def from_tensors(tensors):
        """A dataset of exactly one element, `tensors`."""
        from tft_lite.data.sources import TensorsDataset
        return TensorsDataset(tensors)

    @staticmethod
    def list_files(file_pattern, shuffle=None, seed=None):
        """File names (bytes) matching glob pattern(s); shuffled unless shuffle=False.

        As in tf.data, `shuffle=None` means True: pass shuffle=False for sorted order, or a
        seed for a reproducible order (a new one each iteration). Raises FileNotFoundError
        naming the pattern(s) when nothing matches.
        """
        from tft_lite.data.sources import ListFilesDataset
        return ListFilesDataset(file_pattern, shuffle, seed)

    # --- transformations -------------------------------------------------------------------

    def map(self, map_func, num_parallel_calls=None, deterministic=None):
        """map_func applied to every element; with num_parallel_calls, on that many threads.

        Order is kept unless deterministic=False (then results come as they finish).
        """
        return _MapDataset(self, map_func, num_parallel_calls, deterministic is not False)

    def filter(self, predicate):
        """Only the elements for which predicate returns True (a scalar bool)."""
        return _FilterDataset(self, predicate)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None,
              deterministic=None):
        """Stacks consecutive elements into batches of `batch_size` along a new first axis.

        The last batch is smaller unless drop_remainder=True. A batch of serialized records
        is a numpy object array of bytes (a pyarrow array internally, which parse_examples
        reads without copying). num_parallel_calls and deterministic are accepted for
        tf.data compatibility; batching is a copy and runs inline.
        """
        return _BatchDataset(self, _check_count("batch_size", batch_size, 1), drop_remainder)

    def unbatch(self):
        """Splits each element along its first axis (the inverse of batch)."""
        return _UnbatchDataset(self)

    def repeat(self, count=None):
        """The dataset `count` times (None or -1: forever; ends if the dataset is empty)."""
        count = -1 if count is None else _check_count("count", count, -1)
        return _RepeatDataset(self, count)

    def take(self, count):
        """At most the first `count` elements (-1: all); reads no further than needed."""
        return _TakeDataset(self, _check_count("count", count, -1))

    def skip(self, count):
        """All but the first `count` elements (-1: skips everything)."""
        return _SkipDataset(self, _check_count("count", count, -1))

    def shard(self, num_shards, index):
        """Every num_shards-th element starting at `index` (tf.data.Dataset.shard)."""
        num_shards = _check_count("num_shards", num_shards, 1)
        if not 0 <= index < num_shards:
            raise ValueError(f"shard index must be in [0, {num_shards}), got {index!r}")
        return _ShardDataset(self, num_shards, int(index))

    def apply(self, transformation_func):
        """transformation_func(self): a hook for reusable pipeline pieces."""
        return transformation_func(self)

    def prefetch(self, buffer_size):
        """Produces up to `buffer_size` elements ahead on a background thread."""
        if buffer_size == AUTOTUNE:
            buffer_size = _AUTOTUNE_PREFETCH
        return _PrefetchDataset(self, _check_count("buffer_size", buffer_size, 0))

    def ignore_errors(self, log_warning=False):
        """Skips what cannot be read or mapped, counting it in the result's `.stats`.

        Upstream TFRecord sources skip corrupt records (see tft_lite.io's skip_corrupt),
        and an element on which a map or filter function raises is dropped. `.stats` is an
        ErrorStats (records, corrupt_records, dropped_elements, errors), cumulative over all
        iterations of this dataset. Other errors (missing files, a batch of mismatched
        shapes) still propagate. log_warning=True logs each skipped error.
        """
        return _IgnoreErrorsDataset(self, log_warning)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=None):
        """Randomly shuffles the elements with a buffer of `buffer_size`, as tf.data does.

        Each output is drawn uniformly from a buffer of the next `buffer_size` elements; a
        buffer at least the dataset's size gives a uniform shuffle. With a seed the order is
        reproducible: iteration k uses numpy's default_rng([seed, k]) (k = 0 every time if
        reshuffle_each_iteration=False; None means True, as in tf.data). See shuffle.py for
        the exact algorithm.
        """
        from tft_lite.data.shuffle import ShuffleDataset
        return ShuffleDataset(self, _check_count("buffer_size", buffer_size, 1), seed,
                              reshuffle_each_iteration is not False)

    def interleave(self, map_func, cycle_length=None, block_length=None,
                   num_parallel_calls=None, deterministic=None):
        """Maps each element to a dataset and interleaves their elements, as tf.data does.

        `cycle_length` datasets are open at once (None/AUTOTUNE: one per CPU); the output
        takes `block_length` (default 1) consecutive elements from each in turn. With
        num_parallel_calls the open datasets are read ahead on threads; the order is the
        same either way.
        """
        from tft_lite.data.interleave import InterleaveDataset
        cycle_length = (os.cpu_count() or 1) if cycle_length in (None, AUTOTUNE) else \
            _check_count("cycle_length", cycle_length, 1)
        block_length = 1 if block_length is None else _check_count("block_length",
                                                                   block_length, 1)
        threads = None if num_parallel_calls is None else _num_threads(num_parallel_calls)
        return InterleaveDataset(self, map_func, cycle_length, block_length, threads)

    def flat_map(self, map_func):
        """Maps each element to a dataset and concatenates them (interleave with cycle 1)."""
        return self.interleave(map_func, cycle_length=1, block_length=1)

    # --- consumers ---------------------------------------------------------------------------

    def as_torch(self):
        """A torch.utils.data.IterableDataset over this dataset (needs `tft_lite[torch]`).

        Each DataLoader worker reads a distinct subset of the files; see tft_lite/data/_torch.py.
        """
        from tft_lite.data._torch import TorchIterableDataset
        return TorchIterableDataset(self)


class _UnaryDataset(Dataset):
    def __init__(self, input_dataset: Dataset):
        if not isinstance(input_dataset, Dataset):
            raise TypeError(f"expected a tft_lite.data.Dataset, got "
                            f"{type(input_dataset).__name__}")
        self._input = input_dataset


_DROPPED = object()


def _guarded(fn, ctx: IterContext):
    """fn(element), or _DROPPED (counted) when it raises under ignore_errors()."""
    if ctx.errors is None:
        return lambda element: call_fn(fn, element)

    def call(element):
        try:
            return call_fn(fn, element)
        except Exception as exc:
            ctx.drop(exc)
            return _DROPPED
    return call


class _MapDataset(_UnaryDataset):
    def __init__(self, input_dataset, fn, num_parallel_calls, deterministic):
        super().__init__(input_dataset)
        self._fn = fn
        self._threads = None if num_parallel_calls in (None, 1) else \
            _num_threads(num_parallel_calls)
        self._deterministic = deterministic

    def _chunks(self, ctx):
        call = _guarded(self._fn, ctx)
        if self._threads is None:
            for chunk in self._input._chunks(ctx):
                out = [r for r in map(call, elements(chunk)) if r is not _DROPPED]
                if out:
                    yield out
            return
        pieces = _pieces(self._input._chunks(ctx), self._threads)
        for out in parallel_map(lambda piece: [r for r in map(call, piece) if r is not _DROPPED],
                                pieces, self._threads, self._deterministic):
            if out:
                yield out


def _pieces(chunks, threads):
    """Splits chunks into tasks for a parallel map: small enough to spread over threads."""
    for chunk in chunks:
        items = elements(chunk)
        size = max(1, min(_PIECE_SIZE, len(items) // (2 * threads)))
        for start in range(0, len(items), size):
            yield items[start:start + size]


class _FilterDataset(_UnaryDataset):
    def __init__(self, input_dataset, predicate):
        super().__init__(input_dataset)
        self._predicate = predicate

    def _chunks(self, ctx):
        call = _guarded(self._predicate, ctx)
        for chunk in self._input._chunks(ctx):
            mask = [_as_bool(r) for r in map(call, elements(chunk))]
            if all(mask):
                yield chunk
            elif any(mask):
                yield chunks_.take([chunk], np.flatnonzero(mask)) if is_columnar(chunk) else \
                    [e for e, keep in zip(chunk, mask) if keep]


def _as_bool(result) -> bool:
    if result is _DROPPED:
        return False
    array = np.asarray(result)
    if array.shape != () or array.dtype.kind not in "bi":
        raise ValueError(f"filter predicate must return a scalar bool, got {result!r:.80}")
    return bool(array)


class _BatchDataset(_UnaryDataset):
    def __init__(self, input_dataset, batch_size, drop_remainder):
        super().__init__(input_dataset)
        self._size, self._drop_remainder = batch_size, drop_remainder

    def _chunks(self, ctx):
        """One batch per output chunk; columnar input is sliced, never split into records."""
        pending, count = [], 0
        for chunk in self._input._chunks(ctx):
            start, size = 0, len(chunk)
            while start < size:
                k = min(self._size - count, size - start)
                pending.append(chunks_.slice_chunk(chunk, start, start + k))
                count, start = count + k, start + k
                if count == self._size:
                    yield [_make_batch(pending)]
                    pending, count = [], 0
        if count and not self._drop_remainder:
            yield [_make_batch(pending)]


def _make_batch(pieces):
    joined = chunks_.concat(pieces)
    if is_columnar(joined):
        return joined  # a batch of records stays a pyarrow array until user code sees it
    return stack(joined, "batch")


class _UnbatchDataset(_UnaryDataset):
    def _chunks(self, ctx):
        for chunk in self._input._chunks(ctx):
            if is_columnar(chunk):
                raise ValueError("unbatch: the elements are single records (bytes scalars) "
                                 "without a first dimension to split")
            for element in chunk:
                if is_columnar(element):  # a batch of records: its records, still columnar
                    yield element
                else:
                    rows = slices(element, "unbatch")
                    if rows:
                        yield rows


class _RepeatDataset(_UnaryDataset):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = count

    def _chunks(self, ctx):
        epoch = 0
        while self._count < 0 or epoch < self._count:
            produced = False
            for chunk in self._input._chunks(ctx):
                produced = produced or len(chunk) > 0
                yield chunk
            epoch += 1
            if not produced:  # repeating an empty dataset ends, as in tf.data
                return


class _TakeDataset(_UnaryDataset):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = count

    def _chunks(self, ctx):
        if self._count < 0:
            yield from self._input._chunks(ctx)
            return
        remaining = self._count
        if remaining == 0:
            return
        source = self._input._chunks(ctx)
        try:
            for chunk in source:
                if len(chunk) >= remaining:
                    yield chunks_.slice_chunk(chunk, 0, remaining)
                    return
                remaining -= len(chunk)
                yield chunk
        finally:
            source.close()  # stops upstream reads and threads now, not at garbage collection


class _SkipDataset(_UnaryDataset):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = count

    def _chunks(self, ctx):
        remaining = self._count
        for chunk in self._input._chunks(ctx):
            if remaining < 0:
                continue
            if remaining >= len(chunk):
                remaining -= len(chunk)
                continue
            yield chunks_.slice_chunk(chunk, remaining, len(chunk)) if remaining else chunk
            remaining = 0


class _ShardDataset(_UnaryDataset):
    def __init__(self, input_dataset, num_shards, index):
        super().__init__(input_dataset)
        self._num_shards, self._index = num_shards, index

    def _chunks(self, ctx):
        position = 0  # index of the chunk's first element in the whole dataset
        for chunk in self._input._chunks(ctx):
            first = (self._index - position) % self._num_shards
            picked = np.arange(first, len(chunk), self._num_shards, dtype=np.int64)
            position += len(chunk)
            if len(picked):
                yield chunks_.take([chunk], picked)


class _PrefetchDataset(_UnaryDataset):
    def __init__(self, input_dataset, buffer_size):
        super().__init__(input_dataset)
        self._buffer_size = buffer_size

    def _chunks(self, ctx):
        if self._buffer_size == 0:
            yield from self._input._chunks(ctx)
            return
        yield from background(lambda: _single_elements(self._input._chunks(ctx)),
                              self._buffer_size, "tft_lite.data.prefetch")


def _single_elements(chunks):
    """List chunks split into one-element chunks, so the prefetch buffer counts elements."""
    for chunk in chunks:
        if is_columnar(chunk):
            yield chunk
        else:
            for element in chunk:
                yield [element]


class _IgnoreErrorsDataset(_UnaryDataset):
    def __init__(self, input_dataset, log_warning):
        super().__init__(input_dataset)
        self._log_warning = log_warning
        self.stats = ErrorStats()

    def _chunks(self, ctx):
        logged = len(self.stats.errors)
        for chunk in self._input._chunks(ctx.derive(errors=self.stats)):
            if self._log_warning:
                for error in self.stats.errors[logged:]:
                    _logger.warning("ignore_errors: skipped %s", error)
                logged = len(self.stats.errors)
            yield chunk
