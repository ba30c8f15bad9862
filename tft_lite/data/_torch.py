"""PyTorch adapter: a tft_lite.data.Dataset as a torch.utils.data.IterableDataset.

Imported only by Dataset.as_torch(), so `import tft_lite` never needs torch. Install it with
`pip install tft_lite[torch]`.

Worker sharding (each record exactly once across DataLoader workers): worker w of W iterates
the pipeline with IterContext(shard=(w, W)); the first file source upstream (list_files,
TFRecordDataset or TextLineDataset over a file list) keeps files w, w + W, ... of its sorted
list, and shuffles only its own share, so every file is read by exactly one worker whatever the
seeds. Give the pipeline at least as many files as workers, or some workers idle. A pipeline
without a file source (from_tensor_slices, range) is split by element instead: worker w keeps
elements w, w + W, ... of the full sequence, which is exactly-once only if that sequence is
the same in every worker (seed any shuffle).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from tft_lite.data._chunks import IterContext
from tft_lite.data.structure import map_structure


def to_torch(element):
    """Numeric numpy arrays and scalars become tensors (sharing memory); others stay."""
    def convert(leaf):
        if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biuf":
            return torch.from_numpy(leaf if leaf.flags.writeable else leaf.copy())
        if isinstance(leaf, np.generic) and leaf.dtype.kind in "biuf":
            return torch.from_numpy(np.array(leaf))
        return leaf
    return map_structure(convert, element)


class TorchIterableDataset(IterableDataset):
    """Yields the elements of `dataset` with numeric arrays as torch tensors.

    Strings stay numpy object arrays of bytes and VarLen features pyarrow ListArrays (torch
    has no string or ragged tensors). If the pipeline already batches, pass batch_size=None
    to the DataLoader.
    """

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def __iter__(self):
        info = get_worker_info()
        if info is None or info.num_workers == 1:
            for element in self.dataset:
                yield to_torch(element)
            return
        ctx = IterContext(shard=(info.id, info.num_workers))
        elements = self.dataset._elements(ctx)
        try:
            for position, element in enumerate(elements):
                if ctx.shard_state.applied or position % info.num_workers == info.id:
                    yield to_torch(element)
        finally:
            elements.close()
