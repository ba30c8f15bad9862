"""Helpers shared by the tft_lite.data tests: fixed chunkings and naive reference loops."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from tft_lite import io
from tft_lite.data.dataset import Dataset


class Chunks(Dataset):
    """A dataset yielding exactly the given chunks (lists, or lists of bytes as pyarrow)."""

    def __init__(self, chunks, columnar=False):
        self.chunks = [pa.array(c, pa.binary()) if columnar else list(c) for c in chunks]

    def _chunks(self, ctx):
        yield from self.chunks


def split(items, sizes):
    """items cut into consecutive pieces of the given sizes (the rest in a last piece)."""
    out, start = [], 0
    for size in sizes:
        out.append(items[start:start + size])
        start += size
    if start < len(items):
        out.append(items[start:])
    return [piece for piece in out if piece]


def reference_shuffle(items, buffer_size, rng):
    """shuffle.py's algorithm, one element at a time."""
    buffer, out = [], []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        k = min(int(rng.random() * buffer_size), buffer_size - 1)
        out.append(buffer[k])
        buffer[k] = item
    while buffer:
        size = len(buffer)
        k = min(int(rng.random() * size), size - 1)
        out.append(buffer[k])
        buffer[k] = buffer[size - 1]
        buffer.pop()
    return out


def reference_interleave(inputs, cycle_length, block_length):
    """tf.data's InterleaveDatasetOp loop, element by element, over lists."""
    slots, out = [None] * cycle_length, []
    index = in_block = num_open = 0
    source, input_done = iter(inputs), False
    while not input_done or num_open:
        if slots[index] is None:
            if input_done:
                index, in_block = (index + 1) % cycle_length, 0
                continue
            nxt = next(source, None)
            if nxt is None:
                input_done = True
            else:
                slots[index], num_open = iter(nxt), num_open + 1
            continue
        value = next(slots[index], StopIteration)
        if value is StopIteration:
            slots[index], num_open = None, num_open - 1
            index, in_block = (index + 1) % cycle_length, 0
            continue
        out.append(value)
        in_block += 1
        if in_block == block_length:
            index, in_block = (index + 1) % cycle_length, 0
    return out


def write_shards(directory, num_files, per_file, compression=None, prefix="part"):
    """Files prefix-00000 ... holding records b"<file>:<index>"; returns paths, records."""
    paths, records = [], []
    suffix = ".gz" if compression == "GZIP" else ""
    for f in range(num_files):
        path = str(directory / f"{prefix}-{f:05d}{suffix}")
        recs = [f"{f}:{i}".encode() for i in range(per_file if np.ndim(per_file) == 0
                                                   else per_file[f])]
        io.write_tfrecords(path, recs, compression)
        paths.append(path)
        records.append(recs)
    return paths, records
