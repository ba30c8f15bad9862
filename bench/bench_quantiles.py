"""Micro-benchmark of tft_lite's QuantilesCombiner (TFT's quantiles sketch in numpy).

Run: .venv/bin/python bench/bench_quantiles.py [num_values]
Prints add / compact / merge / extract timings and accumulator sizes for a few epsilons, next
to the exact floor measured in the same run (numpy sorts all values: np.quantile), with their
ratio, and the sketch's worst rank error relative to eps * n.
"""
from __future__ import annotations

import pickle
import sys
import time

import numpy as np

from tft_lite.analyzers.quantiles import QuantilesCombiner


def _entries(acc) -> int:
    streams, _ = acc
    return sum(buf.size + sum(s.shape[1] for s in levels) for buf, _, levels in streams)


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    data = {
        "normal": rng.normal(size=n),
        "int_10k": rng.integers(0, 10_000, n).astype(np.int64),
        "sorted": np.sort(rng.lognormal(0, 2, n)),
    }
    print(f"{n} values per run")
    for name, x in data.items():
        for eps in (0.1, 0.01, 0.001):
            c = QuantilesCombiner(10, eps)
            t0 = time.perf_counter()
            acc = c.create_accumulator()
            for i in range(0, n, 10_000):
                acc = c.add_input(acc, (x[i : i + 10_000],))
            t1 = time.perf_counter()
            compacted = c.compact(acc)
            t2 = time.perf_counter()
            c.merge_accumulators([compacted, c.compact(acc)])
            t3 = time.perf_counter()
            boundaries = np.asarray(c.extract_output(c.compact(acc))[0], np.float64).ravel()
            t4 = time.perf_counter()
            exact_s = time.perf_counter()
            np.quantile(x, np.arange(1, 10) / 10)
            exact_s = time.perf_counter() - exact_s
            ordered = np.sort(x)
            ranks = np.searchsorted(ordered, boundaries, side="right")
            targets = np.arange(1, 10) * n / 10
            rank_error = np.max(np.abs(ranks - targets)) / (eps * n)
            print(
                f"{name:8s} eps={eps:<6} add {t1 - t0:6.3f}s  compact {t2 - t1:6.3f}s  "
                f"merge {t3 - t2:6.3f}s  extract {t4 - t3:6.3f}s  "
                f"entries {_entries(acc):7d} ({len(pickle.dumps(acc)) / 1e6:5.2f} MB pickled, "
                f"{len(pickle.dumps(compacted)) / 1e6:5.2f} MB compacted)  "
                f"np.quantile {exact_s:6.3f}s  ratio {(t1 - t0) / exact_s:5.2f}x  "
                f"rank error {rank_error:4.2f} eps*n"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
