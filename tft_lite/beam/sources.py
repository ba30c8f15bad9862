"""Sources producing pyarrow RecordBatches: ReadCsv, ReadParquet, ReadTFRecord.

Files are parsed by pyarrow's readers and tft_lite's TFRecord/Example codec, never line by
line in Python. A CSV file is split into byte ranges (at line boundaries) so several workers
read one big file. A malformed row raises an error naming the file and line; with
errors="dead_letter" it goes to a second output instead, counted by the Beam counter
`tft_lite/<source>_dead_letters`. Nothing is dropped silently.

Each source can also run lazily (`lazy=True`): its elements are then `SourceSplit`s, small
descriptions of a part of the input (a file, a byte range) that every tft_lite consumer reads
itself. The analysis phases and the transform then each re-read the input instead of keeping
the parsed batches between them, so memory does not grow with the data and nothing but the
split descriptions moves between workers (see docs/beam.md).

Paths may be on any filesystem Beam knows (`gs://...`: tft_lite/beam/filesystem.py).

Limit: CSV splitting assumes no newline inside a quoted field (pass block_size=None to read
each file whole when your data has them).
"""
from __future__ import annotations

import functools
import io
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tft_lite.beam import filesystem as fs
from tft_lite.beam.batches import SourceSplit
from tft_lite.beam.metadata import feature_spec_of
from tft_lite.errors import TftLiteError
from tft_lite.io.example import decode_examples
from tft_lite.io.tfrecord import ReadStats, read_tfrecord_batches

DEAD_LETTER = "dead_letter"
_BATCH_ROWS = 65_536
_CSV_TYPES = {"int64": pa.int64(), "float32": pa.float32()}
_TYPED_BLOCK_BYTES = 4 << 20
_NUMERIC_PATTERNS = {
    "int64": r"^\s*[-+]?\d+\s*$",
    "float32": r"(?i)^\s*[-+]?((\d+\.?\d*|\.\d+)(e[-+]?\d+)?|inf|infinity|nan)\s*$",
}


class CsvError(TftLiteError, ValueError):
    """A CSV row that cannot be read: names the file, the 1-based line and the reason."""


class DeadLetter(NamedTuple):
    """A row (or record) that could not be read, with where and why."""

    path: str
    line: int  # 1-based line for CSV; record index for TFRecord
    reason: str
    text: str


# --- CSV ---------------------------------------------------------------------------------

class _CsvRange(NamedTuple):
    path: str
    start: int  # byte offset of the first line of this range
    end: int  # the range holds the lines starting before `end`


def _csv_ranges(path: str, block_size, header: bool) -> list:
    size = fs.size(path)
    if size == 0:
        raise CsvError(f"CSV file {path} is empty" + (" (no header line)" if header else ""))
    first = 0
    if header:
        with fs.open_read(path) as f:
            first = len(f.readline())
    if not block_size or size <= first:
        return [_CsvRange(path, first, size)]
    # Equal ranges of at most block_size bytes, not block_size ranges and a runt: ranges go
    # round-robin to workers, and 1M Criteo rows in 32 MB blocks (9 full + 4.5 MB) left one
    # of 2 workers 18% short of work in every pass.
    count = -(-(size - first) // block_size)
    bounds = [first + (size - first) * i // count for i in range(count + 1)]
    return [_CsvRange(path, s, e) for s, e in zip(bounds, bounds[1:])]


def _range_bytes(r: _CsvRange) -> tuple:
    """(bytes of the whole lines that start in [start, end), byte offset of the first)."""
    with fs.open_read(r.path) as f:
        start = r.start
        if start > 0:  # begin at the first line starting at or after `start`
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()
            start = f.tell()
        if start >= r.end and r.start != r.end:
            return b"", start
        end = r.end  # extended to the end of the line holding byte end - 1: one read, no
        if end > start:  # concatenation (a 32 MB copy per range)
            f.seek(end - 1)
            if f.read(1) != b"\n":
                f.readline()
                end = f.tell()
        f.seek(start)
        data = f.read(max(end - start, 0))
    return data, start


def _line_of_offset(path: str, offset: int) -> int:
    """1-based line number of the byte at `offset` (counts newlines before it)."""
    count, done = 0, 0
    with fs.open_read(path) as f:
        while done < offset:
            chunk = f.read(min(1 << 24, offset - done))
            if not chunk:
                break
            count += chunk.count(b"\n")
            done += len(chunk)
    return count + 1


class _CsvReader:
    """Parses one byte range of a CSV file into a typed Table (picklable, no Beam)."""

    def __init__(self, column_names, delimiter, spec, errors):
        self._names, self._delimiter = column_names, delimiter
        self._spec, self._errors = spec, errors

    def read(self, r: _CsvRange, columns=None) -> tuple:
        """(typed table or None, dead letters); errors="raise" raises on the first bad row.

        columns: convert only these on the fast path (the checked path still checks every
        column, so a range with a bad row reads the same rows for every consumer).
        """
        data, start = _range_bytes(r)
        if not data or data.isspace():  # (isspace stops at the first other byte)
            return None, []
        table = self._parse_typed(data, columns)
        if table is not None:
            return table, []
        lines = _LineIndex(r.path, start, data)
        bad_rows = []
        table = self._parse(data, r.path, lines, bad_rows)
        table, bad_values = self._convert(table, r.path, lines, bad_rows)
        return table, bad_rows + bad_values

    def _parse_typed(self, data, columns=None):
        """The fast path: pyarrow converts each column to its type while parsing (only
        `columns` when given). Any bad row or value makes it give up (None); the checked
        path below then finds and names it."""
        types = {name: _CSV_TYPES.get(self._spec[name].dtype, pa.binary())
                 if name in self._spec else pa.string() for name in self._names}
        # pyarrow's threads parse 4 MB blocks in parallel: on two cores 1M Criteo rows took
        # 0.63 s instead of 1.43 s as one block per range, and less CPU (1.2 s vs 1.4 s).
        read = pacsv.ReadOptions(column_names=self._names, use_threads=True,
                                 block_size=_TYPED_BLOCK_BYTES)
        if columns is not None:  # (a name that is no column is reported by the consumer)
            columns = [name for name in columns if name in types]
        convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                       include_columns=columns)
        try:
            return pacsv.read_csv(io.BytesIO(data), read_options=read, convert_options=convert,
                                  parse_options=pacsv.ParseOptions(delimiter=self._delimiter))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None

    def batches(self, r: _CsvRange, columns=None):
        """The range's RecordBatches without its bad rows (reported by the dead-letter pass).

        With dead letters a row bad in a column left out would survive a projected read while
        the other passes drop it, so then every column is read.
        """
        if self._errors == DEAD_LETTER:
            columns = None
        table, _ = self.read(r, columns)
        if table is not None:
            if columns is not None:
                table = table.select([c for c in columns if c in table.column_names])
            yield from table.to_batches(max_chunksize=_BATCH_ROWS)

    def _parse(self, data, path, lines, bad_rows) -> pa.Table:
        """All columns as strings; rows with a wrong field count raise or become dead letters."""
        cursor = {"search_from": 0}

        def invalid(row):
            position = data.find(row.text.encode("utf-8", "surrogateescape"),
                                 cursor["search_from"])
            line = (lines.base + data.count(b"\n", 0, position)) if position >= 0 else -1
            cursor["search_from"] = max(position, 0) + 1
            reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
            bad_rows.append(DeadLetter(path, line, reason, row.text))
            return "skip"  # raising here would lose our message inside pyarrow

        options = pacsv.ParseOptions(delimiter=self._delimiter, invalid_row_handler=invalid)
        read = pacsv.ReadOptions(column_names=self._names, use_threads=False,
                                 block_size=max(len(data) + 1, 1 << 20))
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in self._names},
                                       strings_can_be_null=True)
        table = pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=options,
                               convert_options=convert)
        if bad_rows and self._errors != DEAD_LETTER:
            first = bad_rows[0]
            raise CsvError(f"{path}, line {first.line}: {first.reason}: {first.text[:200]!r}")
        return table

    def _convert(self, table, path, lines, bad_rows):
        """String columns -> the spec's types; invalid numbers raise or go to dead letters."""
        bad = np.zeros(table.num_rows, bool)
        reasons = {}
        for name, spec in self._spec.items():
            if name not in table.column_names:
                continue
            if spec.dtype in _NUMERIC_PATTERNS:
                column = table.column(name)
                ok = pc.or_kleene(pc.is_null(column), pc.match_substring_regex(
                    column, _NUMERIC_PATTERNS[spec.dtype])).to_numpy(zero_copy_only=False)
                for row in np.flatnonzero(~ok & ~bad):
                    reasons[row] = (f"column {name!r}: {table.column(name)[row].as_py()!r} "
                                    f"is not {spec.dtype}")
                bad |= ~ok
        dead = []
        if bad.any():
            skipped = {d.line for d in bad_rows}
            row_lines = np.array([n for n in lines.numbers if n not in skipped], np.int64)
            first = int(np.flatnonzero(bad)[0])
            if self._errors != DEAD_LETTER:
                raise CsvError(f"{path}, line {row_lines[first]}: {reasons[first]}")
            dead = [DeadLetter(path, int(row_lines[i]), reasons[i], "") for i in
                    np.flatnonzero(bad)]
            table = table.filter(pa.array(~bad))
        return _cast(table, self._spec), dead


class _ReadCsvRange(beam.DoFn):
    """Ranges -> RecordBatches, and dead letters to the DEAD_LETTER output (counted)."""

    def __init__(self, reader: _CsvReader):
        self._reader = reader
        self._dead = beam.metrics.Metrics.counter("tft_lite", "csv_dead_letters")

    def process(self, r: _CsvRange):
        table, dead = self._reader.read(r)
        for letter in dead:
            self._dead.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)
        if table is not None:
            yield from table.to_batches(max_chunksize=_BATCH_ROWS)


class _CsvDeadLetters(beam.DoFn):
    """Lazy mode's one reporting pass: a split's dead letters (counted), no batches."""

    def __init__(self):
        self._dead = beam.metrics.Metrics.counter("tft_lite", "csv_dead_letters")

    def process(self, split: SourceSplit):
        _, dead = split.reader.read(split.part)
        for letter in dead:
            self._dead.inc()
            yield letter


class _LineIndex:
    """File line numbers of a range's rows, computed only when an error needs them (counting
    the newlines before a range reads the file up to it)."""

    def __init__(self, path: str, start: int, data: bytes):
        self._path, self._start, self._data = path, start, data

    @functools.cached_property
    def base(self) -> int:
        """1-based line number of the range's first line."""
        return _line_of_offset(self._path, self._start)

    @property
    def numbers(self) -> np.ndarray:
        """1-based file line numbers of the non-empty lines, in order."""
        return _nonempty_line_numbers(self._data, self.base)


def _nonempty_line_numbers(data: bytes, base: int) -> np.ndarray:
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], ends + 1])[:len(ends) + (0 if data.endswith(b"\n") else 1)]
    stops = np.concatenate([ends, [len(data)]])[:len(starts)]
    lengths = stops - starts
    is_cr = lengths == 1
    if is_cr.any():  # a lone "\r" is an empty line too
        is_cr &= buf[np.minimum(starts, len(buf) - 1)] == 13
    nonempty = (lengths > 0) & ~is_cr
    return base + np.flatnonzero(nonempty).astype(np.int64)


def _cast(table: pa.Table, spec: dict) -> pa.Table:
    arrays, names = [], []
    for name in table.column_names:
        column = table.column(name)
        feature = spec.get(name)
        if feature is not None and feature.dtype == "float32":
            column = pc.cast(pc.utf8_trim_whitespace(column), pa.float32())
        elif feature is not None and feature.dtype == "int64":
            column = pc.cast(pc.utf8_trim_whitespace(column), pa.int64())
        elif feature is not None:
            column = column.cast(pa.binary())
        arrays.append(column)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


class ReadCsv(beam.PTransform):
    """CSV files -> RecordBatches typed by the feature spec.

    Args:
      file_pattern: a path, glob or list of them (a pattern matching nothing raises).
      column_names: names of the columns; default: the header line.
      header: the files start with a header line (skipped).
      delimiter: field separator.
      schema: DatasetMetadata / feature spec giving each column's dtype (others stay bytes).
      errors: "raise" (default) or "dead_letter": then the result is (batches, dead_letters),
        dead letters being DeadLetter(path, line, reason, text).
      block_size: the most bytes per split; a file is cut into equal splits (None: whole
        files).
      lazy: emit `SourceSplit`s (byte ranges each consumer reads) instead of RecordBatches;
        see the module docstring. With errors="dead_letter" one extra pass reports the dead
        letters and every read skips those rows.
    """

    def __init__(self, file_pattern, column_names=None, header=True, delimiter=",",
                 schema=None, errors="raise", block_size=32 << 20, lazy=False):
        super().__init__()
        _check_errors(errors)
        self._files = fs.match(file_pattern, "CSV")
        self._errors, self._lazy = errors, lazy
        self._ranges = [r for f in self._files for r in _csv_ranges(f, block_size, header)]
        names = list(column_names) if column_names else _header_names(self._files[0],
                                                                       delimiter)
        spec = feature_spec_of(schema) if schema is not None else {}
        _check_columns(spec, names, self._files[0], "its header" if not column_names
                       else "column_names")
        self._reader = _CsvReader(names, delimiter, spec, errors)

    def expand(self, pbegin):
        if self._lazy:
            splits = _spread(pbegin, [SourceSplit(self._reader, r) for r in self._ranges])
            if self._errors == DEAD_LETTER:
                return splits, splits | "DeadLetters" >> beam.ParDo(_CsvDeadLetters())
            return splits
        ranges = _spread(pbegin, self._ranges)
        result = ranges | "Parse" >> beam.ParDo(_ReadCsvRange(self._reader)).with_outputs(
            DEAD_LETTER, main="batches")
        if self._errors == DEAD_LETTER:
            return result.batches, result[DEAD_LETTER]
        return result.batches


def _check_errors(errors):
    if errors not in ("raise", DEAD_LETTER):
        raise ValueError(f"errors must be 'raise' or 'dead_letter', got {errors!r}")


def _spread(pbegin, elements: list):
    """The elements as a PCollection, reshuffled so that workers share them (Create's own
    reshuffle, which it applies to more than one element)."""
    return pbegin | "Splits" >> beam.Create(elements, reshuffle=True)


def _check_columns(spec: dict, names: list, path: str, source: str) -> None:
    """Every feature of the schema must be a column: else the first pass would fail on a
    batch without it, far from the cause (a wrong file or delimiter)."""
    missing = [name for name in spec if name not in names]
    if missing:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise CsvError(f"CSV file {path}: schema feature(s) {', '.join(map(repr, missing))} "
                       f"not among the columns of {source} ({len(names)}: {shown})")


def _header_names(path: str, delimiter: str) -> list:
    with fs.open_read(path) as f:
        line = f.readline()
    if not line.strip():
        raise CsvError(f"CSV file {path} has no header line")
    table = pacsv.read_csv(io.BytesIO(line), parse_options=pacsv.ParseOptions(
        delimiter=delimiter), read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        convert_options=pacsv.ConvertOptions(column_types={}))
    return [table.column(i)[0].as_py() if table.num_rows else table.column_names[i]
            for i in range(table.num_columns)]


# --- Parquet -----------------------------------------------------------------------------

class _ParquetReader:
    """One Parquet file -> RecordBatches, row groups streamed (picklable, no Beam)."""

    def batches(self, path, columns=None):
        import pyarrow.parquet as pq
        if not fs.is_remote(path):
            yield from pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS,
                                                         columns=columns)
            return
        with fs.open_read(path) as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=_BATCH_ROWS, columns=columns)


class _ReadParquetFile(beam.DoFn):
    def process(self, path):
        yield from _ParquetReader().batches(path)


class ReadParquet(beam.PTransform):
    """Parquet files -> RecordBatches (one file per element; row groups streamed).

    lazy: emit one `SourceSplit` per file instead (see the module docstring).
    """

    def __init__(self, file_pattern, lazy=False):
        super().__init__()
        self._files = fs.match(file_pattern, "Parquet")
        self._lazy = lazy

    def expand(self, pbegin):
        if self._lazy:
            return _spread(pbegin, [SourceSplit(_ParquetReader(), f) for f in self._files])
        return _spread(pbegin, self._files) | "Read" >> beam.ParDo(_ReadParquetFile())


# --- TFRecord ----------------------------------------------------------------------------

class _TFRecordReader:
    """One TFRecord file of Examples -> RecordBatches (picklable, no Beam)."""

    def __init__(self, spec, compression_type, errors):
        self._spec, self._compression, self._errors = spec, compression_type, errors

    def read(self, path, stats: ReadStats, columns=None):
        """Yields RecordBatches (only `columns`, when given); corrupt records raise, or are
        skipped into `stats`."""
        spec = self._spec if columns is None else {
            name: self._spec[name] for name in columns if name in self._spec}
        for records in read_tfrecord_batches(path, self._compression,
                                             skip_corrupt=self._errors == DEAD_LETTER,
                                             stats=stats, opener=fs.open_read):
            yield _columns_to_batch(decode_examples(records, spec, path=path), spec)

    def batches(self, path, columns=None):
        """The file's RecordBatches without corrupt records (reported by the dead-letter pass)."""
        yield from self.read(path, ReadStats(), columns)

    @staticmethod
    def dead_letters(path, stats: ReadStats) -> list:
        return [DeadLetter(path, error.record_index or -1, str(error), "")
                for error in stats.errors]


class _ReadTFRecordFile(beam.DoFn):
    def __init__(self, reader: _TFRecordReader):
        self._reader = reader
        self._dead = beam.metrics.Metrics.counter("tft_lite", "tfrecord_dead_letters")

    def process(self, path):
        stats = ReadStats()
        yield from self._reader.read(path, stats)
        for letter in self._reader.dead_letters(path, stats):
            self._dead.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)


class _TFRecordDeadLetters(beam.DoFn):
    """Lazy mode's one reporting pass: a file's corrupt records (counted), no batches."""

    def __init__(self):
        self._dead = beam.metrics.Metrics.counter("tft_lite", "tfrecord_dead_letters")

    def process(self, split: SourceSplit):
        stats = ReadStats()
        for _ in read_tfrecord_batches(split.part, split.reader._compression,
                                       skip_corrupt=True, stats=stats, opener=fs.open_read):
            pass
        for letter in split.reader.dead_letters(split.part, stats):
            self._dead.inc()
            yield letter


def _columns_to_batch(columns: dict, spec: dict) -> pa.RecordBatch:
    arrays, names = [], []
    for name in spec:
        value = columns[name]
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                flat = pa.array(value.reshape(-1).tolist(), pa.binary())
            else:
                flat = pa.array(value.reshape(-1))
            value = flat if value.ndim == 1 else pa.FixedSizeListArray.from_arrays(
                flat, int(np.prod(value.shape[1:])))
        arrays.append(value)
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


class ReadTFRecord(beam.PTransform):
    """TFRecord files of tf.train.Example -> RecordBatches decoded with `feature_spec`.

    A corrupt file raises CorruptRecordError (file, record, offset); with
    errors="dead_letter" corrupt records are skipped, counted and returned as dead letters:
    the result is then (batches, dead_letters). lazy: emit one `SourceSplit` per file
    instead (see the module docstring).
    """

    def __init__(self, file_pattern, feature_spec, compression_type="auto", errors="raise",
                 lazy=False):
        super().__init__()
        _check_errors(errors)
        self._files = fs.match(file_pattern, "TFRecord")
        self._reader = _TFRecordReader(feature_spec_of(feature_spec), compression_type,
                                       errors)
        self._errors, self._lazy = errors, lazy

    def expand(self, pbegin):
        if self._lazy:
            splits = _spread(pbegin, [SourceSplit(self._reader, f) for f in self._files])
            if self._errors == DEAD_LETTER:
                return splits, splits | "DeadLetters" >> beam.ParDo(_TFRecordDeadLetters())
            return splits
        result = _spread(pbegin, self._files) | "Read" >> beam.ParDo(
            _ReadTFRecordFile(self._reader)).with_outputs(DEAD_LETTER, main="batches")
        if self._errors == DEAD_LETTER:
            return result.batches, result[DEAD_LETTER]
        return result.batches


__all__ = ["CsvError", "DeadLetter", "ReadCsv", "ReadParquet", "ReadTFRecord", "SourceSplit"]
