"""The California housing example on Apache Beam: analyze, transform, write, then serve.

The book example this project grew from: z-score `housing_median_age` after subtracting its
mean (nested analyzers), turn `ocean_proximity` into vocabulary ids with OOV buckets,
bucketize `median_income` into quantiles, fill the missing `total_bedrooms` with their mean,
and pass the label through. Writes GZIP TFRecords + the transform graph under
./output/housing, then loads the graph with tft_lite.serving (numpy only) and prints three
raw rows next to their transformed values.

    python pipelines/housing.py [--input CSV] [--output DIR] [any Beam pipeline flag]

The runner defaults to Beam's FnApiRunner (in-process, offline); pass e.g. --runner=...,
--direct_running_mode=multi_processing --direct_num_workers=2, or a portable job endpoint.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tft_lite as tft  # noqa: E402
from tft_lite import serving  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CSV = os.path.join(HERE, "..", "data", "housing", "housing.csv")
NUMERIC = ["longitude", "latitude", "housing_median_age", "total_rooms", "population",
           "households", "median_income", "median_house_value"]
RAW_FEATURE_SPEC = {
    **{name: tft.FixedLenFeature([], "float32") for name in NUMERIC},
    "total_bedrooms": tft.VarLenFeature("float32"),  # 207 rows have no value
    "ocean_proximity": tft.FixedLenFeature([], "string"),
}


def preprocessing_fn(inputs):
    """The book chapter's transformations, written with TFT's names."""
    age = inputs["housing_median_age"]
    beds = inputs["total_bedrooms"]
    beds_dense = tft.squeeze(
        tft.sparse_tensor_to_dense_with_shape(beds, [None, 1], default_value=np.nan), 1)
    beds_filled = tft.where(tft.math.is_nan(beds_dense), tft.mean(beds), beds_dense)
    return {
        "age_centered_z": tft.scale_to_z_score(age - tft.mean(age)),
        "ocean_id": tft.compute_and_apply_vocabulary(inputs["ocean_proximity"],
                                                     num_oov_buckets=2),
        "income_bucket": tft.bucketize(inputs["median_income"], 10),
        "beds_filled_z": tft.scale_to_z_score(beds_filled),
        "rooms_log_z": tft.scale_to_z_score(tft.math.log1p(inputs["total_rooms"])),
        "median_house_value": inputs["median_house_value"],
    }


def build(pipeline, input_csv: str, output_dir: str):
    """Adds the read → analyze+transform → write steps to `pipeline`."""
    import tft_lite.beam as tft_beam
    from tft_lite.beam import filesystem as fs
    # lazy: each pass re-reads its byte ranges of the CSV instead of keeping parsed batches
    raw = pipeline | "ReadCsv" >> tft_beam.ReadCsv(input_csv, schema=RAW_FEATURE_SPEC, lazy=True)
    raw_metadata = tft_beam.DatasetMetadata.from_feature_spec(RAW_FEATURE_SPEC)
    with tft_beam.Context(temp_dir=fs.join(output_dir, "tmp")):
        transformed, transform_fn = (
            (raw, raw_metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn))
    return (transformed, transform_fn) | "Write" >> tft_beam.WriteTransformOutput(
        output_dir, file_prefix="housing", num_shards=4)


def run_pipeline(input_csv: str, output_dir: str, beam_args: list) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    if not any(arg.startswith("--runner") for arg in beam_args):
        beam_args = ["--runner=FnApiRunner"] + beam_args  # never the Prism download attempt
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        build(pipeline, input_csv, output_dir)


def show_rows(input_csv: str, output_dir: str, rows: int = 3) -> None:
    """Serving: load the graph with numpy only and transform raw rows (a gs:// output is
    first copied to a local directory: serving reads local files, without Beam)."""
    import tempfile

    import pyarrow.csv as pacsv
    from tft_lite.beam import filesystem as fs
    from tft_lite.beam.transform_fn_io import download_transform_fn
    with tempfile.TemporaryDirectory() as local:
        graph = serving.load(download_transform_fn(output_dir, local)
                             if fs.is_remote(output_dir) else output_dir)
    with fs.open_read(input_csv) as f:
        table = pacsv.read_csv(f).slice(0, rows)
    for row in table.to_pylist():
        raw = {k: v for k, v in row.items() if k in RAW_FEATURE_SPEC}
        raw["total_bedrooms"] = [] if raw["total_bedrooms"] is None else [raw["total_bedrooms"]]
        out = graph.transform_instance(raw)
        shown = {k: np.asarray(v).tolist() for k, v in sorted(out.items())}
        print(f"  raw {raw}\n    -> {shown}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=DEFAULT_CSV)
    parser.add_argument("--output", default=os.path.join("output", "housing"))
    args, beam_args = parser.parse_known_args(argv)
    start = time.perf_counter()
    print(f"[1/3] analyze + transform {args.input} on Beam "
          f"({' '.join(beam_args) or '--runner=FnApiRunner'})")
    run_pipeline(args.input, args.output, beam_args)
    from tft_lite.beam import filesystem as fs
    shards = fs.match(fs.join(args.output, "housing-*-of-*.tfrecord.gz"))
    print(f"[2/3] wrote {len(shards)} TFRecord shards, transform_fn/ and "
          f"transformed_metadata/ under {args.output} ({time.perf_counter() - start:.1f} s)")
    print("[3/3] serving: tft_lite.serving.load + transform_instance on three raw rows")
    show_rows(args.input, args.output)


if __name__ == "__main__":
    main()
