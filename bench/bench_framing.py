"""Benchmark of TFRecord framing: the per-record Python loop vs the C extension.

Records are 1M (`--records`) Criteo-shaped tf.train.Examples (bench_codec's seeded table,
~700 bytes each). Printed side by side, each the min of `--repeat` runs after a warm-up,
results checked equal first:

  frame     all records framed into one bytes object (TFRecordWriter.write_batch's work):
            [frame_record(r) for r in list] joined vs frame_records(BinaryArray)
  scan      parse + verify the framed stream into BinaryArrays (the reader's work on
            decompressed chunks): _RecordScanner._scan vs _scan_c
  read      read_tfrecord_batches over an uncompressed file, end to end
  write     TFRecordWriter.write_batch to an uncompressed file, end to end

The backend is switched with TFT_LITE_PURE_PYTHON, as users would.

    .venv/bin/python bench/bench_framing.py [--records 1000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

import pyarrow as pa

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_codec import best_of, criteo_spec, criteo_table  # noqa: E402

from tft_lite import io  # noqa: E402
from tft_lite.io import tfrecord  # noqa: E402


@contextlib.contextmanager
def backend(name):
    """Runs the block with the "python" or "c" framing."""
    old = os.environ.pop("TFT_LITE_PURE_PYTHON", None)
    if name == "python":
        os.environ["TFT_LITE_PURE_PYTHON"] = "1"
    try:
        yield
    finally:
        os.environ.pop("TFT_LITE_PURE_PYTHON", None)
        if old is not None:
            os.environ["TFT_LITE_PURE_PYTHON"] = old


def make_records(n: int) -> pa.BinaryArray:
    spec = criteo_spec()
    batches = criteo_table(n).to_batches(max_chunksize=50_000)
    return pa.chunked_array([io.encode_examples(b, spec) for b in batches]).combine_chunks()


def scan_all(framed: bytes, chunk: int) -> int:
    """The reader's loop over `chunk`-byte pieces of an uncompressed stream, minus the I/O."""
    scanner = tfrecord._RecordScanner("<memory>", None, False, io.ReadStats())
    c = tfrecord._framing()
    count, buf, base = 0, b"", 0
    for start in range(0, len(framed), chunk):
        buf = buf + framed[start:start + chunk] if buf else framed[start:start + chunk]
        arrays, used, _ = scanner._scan_c(c, buf, base) if c else scanner._scan(buf, base)
        count += sum(map(len, arrays))
        buf, base = buf[used:], base + used
    return count


def compare(name, n, run, repeat):
    """Times run() on both backends; returns the C result after checking they agree."""
    results, times = {}, {}
    for which in ("python", "c"):
        with backend(which):
            times[which], results[which] = best_of(run, repeat)
    assert results["python"] == results["c"], f"{name}: backends differ"
    py, c = times["python"], times["c"]
    print(f"{name:<6} {n:>9,d} records  python {py:7.3f} s ({py / n * 1e9:6.0f} ns/rec)  "
          f"C {c:7.3f} s ({c / n * 1e9:5.0f} ns/rec)  ratio {py / c:5.1f}x")
    return results["c"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if io.codec_backend() != "c":
        sys.exit("the C codec is not built (or TFT_LITE_PURE_PYTHON is set)")
    records = make_records(args.records)
    n = len(records)
    mb = records.buffers()[2].size / 1e6
    print(f"{n:,d} records, {mb:.1f} MB payload, CRC32C hardware: "
          f"{tfrecord._C_FRAMING.crc_hardware()}")

    as_list = records.to_pylist()
    framed = compare("frame", n, lambda: tfrecord.frame_records(
        records if io.codec_backend() == "c" else as_list), args.repeat)
    compare("scan", n, lambda: scan_all(framed, tfrecord._READ_CHUNK), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.tfrecord")
        with open(path, "wb") as f:
            f.write(framed)
        compare("read", n, lambda: sum(len(b) for b in io.read_tfrecord_batches(path)),
                args.repeat)
        compare("write", n, lambda: io.write_tfrecords(os.path.join(tmp, "w"), records),
                args.repeat)


if __name__ == "__main__":
    main()
