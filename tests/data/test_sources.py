"""Sources: TFRecordDataset, list_files, TextLineDataset, and every kind of bad input."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

import tft_lite.data as tfd
from tests.data.util import write_shards
from tft_lite.errors import CorruptRecordError, RecordError

# --- TFRecordDataset -------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "GZIP"])
def test_records_in_file_order(tmp_path, compression):
    paths, records = write_shards(tmp_path, 3, [4, 0, 2], compression)
    flat = [r for recs in records for r in recs]
    assert list(tfd.TFRecordDataset(paths, compression)) == flat
    assert list(tfd.TFRecordDataset(paths, "auto")) == flat
    assert list(tfd.TFRecordDataset(paths[::-1], compression)) == records[2] + records[0]
    pattern = str(tmp_path / "part-*")
    assert list(tfd.TFRecordDataset(pattern, compression)) == flat  # patterns are sorted


def test_small_buffer_size_gives_the_same_records(tmp_path):
    paths, records = write_shards(tmp_path, 2, 50)
    flat = [r for recs in records for r in recs]
    assert list(tfd.TFRecordDataset(paths, buffer_size=64)) == flat
    batches = list(tfd.TFRecordDataset(paths, buffer_size=64).batch(7))
    assert [r for b in batches for r in b.tolist()] == flat
    assert [len(b) for b in batches] == [7] * 14 + [2]


def test_num_parallel_reads_interleaves_one_record_at_a_time(tmp_path):
    """Files of 3, 1, 2 records, two open at a time, one record from each in turn.

    f0: 0:0 | f1: 1:0 | f0: 0:1 | f1 ends -> next slot | f0: 0:2 | slot 1 opens f2: 2:0 |
    f0 ends -> next slot | f2: 2:1.
    """
    paths, _ = write_shards(tmp_path, 3, [3, 1, 2])
    ds = tfd.TFRecordDataset(paths, num_parallel_reads=2)
    assert [r.decode() for r in ds] == ["0:0", "1:0", "0:1", "0:2", "2:0", "2:1"]


def test_files_from_a_dataset_of_names(tmp_path):
    paths, records = write_shards(tmp_path, 2, 3)
    names = tfd.Dataset.from_tensor_slices(paths[::-1])
    assert list(tfd.TFRecordDataset(names)) == records[1] + records[0]


@pytest.mark.parametrize("make", [
    lambda p: tfd.TFRecordDataset(str(p / "nothing-*.tfrecord")),
    lambda p: tfd.TFRecordDataset([str(p / "missing.tfrecord")]),
    lambda p: tfd.Dataset.list_files(str(p / "nothing-*")),
    lambda p: tfd.TextLineDataset(str(p / "*.csv")),
])
def test_pattern_matching_nothing_fails_when_built(tmp_path, make):
    with pytest.raises(FileNotFoundError, match="no file"):
        make(tmp_path)


def test_bad_compression_type(tmp_path):
    with pytest.raises(ValueError, match="compression_type"):
        tfd.TFRecordDataset([], compression_type="LZ4")


# --- corrupt and truncated shards ------------------------------------------------------------

def _damaged(tmp_path, mutate):
    paths, records = write_shards(tmp_path, 3, 4)
    raw = bytearray(open(paths[1], "rb").read())
    with open(paths[1], "wb") as f:
        f.write(mutate(raw))
    return paths, records


def _flip_data_of_record_2(raw):
    raw[2 * 19 + 12 + 1] ^= 0xFF  # records "1:i" frame to 19 bytes: 12 header + 3 + 4 CRC
    return bytes(raw)


def test_corrupt_record_names_file_record_and_offset(tmp_path):
    paths, records = _damaged(tmp_path, _flip_data_of_record_2)
    with pytest.raises(CorruptRecordError) as info:
        list(tfd.TFRecordDataset(paths).batch(4))
    error = info.value
    assert (error.path, error.record_index, error.offset) == (paths[1], 2, 38)
    assert f"file {paths[1]}" in str(error) and "byte offset 38" in str(error)


def test_truncated_shard_is_an_error(tmp_path):
    paths, _ = _damaged(tmp_path, lambda raw: bytes(raw[:-5]))
    with pytest.raises(CorruptRecordError, match="truncated record") as info:
        list(tfd.TFRecordDataset(paths))
    assert info.value.path == paths[1] and info.value.offset == 3 * 19


def test_ignore_errors_skips_and_counts_corrupt_records(tmp_path):
    paths, records = _damaged(tmp_path, _flip_data_of_record_2)
    ds = tfd.TFRecordDataset(paths).ignore_errors()
    expected = records[0] + [r for i, r in enumerate(records[1]) if i != 2] + records[2]
    assert list(ds) == expected
    assert (ds.stats.corrupt_records, ds.stats.records) == (1, 11)
    assert ds.stats.errors[0].offset == 38 and ds.stats.errors[0].path == paths[1]


def test_ignore_errors_through_interleave_and_parallel_reads(tmp_path):
    paths, records = _damaged(tmp_path, lambda raw: bytes(raw[:-5]))  # last record cut
    expected = sorted(r for i, recs in enumerate(records) for r in recs[:3 if i == 1 else 4])
    ds = tfd.Dataset.list_files(paths, seed=1).interleave(tfd.TFRecordDataset,
                                                          cycle_length=2,
                                                          num_parallel_calls=2).ignore_errors()
    assert sorted(ds) == expected and ds.stats.corrupt_records == 1
    ds = tfd.TFRecordDataset(paths, num_parallel_reads=3).ignore_errors()
    assert sorted(ds) == expected and ds.stats.corrupt_records == 1


def test_corrupt_record_in_parallel_read_propagates(tmp_path):
    paths, _ = _damaged(tmp_path, _flip_data_of_record_2)
    with pytest.raises(CorruptRecordError, match="data CRC mismatch"):
        list(tfd.TFRecordDataset(paths, num_parallel_reads=3).prefetch(2))


def test_gzip_shard_read_as_uncompressed_is_an_error(tmp_path):
    paths, _ = write_shards(tmp_path, 1, 3, "GZIP")
    with pytest.raises(CorruptRecordError, match="GZIP"):
        list(tfd.TFRecordDataset(paths))


# --- list_files ------------------------------------------------------------------------------

def test_list_files_shuffles_by_default_like_tf(tmp_path):
    paths, _ = write_shards(tmp_path, 12, 1)
    pattern = str(tmp_path / "part-*")
    names = [p.encode() for p in paths]
    assert list(tfd.Dataset.list_files(pattern, shuffle=False)) == names
    seeded = tfd.Dataset.list_files(pattern, seed=3)
    first, second = list(seeded), list(seeded)
    assert sorted(first) == names and first != names and second != first
    assert list(tfd.Dataset.list_files(pattern, seed=3)) == first
    assert sorted(tfd.Dataset.list_files(pattern)) == names


def test_list_files_of_several_patterns_is_sorted_and_unique(tmp_path):
    paths, _ = write_shards(tmp_path, 3, 1)
    got = list(tfd.Dataset.list_files([paths[2], str(tmp_path / "part-*")], shuffle=False))
    assert got == [p.encode() for p in paths]


# --- TextLineDataset -------------------------------------------------------------------------

def test_text_lines(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"h1,h2\n1,x\r\n\n2,y")
    (tmp_path / "b.csv").write_bytes(b"h1,h2\n3,z\n")
    ds = tfd.TextLineDataset([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    assert list(ds) == [b"h1,h2", b"1,x", b"", b"2,y", b"h1,h2", b"3,z"]
    ds = tfd.TextLineDataset(str(tmp_path / "*.csv"), skip_header_lines=1)
    assert list(ds) == [b"1,x", b"", b"2,y", b"3,z"]


def test_text_lines_gzip_and_small_buffers(tmp_path):
    lines = [b"line %d" % i for i in range(1000)]
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    ds = tfd.TextLineDataset(str(tmp_path / "t.txt.gz"), "GZIP", buffer_size=100,
                             skip_header_lines=2)
    assert list(ds) == lines[2:]
    assert list(tfd.TextLineDataset(str(tmp_path / "t.txt.gz"), "auto")) == lines


def test_truncated_gzip_text_is_an_error(tmp_path):
    data = gzip.compress(b"a\nb\n" * 1000)
    (tmp_path / "t.gz").write_bytes(data[:-20])
    with pytest.raises(RecordError, match="truncated GZIP stream"):
        list(tfd.TextLineDataset(str(tmp_path / "t.gz"), "GZIP"))


def test_csv_pipeline_end_to_end(tmp_path):
    (tmp_path / "d.csv").write_text("x,name\n1.5,a\n2.5,\n")
    ds = tfd.TextLineDataset(str(tmp_path / "d.csv"), skip_header_lines=1).batch(2).map(
        lambda lines: tuple(tfd.decode_csv(lines, [0.0, "none"])))
    ((x, name),) = list(ds)
    assert x.tolist() == [1.5, 2.5] and x.dtype == np.float32
    assert name.tolist() == [b"a", b"none"]


def test_csv_line_with_too_few_fields_stops_the_pipeline(tmp_path):
    (tmp_path / "d.csv").write_text("1,a\n2\n3,c\n")
    ds = tfd.TextLineDataset(str(tmp_path / "d.csv")).map(lambda l: tfd.decode_csv(l, [0, ""]))
    with pytest.raises(tfd.CsvDecodeError, match="expected 2 fields, got 1"):
        list(ds)
    ds = ds.ignore_errors()
    assert [(int(a), b) for a, b in ds] == [(1, b"a"), (3, b"c")]
    assert ds.stats.dropped_elements == 1
