"""Dataset transformations: hand-computed orders and contents, tf.data's rules for each."""
from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa
import pytest

import tft_lite.data as tfd
from tests.data.util import Chunks


def values(dataset):
    return [v.tolist() if isinstance(v, np.ndarray) else v for v in dataset]


# --- sources ---------------------------------------------------------------------------------

def test_range_is_pythons_range_of_int64():
    assert values(tfd.Dataset.range(5)) == [0, 1, 2, 3, 4]
    assert values(tfd.Dataset.range(2, 11, 3)) == [2, 5, 8]
    assert values(tfd.Dataset.range(5, 0, -2)) == [5, 3, 1]
    assert all(type(v) is np.int64 for v in tfd.Dataset.range(3))
    assert values(tfd.Dataset.range(3000).skip(2998)) == [2998, 2999]  # across chunks


def test_from_tensor_slices_structures_and_strings():
    ds = tfd.Dataset.from_tensor_slices(({"a": [1, 2, 3]}, ["x", "y", "z"]))
    assert [(e[0]["a"].item(), e[1]) for e in ds] == [(1, b"x"), (2, b"y"), (3, b"z")]
    rows = list(tfd.Dataset.from_tensor_slices(np.arange(6).reshape(3, 2)))
    assert [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="different first dimensions"):
        tfd.Dataset.from_tensor_slices(([1, 2], [1, 2, 3]))
    with pytest.raises(ValueError, match="scalar"):
        tfd.Dataset.from_tensor_slices(5)


def test_from_tensors_is_one_element():
    (element,) = list(tfd.Dataset.from_tensors(([1, 2], "s")))
    assert element[0].tolist() == [1, 2] and element[1] == b"s"


# --- map / filter ----------------------------------------------------------------------------

def test_map_unpacks_tuples_not_dicts():
    ds = tfd.Dataset.from_tensor_slices(([1, 2], [10, 20])).map(lambda a, b: a + b)
    assert values(ds) == [11, 22]
    ds = tfd.Dataset.from_tensor_slices({"a": [1, 2]}).map(lambda d: d["a"] * 3)
    assert values(ds) == [3, 6]


@pytest.mark.parametrize("threads", [2, 3, tfd.AUTOTUNE])
def test_parallel_map_keeps_order(threads):
    def slow_square(x):
        time.sleep(0.002 * (int(x) % 3))  # later elements often finish first
        return x * x
    ds = tfd.Dataset.range(50).map(slow_square, num_parallel_calls=threads)
    assert values(ds) == [x * x for x in range(50)]


def test_parallel_map_nondeterministic_has_same_elements():
    ds = tfd.Dataset.range(100).map(lambda x: x + 1, num_parallel_calls=4, deterministic=False)
    assert sorted(values(ds)) == list(range(1, 101))


def test_map_error_propagates_with_its_type():
    def boom(x):
        if x == 3:
            raise KeyError("bad element")
        return x
    for threads in (None, 2):
        with pytest.raises(KeyError, match="bad element"):
            list(tfd.Dataset.range(10).map(boom, num_parallel_calls=threads))


def test_filter_on_elements_and_columnar_records():
    assert values(tfd.Dataset.range(10).filter(lambda x: x % 3 == 0)) == [0, 3, 6, 9]
    records = Chunks([[b"a", b"bb"], [b"ccc", b"d"]], columnar=True)
    assert list(records.filter(lambda r: len(r) > 1)) == [b"bb", b"ccc"]
    with pytest.raises(ValueError, match="scalar bool"):
        list(tfd.Dataset.range(3).filter(lambda x: np.array([True, False])))


# --- batch / unbatch -------------------------------------------------------------------------

def test_batch_and_drop_remainder():
    assert values(tfd.Dataset.range(7).batch(3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert values(tfd.Dataset.range(7).batch(3, drop_remainder=True)) == [[0, 1, 2], [3, 4, 5]]
    assert values(tfd.Dataset.range(0).batch(3)) == []
    with pytest.raises(ValueError, match="batch_size"):
        tfd.Dataset.range(3).batch(0)


def test_batch_of_structures():
    ds = tfd.Dataset.from_tensor_slices({"x": [[1, 2], [3, 4], [5, 6]], "s": ["a", "b", "c"]})
    first, second = list(ds.batch(2))
    assert first["x"].tolist() == [[1, 2], [3, 4]] and first["s"].tolist() == [b"a", b"b"]
    assert first["s"].dtype == object and second["x"].shape == (1, 2)


def test_batch_of_mismatched_shapes_is_a_clear_error():
    ds = tfd.Dataset.from_tensor_slices([[1, 2, 3], [4, 5, 6]]).map(lambda x: x[: x[0]])
    with pytest.raises(ValueError, match="cannot stack element 1 of shape"):
        list(ds.batch(2))


@pytest.mark.parametrize("chunks", [[[b"a", b"b", b"c", b"d", b"e"]],
                                    [[b"a"], [b"b", b"c", b"d"], [b"e"]],
                                    [[b"a", b"b"], [], [b"c", b"d", b"e"]]])
def test_batch_of_records_slices_chunks(chunks):
    batches = list(Chunks(chunks, columnar=True).batch(2))
    assert [b.tolist() for b in batches] == [[b"a", b"b"], [b"c", b"d"], [b"e"]]
    assert all(b.dtype == object for b in batches)  # numpy object arrays of bytes, like TF


def test_unbatch_inverts_batch():
    assert values(tfd.Dataset.range(7).batch(3).unbatch()) == list(range(7))
    ds = tfd.Dataset.from_tensor_slices(([1, 2, 3], ["a", "b", "c"])).batch(2).unbatch()
    assert [(a.item(), b) for a, b in ds] == [(1, b"a"), (2, b"b"), (3, b"c")]
    records = Chunks([[b"a", b"b", b"c"]], columnar=True)
    assert list(records.batch(2).unbatch()) == [b"a", b"b", b"c"]
    with pytest.raises(ValueError, match="first dimension"):
        list(records.unbatch())


def test_unbatch_of_mismatched_components_is_an_error():
    ds = tfd.Dataset.from_tensors(([1, 2], [1, 2, 3]))
    with pytest.raises(ValueError, match="different first dimensions"):
        list(ds.unbatch())


# --- repeat / take / skip / shard / apply ----------------------------------------------------

def test_repeat_take_skip():
    assert values(tfd.Dataset.range(3).repeat(2)) == [0, 1, 2, 0, 1, 2]
    assert values(tfd.Dataset.range(3).repeat().take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert values(tfd.Dataset.range(0).repeat()) == []  # never a hang
    assert values(tfd.Dataset.range(5).take(2)) == [0, 1]
    assert values(tfd.Dataset.range(5).take(-1)) == [0, 1, 2, 3, 4]
    assert values(tfd.Dataset.range(5).take(0)) == []
    assert values(tfd.Dataset.range(5).skip(3)) == [3, 4]
    assert values(tfd.Dataset.range(5).skip(-1)) == []
    assert values(tfd.Dataset.range(5).skip(9)) == []


def test_take_and_skip_on_records_cut_chunks():
    records = Chunks([[b"a", b"b"], [b"c", b"d", b"e"]], columnar=True)
    assert list(records.skip(1).take(3)) == [b"b", b"c", b"d"]
    assert list(records.skip(2)) == [b"c", b"d", b"e"]


def test_take_stops_reading_upstream():
    pulled = []

    class Counting(tfd.Dataset):
        def _chunks(self, ctx):
            for i in range(100):
                pulled.append(i)
                yield [i]
    assert values(Counting().take(3)) == [0, 1, 2]
    assert pulled == [0, 1, 2]


def test_shard_and_apply():
    assert values(tfd.Dataset.range(10).shard(3, 1)) == [1, 4, 7]
    assert values(tfd.Dataset.range(3000).shard(1000, 999)) == [999, 1999, 2999]
    assert values(tfd.Dataset.range(4).apply(lambda ds: ds.map(lambda x: -x))) == [0, -1, -2,
                                                                                   -3]
    with pytest.raises(ValueError, match="shard index"):
        tfd.Dataset.range(3).shard(2, 2)


# --- prefetch --------------------------------------------------------------------------------

def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "tft_lite.data.prefetch"]


def test_prefetch_keeps_elements_and_order():
    assert values(tfd.Dataset.range(3000).prefetch(2)) == list(range(3000))
    assert values(tfd.Dataset.range(10).prefetch(tfd.AUTOTUNE).batch(4)) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_prefetch_thread_ends_when_consumer_stops_early():
    before = len(_prefetch_threads())
    it = iter(tfd.Dataset.range(10**9).prefetch(1))
    assert next(it) == 0
    it.close()
    deadline = time.time() + 5
    while len(_prefetch_threads()) > before and time.time() < deadline:
        time.sleep(0.05)
    assert len(_prefetch_threads()) <= before


def test_prefetch_reraises_errors():
    def boom(x):
        raise RuntimeError(f"failed on {x}")
    with pytest.raises(RuntimeError, match="failed on 0"):
        list(tfd.Dataset.range(3).map(boom).prefetch(2))


# --- ignore_errors -----------------------------------------------------------------------------

def test_ignore_errors_drops_failing_elements_and_counts_them():
    def check(x):
        if x % 4 == 1:
            raise ValueError(f"odd one {x}")
        return x
    ds = tfd.Dataset.range(10).map(check).ignore_errors()
    assert values(ds) == [0, 2, 3, 4, 6, 7, 8]
    assert ds.stats.dropped_elements == 3
    assert [str(e) for e in ds.stats.errors] == ["odd one 1", "odd one 5", "odd one 9"]
    assert isinstance(ds.stats, tfd.ErrorStats)


def test_ignore_errors_also_covers_filter_and_parallel_map():
    ds = tfd.Dataset.range(6).filter(lambda x: 1 // (int(x) - 2) >= -1).ignore_errors()
    assert values(ds) == [0, 1, 3, 4, 5]
    ds = tfd.Dataset.range(6).map(lambda x: 10 // (int(x) - 2), num_parallel_calls=2)
    assert values(ds.ignore_errors()) == [-5, -10, 10, 5, 3]


def test_without_ignore_errors_the_error_propagates():
    with pytest.raises(ZeroDivisionError):
        list(tfd.Dataset.range(6).map(lambda x: 10 // (int(x) - 2)))


def test_elements_of_records_are_bytes_and_batches_numpy():
    records = Chunks([[b"a", b"b", b"c"]], columnar=True)
    assert list(records) == [b"a", b"b", b"c"]
    (batch,) = list(records.batch(3).as_numpy_iterator())
    assert isinstance(batch, np.ndarray) and batch.tolist() == [b"a", b"b", b"c"]
    seen = []
    list(records.batch(3).map(lambda b: seen.append(type(b))))
    assert seen == [np.ndarray]  # user functions see numpy, never the internal pyarrow array
    assert not any(isinstance(b, pa.Array) for b in records.batch(2))
