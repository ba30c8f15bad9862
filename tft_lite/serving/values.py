"""Run-time values of the numpy interpreter: arrays, ragged rows, and conversions between them.

Dense numeric values are numpy arrays [batch, *shape]. Dense strings are either a numpy object
array of bytes or, straight from Arrow input, a pyarrow binary array (only for per-row shape
[]): string kernels (hashing, vocabulary lookup, regex) run on Arrow buffers, so converting
back and forth per op would waste most of the time. `as_numpy` / `as_arrow` convert on demand.

Ragged values (VarLen features, split strings) are flat values plus int64 row splits, the
layout of Arrow's LargeListArray, so Arrow input and output convert without copying.

Imports numpy and pyarrow only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Ragged:
    """Rows of variable length: row i holds values[row_splits[i]:row_splits[i + 1]].

    row_splits is int64 [nrows + 1] starting at 0 and ending at len(values).
    """

    values: object  # numpy array, or pyarrow binary array for strings
    row_splits: np.ndarray

    @property
    def nrows(self) -> int:
        return len(self.row_splits) - 1

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.row_splits)

    def row_ids(self) -> np.ndarray:
        """Row index of each flat value."""
        return np.repeat(np.arange(self.nrows, dtype=np.int64), self.row_lengths())


_ARROW_STRING_IDS = frozenset(t.id for t in (pa.binary(), pa.large_binary(), pa.string(),
                                              pa.large_string()))


class EmptyNulls:
    """A binary column whose nulls stand for b"" (its FixedLenFeature default), not filled.

    The batch fast path (columns.py) hands one only to `apply_vocabulary` steps (the graph's
    only readers of that feature), whose C lookup reads a null as the empty token: the same
    ids as filling the nulls first, without a pass over the column to do it.
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __len__(self):
        return len(self.array)


def is_arrow_string(x) -> bool:
    return isinstance(x, pa.Array) and x.type.id in _ARROW_STRING_IDS


def as_numpy(x):
    """numpy view of a run-time value's data (Arrow strings become object arrays of bytes)."""
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    if isinstance(x, pa.Array):
        if pa.types.is_string(x.type) or pa.types.is_large_string(x.type):
            x = x.cast(pa.large_binary())
        return x.to_numpy(zero_copy_only=False)
    return x


def as_arrow(x) -> pa.Array:
    """Flat pyarrow large_binary array of string values (numpy object arrays hold bytes)."""
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    if isinstance(x, pa.Array):
        if pa.types.is_string(x.type) or pa.types.is_large_string(x.type):
            return x.view(pa.large_binary() if pa.types.is_large_string(x.type) else pa.binary())
        return x
    return pa.array(np.asarray(x, dtype=object).reshape(-1), type=pa.large_binary())


def batch_size(x) -> int:
    """Number of rows of a batch value."""
    return x.nrows if isinstance(x, Ragged) else len(x)


def ragged_from_arrow(array: pa.Array) -> Ragged:
    """Ragged view of a (large) list array whose lists hold no nulls (null lists are empty)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count or pa.types.is_fixed_size_list(array.type):
        # A null list may span values in Arrow (flatten skips them); fixed-size lists have
        # no offsets buffer.
        lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
        splits = np.zeros(len(array) + 1, np.int64)
        np.cumsum(lengths, out=splits[1:])
        return Ragged(pc.list_flatten(array), splits)
    offsets = array.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    values = array.values.slice(start, end - start)
    return Ragged(values, offsets - start)


def ragged_to_arrow(ragged: Ragged) -> pa.LargeListArray:
    """LargeListArray with the same rows (string values as large_binary)."""
    values = ragged.values
    if is_arrow_string(values) or (isinstance(values, np.ndarray) and values.dtype == object):
        values = as_arrow(values)
    elif isinstance(values, np.ndarray):
        values = pa.array(values)
    offsets = pa.array(ragged.row_splits, type=pa.int64())
    return pa.LargeListArray.from_arrays(offsets, values)


def output_array(x):
    """What transform() returns for a batch value: numpy, or LargeListArray for ragged."""
    if isinstance(x, Ragged):
        return ragged_to_arrow(x)
    return as_numpy(x)
