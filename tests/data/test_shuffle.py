"""Buffer shuffle: our documented algorithm, seeded, independent of chunking, bounded window."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tft_lite.data as tfd
from tests.data.util import Chunks, reference_shuffle, split
from tft_lite.data import shuffle


def ints(dataset):
    return [int(v) for v in dataset]


def test_hand_computed_order():
    """range(6).shuffle(3, seed=0), by hand from the draws u of default_rng([0, 0]).

    u = .637 .270 .041 .017 .813 .913
    buffer [0 1 2]; k=floor(3u)=1: out 1, slot 1 <- 3 -> [0 3 2]; k=0: out 0 -> [4 3 2];
    k=0: out 4 -> [5 3 2]; input ends; drain n=3: k=floor(3u)=0: out 5, last into slot 0
    -> [2 3]; n=2: k=floor(2*.813)=1: out 3 -> [2]; n=1: out 2.
    """
    assert np.allclose(np.random.default_rng([0, 0]).random(6),
                       [0.637, 0.270, 0.041, 0.017, 0.813, 0.913], atol=1e-3)
    assert ints(tfd.Dataset.range(6).shuffle(3, seed=0)) == [1, 0, 4, 5, 3, 2]


def test_same_seed_same_order_and_reshuffle_each_iteration():
    a = tfd.Dataset.range(100).shuffle(10, seed=7)
    b = tfd.Dataset.range(100).shuffle(10, seed=7)
    first_a, first_b = ints(a), ints(b)
    assert first_a == first_b and sorted(first_a) == list(range(100))
    second_a = ints(a)  # iteration 1 uses default_rng([7, 1])
    assert second_a != first_a and sorted(second_a) == list(range(100))
    assert second_a == ints(b)  # b's second iteration: the same
    assert ints(tfd.Dataset.range(100).shuffle(10, seed=8)) != first_a


def test_no_reshuffle_repeats_one_order_even_without_seed():
    ds = tfd.Dataset.range(50).shuffle(50, reshuffle_each_iteration=False)
    assert ints(ds) == ints(ds)
    twice = ints(ds.repeat(2))
    assert twice[:50] == twice[50:]


def test_repeat_after_shuffle_gives_new_order_per_epoch():
    epochs = ints(tfd.Dataset.range(20).shuffle(20, seed=1).repeat(2))
    assert sorted(epochs[:20]) == sorted(epochs[20:]) == list(range(20))
    assert epochs[:20] != epochs[20:]


def test_buffer_bounds_how_far_elements_move():
    """Output i is drawn from a buffer of the next buffer_size elements: it is < i + size."""
    out = ints(tfd.Dataset.range(5000).shuffle(100, seed=3))
    assert sorted(out) == list(range(5000))
    assert all(value < i + 100 for i, value in enumerate(out))
    assert out != list(range(5000))


def test_buffer_of_one_keeps_order_and_full_buffer_permutes():
    assert ints(tfd.Dataset.range(30).shuffle(1, seed=0)) == list(range(30))
    out = ints(tfd.Dataset.range(30).shuffle(1000, seed=0))
    assert sorted(out) == list(range(30))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), buffer_size=st.integers(1, 80),
       cuts=st.lists(st.integers(1, 90), max_size=8), columnar=st.booleans(),
       seed=st.integers(0, 2**32))
def test_block_computation_equals_one_at_a_time(n, buffer_size, cuts, columnar, seed):
    items = [b"%d" % i for i in range(n)]
    ds = Chunks(split(items, cuts), columnar=columnar).shuffle(buffer_size, seed=seed)
    expected = reference_shuffle(items, buffer_size, np.random.default_rng([seed, 0]))
    assert list(ds) == expected


def test_steady_state_ids():
    # buffer of 2 holds ids 0, 1; steps draw slots 1, 1, 0 with new elements 2, 3, 4:
    # out slot1 (id 1) <- 2; out slot1 (id 2) <- 3; out slot0 (id 0) <- 4.
    out_ids, slot_ids = shuffle.steady_state(np.array([1, 1, 0]), 2)
    assert out_ids.tolist() == [1, 2, 0]
    assert slot_ids.tolist() == [4, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="buffer_size"):
        tfd.Dataset.range(3).shuffle(0)
    with pytest.raises(ValueError, match="seed"):
        tfd.Dataset.range(3).shuffle(3, seed=-1)


def test_shuffled_records_reach_user_code_as_bytes():
    records = Chunks([[b"record-%02d-long-enough" % i for i in range(10)]], columnar=True)
    batches = list(records.shuffle(4, seed=1).batch(4).as_numpy_iterator())
    assert all(b.dtype == object for b in batches)
    flat = [r for b in batches for r in b.tolist()]
    assert sorted(flat) == [b"record-%02d-long-enough" % i for i in range(10)]
    assert flat == reference_shuffle([b"record-%02d-long-enough" % i for i in range(10)], 4,
                                     np.random.default_rng([1, 0]))
