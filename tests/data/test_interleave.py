"""interleave: tf.data's cycle/block order, by hand and against the element-by-element loop."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tft_lite.data as tfd
from tests.data.util import Chunks, reference_interleave, split


def ints(dataset):
    return [int(v) for v in dataset]


def _repeat6(x):
    return tfd.Dataset.from_tensors(x).repeat(6)


def test_tf_docstring_example():
    """The example of tf.data.Dataset.interleave's docstring."""
    ds = tfd.Dataset.range(1, 6).interleave(_repeat6, cycle_length=2, block_length=4)
    assert ints(ds) == [1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4,
                        5, 5, 5, 5, 5, 5]


def test_hand_computed_uneven_inputs():
    """Inputs of 2, 5 and 1 elements, cycle 2, block 2.

    slot0=[a0 a1], slot1=[b0..b4]: a0 a1 | b0 b1 | slot0 ends -> next slot | b2 b3 |
    slot0 opens [c0]: c0, ends -> next slot | b4, ends -> next | input done.
    """
    inputs = {0: ["a0", "a1"], 1: ["b0", "b1", "b2", "b3", "b4"], 2: ["c0"]}
    ds = tfd.Dataset.range(3).interleave(
        lambda i: tfd.Dataset.from_tensor_slices(inputs[int(i)]), cycle_length=2,
        block_length=2)
    assert [v.decode() for v in ds] == ["a0", "a1", "b0", "b1", "b2", "b3", "c0", "b4"]


def test_cycle_longer_than_input_and_block_one():
    ds = tfd.Dataset.range(2).interleave(
        lambda i: tfd.Dataset.range(10 * i, 10 * i + 3), cycle_length=5)
    assert ints(ds) == [0, 10, 1, 11, 2, 12]


def test_flat_map_concatenates():
    ds = tfd.Dataset.range(3).flat_map(lambda i: tfd.Dataset.range(i))
    assert ints(ds) == [0, 0, 1]


def test_map_func_must_return_a_dataset():
    with pytest.raises(TypeError, match="must return a tft_lite.data.Dataset"):
        list(tfd.Dataset.range(2).interleave(lambda x: [x]))


class _Inputs:
    """map_func over an index: the index-th list of records, cut into the given chunks."""

    def __init__(self, lists, cuts, columnar):
        self.lists, self.cuts, self.columnar = lists, cuts, columnar

    def __call__(self, index):
        index = int(index)
        return Chunks(split(self.lists[index], self.cuts[index % len(self.cuts)]),
                      self.columnar)


@settings(max_examples=80, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=7), cycle=st.integers(1, 5),
       block=st.integers(1, 6), cuts=st.lists(st.lists(st.integers(1, 15), max_size=4),
                                              min_size=1, max_size=3),
       columnar=st.booleans(), parallel=st.booleans())
def test_whole_rounds_equal_the_element_loop(sizes, cycle, block, cuts, columnar, parallel):
    lists = [[b"%d-%d-abcdefghijkl" % (i, j) for j in range(n)] for i, n in enumerate(sizes)]
    ds = tfd.Dataset.range(len(lists)).interleave(
        _Inputs(lists, cuts, columnar), cycle_length=cycle, block_length=block,
        num_parallel_calls=2 if parallel else None)
    assert list(ds) == reference_interleave(lists, cycle, block)


def test_interleave_of_record_files_by_hand(tmp_path):
    from tests.data.util import write_shards
    paths, _ = write_shards(tmp_path, 3, [3, 1, 2])
    ds = tfd.Dataset.list_files(str(tmp_path / "part-*"), shuffle=False).interleave(
        tfd.TFRecordDataset, cycle_length=2, block_length=2)
    assert [r.decode() for r in ds] == ["0:0", "0:1", "1:0", "0:2", "2:0", "2:1"]
