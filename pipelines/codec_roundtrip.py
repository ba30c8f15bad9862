"""Round trip of the bundled housing CSV through TFRecord files of tf.train.Example.

Reads data/housing/housing.csv with pyarrow, encodes every row as a tf.train.Example
(total_bedrooms as a VarLenFeature: its 207 missing values are left out of their Examples, as
TensorFlow Transform's housing example does), writes GZIP TFRecord shards, reads them back,
decodes them and checks every value against the CSV. Prints what it does and three rows.

    python pipelines/codec_roundtrip.py [--output output/codec_demo] [--shards 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tft_lite import io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CSV = os.path.join(HERE, "..", "data", "housing", "housing.csv")
NUMERIC = ["longitude", "latitude", "housing_median_age", "total_rooms", "population",
           "households", "median_income", "median_house_value"]
SPEC = {**{name: io.FixedLenFeature([], "float32") for name in NUMERIC},
        "total_bedrooms": io.VarLenFeature("float32"),
        "ocean_proximity": io.FixedLenFeature([], "string")}


def read_housing(path: str) -> pa.Table:
    types = {name: pa.float32() for name in NUMERIC + ["total_bedrooms"]}
    types["ocean_proximity"] = pa.string()
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def write_shards(table: pa.Table, output: str, shards: int) -> list[str]:
    os.makedirs(output, exist_ok=True)
    paths = []
    rows_per_shard = -(-table.num_rows // shards)
    for shard in range(shards):
        part = table.slice(shard * rows_per_shard, rows_per_shard)
        path = os.path.join(output, f"housing-{shard:05d}-of-{shards:05d}.tfrecord.gz")
        io.write_tfrecords(path, io.encode_examples(part, SPEC), compression_type="GZIP")
        paths.append(path)
        print(f"  wrote {path} ({part.num_rows:,d} rows, {os.path.getsize(path):,d} bytes)")
    return paths


def check(table: pa.Table, decoded: dict) -> None:
    for name in NUMERIC:
        expected = table.column(name).to_numpy()
        assert np.array_equal(decoded[name], expected), name
    beds = table.column("total_bedrooms")
    assert decoded["total_bedrooms"].to_pylist() == [
        [] if v is None else [v] for v in beds.to_pylist()], "total_bedrooms"
    ocean = [v.encode() for v in table.column("ocean_proximity").to_pylist()]
    assert decoded["ocean_proximity"].tolist() == ocean, "ocean_proximity"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=DEFAULT_CSV)
    parser.add_argument("--output", default=os.path.join("output", "codec_demo"))
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"[1/3] reading {args.input}")
    table = read_housing(args.input)
    missing = table.column("total_bedrooms").null_count
    print(f"  {table.num_rows:,d} rows, {table.num_columns} columns, {missing} missing "
          f"total_bedrooms; codec backend: {io.codec_backend()}")
    print(f"[2/3] encoding tf.train.Examples and writing {args.shards} GZIP TFRecord shards")
    paths = write_shards(table, args.output, args.shards)
    print("[3/3] reading the shards back and checking every value")
    batches = io.read_tfrecord_batches(os.path.join(args.output, "housing-*.tfrecord.gz"),
                                       compression_type="auto")
    records = pa.chunked_array(list(batches))
    decoded = io.decode_examples(records, SPEC)
    check(table, decoded)
    print(f"  {len(records):,d} records from {len(paths)} files match the CSV exactly")
    for row in range(3):
        shown = {name: (np.asarray(decoded[name][row]).tolist() if name != "total_bedrooms"
                        else decoded[name][row].as_py()) for name in sorted(SPEC)}
        print(f"  row {row}: {shown}")
    print(f"done in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
