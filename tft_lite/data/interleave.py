"""Dataset.interleave with tf.data's cycle and block semantics, moved in whole blocks.

The order is exactly that of tf.data's InterleaveDatasetOp (interleave_dataset_op.cc):

    cycle_index = block_index = 0
    while input remains or some slot is open:
        if slot[cycle_index] is open:
            take its next element: output it; block_index += 1, and after block_length
                elements move to the next slot (block_index = 0)
            or, if it has ended: close the slot and move to the next slot
        elif input remains: open map_func(next input element) in this slot (no move)
        else: move to the next slot

Following that loop one element at a time would cost Python work per record, so whenever
every open slot has at least R * block_length elements buffered and no slot needs opening,
R whole rounds are emitted at once: one concatenation and one `take`. The loop above runs
element by element only around the events (a slot opening, ending, or running short).
"""
from __future__ import annotations

import numpy as np

from tft_lite.data import _chunks as chunks_
from tft_lite.data._threads import background
from tft_lite.data.dataset import Dataset, _UnaryDataset, call_fn

_READ_AHEAD_CHUNKS = 2  # chunks each open dataset reads ahead with num_parallel_calls


class _Slot:
    """One open dataset of the cycle: its chunk iterator and the current chunk."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.buf = None
        self.pos = 0
        self.done = False

    def avail(self) -> int:
        return 0 if self.buf is None else len(self.buf) - self.pos

    def ensure(self, count: int) -> int:
        """Reads ahead until `count` elements are buffered or the dataset ends."""
        while self.avail() < count and not self.done:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                self.done = True
                break
            if self.avail():
                chunk = chunks_.concat([chunks_.slice_chunk(self.buf, self.pos, len(self.buf)),
                                        chunk])
            self.buf, self.pos = chunk, 0
        return self.avail()

    def take(self, count: int):
        piece = chunks_.slice_chunk(self.buf, self.pos, self.pos + count)
        self.pos += count
        return piece

    def close(self):
        self.chunks.close()


class InterleaveDataset(_UnaryDataset):
    def __init__(self, input_dataset, map_func, cycle_length, block_length, threads):
        super().__init__(input_dataset)
        self._fn = map_func
        self._cycle, self._block = cycle_length, block_length
        self._threads = threads

    def _open(self, element, ctx) -> _Slot:
        dataset = call_fn(self._fn, element)
        if not isinstance(dataset, Dataset):
            raise TypeError(f"interleave: map_func must return a tft_lite.data.Dataset, got "
                            f"{type(dataset).__name__}")
        inner = ctx.derive(shard=None)  # files are split once, upstream; not again inside
        if self._threads:
            return _Slot(background(lambda: dataset._chunks(inner), _READ_AHEAD_CHUNKS,
                                    "tft_lite.data.interleave"))
        return _Slot(dataset._chunks(inner))

    def _chunks(self, ctx):
        source = self._input._elements(ctx)
        slots = [None] * self._cycle
        try:
            yield from self._loop(source, slots, ctx)
        finally:
            source.close()
            for slot in slots:
                if slot is not None:
                    slot.close()

    def _loop(self, source, slots, ctx):
        """tf.data's loop (module docstring), with whole rounds taken at once when possible."""
        cycle, block = self._cycle, self._block
        index, in_block, input_done, num_open = 0, 0, False, 0
        while not input_done or num_open:
            slot = slots[index]
            if slot is None:
                if input_done:
                    index, in_block = (index + 1) % cycle, 0
                    continue
                element = next(source, _END)
                if element is _END:
                    input_done = True
                else:
                    slots[index] = self._open(element, ctx)
                    num_open += 1
                continue
            if in_block == 0 and (input_done or None not in slots):
                rounds = self._rounds(slots, index)
                if rounds is not None:
                    yield rounds
                    continue
            if not slot.ensure(1):
                slot.close()
                slots[index], num_open = None, num_open - 1
                index, in_block = (index + 1) % cycle, 0
                continue
            count = min(block - in_block, slot.avail())
            yield slot.take(count)
            in_block += count
            if in_block == block:
                index, in_block = (index + 1) % cycle, 0

    def _rounds(self, slots, index):
        """R full rounds from slot `index` as one chunk, or None if a slot runs short."""
        block = self._block
        order = [slots[(index + i) % len(slots)] for i in range(len(slots))]
        order = [slot for slot in order if slot is not None]
        rounds = min(slot.ensure(block) for slot in order) // block
        if rounds == 0:
            return None
        parts = [slot.take(rounds * block) for slot in order]
        if len(parts) == 1:
            return parts[0]
        # parts[j] holds slot j's `rounds` blocks; output round r is block r of each part.
        ids = (np.arange(len(parts))[None, :, None] * (rounds * block)
               + np.arange(rounds)[:, None, None] * block
               + np.arange(block)[None, None, :]).reshape(-1)
        return chunks_.take(parts, ids)


_END = object()
