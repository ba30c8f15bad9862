"""Benchmark of local analyze + transform on a Criteo-shaped CSV, next to hand-written Polars.

Workload (seeded CSV of `--rows` rows, written once per run to a temp dir, not timed):
label, I1..I13 integers with ~20 % missing (Zipf-like), C1..C26 8-hex-digit tokens with ~5 %
missing and Zipf-like frequencies (exponent 1.05..2.5 across columns, so some columns have
more than 100,000 distinct tokens and top_k bites). The preprocessing_fn:

    I*  -> scale_to_z_score(log1p(x))          (missing -> 0.0, float32)
    C*  -> compute_and_apply_vocabulary(x, top_k=100_000, num_oov_buckets=1)
    I1_bucket -> bucketize(z-scored I1, 10)    (a second analysis phase)

Timed, both in this process, best of `--repeat` after one warm-up:

  tft_lite  pyarrow.csv.read_csv + tft_lite.analyze + graph.transform of all rows
  polars    the same math by hand: polars.scan_csv, the analyzers as lazy queries under one
            collect_all, then one lazy query for every output (exact quantiles instead of
            TFT's sketch: bucket ids may differ near a boundary)

The two alternate within each round, so they share the noise of a busy machine; the line
after the ratio splits our fastest run into read / analyze / transform.

Results are checked first (vocabulary ids equal, z-scores within float32 rounding, bucket
ids equal but for a small fraction). Polars is a benchmark-only dependency (extra `bench`);
without it the Polars column is skipped with a message.

    taskset -c 0,1 .venv/bin/python bench/bench_local.py [--rows 1000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tft_lite as tft  # noqa: E402

try:
    import polars as pl
except ImportError:  # a benchmark-only dependency
    pl = None

INT_COLUMNS = [f"I{i}" for i in range(1, 14)]
CAT_COLUMNS = [f"C{i}" for i in range(1, 27)]
TOP_K = 100_000
NUM_BUCKETS = 10
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def criteo_csv(path: str, rows: int, seed: int = 0) -> None:
    """Writes the seeded Criteo-shaped CSV (header line, blanks for missing values)."""
    rng = np.random.default_rng(seed)
    columns = {"label": pa.array(rng.integers(0, 2, rows))}
    for name in INT_COLUMNS:
        values = np.minimum(rng.zipf(1.5, rows), 1 << 20).astype(np.int64) - 1
        columns[name] = pa.array(values, mask=rng.random(rows) < 0.2)
    for i, name in enumerate(CAT_COLUMNS):
        exponent = 1.05 + 1.45 * i / (len(CAT_COLUMNS) - 1)
        rank = np.minimum(rng.zipf(exponent, rows), 1 << 31).astype(np.uint64)
        code = (rank * np.uint64(0x9E3779B1) + np.uint64(i * 7919)) & np.uint64(0xFFFFFFFF)
        digits = (code[:, None] >> (np.arange(28, -1, -4, dtype=np.uint64))) & np.uint64(15)
        tokens = _HEX[digits.astype(np.intp)].view("S8").reshape(-1)
        array = pa.array(tokens.astype(object), type=pa.string())
        blank = pa.array(rng.random(rows) < 0.05)  # a missing value: an empty CSV field
        columns[name] = pc.if_else(blank, pa.scalar("", pa.string()), array)
    pacsv.write_csv(pa.table(columns), path,
                    pacsv.WriteOptions(quoting_style="none", batch_size=1 << 16))


def raw_feature_spec() -> dict:
    spec = {"label": tft.FixedLenFeature([], "int64")}
    spec.update({c: tft.FixedLenFeature([], "float32", default_value=0.0) for c in INT_COLUMNS})
    spec.update({c: tft.FixedLenFeature([], "string", default_value=b"") for c in CAT_COLUMNS})
    return spec


def preprocessing_fn(inputs):
    out = {"label": inputs["label"]}
    for name in INT_COLUMNS:
        out[name] = tft.scale_to_z_score(tft.log1p(inputs[name]))
    for name in CAT_COLUMNS:
        out[name] = tft.compute_and_apply_vocabulary(inputs[name], top_k=TOP_K,
                                                     num_oov_buckets=1)
    out["I1_bucket"] = tft.bucketize(out["I1"], NUM_BUCKETS)
    return out


def _column_types() -> dict:
    types = {"label": pa.int64()}
    types.update({c: pa.int64() for c in INT_COLUMNS})
    types.update({c: pa.string() for c in CAT_COLUMNS})
    return types


def run_tft_lite(path: str, stages: dict | None = None) -> dict:
    """CSV -> analyze -> transform; `stages` gets the seconds of each step when given."""
    start = time.perf_counter()
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types=_column_types()))
    read = time.perf_counter()
    graph = tft.analyze(preprocessing_fn, table, raw_feature_spec())
    analyzed = time.perf_counter()
    outputs = graph.transform(table)
    if stages is not None:
        stages.update(read=read - start, analyze=analyzed - read,
                      transform=time.perf_counter() - analyzed)
    return outputs


def _polars_log1p(name: str):
    return pl.col(name).fill_null(0).cast(pl.Float32).log1p()


def _polars_z(name: str, mean, std):
    x = _polars_log1p(name)
    return pl.when(std != 0).then((x - mean) / std).otherwise(x - mean)


def run_polars(path: str):
    """The same math as preprocessing_fn in Polars: one CSV read (scan_csv), the analyzers
    as lazy queries collected together (in parallel), then one lazy query for all outputs."""
    schema = {"label": pl.Int64, **{c: pl.Int64 for c in INT_COLUMNS},
              **{c: pl.String for c in CAT_COLUMNS}}
    frame = pl.scan_csv(path, schema=schema).collect()
    moments = [e for c in INT_COLUMNS for e in (
        _polars_log1p(c).cast(pl.Float64).mean().cast(pl.Float32).alias(f"{c}_mean"),
        _polars_log1p(c).cast(pl.Float64).var(ddof=0).cast(pl.Float32).sqrt()
        .alias(f"{c}_std"))]
    stats, *vocabs = pl.collect_all([frame.lazy().select(moments)] + [
        frame.lazy().select(pl.col(c).alias("token")).filter(pl.col("token") != "")
        .group_by("token").len().sort(["len", "token"], descending=True).head(TOP_K)
        for c in CAT_COLUMNS])
    stats = stats.row(0, named=True)
    z = {c: _polars_z(c, stats[f"{c}_mean"], stats[f"{c}_std"]) for c in INT_COLUMNS}
    # Second phase: exact quantiles ("lower") of the z-scored I1 from one sort.
    ranks = [(frame.height - 1) * q // NUM_BUCKETS for q in range(1, NUM_BUCKETS)]
    bounds = frame.lazy().select(z["I1"].sort().gather(ranks)).collect().to_series().to_list()
    exprs = [pl.col("label")] + [z[c].alias(c) for c in INT_COLUMNS]
    exprs.append(pl.sum_horizontal([(z["I1"] >= b).cast(pl.Int64) for b in bounds])
                 .alias("I1_bucket"))
    parts = [frame.lazy().select(exprs)]
    for name, vocab in zip(CAT_COLUMNS, vocabs):  # a left join beat replace_strict here
        ids = vocab.lazy().select(pl.col("token").alias(name),
                                  pl.int_range(pl.len(), dtype=pl.Int64).alias("_id"))
        parts.append(frame.lazy().select(pl.col(name).fill_null(""))
                     .join(ids, on=name, how="left", maintain_order="left")
                     .select(pl.col("_id").fill_null(vocab.height).alias(name)))
    return pl.concat(parts, how="horizontal").collect()


def check(ours: dict, theirs) -> str:
    """Raises if the results disagree; returns a short note on the approximate parts."""
    for name in ["label"] + CAT_COLUMNS:
        if not np.array_equal(ours[name], theirs[name].to_numpy()):
            raise AssertionError(f"{name}: tft_lite and Polars disagree")
    for name in INT_COLUMNS:
        np.testing.assert_allclose(ours[name], theirs[name].to_numpy(), rtol=2e-6, atol=2e-6,
                                   err_msg=name)
    same = np.mean(ours["I1_bucket"] == theirs["I1_bucket"].to_numpy())
    if same < 0.98:
        raise AssertionError(f"I1_bucket: only {same:.2%} of bucket ids agree")
    return f"bucket ids agree on {same:.2%} of rows (quantile sketch vs exact)"


def best_times(fns: list, repeat: int) -> list:
    """Min wall time of each function over `repeat` rounds after a warm-up round; the
    functions alternate within a round so that they share the machine's noise."""
    best = [float("inf")] * len(fns)
    for round_index in range(repeat + 1):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            if round_index:
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-polars", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "criteo.csv")
        criteo_csv(path, args.rows)
        size_mb = os.path.getsize(path) / 1e6
        cpus = sorted(os.sched_getaffinity(0))
        print(f"{args.rows:,d} rows, {size_mb:.0f} MB CSV; cpus {cpus}; "
              f"pyarrow {pa.__version__}, polars {pl.__version__ if pl else '-'}")
        use_polars = pl is not None and not args.skip_polars
        if pl is None:
            print("polars is not installed (pip install polars, or the `bench` extra): "
                  "skipping the Polars column")
        if use_polars:
            print(check(run_tft_lite(path), run_polars(path)))
        stages, best_stages = {}, {}

        def ours():
            run_tft_lite(path, stages)
            if sum(stages.values()) < sum(best_stages.values() or [float("inf")]):
                best_stages.update(stages)
        fns = [ours] + ([lambda: run_polars(path)] if use_polars else [])
        times = best_times(fns, args.repeat)
        line = f"analyze+transform  {args.rows:>9,d} rows  tft_lite {times[0] * 1e3:8.0f} ms"
        if use_polars:
            line += f"  polars {times[1] * 1e3:8.0f} ms  ratio {times[0] / times[1]:5.2f}x"
        print(line)
        print("tft_lite stages (fastest run): " + ", ".join(
            f"{name} {seconds * 1e3:.0f} ms" for name, seconds in best_stages.items()))


if __name__ == "__main__":
    main()
