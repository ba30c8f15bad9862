"""TFRecord framing: round trips, atomic writes, and every kind of broken file."""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import pyarrow as pa
import pytest

from tft_lite import io
from tft_lite.errors import CorruptRecordError, RecordError
from tft_lite.io import tfrecord

RECORDS = [b"", b"a", b"\x00\xff" * 300, os.urandom(70_000), b"last"]


@pytest.fixture(autouse=True)
def framing_backend(backend):
    """Every test here runs with the C framing and with the pure-Python loops."""
    return backend


def _write(path, records=RECORDS, compression=None):
    io.write_tfrecords(path, records, compression)
    return path


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_round_trip(tmp_path, compression):
    path = _write(tmp_path / "f.tfrecord", compression=compression)
    assert list(io.read_tfrecords(path, compression)) == RECORDS
    assert list(io.read_tfrecords(path, "auto")) == RECORDS
    batches = list(io.read_tfrecord_batches(path, compression, batch_bytes=1000))
    assert all(isinstance(b, pa.BinaryArray) for b in batches)
    assert [r for b in batches for r in b.to_pylist()] == RECORDS


def test_framing_layout_is_tensorflows(tmp_path):
    """uint64 length, masked crc of length, data, masked crc of data (record_writer.cc)."""
    path = _write(tmp_path / "f", [b"hello"])
    raw = path.read_bytes()
    assert raw[:8] == struct.pack("<Q", 5)
    assert struct.unpack("<I", raw[8:12])[0] == io.masked_crc32c(raw[:8])
    assert raw[12:17] == b"hello"
    assert struct.unpack("<I", raw[17:21])[0] == io.masked_crc32c(b"hello")
    # Known value: TensorFlow's masked CRC of b"hello" (see tests/golden/tfrecord).
    assert io.masked_crc32c(b"") == 0xA282EAD8


def test_write_batch_accepts_binary_arrays_and_lists(tmp_path):
    path = tmp_path / "f"
    with io.TFRecordWriter(path) as writer:
        writer.write_batch(pa.array(RECORDS[:2], pa.binary()))
        writer.write_batch(pa.chunked_array([pa.array(RECORDS[2:3], pa.large_binary())]))
        writer.write_batch(RECORDS[3:])
    assert writer.records_written == len(RECORDS)
    assert list(io.read_tfrecords(path)) == RECORDS


def test_gzip_output_is_a_standard_gzip_stream(tmp_path):
    path = _write(tmp_path / "f.gz", compression="GZIP")
    raw = gzip.decompress(path.read_bytes())
    assert raw == b"".join(tfrecord.frame_record(r) for r in RECORDS)
    assert path.read_bytes()[:10] == bytes.fromhex("1f8b0800000000000003")


def test_writer_is_atomic_on_error(tmp_path):
    path = tmp_path / "out.tfrecord"
    with pytest.raises(RuntimeError):
        with io.TFRecordWriter(path) as writer:
            writer.write(b"x" * 10_000_000)
            raise RuntimeError("boom")
    assert not path.exists()
    assert os.listdir(tmp_path) == []  # no temp file left behind


def test_writer_keeps_old_file_until_close(tmp_path):
    path = _write(tmp_path / "out", [b"old"])
    writer = io.TFRecordWriter(path)
    writer.write(b"new")
    assert list(io.read_tfrecords(path)) == [b"old"]
    writer.close()
    assert list(io.read_tfrecords(path)) == [b"new"]


def test_written_file_is_readable_by_others_as_tensorflows(tmp_path):
    """A temp file's 0600 must not follow the rename: TF writes 0644 (under umask 022), and
    a training job under another user reads the shards."""
    path = _write(tmp_path / "out.tfrecord.gz", [b"x"], "GZIP")
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_writer_in_missing_directory_raises(tmp_path):
    with pytest.raises(RecordError, match="cannot create"):
        io.TFRecordWriter(tmp_path / "missing" / "f")


def test_write_after_close_raises(tmp_path):
    writer = io.TFRecordWriter(tmp_path / "f")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")


def test_glob_patterns_and_missing_files(tmp_path):
    for i in range(3):
        _write(tmp_path / f"part-{i}.tfrecord", [bytes([i])])
    assert list(io.read_tfrecords(str(tmp_path / "part-*.tfrecord"))) == [b"\0", b"\1", b"\2"]
    with pytest.raises(FileNotFoundError, match="matches no files"):
        list(io.read_tfrecords(str(tmp_path / "nothing-*")))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(io.read_tfrecords(str(tmp_path / "absent.tfrecord")))


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_empty_file_holds_no_records(tmp_path, compression):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert list(io.read_tfrecords(path, compression)) == []


def test_bad_compression_type(tmp_path):
    with pytest.raises(ValueError, match="compression_type"):
        io.TFRecordWriter(tmp_path / "f", "LZ4")


# --- corrupt files -----------------------------------------------------------------------

def _corrupt(tmp_path, mutate, records=(b"first", b"second-record", b"third")):
    path = _write(tmp_path / "f.tfrecord", list(records))
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(mutate(raw)))
    return path


def _flip(position):
    def mutate(raw):
        raw[position] ^= 0x40
        return raw
    return mutate


SECOND = 12 + 5 + 4  # offset of the second record


@pytest.mark.parametrize("name,mutate,message,offset,index", [
    ("flipped data byte", _flip(SECOND + 12 + 3), "data CRC mismatch", SECOND, 1),
    ("flipped length byte", _flip(SECOND), "length CRC mismatch", SECOND, 1),
    ("flipped length crc", _flip(SECOND + 9), "length CRC mismatch", SECOND, 1),
    ("flipped data crc", _flip(SECOND + 12 + 13 + 1), "data CRC mismatch", SECOND, 1),
    ("truncated in data", lambda raw: raw[:SECOND + 15], "truncated record", SECOND, 1),
    ("truncated in header", lambda raw: raw[:SECOND + 5], "truncated record", SECOND, 1),
])
def test_corruption_names_file_record_and_offset(tmp_path, name, mutate, message, offset,
                                                 index):
    path = _corrupt(tmp_path, mutate)
    with pytest.raises(CorruptRecordError, match=message) as info:
        list(io.read_tfrecords(path))
    assert info.value.path == str(path) and info.value.offset == offset
    assert info.value.record_index == index
    assert str(path) in str(info.value) and f"byte offset {offset}" in str(info.value)


def test_skip_corrupt_counts_and_continues(tmp_path):
    path = _corrupt(tmp_path, _flip(SECOND + 12 + 3))
    stats = io.ReadStats()
    assert list(io.read_tfrecords(path, skip_corrupt=True, stats=stats)) == [b"first", b"third"]
    assert stats.corrupt_records == 1 and stats.records == 2
    assert "data CRC" in str(stats.errors[0])


def test_skip_corrupt_stops_file_when_framing_is_lost(tmp_path):
    path = _corrupt(tmp_path, _flip(SECOND))
    other = _write(tmp_path / "g.tfrecord", [b"other"])
    stats = io.ReadStats()
    got = list(io.read_tfrecords([path, other], skip_corrupt=True, stats=stats))
    assert got == [b"first", b"other"] and stats.corrupt_records == 1


def test_gzip_file_read_as_uncompressed_says_so(tmp_path):
    path = _write(tmp_path / "data.tfrecord", compression="GZIP")
    with pytest.raises(CorruptRecordError, match="looks GZIP-compressed") as info:
        list(io.read_tfrecords(path))
    assert info.value.offset == 0


def test_uncompressed_file_read_as_gzip_says_so(tmp_path):
    path = _write(tmp_path / "data.tfrecord")
    with pytest.raises(CorruptRecordError, match="not a valid GZIP stream.*uncompressed"):
        list(io.read_tfrecords(path, "GZIP"))


def test_zlib_read_as_gzip(tmp_path):
    path = _write(tmp_path / "data.tfrecord", compression="ZLIB")
    with pytest.raises(CorruptRecordError, match="not a valid GZIP stream.*ZLIB"):
        list(io.read_tfrecords(path, "GZIP"))


def test_truncated_gzip_stream(tmp_path):
    path = _write(tmp_path / "data.tfrecord.gz", compression="GZIP")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CorruptRecordError, match="truncated|CRC"):
        list(io.read_tfrecords(path, "GZIP"))


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage"
    path.write_bytes(b"this is not a tfrecord file at all")
    with pytest.raises(CorruptRecordError, match="length CRC"):
        list(io.read_tfrecords(path))


def test_auto_detection_tells_zlib_from_a_length_that_looks_like_zlib(tmp_path):
    # A first record of length 0x9c78 starts with bytes 78 9c, a valid zlib header.
    record = b"z" * 0x9C78
    path = _write(tmp_path / "tricky", [record])
    assert path.read_bytes()[:2] == b"\x78\x9c"
    assert tfrecord.detect_compression(path) is None
    assert list(io.read_tfrecords(path, "auto")) == [record]
    zpath = _write(tmp_path / "real", [b"x"], compression="ZLIB")
    assert tfrecord.detect_compression(zpath) == "ZLIB"
    assert zlib.decompress(zpath.read_bytes())[12:13] == b"x"


def test_compression_level(tmp_path):
    default = _write(tmp_path / "a.gz", compression="GZIP")
    fast = tmp_path / "b.gz"
    with io.TFRecordWriter(fast, "GZIP", compression_level=1) as writer:
        writer.write_batch(RECORDS)
    assert list(io.read_tfrecords(fast, "GZIP")) == RECORDS
    assert gzip.decompress(fast.read_bytes()) == gzip.decompress(default.read_bytes())
    assert fast.read_bytes() != default.read_bytes()
    with pytest.raises(ValueError, match="compression_level"):
        io.TFRecordWriter(tmp_path / "c.gz", "GZIP", compression_level=12)


def test_background_compression_error_is_raised_and_nothing_is_left(tmp_path, monkeypatch):
    """Chunks are deflated on the writer's own thread; an error there (a full disk, say)
    surfaces in the caller's next write or close, and the file never appears."""
    path = tmp_path / "out.tfrecord.gz"
    writer = io.TFRecordWriter(path, "GZIP", compression_level=1)

    def fail(data):
        raise OSError("No space left on device")

    monkeypatch.setattr(writer, "_deflate", fail)
    with pytest.raises(OSError, match="No space left"):
        with writer:
            for _ in range(3):  # > _READ_CHUNK: the first chunk goes to the thread
                writer.write_batch([b"x" * 1_000_000] * 3)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_compressed_chunks_in_flight_keep_their_order(tmp_path):
    records = [os.urandom(200) * (i % 50 + 1) for i in range(20_000)]  # ~50 MB: many chunks
    path = tmp_path / "big.tfrecord.gz"
    with io.TFRecordWriter(path, "GZIP", compression_level=1) as writer:
        for start in range(0, len(records), 1000):
            writer.write_batch(records[start:start + 1000])
    assert list(io.read_tfrecords(path, "GZIP")) == records
