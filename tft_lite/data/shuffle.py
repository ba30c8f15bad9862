"""Buffer shuffle (tf.data's Dataset.shuffle), computed a block of elements at a time.

The algorithm, one step per input element once the buffer is full:

    fill:   the first `buffer_size` elements go into slots 0, 1, ..., buffer_size - 1
    step:   k = floor(u * buffer_size) for the next u = rng.random(); output slot k, then put
            the next input element into slot k
    drain:  when the input ends, with n elements left: k = floor(u * n); output slot k, move
            the last slot into slot k, n -= 1; until empty

Every output is drawn from the next `buffer_size` elements, as in tf.data, and memory stays
O(buffer_size) (up to twice that while a block is processed). A step's draw does not depend on
the data, so a whole block of m steps is computed with numpy: output t is the element last
written to slot k_t before step t, or the slot's content at the start of the block. The
records themselves are moved with one pyarrow `take` per block. Draws are one
`rng.random()` double per step, so the order depends on the seed only, never on how the
input happens to be chunked (tests compare against a one-element-at-a-time reference).
"""
from __future__ import annotations

import numpy as np

from tft_lite.data import _chunks as chunks_
from tft_lite.data.dataset import _UnaryDataset


def _slot_draws(rng: np.random.Generator, count: int, sizes) -> np.ndarray:
    """floor(u * size) for `count` fresh doubles u; sizes is an int or an array."""
    draws = (rng.random(count) * sizes).astype(np.int64)
    return np.minimum(draws, np.asarray(sizes) - 1)  # guards u * size rounding up to size


def steady_state(picks: np.ndarray, buffer_size: int):
    """Ids of the outputs of len(picks) steps, and of the buffer's slots afterwards.

    Id j < buffer_size is the content of slot j before the block; id buffer_size + t is the
    input element of step t. picks[t] is the slot drawn at step t.
    """
    m = len(picks)
    order = np.argsort(picks, kind="stable")  # steps grouped by slot, in time order
    slots = picks[order]
    follows = np.zeros(m, dtype=bool)
    follows[1:] = slots[1:] == slots[:-1]
    previous_step = np.concatenate([[0], order[:-1]])
    out_ids = np.empty(m, dtype=np.int64)
    out_ids[order] = np.where(follows, buffer_size + previous_step, slots)
    last = np.ones(m, dtype=bool)
    last[:-1] = slots[1:] != slots[:-1]
    slot_ids = np.arange(buffer_size, dtype=np.int64)
    slot_ids[slots[last]] = buffer_size + order[last]
    return out_ids, slot_ids


def drain_order(rng: np.random.Generator, n: int) -> np.ndarray:
    """Output order of the last n buffered elements (draw a slot, move the last one in)."""
    picks = _slot_draws(rng, n, np.arange(n, 0, -1)).tolist()
    slots = list(range(n))
    out = []
    for step, k in enumerate(picks):
        out.append(slots[k])
        slots[k] = slots[n - 1 - step]
    return np.array(out, dtype=np.int64)


class BufferShuffler:
    """The shuffle of one iteration: push input chunks, get shuffled chunks back."""

    def __init__(self, buffer_size: int, rng: np.random.Generator):
        self.size, self.rng = buffer_size, rng
        self.buffer = None  # exactly `size` elements in slot order, once filled
        self.pending: list = []
        self.pending_count = 0

    def push(self, chunk):
        """Adds input; returns a shuffled chunk, or None while elements accumulate."""
        if not len(chunk):
            return None
        self.pending.append(chunk)
        self.pending_count += len(chunk)
        if self.buffer is None:
            if self.pending_count < self.size:
                return None
            joined = chunks_.concat(self.pending)
            self.buffer = chunks_.slice_chunk(joined, 0, self.size)
            rest = chunks_.slice_chunk(joined, self.size, len(joined))
            self.pending, self.pending_count = ([rest] if len(rest) else []), len(rest)
        if self.pending_count < self.size:  # blocks of >= buffer_size steps amortize the
            return None                     # copy of the buffer that each block makes
        return self._block()

    def _block(self):
        pool = [self.buffer] + self.pending
        out_ids, slot_ids = steady_state(_slot_draws(self.rng, self.pending_count, self.size),
                                         self.size)
        self.pending, self.pending_count = [], 0
        self.buffer = chunks_.compact(chunks_.take(pool, slot_ids))
        return chunks_.take(pool, out_ids)

    def finish(self) -> list:
        """The remaining elements, shuffled, once the input has ended."""
        out = []
        if self.buffer is not None and self.pending_count:
            out.append(self._block())
        rest = self.buffer if self.buffer is not None else (
            chunks_.concat(self.pending) if self.pending else None)
        self.buffer, self.pending = None, []
        if rest is not None and len(rest):
            out.append(chunks_.take([rest], drain_order(self.rng, len(rest))))
        return out


class ShuffleDataset(_UnaryDataset):
    """Dataset.shuffle: see the module docstring for the algorithm.

    Seeds: iteration k draws from numpy.random.default_rng([seed, k]), with k counting the
    iterations of this dataset object (k stays 0 if reshuffle_each_iteration=False). With
    seed=None a random seed is drawn once, when the dataset is built, so that
    reshuffle_each_iteration=False repeats one order, as in tf.data.
    """

    def __init__(self, input_dataset, buffer_size, seed, reshuffle_each_iteration):
        super().__init__(input_dataset)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"shuffle seed must be a non-negative int or None, got {seed!r}")
        self._buffer_size, self._seed = buffer_size, int(seed)
        self._reshuffle = bool(reshuffle_each_iteration)
        self._iterations = 0

    def _chunks(self, ctx):
        iteration = self._iterations if self._reshuffle else 0
        self._iterations += 1
        shuffler = BufferShuffler(self._buffer_size,
                                  np.random.default_rng([self._seed, iteration]))
        for chunk in self._input._chunks(ctx):
            out = shuffler.push(chunk)
            if out is not None:
                yield out
        yield from shuffler.finish()
