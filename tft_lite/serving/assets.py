"""Asset files shipped with a graph (vocabularies): integrity check and parsed, cached tables.

An `asset` node names a file in transform_fn/assets/ and records its sha256; loading checks
it, so a tampered vocabulary fails instead of silently renumbering ids. The file format is
TFT's text vocabulary: one token per line, every line ending in b"\\n"; with store_frequency
each line is b"<count> <token>" and the token is what follows the first space.

Imports numpy, pyarrow, hashlib and the kernels/ir layers only (not the analyzers, so serving runs
without them).
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tft_lite.errors import GraphError
from tft_lite.kernels.lookup import VocabularyLookup


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AssetFile:
    """An asset's bytes, verified against the graph's recorded sha256, parsed on demand."""

    def __init__(self, filename: str, data: bytes, sha256: str):
        if sha256_hex(data) != sha256:
            raise GraphError(f"asset {filename!r} was modified: its sha256 does not match the "
                             "one recorded in the graph")
        self.filename = filename
        self.data = data
        self._vocabularies = {}

    def vocabulary_size(self, store_frequency: bool) -> int:
        """How many tokens the file holds: its lines (the schema needs no parsed tokens)."""
        if store_frequency in self._vocabularies:
            return self._vocabularies[store_frequency].size
        return self.data.count(b"\n") + (0 if self.data.endswith(b"\n") or not self.data
                                          else 1)

    def vocabulary(self, store_frequency: bool) -> "Vocabulary":
        """The file read as a vocabulary (built once per parse mode, then reused)."""
        if store_frequency not in self._vocabularies:
            tokens = parse_vocabulary(self.data, store_frequency, self.filename)
            self._vocabularies[store_frequency] = Vocabulary(tokens)
        return self._vocabularies[store_frequency]


class Vocabulary:
    """Tokens of a vocabulary file and their lookup table (built on first use: saving a
    graph or deriving its schema needs only the size)."""

    def __init__(self, tokens):  # a list of bytes or a pyarrow binary array
        self.tokens = tokens
        self.size = len(tokens)

    @functools.cached_property
    def lookup(self) -> VocabularyLookup:
        return VocabularyLookup(self.tokens)


def parse_vocabulary(data: bytes, store_frequency: bool, filename: str = "?"):
    """Tokens of a TFT text vocabulary, as TF's TextFileInitializer reads them: a list of
    bytes, or (a plain file without b"\\r", the common case) a pyarrow binary array split
    in C++ (a per-line Python loop cost ~10 ms per 100k tokens, at every graph load)."""
    if not store_frequency and b"\r" not in data:
        return _split_lines(data)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if not store_frequency:
        return lines
    tokens = []
    for number, line in enumerate(lines, 1):
        count, sep, token = line.partition(b" ")
        if not sep or not count.lstrip(b"-").isdigit():
            raise GraphError(f"asset {filename!r} line {number}: expected '<count> <token>'")
        tokens.append(token)
    return tokens


def _split_lines(data: bytes) -> pa.Array:
    """The lines of `data` (b"\\n"-terminated, the last one optionally not) as a binary
    array."""
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int64)),
                               pa.py_buffer(data)])
    lines = pc.split_pattern(whole, b"\n").flatten()
    if data.endswith(b"\n") or not data:  # the empty piece after the last newline
        lines = lines.slice(0, len(lines) - 1)
    return lines
