"""Asset files shipped with a graph (vocabularies): integrity check and parsed, cached tables.

An `asset` node names a file in transform_fn/assets/ and records its sha256; loading checks
it, so a tampered vocabulary fails instead of silently renumbering ids. The file format is
TFT's text vocabulary: one token per line, every line ending in b"\\n"; with store_frequency
each line is b"<count> <token>" and the token is what follows the first space.

Imports numpy, hashlib and the kernels/ir layers only (not the analyzers, so serving runs
without them).
"""
from __future__ import annotations

import functools
import hashlib

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

    def __init__(self, tokens: list):
        self.tokens = tokens
        self.size = len(tokens)

    @functools.cached_property
    def lookup(self) -> VocabularyLookup:
        return VocabularyLookup(self.tokens)


def parse_vocabulary(data: bytes, store_frequency: bool, filename: str = "?") -> list:
    """Tokens of a TFT text vocabulary, as TF's TextFileInitializer reads them."""
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
