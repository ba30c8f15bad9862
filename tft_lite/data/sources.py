"""Sources: datasets that produce elements rather than transform them.

Record sources (TFRecordDataset, TextLineDataset) yield their records as pyarrow Binary arrays
of about 1 MiB each, straight from tft_lite.io's framing reader, so nothing downstream has to
touch single records in Python. File sources resolve their file lists when built, so a pattern
that matches nothing fails at once, and they are where DataLoader workers split the files
(IterContext.shard_files).
"""
from __future__ import annotations

import glob
import os

import numpy as np
import pyarrow as pa

from tft_lite.data._chunks import StatsSink
from tft_lite.data.dataset import AUTOTUNE, Dataset
from tft_lite.data.shuffle import BufferShuffler
from tft_lite.data.structure import as_array, map_structure, num_rows, slices
from tft_lite.io.tfrecord import detect_compression, read_file_chunks, read_tfrecord_batches

_CHUNK_ELEMENTS = 1024  # elements per chunk of in-memory sources
_CHUNK_BYTES = 1 << 20  # payload bytes per chunk of record sources (buffer_size default)


def match_files(patterns, what: str, each_must_match: bool) -> list[str]:
    """The files of a path, a glob pattern, or a list of them.

    An existing path is taken literally (even if it contains glob characters); anything else
    is a glob pattern, expanded in sorted order. Raises FileNotFoundError naming the
    pattern(s) when nothing matches, or, with each_must_match, when any one matches nothing.
    """
    if isinstance(patterns, (str, bytes, os.PathLike)):
        patterns = [patterns]
    elif isinstance(patterns, np.ndarray):
        patterns = patterns.reshape(-1).tolist()
    patterns = [os.fsdecode(p) for p in patterns]
    files = []
    for pattern in patterns:
        matches = [pattern] if os.path.isfile(pattern) else sorted(glob.glob(pattern))
        if not matches and each_must_match:
            raise FileNotFoundError(f"{what}: no file matches {pattern!r}")
        files.extend(matches)
    if patterns and not files:
        shown = repr(patterns[0]) if len(patterns) == 1 else patterns
        raise FileNotFoundError(f"{what}: no files match {shown}")
    return files


def _compression(value) -> str | None:
    if value in (None, "", "NONE", "UNCOMPRESSED"):
        return None
    upper = str(value).upper()
    if upper not in ("GZIP", "ZLIB", "AUTO"):
        raise ValueError(f"compression_type must be None, '', 'GZIP', 'ZLIB' or 'auto'; got "
                         f"{value!r}")
    return upper


def _chunk_bytes(buffer_size) -> int:
    if buffer_size is None:
        return _CHUNK_BYTES
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive number of bytes, got {buffer_size!r}")
    return buffer_size


def split_chunk(records: pa.Array, chunk_bytes: int):
    """Zero-copy slices of about `chunk_bytes` each.

    The framing reader returns one array per decompressed read (~25 MB, 37k Criteo records,
    for GZIP). Smaller chunks keep interleave's rounds and shuffle's blocks (and the arrays
    they allocate) small: at 1 MiB the shuffle+interleave benchmark ran 2-3x faster than on
    whole reads, whose multi-MB allocations come fresh from the kernel each time.
    """
    total = records.nbytes
    if total <= chunk_bytes * 1.5 or len(records) < 2:
        yield records
        return
    step = max(1, int(len(records) * chunk_bytes / total))
    for start in range(0, len(records), step):
        yield records.slice(start, step)


class RangeDataset(Dataset):
    def __init__(self, *args):
        self._range = range(*[int(a) for a in args])

    def _chunks(self, ctx):
        r = self._range
        for start in range(0, len(r), _CHUNK_ELEMENTS):
            part = r[start:start + _CHUNK_ELEMENTS]
            yield list(np.arange(part.start, part.stop, part.step, dtype=np.int64))


class TensorSlicesDataset(Dataset):
    def __init__(self, tensors):
        self._tensors = map_structure(as_array, tensors)
        self._size = num_rows(self._tensors, "from_tensor_slices")

    def _chunks(self, ctx):
        for start in range(0, self._size, _CHUNK_ELEMENTS):
            part = map_structure(lambda a, s=start: a[s:s + _CHUNK_ELEMENTS], self._tensors)
            yield slices(part, "from_tensor_slices")


def _element_leaf(leaf):
    array = as_array(leaf)
    return array[()] if array.ndim == 0 else array


class TensorsDataset(Dataset):
    def __init__(self, tensors):
        self._element = map_structure(_element_leaf, tensors)

    def _chunks(self, ctx):
        yield [self._element]


class FileNamesDataset(Dataset):
    """File names as bytes elements: list_files, and the file list of a record dataset.

    The list is resolved when the dataset is built. A DataLoader worker keeps its share of
    the sorted list first and shuffles that share, so with any seed every file goes to
    exactly one worker.
    """

    def __init__(self, files: list, shuffle: bool = False, seed=None):
        self._files = [os.fsencode(f) for f in files]
        self._shuffle = shuffle
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self._seed = int(seed)
        self._iterations = 0

    def _chunks(self, ctx):
        files = ctx.shard_files(self._files)
        iteration, self._iterations = self._iterations, self._iterations + 1
        if self._shuffle and files:
            shuffler = BufferShuffler(len(files), np.random.default_rng([self._seed, iteration]))
            shuffler.push(files)
            files = [f for chunk in shuffler.finish() for f in chunk]
        if files:
            yield files


class ListFilesDataset(FileNamesDataset):
    def __init__(self, file_pattern, shuffle=None, seed=None):
        files = sorted(set(match_files(file_pattern, "list_files", each_must_match=False)))
        super().__init__(files, True if shuffle is None else bool(shuffle), seed)


class _RecordSource(Dataset):
    """What TFRecordDataset and TextLineDataset share: file list, sharding, parallel reads."""

    _what = "record source"

    def __init__(self, filenames, compression_type, buffer_size, num_parallel_reads):
        self._compression = _compression(compression_type)
        self._chunk_bytes = _chunk_bytes(buffer_size)
        if isinstance(filenames, Dataset):
            names = filenames
        else:
            names = FileNamesDataset(match_files(filenames, self._what, each_must_match=True))
        self._names = names
        self._parallel = None
        if num_parallel_reads not in (None, 1):
            cycle = (os.cpu_count() or 1) if num_parallel_reads == AUTOTUNE else \
                int(num_parallel_reads)
            # tf.data: "records of files read in parallel are outputted in an interleaved
            # order", i.e. interleave(cycle_length=num_parallel_reads, block_length=1).
            self._parallel = names.interleave(_OneFile(self), cycle, 1, cycle)

    def _chunks(self, ctx):
        if self._parallel is not None:
            yield from self._parallel._chunks(ctx)
            return
        for names in self._names._chunks(ctx):
            for name in names:
                yield from self._read_file(os.fsdecode(name), ctx)

    def _read_file(self, path, ctx):
        raise NotImplementedError


class _OneFile:
    """map_func of a parallel read: one file name → a dataset over that file (picklable)."""

    def __init__(self, source: _RecordSource):
        self._source = source

    def __call__(self, name):
        return _OneFileDataset(self._source, os.fsdecode(name))


class _OneFileDataset(Dataset):
    def __init__(self, source, path):
        self._source, self._path = source, path

    def _chunks(self, ctx):
        return self._source._read_file(self._path, ctx)


class TFRecordDataset(_RecordSource):
    """The records (bytes) of TFRecord files, in file order (tf.data.TFRecordDataset).

    Args:
      filenames: a path, a glob pattern, a list of them, or a Dataset of file names (e.g.
        from list_files). Lists and patterns are resolved now (FileNotFoundError if a
        pattern matches nothing).
      compression_type: None or "" (uncompressed), "GZIP", "ZLIB", or "auto" (per file).
      buffer_size: bytes of records per internal chunk (default 1 MiB).
      num_parallel_reads: read that many files at once, interleaving their records one at a
        time (as tf.data does), on threads.

    Raises (when iterated): CorruptRecordError naming the file, record index and byte offset
    of a bad CRC or truncation, unless an ignore_errors() downstream skips and counts it.
    """

    _what = "TFRecordDataset"

    def __init__(self, filenames, compression_type=None, buffer_size=None,
                 num_parallel_reads=None):
        super().__init__(filenames, compression_type, buffer_size, num_parallel_reads)

    def _read_file(self, path, ctx):
        sink = StatsSink(ctx)
        literal = glob.escape(path) if glob.has_magic(path) else path
        try:
            for chunk in read_tfrecord_batches(literal, self._compression,
                                               skip_corrupt=ctx.errors is not None,
                                               stats=sink.local, batch_bytes=self._chunk_bytes):
                sink.flush()
                yield from split_chunk(chunk, self._chunk_bytes)
        finally:
            sink.flush()


class TextLineDataset(_RecordSource):
    """The lines (bytes, without "\\n" or "\\r\\n") of text files (tf.data.TextLineDataset).

    Arguments as TFRecordDataset's, plus skip_header_lines: lines to skip at the start of
    each file (tf.data's CsvDataset has `header`; with TextLineDataset TensorFlow code writes
    `list_files(...).interleave(lambda f: TextLineDataset(f).skip(1))`, which works too).
    """

    _what = "TextLineDataset"

    def __init__(self, filenames, compression_type=None, buffer_size=None,
                 num_parallel_reads=None, skip_header_lines=0):
        if isinstance(skip_header_lines, bool) or not isinstance(skip_header_lines, int) or \
                skip_header_lines < 0:
            raise ValueError(f"skip_header_lines must be an int >= 0, got {skip_header_lines!r}")
        self._skip_header = skip_header_lines
        super().__init__(filenames, compression_type, buffer_size, num_parallel_reads)

    def _read_file(self, path, ctx):
        skip = self._skip_header
        for block in _line_chunks(path, self._compression, self._chunk_bytes):
            for lines in split_chunk(block, self._chunk_bytes):
                if skip:
                    dropped = min(skip, len(lines))
                    lines, skip = lines.slice(dropped), skip - dropped
                if len(lines):
                    yield lines


def _line_chunks(path, compression, chunk_bytes):
    """pyarrow Binary arrays of the file's lines; a last line without "\\n" counts too."""
    carry = b""
    if compression == "AUTO":
        compression = detect_compression(path)
    for data in read_file_chunks(path, compression, chunk_bytes):
        data = carry + data if carry else data
        end = data.rfind(b"\n") + 1
        carry = data[end:]
        if end:
            yield _split_lines(data[:end] if end < len(data) else data)
    if carry:
        yield _split_lines(carry + b"\n")


def _split_lines(block: bytes) -> pa.BinaryArray:
    """The lines of `block` (which ends with "\\n"), newline and a "\\r" before it removed."""
    raw = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    starts = np.concatenate([[0], ends[:-1] + 1])
    stops = ends.copy()
    has_cr = stops > starts
    has_cr[has_cr] = raw[stops[has_cr] - 1] == 13
    stops[has_cr] -= 1
    keep = np.ones(len(raw), dtype=bool)
    keep[ends] = False
    keep[stops[has_cr]] = False
    offsets = np.concatenate([[0], np.cumsum(stops - starts)]).astype(np.int32)
    return pa.Array.from_buffers(pa.binary(), len(ends),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(raw[keep])])
