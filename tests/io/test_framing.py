"""C framing (_codec.c) against the Python oracle: CRC32C, framing, scanning, compression."""
from __future__ import annotations

import functools
import gzip
import os
import random
import zlib

import google_crc32c
import pyarrow as pa
import pytest

from tft_lite import io
from tft_lite.errors import CorruptRecordError
from tft_lite.io import tfrecord
from tft_lite.io.example import _c_codec

needs_c = pytest.mark.skipif(_c_codec is None, reason="C codec not built")


def _crc_inputs():
    """Every length 0..100 at every start offset 0..7, plus large and odd-sized buffers."""
    rng = random.Random(7)
    blob = bytes(rng.getrandbits(8) for _ in range(1 << 16))
    for start in range(8):
        for length in range(101):
            yield blob[start:start + length]
    for length in (1000, 4095, 4096, 65_535, (1 << 16) - 3):
        yield blob[3:3 + length]
    yield os.urandom(5_000_003)


@needs_c
@pytest.mark.parametrize("software", [False, True])
def test_crc32c_matches_google_crc32c(software):
    for data in _crc_inputs():
        assert _c_codec.crc32c(data, software) == google_crc32c.value(data), len(data)


@needs_c
def test_crc_hardware_switch_is_a_test_hook():
    """crc_hardware(0) forces the table path everywhere (framing too); (1) restores it."""
    had_hw = _c_codec.crc_hardware()
    try:
        assert _c_codec.crc_hardware(0) is False
        records = [os.urandom(n) for n in range(50)]
        assert _c_codec.frame_list(records) == b"".join(map(tfrecord.frame_record, records))
    finally:
        assert _c_codec.crc_hardware(1) == had_hw


def _arrays():
    records = [b"", b"a", os.urandom(1000), b"xyz" * 77, b"", os.urandom(9)]
    binary = pa.array(records, pa.binary())
    large = pa.array(records, pa.large_binary())
    yield records, binary
    yield records, large
    yield records[2:5], binary.slice(2, 3)
    yield records[1:], large.slice(1)
    yield [], binary.slice(6)
    yield [b"", b""], pa.array([b"", b""], pa.binary())  # no data buffer content
    yield [b"ab", b"c"], pa.array(["ab", "c"], pa.string())


@pytest.mark.parametrize("case", range(7))
def test_frame_records_matches_frame_record(backend, case):
    records, array = list(_arrays())[case]
    expected = b"".join(tfrecord.frame_record(r) for r in records)
    assert tfrecord.frame_records(array) == expected
    assert tfrecord.frame_records(records) == expected
    assert tfrecord.frame_records(pa.chunked_array([array]).chunk(0)) == expected


def _small_chunks(monkeypatch, size):
    """Makes the scanner read `size`-byte chunks, so records straddle chunk boundaries."""
    monkeypatch.setattr(tfrecord, "read_file_chunks",
                        functools.partial(tfrecord.read_file_chunks, chunk_bytes=size))


@pytest.mark.parametrize("chunk", [7, 100, 1 << 22])
def test_records_straddling_chunks(tmp_path, monkeypatch, backend, chunk):
    rng = random.Random(chunk)
    records = [os.urandom(rng.randrange(0, 300)) for _ in range(300)]
    path = tmp_path / "f"
    io.write_tfrecords(path, records)
    _small_chunks(monkeypatch, chunk)
    assert list(io.read_tfrecords(path)) == records
    batches = list(io.read_tfrecord_batches(path, batch_bytes=5000))
    assert [r for b in batches for r in b.to_pylist()] == records


def _corrupt_file(tmp_path, bad):
    """30 records of 50 bytes; the data of each record index in `bad` gets a flipped byte."""
    records = [bytes([i]) * 50 for i in range(30)]
    path = tmp_path / "f"
    io.write_tfrecords(path, records)
    raw = bytearray(path.read_bytes())
    for i in bad:
        raw[i * 66 + 12 + 7] ^= 1
    path.write_bytes(bytes(raw))
    return path, [r for i, r in enumerate(records) if i not in bad]


@pytest.mark.parametrize("chunk", [13, 66, 1 << 22])
def test_skip_many_corrupt_records(tmp_path, monkeypatch, backend, chunk):
    path, good = _corrupt_file(tmp_path, {0, 5, 6, 29})
    _small_chunks(monkeypatch, chunk)
    stats = io.ReadStats()
    assert list(io.read_tfrecords(path, skip_corrupt=True, stats=stats)) == good
    assert stats.records == 26 and stats.corrupt_records == 4
    assert [(e.record_index, e.offset) for e in stats.errors] == [
        (i, i * 66) for i in (0, 5, 6, 29)]
    assert all("data CRC mismatch over 50 bytes" in str(e) for e in stats.errors)


def test_first_corrupt_record_raises_with_its_index(tmp_path, backend):
    path, _ = _corrupt_file(tmp_path, {17, 20})
    with pytest.raises(CorruptRecordError, match="data CRC") as info:
        list(io.read_tfrecords(path))
    assert (info.value.record_index, info.value.offset) == (17, 17 * 66)


def test_length_crc_mid_file_stops_the_file(tmp_path, backend):
    path, _ = _corrupt_file(tmp_path, set())
    raw = bytearray(path.read_bytes())
    raw[10 * 66 + 2] ^= 1
    path.write_bytes(bytes(raw))
    stats = io.ReadStats()
    got = list(io.read_tfrecords(path, skip_corrupt=True, stats=stats))
    assert got == [bytes([i]) * 50 for i in range(10)]
    assert stats.corrupt_records == 1 and stats.errors[0].offset == 660
    assert stats.errors[0].record_index == 10


@needs_c
def test_scan_records_reports_position_and_errors():
    frames = tfrecord.frame_records([b"abc", b"de"])
    offsets, data, count, pos, error, _ = _c_codec.scan_records(frames + frames[:5], 0)
    assert (bytes(data), count, pos, error) == (b"abcde", 2, len(frames), 0)
    assert memoryview(offsets).cast("i").tolist() == [0, 3, 5]
    bad = bytearray(frames)
    bad[13] ^= 1
    _, data, count, pos, error, length = _c_codec.scan_records(bytes(bad), 0)
    assert (bytes(data), count, pos, error, length) == (b"", 0, 0, 2, 3)
    _, data, count, pos, error, _ = _c_codec.scan_records(bytes(bad), 19)
    assert (bytes(data), count, pos, error) == (b"de", 1, len(frames), 0)
    with pytest.raises(ValueError):
        _c_codec.scan_records(frames, len(frames) + 1)


RECORDS = [os.urandom(100) for _ in range(50)] + [b"abc" * 5000, b""]


@pytest.mark.parametrize("compression,decompress", [("GZIP", gzip.decompress),
                                                    ("ZLIB", zlib.decompress)])
@pytest.mark.parametrize("level", [0, 1, 2, 3, 6])
def test_compression_levels_are_standard_streams(tmp_path, backend, compression, decompress,
                                                 level):
    """ISA-L (1-3) and zlib (0, 6) files read back with our reader and with the stdlib."""
    path = tmp_path / "f"
    with io.TFRecordWriter(path, compression, compression_level=level) as writer:
        writer.write_batch(RECORDS)
    assert list(io.read_tfrecords(path, compression)) == RECORDS
    assert list(io.read_tfrecords(path, "auto")) == RECORDS
    assert decompress(path.read_bytes()) == tfrecord.frame_records(RECORDS)


def test_fast_levels_use_isal_and_default_uses_zlib():
    from isal import isal_zlib
    frames = tfrecord.frame_records(RECORDS)
    isal = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31, 9)
    fast = tfrecord._compressor("GZIP", 1)
    assert fast.compress(frames) + fast.flush() == isal.compress(frames) + isal.flush()
    stored = zlib.compressobj(0, zlib.DEFLATED, 31, 9)
    zero = tfrecord._compressor("GZIP", 0)
    assert zero.compress(frames) + zero.flush() == stored.compress(frames) + stored.flush()
    plain = zlib.compressobj(6, zlib.DEFLATED, 15, 9)
    default = tfrecord._compressor("ZLIB", None)
    assert default.compress(frames) + default.flush() == plain.compress(frames) + plain.flush()
