"""Nested elements, as tf.data has them: tuples and dicts of arrays, bytes and scalars.

A tuple (or namedtuple) or a dict is a structure; everything else is a leaf. Lists are leaves
(converted to arrays), as in tf.data. Strings are bytes, as `.numpy()` gives them in
TensorFlow: a str leaf is encoded as UTF-8 and string arrays become object arrays of bytes.

`slices` cuts a structure along its first dimension (from_tensor_slices, unbatch), `stack`
joins elements along a new first dimension (batch). Imports numpy and pyarrow only.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def is_structure(x) -> bool:
    return isinstance(x, (tuple, dict))


def _rebuild(template, parts):
    """A tuple/namedtuple/dict like `template` holding `parts` (same order)."""
    if isinstance(template, dict):
        return dict(zip(template.keys(), parts))
    if type(template) is tuple:
        return tuple(parts)
    return type(template)(*parts)  # a namedtuple


def _components(x) -> list:
    return list(x.values()) if isinstance(x, dict) else list(x)


def map_structure(fn, x):
    """fn applied to every leaf of x, structure kept."""
    if is_structure(x):
        return _rebuild(x, [map_structure(fn, c) for c in _components(x)])
    return fn(x)


def as_array(leaf) -> np.ndarray:
    """A leaf as a numpy array; strings become an object array of bytes."""
    if isinstance(leaf, (pa.Array, pa.ChunkedArray)):
        leaf = leaf.to_numpy(zero_copy_only=False)
    if isinstance(leaf, (str, bytes)):
        return np.array(_to_bytes(leaf), dtype=object)
    array = np.asarray(leaf)
    if array.dtype.kind in "SU" or (array.dtype == object and array.size and
                                    isinstance(array.flat[0], str)):
        flat = [_to_bytes(v) for v in array.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape)
    return array


def _to_bytes(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value)
    return value


def num_rows(x, what: str) -> int:
    """Size of the first dimension, the same for every leaf (ValueError otherwise)."""
    sizes = []
    map_structure(lambda leaf: sizes.append(_leading_dim(leaf, what)), x)
    if not sizes:
        raise ValueError(f"{what}: the element has no components")
    if len(set(sizes)) > 1:
        raise ValueError(f"{what}: components have different first dimensions {sizes}")
    return sizes[0]


def _leading_dim(leaf, what):
    if isinstance(leaf, (pa.Array, pa.ChunkedArray)):
        return len(leaf)
    if isinstance(leaf, (bytes, str)) or np.ndim(leaf) == 0:
        raise ValueError(f"{what}: cannot slice a scalar component {leaf!r:.60}; it needs a "
                         "first dimension")
    return len(leaf)


def slices(x, what: str) -> list:
    """The elements of x cut along its first dimension (leaves converted with as_array)."""
    n = num_rows(x, what)
    columns = []
    map_structure(lambda leaf: columns.append(_rows(leaf)), x)
    return [_unflatten(x, [column[i] for column in columns]) for i in range(n)]


def _rows(leaf) -> list:
    return list(as_array(leaf))


def _unflatten(template, flat: list):
    """Inverse of flattening the leaves of template in order."""
    it = iter(flat)

    def build(t):
        if is_structure(t):
            return _rebuild(t, [build(c) for c in _components(t)])
        return next(it)
    return build(template)


def stack(elements: list, what: str = "batch"):
    """Elements of one structure stacked along a new first dimension."""
    first = elements[0]
    if is_structure(first):
        _check_same_structure(elements, what)
        columns = zip(*[_components(e) for e in elements])
        return _rebuild(first, [stack(list(c), what) for c in columns])
    arrays = [as_array(e) for e in elements]
    shape = arrays[0].shape
    for i, array in enumerate(arrays):
        if array.shape != shape:
            raise ValueError(f"{what}: cannot stack element {i} of shape {array.shape} with "
                             f"element 0 of shape {shape}; all elements of a batch need one "
                             "shape (tf.data's padded_batch is not supported)")
    if arrays[0].dtype == object:
        out = np.empty((len(arrays),) + shape, dtype=object)
        for i, array in enumerate(arrays):
            out[i, ...] = array
        return out
    return np.stack(arrays)


def _check_same_structure(elements, what):
    first = elements[0]
    keys = list(first.keys()) if isinstance(first, dict) else len(first)
    for i, e in enumerate(elements):
        other = list(e.keys()) if isinstance(e, dict) else (
            len(e) if isinstance(e, tuple) else None)
        if type(e) is not type(first) or other != keys:
            raise ValueError(f"{what}: element {i} has a different structure than element 0 "
                             f"({type(e).__name__} {other} vs {type(first).__name__} {keys})")
