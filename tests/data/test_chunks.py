"""Chunks: record reordering through binary views, and the per-iteration context."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from tft_lite.data import _chunks as chunks_
from tft_lite.data._chunks import ErrorStats, IterContext, StatsSink

SHORT = [b"", b"a", b"exactly12byt"]  # stored inside the view (<= 12 bytes)
LONG = [b"thirteen bytes", b"x" * 1000, b"\x00" * 40]  # stored in data buffers


def test_take_across_parts_of_short_and_long_records():
    parts = [pa.array(SHORT, pa.binary()), pa.array(LONG, pa.large_binary()),
             pa.array(LONG[::-1], pa.binary()).slice(1)]
    flat = SHORT + LONG + LONG[::-1][1:]
    order = np.array([7, 0, 3, 5, 2, 6, 4, 1], dtype=np.int64)
    out = chunks_.take(parts, order)
    assert out.type == pa.binary_view()
    assert out.to_pylist() == [flat[i] for i in order]
    assert out.cast(pa.large_binary()).to_pylist() == [flat[i] for i in order]


def test_take_of_views_of_views_and_slices():
    base = pa.array([b"record-%03d-padding" % i for i in range(50)], pa.binary())
    first_pool = base.to_pylist()[10:40] + base.to_pylist()
    once = chunks_.take([base.slice(10, 30), base], np.arange(59, -1, -1))
    assert once.to_pylist() == first_pool[59::-1]
    twice = chunks_.take([once.slice(5, 20), once], np.array([0, 25, 19, 79]))
    pool = once.to_pylist()[5:25] + once.to_pylist()
    assert twice.to_pylist() == [pool[i] for i in [0, 25, 19, 79]]


def test_take_drops_buffers_no_view_uses():
    a = pa.array([b"a" * 20] * 3, pa.binary())
    b = pa.array([b"b" * 20] * 3, pa.binary())
    out = chunks_.take([a, b], np.array([4, 5]))
    assert out.to_pylist() == [b"b" * 20] * 2
    assert len(out.buffers()) == 3  # validity, views, and only b's data buffer


def test_compact_copies_when_few_records_pin_a_large_buffer():
    big = pa.array([b"y" * 1000] * 100_000, pa.binary())  # ~100 MB
    one = chunks_.take([big], np.array([7]))
    assert sum(b.size for b in one.buffers()[2:]) >= 100_000_000
    small = chunks_.compact(one)
    assert small.to_pylist() == [b"y" * 1000]
    assert sum(b.size for b in small.buffers()[2:]) < 10_000
    assert chunks_.compact(chunks_.take([big], np.arange(100_000))) is not None


def test_list_chunks_take_and_concat():
    assert chunks_.take([[1, 2], [3]], np.array([2, 0])) == [3, 1]
    assert chunks_.concat([[1], pa.array([b"x"])]) == [1, b"x"]
    assert chunks_.to_user(pa.array([b"q"])).tolist() == [b"q"]


def test_context_shards_files_and_shares_the_flag():
    ctx = IterContext(shard=(1, 3))
    inner = ctx.derive(shard=None)
    assert inner.shard_files(["a", "b", "c", "d"]) == ["a", "b", "c", "d"]
    assert not ctx.shard_state.applied
    assert ctx.shard_files(["a", "b", "c", "d", "e"]) == ["b", "e"]
    assert inner.shard_state.applied


def test_stats_sink_moves_only_new_counts():
    ctx = IterContext(errors=ErrorStats())
    sink = StatsSink(ctx)
    sink.local.records, sink.local.corrupt_records = 5, 1
    sink.local.errors.append("e1")
    sink.flush()
    sink.local.records += 2
    sink.flush()
    sink.flush()
    assert (ctx.errors.records, ctx.errors.corrupt_records, ctx.errors.errors) == (7, 1, ["e1"])


def test_compact_moves_only_records_of_mostly_dead_buffers():
    sparse_buf = pa.array([b"s%04d" % i + b"." * 995 for i in range(80_000)], pa.binary())
    dense_buf = pa.array([b"d%04d" % i + b"." * 995 for i in range(4)], pa.binary())
    chunk = chunks_.take([sparse_buf, dense_buf], np.array([80_000, 3, 80_002, 79_999, 5]))
    before = chunk.to_pylist()
    small = chunks_.compact(chunk)
    assert small.to_pylist() == before
    kept = small.buffers()[2:]
    assert sum(b.size for b in kept) < 10_000  # the 80 MB buffer is no longer pinned
    assert dense_buf.buffers()[2].address in [b.address for b in kept]  # half live: stays
    assert chunks_.compact(dense_buf.cast(pa.binary_view())).to_pylist() == \
        dense_buf.to_pylist()


def test_without_binary_views_records_are_copied_with_the_same_result(monkeypatch):
    from tests.data.util import Chunks, reference_shuffle
    records = [b"record-%03d-of-the-test" % i for i in range(300)]
    expected = reference_shuffle(records, 50, np.random.default_rng([5, 0]))
    monkeypatch.setattr(chunks_, "_VIEW", None)  # as on pyarrow < 16
    ds = Chunks([records[:120], records[120:]], columnar=True).shuffle(50, seed=5)
    assert list(ds) == expected
    batched = [r for b in ds.batch(64) for r in b.tolist()]  # iteration 1: a new order
    assert sorted(batched) == sorted(records) and batched != expected
