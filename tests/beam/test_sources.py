"""Beam sources and sinks on bad input: errors name file and line, or dead-letter counts."""
from __future__ import annotations

import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

import tft_lite.beam as tft_beam
from tft_lite import io
from tft_lite.beam.sources import CsvError
from tft_lite.errors import CorruptRecordError
from tests.beam.test_pipeline import _Collect, collected

SPEC = {"x": io.FixedLenFeature([], "float32"), "n": io.FixedLenFeature([], "int64"),
        "s": io.FixedLenFeature([], "string")}


def read(tmp_path, source, dead=False):
    """Runs `source` and collects its batches (lazy sources' SourceSplits read by
    ToRecordBatches, as tft_lite's consumers read them) and its dead letters."""
    out, dead_out = tmp_path / "out", tmp_path / "dead"
    out.mkdir(exist_ok=True)
    dead_out.mkdir(exist_ok=True)
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        result = pipeline | source
        if dead:
            batches, letters = result
            letters | "CollectDead" >> beam.ParDo(_Collect(str(dead_out)))
        else:
            batches = result
        if getattr(source, "_lazy", False):
            assert tft_beam.batches.is_lazy(batches)
            batches = batches | tft_beam.ToRecordBatches(SPEC)
        batches | beam.ParDo(_Collect(str(out)))
    table = pa.Table.from_batches(collected(out)) if os.listdir(out) else None
    return table, collected(dead_out)


def write_csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD = "x,n,s\n1.5,2,a\n-3,4,b\n\n1e3,-5,c d\n"


@pytest.mark.parametrize("lazy", [False, True])
def test_reads_typed_columns(tmp_path, lazy):
    table, _ = read(tmp_path, tft_beam.ReadCsv(write_csv(tmp_path, GOOD), schema=SPEC,
                                               lazy=lazy))
    table = table.sort_by("n")
    assert table.column("x").type == pa.float32() and table.column("n").type == pa.int64()
    assert table.column("n").to_pylist() == [-5, 2, 4]
    assert table.column("s").to_pylist() == [b"c d", b"a", b"b"]


@pytest.mark.parametrize("lazy", [False, True])
def test_splits_big_files_into_ranges_without_losing_lines(tmp_path, lazy):
    lines = "".join(f"{i}.5,{i},t{i}\n" for i in range(5000))
    path = write_csv(tmp_path, "x,n,s\n" + lines)
    table, _ = read(tmp_path, tft_beam.ReadCsv(path, schema=SPEC, block_size=4096, lazy=lazy))
    assert sorted(table.column("n").to_pylist()) == list(range(5000))


@pytest.mark.parametrize("text,line,message", [
    ("x,n,s\n1,2,a\n3,4\n", 3, "expected 3 fields, got 2"),
    ("x,n,s\n1,2,a\n3,4,b,extra\n", 3, "expected 3 fields, got 4"),
    ("x,n,s\n1,2,a\n\n3,notanint,b\n", 4, "'notanint' is not int64"),
    ("x,n,s\nabc,2,a\n", 2, "'abc' is not float32"),
])
@pytest.mark.parametrize("lazy", [False, True])
def test_bad_rows_name_file_and_line(tmp_path, text, line, message, lazy):
    path = write_csv(tmp_path, text)
    with pytest.raises(Exception) as info:
        read(tmp_path, tft_beam.ReadCsv(path, schema=SPEC, lazy=lazy))
    assert f"{path}, line {line}" in str(info.value) and message in str(info.value)


@pytest.mark.parametrize("lazy", [False, True])
def test_bad_rows_to_dead_letters(tmp_path, lazy):
    """Lazy or not, each bad row is one dead letter, once (a lazy source's consumers skip
    the rows its one dead-letter pass reported)."""
    text = "x,n,s\n1,2,a\n3,4\n5,x,c\n6,7,d,e\n8,9,f\n"
    table, dead = read(tmp_path, tft_beam.ReadCsv(write_csv(tmp_path, text), schema=SPEC,
                                                  errors="dead_letter", lazy=lazy), dead=True)
    assert sorted(table.column("n").to_pylist()) == [2, 9]
    assert sorted((d.line, d.reason) for d in dead) == [
        (3, "expected 3 fields, got 2"), (4, "column 'n': 'x' is not int64"),
        (5, "expected 3 fields, got 4")]


def test_empty_file_and_missing_pattern(tmp_path):
    with pytest.raises(Exception, match="is empty"):
        tft_beam.ReadCsv(write_csv(tmp_path, ""), schema=SPEC)
    with pytest.raises(FileNotFoundError, match="CSV file pattern .*nothing-.*matches no"):
        tft_beam.ReadCsv(str(tmp_path / "nothing-*.csv"), schema=SPEC)
    with pytest.raises(FileNotFoundError, match="CSV file .*absent.csv' does not exist"):
        tft_beam.ReadCsv(str(tmp_path / "absent.csv"), schema=SPEC)
    with pytest.raises(FileNotFoundError, match="Parquet file .*absent.parquet' does not"):
        tft_beam.ReadParquet(str(tmp_path / "absent.parquet"))


def _tfrecord(tmp_path, corrupt=False):
    records = io.encode_examples({"x": np.arange(4, dtype=np.float32),
                                  "n": np.arange(4), "s": ["a", "b", "c", "d"]}, SPEC)
    path = tmp_path / "data.tfrecord"
    io.write_tfrecords(path, records)
    if corrupt:
        raw = bytearray(path.read_bytes())
        raw[-6] ^= 0xFF  # inside the last record's data
        path.write_bytes(bytes(raw))
    return str(path)


@pytest.mark.parametrize("lazy", [False, True])
def test_read_tfrecord(tmp_path, lazy):
    table, _ = read(tmp_path, tft_beam.ReadTFRecord(_tfrecord(tmp_path), SPEC, lazy=lazy))
    assert table.column("n").to_pylist() == [0, 1, 2, 3]


@pytest.mark.parametrize("lazy", [False, True])
def test_corrupt_tfrecord_raises_or_dead_letters(tmp_path, lazy):
    path = _tfrecord(tmp_path, corrupt=True)
    with pytest.raises(Exception) as info:
        read(tmp_path, tft_beam.ReadTFRecord(path, SPEC, lazy=lazy))
    assert "data CRC mismatch" in str(info.value) and path in str(info.value)
    table, dead = read(tmp_path, tft_beam.ReadTFRecord(path, SPEC, errors="dead_letter",
                                                       lazy=lazy), dead=True)
    assert table.column("n").to_pylist() == [0, 1, 2] and len(dead) == 1
    assert "record 3" in dead[0].reason
    assert CorruptRecordError.__name__


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_output_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(Exception, match="Permission denied|cannot create"):
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
            batches = pipeline | beam.Create([pa.record_batch({"n": [1]})])
            batches | tft_beam.WriteTFRecords(str(locked / "out"), metadata={
                "n": io.FixedLenFeature([], "int64")})


def test_output_directory_that_is_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    with pytest.raises(Exception, match="Not a directory|cannot create|File exists"):
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
            batches = pipeline | beam.Create([pa.record_batch({"n": [1]})])
            batches | tft_beam.WriteTFRecords(str(blocker / "out"), metadata={
                "n": io.FixedLenFeature([], "int64")})
    assert blocker.read_text() == "not a directory"


class _KillWorkerOnce(beam.DoFn):
    """SIGKILLs its own worker process the first time it runs (marker file consumed)."""

    def __init__(self, marker):
        self._marker = marker

    def process(self, batch):
        import signal
        if os.path.exists(self._marker):
            os.unlink(self._marker)
            os.kill(os.getpid(), signal.SIGKILL)
        yield batch


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_worker_killed_mid_run_fails_and_leaves_no_complete_output(tmp_path):
    marker = tmp_path / "kill-marker"
    marker.write_text("")
    out = tmp_path / "out"
    out.mkdir()
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    with pytest.raises(Exception, match="Channel closed|worker|died|closed"):
        with beam.Pipeline(options=options) as pipeline:
            batches = (pipeline
                       | beam.Create([pa.record_batch({"n": list(range(i, i + 10))})
                                      for i in range(0, 100, 10)])
                       | beam.ParDo(_KillWorkerOnce(str(marker))))
            batches | tft_beam.WriteTFRecords(str(out / "x"), metadata={
                "n": io.FixedLenFeature([], "int64")})
    assert not marker.exists()  # the worker really was killed
    assert [f for f in os.listdir(out) if not f.startswith(".")] == []


def test_write_tfrecords_with_a_compression_level_and_fixed_shards(tmp_path):
    spec = {"n": io.FixedLenFeature([], "int64")}
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        batches = pipeline | beam.Create([pa.record_batch({"n": list(range(i, i + 10))})
                                          for i in range(0, 100, 10)])
        batches | tft_beam.WriteTFRecords(str(tmp_path / "x"), num_shards=3, metadata=spec,
                                          compression_level=1)
    shards = sorted(f for f in os.listdir(tmp_path) if f.endswith(".tfrecord.gz"))
    assert shards == [f"x-{i:05d}-of-00003.tfrecord.gz" for i in range(3)]
    records = list(io.read_tfrecords(str(tmp_path / "x-*.tfrecord.gz"), "GZIP"))
    assert sorted(io.decode_examples(records, spec)["n"].tolist()) == list(range(100))
    assert (tmp_path / "x.schema.json").exists() and (tmp_path / "x.schema.pbtxt").exists()


@pytest.mark.parametrize("rows,expected", [
    (1000, [333, 333, 334]),  # one batch: cut into 3 slices, one per shard
    (100, [100]),  # under 3 x 64 rows: one slice (no per-row elements), a shard of its own
])
def test_fixed_shards_share_the_rows_of_one_batch(tmp_path, rows, expected):
    spec = {"n": io.FixedLenFeature([], "int64")}
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        batches = pipeline | beam.Create([pa.record_batch({"n": list(range(rows))})])
        batches | tft_beam.WriteTFRecords(str(tmp_path / "x"), num_shards=3, metadata=spec)
    per_shard = [len(list(io.read_tfrecords(str(tmp_path / f"x-{i:05d}-of-00003.tfrecord.gz"),
                                            "GZIP"))) for i in range(3)]
    assert sorted(n for n in per_shard if n) == expected
    records = list(io.read_tfrecords(str(tmp_path / "x-*.tfrecord.gz"), "GZIP"))
    assert sorted(io.decode_examples(records, spec)["n"].tolist()) == list(range(rows))


@pytest.mark.parametrize("lazy", [False, True])
def test_read_parquet(tmp_path, lazy):
    import pyarrow.parquet as pq
    table = pa.table({"x": pa.array([1.5, 2.5], pa.float32()), "n": [1, 2], "s": [b"a", b"b"]})
    pq.write_table(table, tmp_path / "data.parquet")
    got, _ = read(tmp_path, tft_beam.ReadParquet(str(tmp_path / "data.parquet"), lazy=lazy))
    assert got.sort_by("n").equals(table)


def test_fast_typed_parse_equals_the_checked_parse():
    """Clean ranges are parsed with pyarrow's typed conversion; ranges with a bad row or
    value take the checked path (strings, regex, cast). Both must give the same table."""
    from tests.beam.test_pipeline import CSV, HOUSING_SPEC
    from tft_lite.beam.sources import _CsvRange, _CsvReader, _LineIndex, _header_names
    names = _header_names(CSV, ",")
    reader = _CsvReader(names, ",", tft_beam.metadata.feature_spec_of(HOUSING_SPEC), "raise")
    with open(CSV, "rb") as f:
        data = f.read()
    start = data.index(b"\n") + 1
    fast, dead = reader.read(_CsvRange(CSV, start, len(data)))
    assert dead == [] and fast.num_rows == 20_640
    lines = _LineIndex(CSV, start, data[start:])
    checked, _ = reader._convert(reader._parse(data[start:], CSV, lines, []), CSV, lines, [])
    assert fast.equals(checked)
    assert fast.column("total_bedrooms").null_count == 207


def test_whitespace_around_numbers_takes_the_checked_path(tmp_path):
    table, _ = read(tmp_path, tft_beam.ReadCsv(write_csv(tmp_path, "x,n,s\n 1.5 , 2 ,a\n"),
                                               schema=SPEC))
    assert table.column("x").to_pylist() == [1.5] and table.column("n").to_pylist() == [2]


def test_projected_read_skips_names_that_are_no_column(tmp_path):
    """A consumer asking for a column the CSV lacks gets the others (it reports the gap)."""
    from tft_lite.beam.sources import _CsvRange, _CsvReader
    path = write_csv(tmp_path, GOOD)
    reader = _CsvReader(["x", "n", "s"], ",", tft_beam.metadata.feature_spec_of(SPEC), "raise")
    size = os.path.getsize(path)
    batches = list(reader.batches(_CsvRange(path, len("x,n,s\n"), size), ["n", "nope"]))
    assert [b.schema.names for b in batches] == [["n"]]
    assert batches[0].column(0).to_pylist() == [2, 4, -5]


@pytest.mark.parametrize("body", [b"1,2,a\n22,3,bb\n333,4,ccc\n", b"1,2,a\r\n22,3,bb\r\n4,5,c",
                                  b"1,2,a\n\n22,3,bb\n"])
def test_csv_ranges_hold_every_line_once_whatever_the_block_size(tmp_path, body):
    from tft_lite.beam.sources import _csv_ranges, _range_bytes
    path = tmp_path / "d.csv"
    path.write_bytes(b"x,n,s\n" + body)
    for block_size in range(1, len(body) + 2):
        parts = [_range_bytes(r) for r in _csv_ranges(str(path), block_size, header=True)]
        assert b"".join(data for data, _ in parts) == body, block_size
        for data, start in parts:  # each part is whole lines from its recorded offset
            assert not data or path.read_bytes()[start:start + len(data)] == data


@pytest.mark.parametrize("body_size,block_size,expected", [
    (100, 32, [25, 25, 25, 25]),  # 4 equal ranges, not 32+32+32+4
    (100, 100, [100]),
    (100, 99, [50, 50]),
    (7, 3, [2, 2, 3]),
    (5, 10, [5]),
])
def test_csv_ranges_are_equal_and_at_most_block_size(tmp_path, body_size, block_size,
                                                       expected):
    """Ranges go round-robin to workers: a runt last range would leave one idle."""
    from tft_lite.beam.sources import _csv_ranges
    path = tmp_path / "d.csv"
    path.write_bytes(b"h\n" + b"x" * body_size)
    ranges = _csv_ranges(str(path), block_size, header=True)
    assert [r.end - r.start for r in ranges] == expected
    assert ranges[0].start == 2 and ranges[-1].end == body_size + 2
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))


def test_csv_ranges_of_a_header_only_file(tmp_path):
    from tft_lite.beam.sources import _csv_ranges
    path = tmp_path / "d.csv"
    path.write_bytes(b"x,n,s\n")
    assert [(r.start, r.end) for r in _csv_ranges(str(path), 4, header=True)] == [(6, 6)]


def test_schema_feature_missing_from_the_header_names_file_and_columns(tmp_path):
    """A wrong file or delimiter fails when the pipeline is built, not in its first pass."""
    path = write_csv(tmp_path, "x;n;s\n1.5;2;a\n")  # ';' separated, read with ','
    with pytest.raises(CsvError, match=r"data\.csv: schema feature\(s\) 'n', 's', 'x' not "
                                       r"among the columns of its header \(1: x;n;s\)"):
        tft_beam.ReadCsv(path, schema=SPEC)


def test_schema_feature_missing_from_column_names(tmp_path):
    path = write_csv(tmp_path, "1.5,2,a\n")
    with pytest.raises(CsvError, match=r"'s' not among the columns of column_names "
                                       r"\(3: x, n, t\)"):
        tft_beam.ReadCsv(path, column_names=["x", "n", "t"], header=False, schema=SPEC)
