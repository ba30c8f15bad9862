"""Peak memory of a top_k vocabulary over many distinct tokens (tft_lite.analyze, in process).

Feeds `--distinct` distinct 16-byte tokens (each seen once, plus a few frequent tokens so the
top_k is known) in batches of 100,000 through `compute_and_apply_vocabulary(top_k=1000)` and
prints the wall time and the peak RSS of the child process next to the size of the raw token
bytes (the reference: what holding every distinct token once costs at minimum).

    .venv/bin/python bench/bench_vocab_memory.py [--distinct 10000000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def batches(distinct: int, batch_rows: int = 100_000):
    frequent = [f"frequent-{i:03d}".encode() for i in range(50)]
    for start in range(0, distinct, batch_rows):
        ids = np.arange(start, min(start + batch_rows, distinct), dtype=np.uint64)
        tokens = [f"{i:016x}".encode() for i in ids.tolist()]
        tokens += frequent * 3  # each frequent token: 3 per batch, far above any unique one
        yield pa.record_batch({"t": pa.array(tokens, pa.binary())})


def child(distinct: int) -> None:
    import tft_lite as tft

    def fn(inputs):
        return {"id": tft.compute_and_apply_vocabulary(inputs["t"], top_k=1000)}

    start = time.perf_counter()
    graph = tft.analyze(fn, batches(distinct), {"t": tft.FixedLenFeature([], "string")})
    seconds = time.perf_counter() - start
    vocab = next(iter(graph.assets.values())).split(b"\n")
    assert vocab[:50] == sorted((f"frequent-{i:03d}".encode() for i in range(50)),
                                reverse=True), vocab[:5]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distinct", type=int, default=10_000_000)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.distinct)
        return
    baseline = subprocess.run([sys.executable, __file__, "--child", "--distinct", "100000"],
                              capture_output=True, text=True, check=True)
    result = subprocess.run([sys.executable, __file__, "--child", "--distinct",
                             str(args.distinct)], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    small, big = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (baseline, result))
    raw_mb = args.distinct * 16 / 1e6
    print(f"{args.distinct:,d} distinct tokens, top_k=1000: {big['seconds']:.1f} s, peak RSS "
          f"{big['rss_mb']:.0f} MB (process with 100k tokens: {small['rss_mb']:.0f} MB; raw "
          f"token bytes {raw_mb:.0f} MB; growth {(big['rss_mb'] - small['rss_mb']) / raw_mb:.1f}x "
          "the raw bytes)")


if __name__ == "__main__":
    main()
