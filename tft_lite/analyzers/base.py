"""The analyzer contract: pure, mergeable accumulators (like Beam's CombineFn / TFT's Combiner).

No Beam, no I/O, no globals. Imports only numpy and pyarrow.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["Combiner", "as_numpy", "single_input"]


class Combiner:
    """create_accumulator() -> acc; add_input(acc, batch) -> acc (batch: tuple of arrays, one per analyzer input; may reuse/mutate acc); merge_accumulators(list_of_accs) -> acc (may modify only the first); extract_output(acc) -> tuple of numpy arrays; compact(acc) -> acc (optional, default identity).

    Rules every combiner here follows:
      * The constructor only stores its explicit keyword config, unchanged (it may validate
        it); everything derived is recomputed when needed. `get_config()` returns it.
      * Accumulators are plain picklable data (tuples, lists, dicts, numpy arrays, ints).
      * extract_output is bit-identical whatever the batch split and merge order/tree.
      * Inputs: numpy arrays or pyarrow arrays; for ragged (VarLen) features the caller
        passes the flat values array.
    """

    def create_accumulator(self):
        raise NotImplementedError

    def add_input(self, accumulator, batch):
        raise NotImplementedError

    def merge_accumulators(self, accumulators):
        raise NotImplementedError

    def extract_output(self, accumulator):
        raise NotImplementedError

    def compact(self, accumulator):
        return accumulator

    def get_config(self) -> dict:
        """The keyword config given to the constructor, unchanged."""
        return dict(vars(self))

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.get_config().items()))
        return f"{type(self).__name__}({args})"


def single_input(batch):
    """The one array of a single-input analyzer's batch tuple."""
    if isinstance(batch, (tuple, list)):
        if len(batch) != 1:
            raise ValueError(f"this analyzer takes exactly 1 input array, got {len(batch)}")
        return batch[0]
    return batch


def as_numpy(values, dtype=None) -> np.ndarray:
    """numpy view/copy of a numpy or pyarrow array; rejects nulls; casts only safely to `dtype`.

    Python sequences are converted with `np.asarray(values, dtype)`.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        if values.null_count:
            raise ValueError(f"input has {values.null_count} null value(s)")
        values = values.to_numpy(zero_copy_only=False)
    elif not isinstance(values, np.ndarray):
        return np.asarray(values, dtype=dtype)
    if dtype is not None:
        dtype = np.dtype(dtype)
        if values.dtype != dtype:
            if not np.can_cast(values.dtype, dtype, casting="safe"):
                raise TypeError(
                    f"input dtype {values.dtype} cannot be safely cast to the configured "
                    f"input_dtype {dtype}"
                )
            values = values.astype(dtype)
    return values
