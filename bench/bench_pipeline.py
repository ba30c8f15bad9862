"""Benchmark of the Beam pipeline (pipelines/criteo.py) against a single-process floor.

Workload: a seeded Criteo-shaped CSV (label, 13 integer columns with missing values, 26
hex-string columns with Zipf-like frequencies); numeric log1p → z-score, strings →
vocabulary top_k=100000 + 1 OOV bucket, one bucketize(10) of a z-scored column; CSV → GZIP
TFRecords (level 1, the sinks' default, for both) + transform graph; the CSV is read lazily
(each pass re-reads its byte ranges). Printed in one run:

  beam (FnApiRunner, in-process)         wall time, peak RSS (the child's own VmHWM: for
                                         the multi-process modes, the runner only) and CPU
                                         seconds (workers included) of a child process
  beam (in-process, pinned to 1 core)    wall time: one worker with one core
  beam (multi_processing, 1 worker)      wall time: the same runner mode as 2 workers
  beam (multi_processing, 1 worker,      wall time: the same runner mode with one core, as
        pinned to 1 core)                a 1-vCPU cloud worker (2 workers get 2 cores)
  beam (multi_processing, 2 workers)     wall time
  beam (multi_threading, 2 workers)      wall time (numpy, pyarrow, zlib and the C codec
                                         release the GIL)
  floor: single-process numpy/pyarrow     the same math and encoding with no framework
  ratios: beam / floor, 1 worker / 2 workers
  scaling bound: the most any worker count could gain over a 1-worker run on this machine's
                 cores, from that run's own CPU seconds (see scaling_bound)

Each configuration runs in its own child process (so peak RSS is per run).

    .venv/bin/python bench/bench_pipeline.py [--rows 1000000] [--rss-repeat 5]
        [--rss-rows 5000000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "pipelines"))

import criteo  # noqa: E402


def floor(input_csv: str, output_dir: str) -> None:
    """The same transformation in plain numpy/pyarrow, one process, no framework."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from tft_lite.analyzers.quantiles import QuantilesCombiner
    from tft_lite.io import encode_examples
    from tft_lite.io.tfrecord import TFRecordWriter

    table = pacsv.read_csv(input_csv)
    out = {"label": table.column("label").to_numpy()}
    for name in criteo.INT_COLUMNS:
        x = np.log1p(np.maximum(table.column(name).fill_null(0).to_numpy(), 0)
                     .astype(np.float32))
        mean, std = x.mean(dtype=np.float64), x.std(dtype=np.float64)
        out[name] = ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)
    for name in criteo.CAT_COLUMNS:
        tokens = table.column(name).fill_null("")
        counts = pc.value_counts(tokens.filter(pc.not_equal(tokens, "")))
        order = pc.sort_indices(counts, sort_keys=[("counts", "descending"),
                                                   ("values", "descending")])
        vocab = counts.field("values").take(order)[:100_000]
        ids = pc.index_in(tokens, value_set=vocab).to_numpy(zero_copy_only=False)
        out[name] = np.where(np.isnan(ids.astype(float)), len(vocab), ids).astype(np.int64)
    combiner = QuantilesCombiner(10, 0.01, np.float32)
    acc = combiner.add_input(combiner.create_accumulator(), (out["I1"],))
    boundaries = np.asarray(combiner.extract_output(acc)[0]).ravel()
    out["I1_bucket"] = np.searchsorted(boundaries, out["I1"], side="right").astype(np.int64)
    spec = {name: criteo.tft.FixedLenFeature([], "float32" if out[name].dtype == np.float32
                                             else "int64") for name in out}
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "floor.tfrecord.gz")
    with TFRecordWriter(path, "GZIP", compression_level=1) as writer:
        for start in range(0, table.num_rows, 65_536):
            part = {name: values[start:start + 65_536] for name, values in out.items()}
            writer.write_batch(encode_examples(part, spec))


def _repeat_csv(source: str, target: str, times: int) -> None:
    """`source`'s rows `times` times under one header: rows grow, distinct values do not."""
    with open(source, "rb") as f:
        header = f.readline()
        body = f.read()
    with open(target, "wb") as out:
        out.write(header)
        for _ in range(times):
            out.write(body)


def child(mode: str, input_csv: str, output_dir: str) -> None:
    if mode in ("beam1c", "beam1pc"):  # one worker with one core (the runner, its worker
        # process and every thread they start inherit the affinity): a 1-vCPU worker
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    if mode == "floor":
        floor(input_csv, output_dir)
    else:
        flags = {"beam1": [], "beam1c": [],
                 "beam1p": ["--direct_running_mode=multi_processing", "--direct_num_workers=1"],
                 "beam1pc": ["--direct_running_mode=multi_processing",
                             "--direct_num_workers=1"],
                 "beam2": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
                 "beam2t": ["--direct_running_mode=multi_threading", "--direct_num_workers=2"],
                 }[mode]
        criteo.run(input_csv, output_dir, flags)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rss_mb": _peak_rss_mb(),
                      "cpu_seconds": _cpu_seconds() - cpu_start}))


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries a parent's RSS at
    fork over into the child's ru_maxrss across exec, so a child of this (CSV-generating)
    benchmark would report the parent's memory. Worker processes are not included."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (Beam's
    worker processes are waited for when the pipeline finishes, so they count)."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def measure(mode: str, input_csv: str, output_dir: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", mode, "--input", input_csv,
                             "--output", output_dir], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def scaling_bound(one_worker: dict, cores: int) -> float:
    """The most any number of workers on `cores` cores can speed up `one_worker`'s run: its
    CPU work can at best be spread over every core, so the run takes at least
    cpu_seconds / cores (more workers only add work). A worker that already keeps more than
    one core busy (pyarrow's CSV threads, the deflate thread) lowers the bound below `cores`.
    """
    return one_worker["seconds"] / (one_worker["cpu_seconds"] / cores)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rss-rows", type=int, default=0,
                        help="also measure peak RSS of the 1-worker run at this many rows")
    parser.add_argument("--rss-repeat", type=int, default=0, metavar="K",
                        help="also run the 1- and 2-worker configurations on the CSV "
                             "repeated K times (K x the rows, the same vocabulary): peak RSS "
                             "and scaling once fixed costs weigh less")
    parser.add_argument("--child", default=None)
    parser.add_argument("--input")
    parser.add_argument("--output")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.input, args.output)
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "criteo.csv")
        criteo.make_csv(csv, args.rows)
        print(f"{args.rows:,d} rows, {os.path.getsize(csv) / 1e6:.0f} MB CSV")
        runs = {mode: measure(mode, csv, os.path.join(tmp, mode)) for mode in _LABELS}
        _print_runs(runs)
        print(f"beam 1 worker / floor  {runs['beam1']['seconds'] / runs['floor']['seconds']:.2f}x"
              f"   (target <= 3x)")
        _print_scaling(runs)
        if args.rss_repeat:
            big = os.path.join(tmp, "repeated.csv")
            _repeat_csv(csv, big, args.rss_repeat)
            print(f"\nthe CSV repeated {args.rss_repeat}x ({args.rss_repeat * args.rows:,d} rows, "
                  f"the same vocabulary):")
            repeated = {mode: measure(mode, big, os.path.join(tmp, "repeated-" + mode))
                        for mode in _SCALING_MODES}
            _print_runs(repeated)
            _print_scaling(repeated)
            print(f"peak RSS of in-memory: {repeated['beam1']['rss_mb']:.0f} MB (vs "
                  f"{runs['beam1']['rss_mb']:.0f} MB at {args.rows:,d} rows)")
        if args.rss_rows:
            big = os.path.join(tmp, "big.csv")
            criteo.make_csv(big, args.rss_rows)
            r = measure("beam1", big, os.path.join(tmp, "big"))
            print(f"\nbeam in-memory at {args.rss_rows:,d} fresh rows: {r['seconds']:.1f} s, "
                  f"peak RSS {r['rss_mb']:.0f} MB (vs {runs['beam1']['rss_mb']:.0f} MB at "
                  f"{args.rows:,d} rows)")


_LABELS = {
    "floor": "floor: numpy/pyarrow, 1 process",
    "beam1": "beam FnApiRunner in-memory",
    "beam1c": "beam in-memory, pinned to 1 core",
    "beam1p": "beam FnApiRunner 1 worker process",
    "beam1pc": "beam 1 worker process, 1 core",
    "beam2": "beam FnApiRunner 2 worker processes",
    "beam2t": "beam FnApiRunner 2 worker threads",
}
_SHORT = {"beam1": "in-memory", "beam1c": "in-memory on 1 core", "beam1p": "1 process",
          "beam1pc": "1 process on 1 core", "beam2": "2 processes", "beam2t": "2 threads"}
_SCALING_MODES = ("beam1", "beam1c", "beam1p", "beam1pc", "beam2")


def _print_runs(runs: dict) -> None:
    for mode, r in runs.items():
        print(f"{_LABELS[mode]:<36} {r['seconds']:7.1f} s  peak RSS {r['rss_mb']:7.0f} MB  "
              f"CPU {r['cpu_seconds']:5.1f} s = {r['cpu_seconds'] / r['seconds']:.2f} cores")


def _print_scaling(runs: dict) -> None:
    """1 worker / 2 workers for each 1-worker configuration, and the most any worker count
    could gain over it on this machine's cores (scaling_bound)."""
    cores = len(os.sched_getaffinity(0))
    for one, two in (("beam1", "beam2"), ("beam1c", "beam2"), ("beam1p", "beam2"),
                     ("beam1pc", "beam2"), ("beam1", "beam2t")):
        if one in runs and two in runs:
            if one in ("beam1c", "beam1pc"):  # 1 core -> 2 cores: workers scaled out
                bound = "; each worker with one core, as a cloud runner adds workers"
            else:  # the 1-worker run already uses more than one of the cores
                bound = f"; bound on {cores} cores {scaling_bound(runs[one], cores):.2f}x"
            print(f"beam {_SHORT[one]} / {_SHORT[two]}  "
                  f"{runs[one]['seconds'] / runs[two]['seconds']:.2f}x   (target >= 1.6x{bound})")


if __name__ == "__main__":
    main()
