"""Benchmark of tft_lite.data reading TFRecords of Criteo-shaped Examples into numpy batches.

Data (seeded, the table of bench_codec.py): 1 int64 label, 13 int64 features with ~20 %
missing (FixedLen default -1), 26 8-hex-digit string features with ~5 % missing (default
b""), written with tft_lite.io.encode_examples into `--shards` TFRecord shards, uncompressed
and GZIP, in a temp dir (or `--data-dir`, reused when it exists). Printed side by side, per
compression, in records/s into dict-of-numpy batches of `--batch-size`:

  plain               TFRecordDataset(files) → batch → map(parse_examples(spec))
  shuffle+interleave  list_files(seed) → interleave(TFRecordDataset, cycle_length=shards)
                      → shuffle(10,000, seed) → batch → map(parse_examples(spec))
  tfrecord package    PyPI `tfrecord`'s tfrecord_loader (per record: protobuf parse into a
                      dict of numpy arrays) plus collating its records into the same batches
  naive protobuf      tft_lite's framing reader, Example.ParseFromString per record, values
                      pulled into per-batch numpy columns

Ours runs over all records; the per-record references over the first `--reference-records`
(their rate is per record, so the ratio compares records/s). Each figure is the best of
`--repeat` runs after a warm-up, in CPU time of this process by default (every case runs on
one thread, and CPU time does not count other jobs on a shared machine; `--clock wall` for
elapsed time); the first reference batch is checked equal to ours first.
Run on one core as in docs/benchmarks.md:

    taskset -c 0 .venv/bin/python bench/bench_reader.py [--records 1000000]
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import tft_lite.data as tfd  # noqa: E402
from bench_codec import criteo_spec, criteo_table  # noqa: E402  (the same Criteo shape)
from tft_lite import io  # noqa: E402
from tft_lite.io import protos  # noqa: E402
from tft_lite.ir.schema import normalize_schema  # noqa: E402

SUFFIX = {None: ".tfrecord", "GZIP": ".tfrecord.gz"}


def write_shards(parent, records: int, shards: int, spec) -> str:
    """Writes the seeded table into `shards` files per compression; returns their directory.

    The directory is named by the size, and reused when a finished copy is there.
    """
    directory = os.path.join(parent, f"criteo-{records}-records-{shards}-shards")
    marker = os.path.join(directory, "complete")
    if os.path.exists(marker):
        return directory
    os.makedirs(directory, exist_ok=True)
    table = criteo_table(records)
    per_shard = -(-records // shards)
    for shard in range(shards):
        encoded = io.encode_examples(table.slice(shard * per_shard, per_shard), spec)
        for compression, suffix in SUFFIX.items():
            path = os.path.join(directory, f"part-{shard:05d}-of-{shards:05d}{suffix}")
            io.write_tfrecords(path, encoded, compression)
    open(marker, "w").close()
    return directory


def files_of(directory, compression) -> list[str]:
    return sorted(glob.glob(os.path.join(directory, "part-*" + SUFFIX[compression])))


def plain(files, compression, spec, batch_size):
    return (tfd.TFRecordDataset(files, compression).batch(batch_size)
            .map(tfd.parse_examples(spec)))


def shuffled(files, compression, spec, batch_size):
    return (tfd.Dataset.list_files(files, seed=0)
            .interleave(lambda f: tfd.TFRecordDataset(f, compression), cycle_length=len(files))
            .shuffle(10_000, seed=0).batch(batch_size).map(tfd.parse_examples(spec)))


def count_records(dataset) -> int:
    return sum(len(batch["label"]) for batch in dataset)


def tfrecord_package_batches(files, compression, spec, batch_size, limit):
    """Batches from PyPI tfrecord's per-record loader, collated with the spec's defaults."""
    from tfrecord.reader import tfrecord_loader
    names = list(spec)
    defaults = {n: spec[n].default_value[0] if spec[n].default_value is not None else None
                for n in names}
    kind = {n: object if spec[n].dtype == "string" else np.int64 for n in names}

    def records():
        for path in files:
            yield from tfrecord_loader(path, None, None,
                                       compression_type="gzip" if compression else None)

    batches, rows = [], []
    for count, example in enumerate(records()):
        if count == limit:
            break
        rows.append(example)
        if len(rows) == batch_size:
            batches.append(_collate(rows, names, defaults, kind))
            rows = []
    if rows:
        batches.append(_collate(rows, names, defaults, kind))
    return batches


def _collate(rows, names, defaults, kind):
    out = {}
    for name in names:
        values = [r[name] if name in r else defaults[name] for r in rows]
        if kind[name] is object:
            out[name] = np.array(values, dtype=object)
        else:
            out[name] = np.array([v if np.ndim(v) == 0 else v[0] for v in values], np.int64)
    return out


def naive_protobuf_batches(files, compression, spec, batch_size, limit):
    """The per-record reference: ParseFromString, then values pulled into numpy columns."""
    example = protos.Example()
    names = list(spec)
    batches, columns, count = [], {n: [] for n in names}, 0
    for record in io.read_tfrecords(files, compression):
        if count == limit:
            break
        example.ParseFromString(record)
        feature = example.features.feature
        for name in names:
            if name in feature:
                f = feature[name]
                column_values = f.bytes_list.value if spec[name].dtype == "string" else \
                    f.int64_list.value
                columns[name].append(column_values[0])
            else:
                columns[name].append(spec[name].default_value[0])
        count += 1
        if count % batch_size == 0:
            batches.append(_to_numpy(columns, spec))
            columns = {n: [] for n in names}
    if columns[names[0]]:
        batches.append(_to_numpy(columns, spec))
    return batches


def _to_numpy(columns, spec):
    return {name: np.array(values, dtype=object if spec[name].dtype == "string" else np.int64)
            for name, values in columns.items()}


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def best_of(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = clock()
        result = fn()
        times.append(clock() - start)
    return min(times), result


def check_equal(ours: dict, reference: dict, what: str):
    for name, column in ours.items():
        if not np.array_equal(column, reference[name]):
            raise AssertionError(f"{what}: feature {name!r} differs from ours")


def line(case, records, rate, reference, ref_rate, note=""):
    print(f"{case:<34} {records:>9,d}  ours {rate:>10,.0f} rec/s   {reference:<22} "
          f"{ref_rate:>10,.0f} rec/s   ratio {rate / ref_rate:6.2f}x {note}")


def run(directory, compression, spec, args):
    files = files_of(directory, compression)
    label = compression or "uncompressed"
    n = args.batch_size
    count_records(plain(files, compression, spec, n).take(20))  # warm-up
    plain_s, count = best_of(lambda: count_records(plain(files, compression, spec, n)),
                             args.repeat)
    assert count == args.records, (count, args.records)
    mixed_s, count = best_of(lambda: count_records(shuffled(files, compression, spec, n)),
                             args.repeat)
    assert count == args.records, (count, args.records)
    ours = next(iter(plain(files, compression, spec, n)))
    plain_rate, mixed_rate = args.records / plain_s, args.records / mixed_s

    refs = [("naive protobuf", naive_protobuf_batches)]
    try:
        import tfrecord  # noqa: F401
        refs.insert(0, ("tfrecord package", tfrecord_package_batches))
    except ImportError:
        print("tfrecord package: not installed, column skipped (pip install tfrecord)")
    limit = min(args.reference_records, args.records)
    for name, reader in refs:
        ref_s, batches = best_of(lambda r=reader: r(files, compression, spec, n, limit),
                                 args.repeat)
        check_equal(ours, batches[0], name)
        line(f"plain {label}", args.records, plain_rate, name, limit / ref_s)
    line(f"shuffle+interleave {label}", args.records, mixed_rate, "plain path", plain_rate,
         f"(costs {100 * (1 - mixed_rate / plain_rate):.1f} % of the plain throughput)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--reference-records", type=int, default=50_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", help="keep the shards here (reused by later runs)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: CPU time of this process (the pipelines are single-threaded;"
                             " robust on a shared machine); wall: elapsed time")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    spec = normalize_schema(criteo_spec())
    print(f"codec backend: {io.codec_backend()}; {args.records:,d} records x {len(spec)} "
          f"features in {args.shards} shards; batches of {args.batch_size}; best of "
          f"{args.repeat} ({args.clock} time); references on the first "
          f"{args.reference_records:,d} records")
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_shards(args.data_dir or tmp, args.records, args.shards, spec)
        for compression in (None, "GZIP"):
            run(directory, compression, spec, args)


if __name__ == "__main__":
    main()
