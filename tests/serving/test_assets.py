"""Vocabulary assets: the size the schema reads without parsing equals the parsed size."""
from __future__ import annotations

import pytest

from tft_lite.serving.assets import AssetFile, parse_vocabulary, sha256_hex


@pytest.mark.parametrize("data,store_frequency", [
    (b"a\nb\nc\n", False), (b"a\nb\nc", False), (b"", False), (b"\n", False),
    (b"a\r\nb\r\n", False), (b"x\n\ny\n", False), (b"3 a\n2 b c\n", True),
    (b"3 a\n2 b", True),
])
def test_vocabulary_size_counts_what_parsing_gives(data, store_frequency):
    asset = AssetFile("v.txt", data, sha256_hex(data))
    expected = len(parse_vocabulary(data, store_frequency))
    assert asset.vocabulary_size(store_frequency) == expected
    assert asset.vocabulary(store_frequency).size == expected
    assert asset.vocabulary_size(store_frequency) == expected  # from the parsed cache


def test_lookup_table_is_built_on_first_use():
    data = b"a\nb\n"
    vocabulary = AssetFile("v.txt", data, sha256_hex(data)).vocabulary(False)
    assert "lookup" not in vars(vocabulary)
    assert vocabulary.lookup is vocabulary.lookup
