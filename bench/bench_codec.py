"""Benchmark of the columnar Example codec and TFRecord framing on a Criteo-shaped table.

Table (seeded): 1 int64 label, 13 int64 columns with ~20 % missing values, 26 short
hex-string columns with ~5 % missing. Printed side by side in one run:

  encode   per-row protobuf (build Example + SerializeToString(deterministic=True))
           vs encode_examples
  decode   per-row ParseFromString + pulling values into columns vs decode_examples
  tfrecord write / read MB/s, uncompressed and GZIP

Our codec runs over the table in batches of `--batch-size` rows, as a pipeline or a reader
calls it (one call over 1M rows works too, but then its time is dominated by the kernel
handing the process ~700 MB of fresh pages). The per-row references run on the first
`--reference-rows` rows (they take ~30 s per 1M); rates are per row, so the ratio compares
rows/s. Each timing is the min of `--repeat`
runs after a warm-up. Results are checked equal before timing is reported.

    .venv/bin/python bench/bench_codec.py [--rows 1000000] [--reference-rows 100000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tft_lite import io  # noqa: E402
from tft_lite.io import protos  # noqa: E402
from tft_lite.ir.schema import normalize_schema  # noqa: E402

INT_COLUMNS = [f"I{i}" for i in range(1, 14)]
CAT_COLUMNS = [f"C{i}" for i in range(1, 27)]


def criteo_spec():
    spec = {"label": io.FixedLenFeature([], "int64")}
    spec.update({c: io.FixedLenFeature([], "int64", default_value=-1) for c in INT_COLUMNS})
    spec.update({c: io.FixedLenFeature([], "string", default_value=b"") for c in CAT_COLUMNS})
    return spec


def criteo_table(rows: int, seed: int = 0) -> pa.Table:
    """Seeded Criteo-shaped columns: ints with nulls, 8-hex-digit tokens with nulls."""
    rng = np.random.default_rng(seed)
    columns = {"label": pa.array(rng.integers(0, 2, rows))}
    for name in INT_COLUMNS:
        values = rng.zipf(1.5, rows).astype(np.int64) - 1
        columns[name] = pa.array(values, mask=rng.random(rows) < 0.2)
    vocab = np.array([f"{v:08x}" for v in rng.integers(0, 2**32, 5000)], dtype=object)
    for name in CAT_COLUMNS:
        index = np.minimum(rng.zipf(1.3, rows) - 1, len(vocab) - 1)
        columns[name] = pa.array(vocab[index], mask=rng.random(rows) < 0.05)
    return pa.table(columns)


def encode_per_row(table: pa.Table) -> list[bytes]:
    """The reference: one protobuf Example per row."""
    names = sorted(table.column_names)
    cols = [table.column(n).to_pylist() for n in names]
    kinds = ["int64_list" if table.schema.field(n).type == pa.int64() else "bytes_list"
             for n in names]
    out = []
    for row in range(table.num_rows):
        example = protos.Example()
        feature = example.features.feature
        for name, col, kind in zip(names, cols, kinds):
            value = col[row]
            if value is None:
                continue
            getattr(feature[name], kind).value.append(
                value.encode() if kind == "bytes_list" else value)
        out.append(example.SerializeToString(deterministic=True))
    return out


def decode_per_row(records: list[bytes], spec) -> dict:
    """The reference: ParseFromString per row, then values pulled into numpy columns."""
    columns = {name: [] for name in spec}
    example = protos.Example()
    for record in records:
        example.ParseFromString(record)
        feature = example.features.feature
        for name, spec_entry in spec.items():
            if name in feature:
                f = feature[name]
                values = f.bytes_list.value if spec_entry.dtype == "string" else \
                    f.int64_list.value
                columns[name].append(values[0])
            else:
                columns[name].append(spec_entry.default_value[0])
    return {name: np.array(values, dtype=object if spec[name].dtype == "string" else np.int64)
            for name, values in columns.items()}


def best_of(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def line(name, rows, ours_s, ref_s, ref_rows):
    ours_rate, ref_rate = rows / ours_s, ref_rows / ref_s
    print(f"{name:<28} {rows:>9,d} rows  ours {ours_s * 1e3:9.1f} ms ({ours_rate:12,.0f} rows/s)"
          f"  per-row ref {ref_rate:10,.0f} rows/s  ratio {ours_rate / ref_rate:6.1f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=10_000,
                        help="rows per encode_examples / decode_examples call")
    args = parser.parse_args()
    spec = normalize_schema(criteo_spec())
    table = criteo_table(args.rows)
    ref_table = table.slice(0, args.reference_rows)
    print(f"codec backend: {io.codec_backend()}; {args.rows:,d} rows x {len(spec)} features, "
          f"batches of {args.batch_size:,d} rows")

    batches = table.to_batches(max_chunksize=args.batch_size)

    # Timed loops stream like a pipeline: each batch is produced and dropped (holding 1M
    # encoded rows would time the kernel paging in fresh memory, not the codec).
    def encode_all():
        return sum(len(io.encode_examples(b, spec)) for b in batches)

    def decode_all():
        return sum(len(io.decode_examples(records.slice(i, args.batch_size), spec)["label"])
                   for i in range(0, len(records), args.batch_size))

    enc_s, count = best_of(encode_all, args.repeat)
    assert count == args.rows
    records = pa.chunked_array([io.encode_examples(b, spec) for b in batches]).combine_chunks()
    ref_enc_s, ref_records = best_of(lambda: encode_per_row(ref_table), args.repeat)
    assert records.slice(0, args.reference_rows).to_pylist() == ref_records, "encode differs"
    line("encode_examples", args.rows, enc_s, ref_enc_s, args.reference_rows)

    dec_s, count = best_of(decode_all, args.repeat)
    assert count == args.rows
    ref_dec_s, ref_decoded = best_of(lambda: decode_per_row(ref_records, spec), args.repeat)
    decoded = io.decode_examples(records.slice(0, args.reference_rows), spec)
    for name in spec:
        assert np.array_equal(decoded[name], ref_decoded[name]), name
    line("decode_examples", args.rows, dec_s, ref_dec_s, args.reference_rows)

    total_mb = records.buffers()[2].size / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        for compression in (None, "GZIP"):
            path = os.path.join(tmp, "bench.tfrecord")
            write_s, _ = best_of(lambda: io.write_tfrecords(path, records, compression),
                                 args.repeat)
            read_s, count = best_of(lambda: sum(
                len(b) for b in io.read_tfrecord_batches(path, compression)), args.repeat)
            assert count == args.rows
            label = compression or "uncompressed"
            print(f"tfrecord {label:<13} {total_mb:8.1f} MB payload  write {total_mb / write_s:7.1f}"
                  f" MB/s  read {total_mb / read_s:7.1f} MB/s  file {os.path.getsize(path) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
