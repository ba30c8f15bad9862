"""Sources producing pyarrow RecordBatches: ReadCsv, ReadParquet, ReadTFRecord.

Files are parsed by pyarrow's readers and tft_lite's TFRecord/Example codec, never line by
line in Python. A CSV file is split into byte ranges (at line boundaries) so several workers
read one big file. A malformed row raises an error naming the file and line; with
errors="dead_letter" it goes to a second output instead, counted by the Beam counter
`tft_lite/<source>_dead_letters`. Nothing is dropped silently.

Limit: CSV splitting assumes no newline inside a quoted field (pass block_size=None to read
each file whole when your data has them).
"""
from __future__ import annotations

import io
import os
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tft_lite.beam.metadata import feature_spec_of
from tft_lite.errors import TftLiteError
from tft_lite.io.example import decode_examples
from tft_lite.io.tfrecord import ReadStats, expand_paths, read_tfrecord_batches

DEAD_LETTER = "dead_letter"
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
    size = os.path.getsize(path)
    if size == 0:
        raise CsvError(f"CSV file {path} is empty" + (" (no header line)" if header else ""))
    first = 0
    if header:
        with open(path, "rb") as f:
            first = len(f.readline())
    if not block_size:
        return [_CsvRange(path, first, size)]
    return [_CsvRange(path, s, min(s + block_size, size))
            for s in range(first, max(size, first + 1), block_size)]


def _range_bytes(r: _CsvRange) -> tuple:
    """(bytes of the whole lines that start in [start, end), byte offset of the first)."""
    with open(r.path, "rb") as f:
        start = r.start
        if start > 0:  # begin at the first line starting at or after `start`
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()
            start = f.tell()
        if start >= r.end and r.start != r.end:
            return b"", start
        f.seek(start)
        data = f.read(max(r.end - start, 0))
        if data and not data.endswith(b"\n"):
            data += f.readline()
    return data, start


def _line_of_offset(path: str, offset: int) -> int:
    """1-based line number of the byte at `offset` (counts newlines before it)."""
    count, done = 0, 0
    with open(path, "rb") as f:
        while done < offset:
            chunk = f.read(min(1 << 24, offset - done))
            if not chunk:
                break
            count += chunk.count(b"\n")
            done += len(chunk)
    return count + 1


class _ReadCsvRange(beam.DoFn):
    def __init__(self, column_names, delimiter, spec, errors):
        self._names, self._delimiter = column_names, delimiter
        self._spec, self._errors = spec, errors
        self._dead = beam.metrics.Metrics.counter("tft_lite", "csv_dead_letters")

    def process(self, r: _CsvRange):
        data, start = _range_bytes(r)
        if not data.strip():
            return
        line_base = _line_of_offset(r.path, start)
        lines = _nonempty_line_numbers(data, line_base)
        bad_rows = []
        table = self._parse(data, r.path, lines, bad_rows)
        table, bad_values = self._convert(table, r.path, lines, bad_rows)
        for dead in bad_rows + bad_values:
            self._dead.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, dead)
        for batch in table.to_batches(max_chunksize=65_536):
            yield batch

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
        skipped = {d.line for d in bad_rows}
        row_lines = np.array([n for n in lines.numbers if n not in skipped], np.int64) \
            if skipped else lines.numbers
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
            first = int(np.flatnonzero(bad)[0])
            if self._errors != DEAD_LETTER:
                raise CsvError(f"{path}, line {row_lines[first]}: {reasons[first]}")
            dead = [DeadLetter(path, int(row_lines[i]), reasons[i], "") for i in
                    np.flatnonzero(bad)]
            table = table.filter(pa.array(~bad))
        return _cast(table, self._spec), dead


class _Lines(NamedTuple):
    base: int
    numbers: np.ndarray  # 1-based file line numbers of the non-empty lines, in order


def _nonempty_line_numbers(data: bytes, base: int) -> _Lines:
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], ends + 1])[:len(ends) + (0 if data.endswith(b"\n") else 1)]
    stops = np.concatenate([ends, [len(data)]])[:len(starts)]
    lengths = stops - starts
    is_cr = lengths == 1
    if is_cr.any():  # a lone "\r" is an empty line too
        is_cr &= buf[np.minimum(starts, len(buf) - 1)] == 13
    nonempty = (lengths > 0) & ~is_cr
    return _Lines(base, base + np.flatnonzero(nonempty).astype(np.int64))


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
      block_size: bytes per split of a file (None: whole files).
    """

    def __init__(self, file_pattern, column_names=None, header=True, delimiter=",",
                 schema=None, errors="raise", block_size=32 << 20):
        super().__init__()
        if errors not in ("raise", DEAD_LETTER):
            raise ValueError(f"errors must be 'raise' or 'dead_letter', got {errors!r}")
        self._files = expand_paths(file_pattern)
        self._header, self._delimiter = header, delimiter
        self._spec = feature_spec_of(schema) if schema is not None else {}
        self._errors, self._block_size = errors, block_size
        self._ranges = [r for f in self._files for r in _csv_ranges(f, block_size, header)]
        self._names = list(column_names) if column_names else _header_names(
            self._files[0], delimiter)

    def expand(self, pbegin):
        ranges = (pbegin | "Ranges" >> beam.Create(self._ranges)
                  | "Spread" >> beam.Reshuffle())
        result = ranges | "Parse" >> beam.ParDo(
            _ReadCsvRange(self._names, self._delimiter, self._spec, self._errors)
        ).with_outputs(DEAD_LETTER, main="batches")
        if self._errors == DEAD_LETTER:
            return result.batches, result[DEAD_LETTER]
        return result.batches


def _header_names(path: str, delimiter: str) -> list:
    with open(path, "rb") as f:
        line = f.readline()
    if not line.strip():
        raise CsvError(f"CSV file {path} has no header line")
    table = pacsv.read_csv(io.BytesIO(line), parse_options=pacsv.ParseOptions(
        delimiter=delimiter), read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        convert_options=pacsv.ConvertOptions(column_types={}))
    return [table.column(i)[0].as_py() if table.num_rows else table.column_names[i]
            for i in range(table.num_columns)]


# --- Parquet -----------------------------------------------------------------------------

class _ReadParquetFile(beam.DoFn):
    def process(self, path):
        import pyarrow.parquet as pq
        yield from pq.ParquetFile(path).iter_batches(batch_size=65_536)


class ReadParquet(beam.PTransform):
    """Parquet files -> RecordBatches (one file per element; row groups streamed)."""

    def __init__(self, file_pattern):
        super().__init__()
        self._files = expand_paths(file_pattern)

    def expand(self, pbegin):
        return (pbegin | "Files" >> beam.Create(self._files) | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(_ReadParquetFile()))


# --- TFRecord ----------------------------------------------------------------------------

class _ReadTFRecordFile(beam.DoFn):
    def __init__(self, spec, compression_type, errors):
        self._spec, self._compression, self._errors = spec, compression_type, errors
        self._dead = beam.metrics.Metrics.counter("tft_lite", "tfrecord_dead_letters")

    def process(self, path):
        stats = ReadStats()
        for records in read_tfrecord_batches(path, self._compression,
                                             skip_corrupt=self._errors == DEAD_LETTER,
                                             stats=stats):
            columns = decode_examples(records, self._spec, path=path)
            yield _columns_to_batch(columns, self._spec)
        for error in stats.errors:
            self._dead.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                path, error.record_index or -1, str(error), ""))


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
    the result is then (batches, dead_letters).
    """

    def __init__(self, file_pattern, feature_spec, compression_type="auto", errors="raise"):
        super().__init__()
        self._files = expand_paths(file_pattern)
        self._spec = feature_spec_of(feature_spec)
        self._compression, self._errors = compression_type, errors

    def expand(self, pbegin):
        result = (pbegin | "Files" >> beam.Create(self._files) | "Spread" >> beam.Reshuffle()
                  | "Read" >> beam.ParDo(_ReadTFRecordFile(self._spec, self._compression,
                                                           self._errors)
                                         ).with_outputs(DEAD_LETTER, main="batches"))
        if self._errors == DEAD_LETTER:
            return result.batches, result[DEAD_LETTER]
        return result.batches


__all__ = ["CsvError", "DeadLetter", "ReadCsv", "ReadParquet", "ReadTFRecord"]
