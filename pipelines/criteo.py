"""The Criteo-shaped benchmark workload as a Beam pipeline, runnable on any runner.

Input: a CSV with a header `label,I1..I13,C1..C26` (integers with missing values, hex-string
categories). Transform: each integer column log1p → z-score, each category
compute_and_apply_vocabulary(top_k=100000, num_oov_buckets=1), and I1's z-score bucketized
into 10 quantiles; the label passes through. Writes GZIP TFRecord shards plus
DIR/transform_fn/ and DIR/transformed_metadata/.

    python pipelines/criteo.py --input criteo.csv --output DIR [any Beam pipeline flag]

`--make-data N` first writes a seeded N-row Criteo-shaped CSV to --input (what
bench/bench_pipeline.py uses).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tft_lite as tft  # noqa: E402

INT_COLUMNS = [f"I{i}" for i in range(1, 14)]
CAT_COLUMNS = [f"C{i}" for i in range(1, 27)]
RAW_FEATURE_SPEC = {
    "label": tft.FixedLenFeature([], "int64"),
    **{name: tft.FixedLenFeature([], "int64", default_value=0) for name in INT_COLUMNS},
    **{name: tft.FixedLenFeature([], "string", default_value=b"") for name in CAT_COLUMNS},
}


def preprocessing_fn(inputs):
    outputs = {"label": inputs["label"]}
    for name in INT_COLUMNS:
        value = tft.cast(tft.maximum(inputs[name], 0), "float32")
        outputs[name] = tft.scale_to_z_score(tft.log1p(value))
    for name in CAT_COLUMNS:
        outputs[name] = tft.compute_and_apply_vocabulary(inputs[name], top_k=100_000,
                                                         num_oov_buckets=1)
    outputs["I1_bucket"] = tft.bucketize(outputs["I1"], 10)
    return outputs


def make_csv(path: str, rows: int, seed: int = 0, chunk: int = 500_000) -> None:
    """A seeded Criteo-shaped CSV: Zipf integers with ~20 % missing, Zipf hex categories."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    rng = np.random.default_rng(seed)
    vocabularies = [np.array([f"{v:08x}" for v in rng.integers(0, 2**32, size)], object)
                    for size in rng.integers(100, 400_000, len(CAT_COLUMNS))]
    tmp = f"{path}.tmp"
    with pacsv.CSVWriter(tmp, _schema(pa)) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            columns = {"label": pa.array(rng.integers(0, 2, n))}
            for name in INT_COLUMNS:
                columns[name] = pa.array(rng.zipf(1.4, n).astype(np.int64) - 1,
                                         mask=rng.random(n) < 0.2)
            for name, vocab in zip(CAT_COLUMNS, vocabularies):
                index = np.minimum(rng.zipf(1.2, n) - 1, len(vocab) - 1)
                columns[name] = pa.array(vocab[index], mask=rng.random(n) < 0.04)
            writer.write_table(pa.table(columns, schema=_schema(pa)))
    os.replace(tmp, path)


def _schema(pa):
    return pa.schema([("label", pa.int64())] + [(n, pa.int64()) for n in INT_COLUMNS] +
                     [(n, pa.string()) for n in CAT_COLUMNS])


def build(pipeline, input_csv: str, output_dir: str, num_shards=None,
          compression="GZIP", compression_level=1, lazy=True):
    import tft_lite.beam as tft_beam
    raw = pipeline | "ReadCsv" >> tft_beam.ReadCsv(input_csv, schema=RAW_FEATURE_SPEC,
                                                     lazy=lazy)
    metadata = tft_beam.DatasetMetadata(RAW_FEATURE_SPEC)
    transformed, transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
        preprocessing_fn)
    return (transformed, transform_fn) | "Write" >> tft_beam.WriteTransformOutput(
        output_dir, file_prefix="criteo", num_shards=num_shards, compression=compression,
        compression_level=compression_level)


def run(input_csv: str, output_dir: str, beam_args: list, num_shards=None,
        compression="GZIP", compression_level=1, lazy=True) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    if not any(arg.startswith("--runner") for arg in beam_args):
        beam_args = ["--runner=FnApiRunner"] + beam_args
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        build(pipeline, input_csv, output_dir, num_shards, compression, compression_level,
              lazy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--num-shards", type=int, default=None)
    parser.add_argument("--compression", default="GZIP", choices=["GZIP", "NONE"])
    parser.add_argument("--compression-level", type=int, default=1,
                        help="0-9; 1-3 compress with ISA-L (default 1: fast), 6 is "
                             "TensorFlow's level (files ~1.6x smaller, ~12x slower to write)")
    parser.add_argument("--make-data", type=int, default=0, metavar="ROWS")
    parser.add_argument("--eager", action="store_true",
                        help="read the CSV once and keep the batches for every pass (the "
                             "default re-reads it per pass: flat memory, workers share work)")
    args, beam_args = parser.parse_known_args(argv)
    if args.make_data:
        start = time.perf_counter()
        make_csv(args.input, args.make_data)
        print(f"wrote {args.make_data:,d} rows to {args.input} "
              f"({time.perf_counter() - start:.1f} s)")
    start = time.perf_counter()
    run(args.input, args.output, beam_args, args.num_shards,
        None if args.compression == "NONE" else args.compression, args.compression_level,
        not args.eager)
    print(f"analyzed and transformed {args.input} into {args.output} in "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
