"""Nested elements: slicing along the first axis and stacking into batches."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pyarrow as pa
import pytest

from tft_lite.data import structure

Point = namedtuple("Point", "x y")


def test_slices_keep_structure_and_make_bytes():
    rows = structure.slices({"p": Point([1, 2], np.array([[1, 1], [2, 2]])), "s": ["a", "b"]},
                            "test")
    assert rows[1]["p"].x == 2 and rows[1]["p"].y.tolist() == [2, 2] and rows[1]["s"] == b"b"
    assert isinstance(rows[0]["p"], Point)


def test_slices_of_pyarrow_columns():
    ragged = pa.array([[1, 2], [], [3]])
    rows = structure.slices((ragged, pa.array([b"a", b"b", b"c"])), "test")
    assert [r[0].tolist() for r in rows] == [[1, 2], [], [3]]
    assert [r[1] for r in rows] == [b"a", b"b", b"c"]


def test_stack_inverts_slices():
    element = {"x": np.arange(6).reshape(3, 2), "s": np.array([b"a", b"b", b"c"], object)}
    stacked = structure.stack(structure.slices(element, "test"))
    assert stacked["x"].tolist() == element["x"].tolist()
    assert stacked["s"].dtype == object and stacked["s"].tolist() == [b"a", b"b", b"c"]


def test_stack_rejects_different_structures():
    with pytest.raises(ValueError, match="different structure"):
        structure.stack([{"a": 1}, {"b": 1}])
    with pytest.raises(ValueError, match="different structure"):
        structure.stack([(1, 2), (1, 2, 3)])
