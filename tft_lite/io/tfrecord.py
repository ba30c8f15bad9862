"""TFRecord framing: the file format tf.data.TFRecordDataset reads and tf.io writes.

Each record is framed as (tensorflow/core/lib/io/record_writer.cc):

    uint64 length            little endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with masked_crc(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32), where crc is CRC32C
(Castagnoli). A file may be compressed as a whole with GZIP or ZLIB; we use the zlib settings
of TensorFlow's ZlibCompressionOptions (default level, 15-bit window, memLevel 9) so compressed
files are byte-identical to TensorFlow's for the same records. Fast levels 1-3 use ISA-L
(python-isal), which writes standard deflate streams several times faster than zlib.

Framing and verifying whole batches runs in the C extension (_codec.c: SSE4.2 CRC32C, or a
table-driven one on other CPUs); the per-record Python loops below (CRC by google-crc32c) are
the fallback when it is not built or TFT_LITE_PURE_PYTHON=1 is set, and the tests' oracle.

Readers verify both CRCs and raise CorruptRecordError naming the file, the record index and the
byte offset in the uncompressed stream; with `skip_corrupt=True` corrupt records are skipped
and counted in a ReadStats instead. Writers are atomic: data goes to a temp file in the target
directory, renamed over `path` on a clean close and deleted on error.
"""
from __future__ import annotations

import glob
import os
import struct
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import google_crc32c
import pyarrow as pa
from isal import isal_zlib

from tft_lite.errors import CorruptRecordError, RecordError
from tft_lite.io.example import _c_codec, codec_backend

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked crc of length
_FOOTER = struct.Struct("<I")  # masked crc of data
_HEADER_SIZE, _FOOTER_SIZE = 12, 4
_READ_CHUNK = 1 << 22  # bytes read (and decompressed) at a time
_BATCH_BYTES = 1 << 23  # target payload size of one BinaryArray chunk
_ZLIB_WBITS = {"ZLIB": 15, "GZIP": 31}  # 31 = 15-bit window + gzip header (TF's +16)
_ZLIB_MEM_LEVEL = 9  # TF's ZlibCompressionOptions::DEFAULT mem_level
_ISAL_LEVELS = range(1, 4)  # fast levels ISA-L compresses; 0 (stored) and 4-9 use zlib
_SCAN_LENGTH_CRC, _SCAN_DATA_CRC, _SCAN_TOO_LARGE, _SCAN_FULL = 1, 2, 3, 4  # scan_records
COMPRESSION_TYPES = (None, "GZIP", "ZLIB")


def masked_crc32c(data) -> int:
    """The masked CRC32C TFRecord stores for `data` (bytes-like)."""
    crc = google_crc32c.value(bytes(data) if not isinstance(data, bytes) else data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _normalize_compression(compression_type, allow_auto=False):
    if compression_type in (None, "", "NONE", "UNCOMPRESSED"):
        return None
    upper = str(compression_type).upper()
    if upper in ("GZIP", "ZLIB") or (allow_auto and upper == "AUTO"):
        return upper
    allowed = "None, 'GZIP', 'ZLIB'" + (", 'auto'" if allow_auto else "")
    raise ValueError(f"compression_type must be one of {allowed}; got {compression_type!r}")


# A stale build of _codec (before framing moved to C) lacks these: the Python loops run then.
_C_FRAMING = _c_codec if hasattr(_c_codec, "scan_records") else None


def _framing():
    """The C framing module, or None when the pure-Python loops must run."""
    return _C_FRAMING if codec_backend() == "c" else None


def frame_record(record: bytes) -> bytes:
    """One record with its TFRecord framing (always the Python oracle of frame_records)."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc32c(length)) + record + struct.pack(
        "<I", masked_crc32c(record))


def frame_records(records) -> bytes:
    """All records framed back to back: a list of bytes-like, or a pyarrow Binary array.

    The C path frames an Arrow array straight from its offsets and data buffers, so no
    Python object is made per record.
    """
    c = _framing()
    if isinstance(records, pa.Array):
        if records.null_count:
            raise ValueError("cannot frame null records")
        if not (pa.types.is_binary(records.type) or pa.types.is_large_binary(records.type)):
            records = records.cast(pa.binary())  # strings: their UTF-8 bytes
        if c is not None:
            return _frame_arrow(c, records)
        records = records.to_pylist()
    if c is not None:
        return c.frame_list(records if isinstance(records, (list, tuple)) else list(records))
    return b"".join([frame_record(bytes(r)) for r in records])


def _frame_arrow(c, array: pa.Array) -> bytes:
    """Frames a Binary/LargeBinary array (any slice) through _codec.frame_buffers."""
    wide = pa.types.is_large_binary(array.type)
    width = 8 if wide else 4
    _, offsets, data = array.buffers()
    start = array.offset * width
    offsets = memoryview(offsets)[start:start + (len(array) + 1) * width]
    return c.frame_buffers(offsets, memoryview(data) if data is not None else b"", wide)


class TFRecordWriter:
    """Writes a TFRecord file atomically (temp file + rename when closed without error).

    Args:
      path: the destination file; it appears only once the writer closes cleanly.
      compression_type: None, "GZIP" or "ZLIB".
      compression_level: 0-9; None is TensorFlow's (zlib's default, 6), which makes files
        byte-identical to tf.io.TFRecordWriter's. Levels 1-3 compress with ISA-L (3-4x
        faster than zlib level 1 at a similar ratio, docs/io.md has numbers); 0 (stored, as
        in zlib) and 4-9 with zlib.
        Either way the file is a standard GZIP/ZLIB stream that TensorFlow (and gzip/zlib)
        read; only the compressed bytes differ from TensorFlow's.

    Use as a context manager: an exception inside the `with` block removes the temp file and
    leaves nothing at `path` (an older file there stays untouched).

    Compressed writers deflate each ~4 MB chunk on their own background thread while the
    caller frames the next (zlib and ISA-L release the GIL); one chunk is in flight at a time,
    so the bytes are the same as compressing in line, and memory stays bounded.
    """

    def __init__(self, path, compression_type=None, compression_level=None):
        self.path = os.fspath(path)
        self.compression_type = _normalize_compression(compression_type)
        if compression_level is not None and compression_level not in range(10):
            raise ValueError(f"compression_level must be 0-9 or None, got {compression_level!r}")
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, self._tmp_path = tempfile.mkstemp(
                dir=directory, prefix=f".{os.path.basename(self.path)}.", suffix=".tmp")
        except OSError as exc:
            raise RecordError(f"cannot create a file in {directory}: {exc}", path=path) from exc
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would follow the rename: others could not read
        self._file = os.fdopen(fd, "wb")
        self._compressor = None
        if self.compression_type:
            self._compressor = _compressor(self.compression_type, compression_level)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._compressing = None  # (executor, future of the chunk in flight)
        self.records_written = 0
        self.closed = False

    def write(self, record) -> None:
        """Appends one record (bytes-like)."""
        self._append(frame_records([record]))
        self.records_written += 1

    def write_batch(self, records) -> None:
        """Appends many records: a list of bytes, or a pyarrow Binary/LargeBinary array."""
        if isinstance(records, pa.ChunkedArray):
            for chunk in records.chunks:
                self.write_batch(chunk)
            return
        if isinstance(records, pa.Array):
            if records.null_count:
                raise RecordError("cannot write null records", path=self.path,
                                  record_index=self.records_written)
        elif not isinstance(records, (list, tuple)):
            records = list(records)
        self._append(frame_records(records))
        self.records_written += len(records)

    def _append(self, data: bytes) -> None:
        if self.closed:
            raise ValueError(f"write to closed TFRecordWriter for {self.path}")
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= _READ_CHUNK:
            self._flush_pending()

    def _flush_pending(self) -> None:
        data = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        if not self._compressor:
            self._file.write(data)
            return
        executor = self._wait_for_chunk()
        if executor is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix="tfrecord-deflate")
        self._compressing = executor, executor.submit(self._deflate, data)

    def _deflate(self, data: bytes) -> None:
        self._file.write(self._compressor.compress(data))

    def _wait_for_chunk(self):
        """Waits for the chunk in flight (raising its error); returns the executor or None."""
        if self._compressing is None:
            return None
        executor, future = self._compressing
        self._compressing = None
        try:
            future.result()
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return executor

    def _stop_compressing(self, wait_errors: bool) -> None:
        executor = None
        try:
            executor = self._wait_for_chunk()
        except BaseException:
            if wait_errors:
                raise
        if executor is not None:
            executor.shutdown(wait=False)

    def close(self) -> None:
        """Finishes the file and renames it into place."""
        if self.closed:
            return
        try:
            self._flush_pending()
            self._stop_compressing(wait_errors=True)
            if self._compressor:
                self._file.write(self._compressor.flush(zlib.Z_FINISH))
        except BaseException:
            self.abort()
            raise
        self._file.close()
        self.closed = True
        os.replace(self._tmp_path, self.path)

    def abort(self) -> None:
        """Discards everything written; nothing appears at `path`."""
        if self.closed:
            return
        self.closed = True
        self._stop_compressing(wait_errors=False)
        self._file.close()
        if os.path.exists(self._tmp_path):
            os.unlink(self._tmp_path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        if not getattr(self, "closed", True):
            self.abort()


def _compressor(compression_type, level):
    """A compressobj: ISA-L for the fast levels 1-3, else zlib (None = TensorFlow's level 6).

    Both write the same container (wbits 31 = gzip header, 15 = zlib header), so readers
    cannot tell them apart; zlib at the default level keeps byte-identity with TensorFlow.
    """
    wbits = _ZLIB_WBITS[compression_type]
    if level in _ISAL_LEVELS:
        return isal_zlib.compressobj(level, isal_zlib.DEFLATED, wbits, _ZLIB_MEM_LEVEL)
    level = zlib.Z_DEFAULT_COMPRESSION if level is None else level
    return zlib.compressobj(level, zlib.DEFLATED, wbits, _ZLIB_MEM_LEVEL)


@dataclass
class ReadStats:
    """Counters a reader fills in: records read, corrupt records skipped, and where."""

    records: int = 0
    corrupt_records: int = 0
    errors: list = field(default_factory=list)  # CorruptRecordError of each skipped record


def expand_paths(paths, kind: str = "TFRecord") -> list[str]:
    """A path, a glob pattern or a list of either → sorted, de-duplicated file list.

    Raises FileNotFoundError naming the pattern when a pattern matches nothing (`kind` names
    the files in the message).
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    out = []
    for item in paths:
        item = os.fsdecode(item)
        if glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise FileNotFoundError(f"{kind} file pattern {item!r} matches no files")
            out.extend(matches)
        else:
            if not os.path.exists(item):
                raise FileNotFoundError(f"{kind} file {item!r} does not exist")
            out.append(item)
    return list(dict.fromkeys(out))


def _open_binary(path):
    return open(path, "rb")


def detect_compression(path, opener=None) -> str | None:
    """Guesses None/"GZIP"/"ZLIB" from the extension, then from the file's first bytes.

    opener: path -> binary file object (default: open(path, "rb")); the Beam layer passes one
    that reads remote filesystems.
    """
    name = os.fspath(path).lower()
    if name.endswith((".gz", ".gzip")):
        return "GZIP"
    if name.endswith((".zz", ".zlib")):
        return "ZLIB"
    with (opener or _open_binary)(path) as f:
        head = f.read(_HEADER_SIZE)
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        # Could be a zlib header, or the low bytes of an uncompressed record length: an
        # uncompressed file's first 12 bytes carry a length CRC we can check.
        if len(head) == _HEADER_SIZE:
            length, crc = _HEADER.unpack(head)
            if masked_crc32c(head[:8]) == crc:
                return None
        return "ZLIB"
    return None


def read_file_chunks(path, compression_type, chunk_bytes: int = _READ_CHUNK,
                     opener=None) -> Iterator[bytes]:
    """Yields the uncompressed byte stream of one file (None, "GZIP" or "ZLIB") in chunks.

    A zero-byte file is empty whatever the compression, as in TensorFlow. A broken or
    truncated compressed stream raises CorruptRecordError naming the file and offset.
    opener: as in detect_compression.
    """
    with (opener or _open_binary)(path) as f:
        chunk = f.read(chunk_bytes)
        if compression_type is None or not chunk:
            while chunk:
                yield chunk
                chunk = f.read(chunk_bytes)
            return
        decompressor = zlib.decompressobj(_ZLIB_WBITS[compression_type])
        offset = 0
        while chunk:
            try:
                out = decompressor.decompress(chunk)
            except zlib.error as exc:
                raise CorruptRecordError(
                    f"not a valid {compression_type} stream ({exc}); is the file "
                    f"{_other_compression_hint(path, compression_type, opener)}?", path=path,
                    offset=offset) from exc
            offset += len(chunk)
            if out:
                yield out
            if decompressor.eof:
                break
            chunk = f.read(chunk_bytes)
        if not decompressor.eof:
            raise CorruptRecordError(f"truncated {compression_type} stream: the file ends "
                                     "before the compressed data does", path=path,
                                     offset=offset)
        tail = decompressor.flush()
        if tail:
            yield tail


def _other_compression_hint(path, compression_type, opener=None):
    try:
        actual = detect_compression(path, opener)
    except OSError:
        return "compressed differently"
    return f"compressed as {actual}" if actual else "uncompressed (compression_type=None)"


class _RecordScanner:
    """Splits one file's uncompressed stream into records, verifying the framing."""

    def __init__(self, path, compression_type, skip_corrupt, stats, opener=None):
        self.path, self.compression_type, self.opener = path, compression_type, opener
        self.skip_corrupt, self.stats = skip_corrupt, stats
        self.record_index = 0

    def _corrupt(self, message, offset):
        error = CorruptRecordError(message, path=self.path, record_index=self.record_index,
                                   offset=offset)
        if not self.skip_corrupt:
            raise error
        self.stats.corrupt_records += 1
        self.stats.errors.append(error)

    def batches(self) -> Iterator[pa.BinaryArray]:
        """Yields non-empty BinaryArrays of the records of each decompressed chunk."""
        buf = b""
        base = 0  # stream offset of buf[0]
        c = _framing()
        for chunk in read_file_chunks(self.path, self.compression_type, opener=self.opener):
            buf = buf + chunk if buf else chunk
            arrays, used, stop = self._scan_c(c, buf, base) if c else self._scan(buf, base)
            yield from arrays
            if stop:
                return
            buf, base = buf[used:], base + used
        if buf:
            self._corrupt(f"truncated record: the file ends {len(buf)} bytes into a record "
                          f"({_truncation_detail(buf)})", base)

    def _length_crc_error(self, offset: int) -> None:
        hint = ""
        if self.compression_type is None and offset == 0:
            guess = detect_compression(self.path, self.opener)
            if guess:
                hint = f"; the file looks {guess}-compressed: pass compression_type=" \
                       f"'{guess}' or 'auto'"
        self._corrupt(f"corrupt record length: length CRC mismatch{hint}", offset)

    def _data_crc_error(self, length: int, offset: int) -> None:
        self._corrupt(f"corrupt record data: data CRC mismatch over {length} bytes", offset)

    def _scan_c(self, c, buf: bytes, base: int):
        """_scan through _codec.scan_records: each call verifies and copies out a run of good
        records; Python only steps in at a corrupt record (same errors and counts as _scan)."""
        arrays, pos = [], 0
        while True:
            offsets, data, count, pos, error, length = c.scan_records(buf, pos)
            if count:
                arrays.append(pa.Array.from_buffers(
                    pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]))
                self.stats.records += count
                self.record_index += count
            if error == _SCAN_LENGTH_CRC:
                self._length_crc_error(base + pos)
                return arrays, pos, True  # the framing is lost: nothing after is trustworthy
            if error == _SCAN_DATA_CRC:
                self._data_crc_error(length, base + pos)
                self.record_index += 1
                pos += _HEADER_SIZE + length + _FOOTER_SIZE
            elif error == _SCAN_TOO_LARGE:
                raise RecordError(f"record of {length} bytes exceeds 2 GiB, the most a pyarrow "
                                  "BinaryArray holds", path=self.path,
                                  record_index=self.record_index, offset=base + pos)
            elif error != _SCAN_FULL:
                return arrays, pos, False

    def _scan(self, buf: bytes, base: int):
        """Parses whole records from buf. Returns ([BinaryArray], bytes used, stop reading)."""
        records, pos, end = [], 0, len(buf)
        view = memoryview(buf)
        while end - pos >= _HEADER_SIZE:
            length, length_crc = _HEADER.unpack_from(buf, pos)
            if masked_crc32c(view[pos:pos + 8]) != length_crc:
                self._length_crc_error(base + pos)
                return _as_arrays(records), pos, True  # the framing is lost
            total = _HEADER_SIZE + length + _FOOTER_SIZE
            if end - pos < total:
                break
            data = buf[pos + _HEADER_SIZE:pos + _HEADER_SIZE + length]
            (data_crc,) = _FOOTER.unpack_from(buf, pos + _HEADER_SIZE + length)
            if masked_crc32c(data) != data_crc:
                self._data_crc_error(length, base + pos)
            else:
                records.append(data)
                self.stats.records += 1
            self.record_index += 1
            pos += total
        return _as_arrays(records), pos, False


def _as_arrays(records: list) -> list:
    return [pa.array(records, type=pa.binary())] if records else []


def _truncation_detail(buf: bytes) -> str:
    if len(buf) < _HEADER_SIZE:
        return f"header needs {_HEADER_SIZE} bytes, got {len(buf)}"
    (length,) = struct.unpack_from("<Q", buf)
    return f"record of {length} bytes needs {_HEADER_SIZE + length + _FOOTER_SIZE} " \
           f"bytes with framing, got {len(buf)}"


def _file_batches(paths, compression_type, skip_corrupt, stats, opener=None):
    compression = _normalize_compression(compression_type, allow_auto=True)
    stats = stats if stats is not None else ReadStats()
    if opener is None:
        paths = expand_paths(paths)
    elif isinstance(paths, str):
        paths = [paths]
    for path in paths:
        file_compression = (detect_compression(path, opener) if compression == "AUTO"
                            else compression)
        yield from _RecordScanner(path, file_compression, skip_corrupt, stats,
                                  opener).batches()


def read_tfrecords(paths, compression_type=None, skip_corrupt=False,
                   stats: ReadStats | None = None) -> Iterator[bytes]:
    """Yields every record (bytes) of the TFRecord files, in order.

    Args:
      paths: a file, a glob pattern, or a list of them (patterns are expanded and sorted).
      compression_type: None, "GZIP", "ZLIB", or "auto" (per file, from its name and bytes).
      skip_corrupt: skip records that fail a CRC check (and the rest of a file whose framing
        is lost) instead of raising; each one is counted in `stats.corrupt_records`.
      stats: a ReadStats to fill in.

    Raises:
      CorruptRecordError: bad CRC, truncation or wrong compression (file, record, offset).
      FileNotFoundError: a path does not exist or a pattern matches nothing.
    """
    for array in _file_batches(paths, compression_type, skip_corrupt, stats):
        yield from array.to_pylist()


def read_tfrecord_batches(paths, compression_type=None, skip_corrupt=False,
                          stats: ReadStats | None = None, batch_bytes: int = _BATCH_BYTES,
                          opener=None) -> Iterator[pa.BinaryArray]:
    """Like read_tfrecords, but yields pyarrow BinaryArrays of about `batch_bytes` each.

    opener: path -> binary file object, for files on other filesystems; `paths` are then
    taken as they are (no glob expansion).
    """
    pending, size = [], 0
    for array in _file_batches(paths, compression_type, skip_corrupt, stats, opener):
        pending.append(array)
        size += _payload_bytes(array)
        if size >= batch_bytes:
            yield _concat(pending)
            pending, size = [], 0
    if pending:
        yield _concat(pending)


def _payload_bytes(array: pa.BinaryArray) -> int:
    """Bytes of record data in `array`, read from its offsets buffer (no per-record work)."""
    offsets = memoryview(array.buffers()[1]).cast("i")
    return offsets[array.offset + len(array)] - offsets[array.offset]


def _concat(arrays: list) -> pa.BinaryArray:
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def write_tfrecords(path, records: Iterable, compression_type=None) -> int:
    """Writes all records to `path` atomically; returns the number written."""
    with TFRecordWriter(path, compression_type) as writer:
        if isinstance(records, (pa.Array, pa.ChunkedArray)):
            writer.write_batch(records)
        else:
            for record in records:
                writer.write(record)
        return writer.records_written
