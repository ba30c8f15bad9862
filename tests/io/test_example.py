"""The columnar Example codec: both backends against protobuf itself, and bad input."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_lite import io
from tft_lite.errors import ExampleDecodeError, ExampleEncodeError, SchemaError
from tft_lite.io import protos
from tft_lite.io.example import codec_backend

BACKENDS = ["python"] + (["c"] if codec_backend() == "c" else [])


def test_c_codec_is_built():
    """`make test` builds the extension; the pure-Python path is tested alongside it."""
    assert codec_backend() == "c"


def _example(**features) -> bytes:
    message = protos.Example()
    message.features.SetInParent()
    for name, (kind, values) in features.items():
        target = getattr(message.features.feature[name], kind)
        target.SetInParent()
        target.value.extend(values)
    return message.SerializeToString(deterministic=True)


SPEC = {
    "f": io.FixedLenFeature([], "float32"),
    "vec": io.FixedLenFeature([2, 2], "int64", default_value=[1, 2, 3, 4]),
    "s": io.FixedLenFeature([], "string", default_value="none"),
    "vf": io.VarLenFeature("float32"),
    "vi": io.VarLenFeature("int64"),
    "vs": io.VarLenFeature("string"),
}
COLUMNS = {
    "f": np.array([1.5, np.nan, -np.inf], np.float32),
    "vec": [[1, -1, 2**63 - 1, -(2**63)], None, [0, 0, 0, 0]],
    "s": ["héllo", None, b"\x00\xff\n"],
    "vf": [[0.25], [], None],
    "vi": [None, [5, -5, 0], [2**40]],
    "vs": [["a", "b c"], [""], None],
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip(backend):
    records = io.encode_examples(COLUMNS, SPEC, backend=backend)
    assert isinstance(records, pa.BinaryArray) and len(records) == 3
    out = io.decode_examples(records, SPEC, backend=backend)
    np.testing.assert_array_equal(out["f"], COLUMNS["f"])
    assert out["vec"].shape == (3, 2, 2) and out["vec"].dtype == np.int64
    assert out["vec"].reshape(3, 4).tolist() == [[1, -1, 2**63 - 1, -(2**63)], [1, 2, 3, 4],
                                                 [0, 0, 0, 0]]
    assert out["s"].tolist() == ["héllo".encode(), b"none", b"\x00\xff\n"]
    assert out["vf"].to_pylist() == [[0.25], [], []]
    assert out["vi"].to_pylist() == [[], [5, -5, 0], [2**40]]
    assert out["vs"].to_pylist() == [[b"a", b"b c"], [b""], []]


def test_encoding_matches_protobuf_deterministic_bytes():
    records = io.encode_examples(COLUMNS, SPEC).to_pylist()
    expected = _example(f=("float_list", [1.5]), vec=("int64_list", COLUMNS["vec"][0]),
                        s=("bytes_list", ["héllo".encode()]), vf=("float_list", [0.25]),
                        vs=("bytes_list", [b"a", b"b c"]))
    assert records[0] == expected
    # null rows leave the feature out; empty lists are written as empty lists
    message = protos.Example()
    message.ParseFromString(records[1])
    assert sorted(message.features.feature) == ["f", "vf", "vi", "vs"]
    assert message.features.feature["vf"].WhichOneof("kind") == "float_list"


def test_absent_and_empty_are_different():
    spec = {"v": io.VarLenFeature("int64")}
    records = io.encode_examples({"v": [None, []]}, spec).to_pylist()
    assert records == [b"\n\x00", _example(v=("int64_list", []))]


def test_map_order_is_protobufs():
    """Python protobuf (upb) writes "C10" before "C1" before "C2"; so do we."""
    names = ["C1", "C10", "C2", "a", "ab", "b", "é"]
    spec = {n: io.FixedLenFeature([], "int64") for n in names}
    columns = {n: np.array([i], np.int64) for i, n in enumerate(names)}
    expected = _example(**{n: ("int64_list", [i]) for i, n in enumerate(names)})
    for backend in BACKENDS:
        assert io.encode_examples(columns, spec, backend=backend)[0].as_py() == expected


def test_input_column_types():
    spec = {"x": io.FixedLenFeature([3], "float32"), "s": io.VarLenFeature("string")}
    n = 2
    variants = [
        {"x": np.arange(6, dtype=np.float64).reshape(2, 3), "s": [["a"], ["b", "c"]]},
        {"x": pa.array([[0, 1, 2], [3, 4, 5]], pa.list_(pa.int64())),
         "s": pa.array([["a"], ["b", "c"]], pa.list_(pa.string()))},
        {"x": pa.array([[0, 1, 2], [3, 4, 5]], pa.list_(pa.float32(), 3)),
         "s": pa.array([["a"], ["b", "c"]], pa.large_list(pa.large_binary()))},
        pa.table({"x": pa.array([[0.0, 1, 2], [3, 4, 5]]), "s": [["a"], ["b", "c"]],
                  "ignored": [1, 2]}),
    ]
    outputs = {io.encode_examples(v, spec).to_pylist().__repr__() for v in variants}
    assert len(outputs) == 1
    out = io.decode_examples(io.encode_examples(variants[0], spec), spec)
    assert out["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and len(out["x"]) == n


def test_sliced_arrow_inputs():
    spec = {"s": io.FixedLenFeature([], "string"), "v": io.VarLenFeature("int64")}
    table = pa.table({"s": ["a", "b", "c", "d"], "v": [[1], [2, 3], [], [4]]}).slice(1, 2)
    out = io.decode_examples(io.encode_examples(table, spec), spec)
    assert out["s"].tolist() == [b"b", b"c"] and out["v"].to_pylist() == [[2, 3], []]


# --- every valid encoding is accepted ------------------------------------------------------

def _tag(field, wire_type):
    return bytes([field << 3 | wire_type])


def _ld(field, payload: bytes) -> bytes:
    assert len(payload) < 128
    return _tag(field, 2) + bytes([len(payload)]) + payload


def _entry(key: bytes, feature: bytes, key_last=False) -> bytes:
    parts = [_ld(1, key), _ld(2, feature)]
    return _ld(1, b"".join(parts[::-1] if key_last else parts))


VALID_ENCODINGS = {
    "key after value": (_ld(1, _entry(b"i", _ld(3, _ld(1, b"\x07")), key_last=True)), [7]),
    "features repeated and merged": (
        _ld(1, _entry(b"x", _ld(3, _ld(1, b"\x01")))) + _ld(1, _entry(b"i", _ld(3, _ld(
            1, b"\x02")))), [2]),
    "unpacked int64": (_ld(1, _entry(b"i", _ld(3, b"\x08\x03\x08\x04"))), [3, 4]),
    "packed and unpacked mixed": (_ld(1, _entry(b"i", _ld(3, b"\x08\x03" + _ld(1, b"\x05\x06")
                                                       ))), [3, 5, 6]),
    "list message repeated and merged": (
        _ld(1, _entry(b"i", _ld(3, _ld(1, b"\x01")) + _ld(3, _ld(1, b"\x02")))), [1, 2]),
    "value field repeated and merged": (
        _ld(1, _ld(1, _ld(1, b"i") + _ld(2, _ld(3, _ld(1, b"\x01"))) + _ld(2, _ld(3, _ld(
            1, b"\x02"))))), [1, 2]),
    "duplicate key: last wins": (
        _ld(1, _entry(b"i", _ld(3, _ld(1, b"\x01"))) + _entry(b"i", _ld(3, _ld(1, b"\x09")))),
        [9]),
    "oneof switch clears": (_ld(1, _entry(b"i", _ld(2, _ld(1, b"\0\0\0\0")) + _ld(3, _ld(
        1, b"\x04")))), [4]),
    "unknown fields everywhere": (
        b"\x10\x01" + _ld(1, b"\x1d\0\0\0\0" + _entry(b"i", b"\x21" + b"\0" * 8 + _ld(3, _ld(
            1, b"\x08") + b"\x10\x05"))) + _ld(9, b"junk"), [8]),
    "unknown group skipped": (b"\x23" + b"\x08\x01" + b"\x24" + _ld(1, _entry(b"i", _ld(3, _ld(
        1, b"\x0b")))), [11]),
    "known field with unexpected wire type is unknown": (b"\x08\x05" + _ld(1, _entry(b"i", _ld(
        3, _ld(1, b"\x0c")))), [12]),
    "ten-byte varint for -1": (_ld(1, _entry(b"i", _ld(3, _ld(1, b"\xff" * 9 + b"\x01")))),
                               [-1]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(VALID_ENCODINGS))
def test_accepts_every_valid_encoding(name, backend):
    record, expected = VALID_ENCODINGS[name]
    message = protos.Example()
    message.ParseFromString(record)  # protobuf agrees the bytes are valid
    assert list(message.features.feature["i"].int64_list.value) == expected
    out = io.decode_examples([record], {"i": io.VarLenFeature("int64")}, backend=backend)
    assert out["i"].to_pylist() == [expected]


# --- bad input -------------------------------------------------------------------------------

BAD_RECORDS = {
    "random garbage": (b"\xff\xfe\xfd\x00garbage", "varint|wire type|points past|truncated"),
    "varint longer than 10 bytes": (_ld(1, _entry(b"i", _ld(3, _ld(1, b"\xff" * 11 + b"\x01"))))
                                    , "longer than 10 bytes"),
    "length past the end": (b"\x0a\x7f\x0a\x02", "points past the end"),
    "wire type 7": (b"\x0f\x01", "invalid wire type"),
    "truncated varint": (_tag(1, 0) + b"\xff", "truncated varint"),
    "end group without start": (b"\x0c", "END_GROUP"),
    "packed floats not a multiple of 4": (_ld(1, _entry(b"f", _ld(2, _ld(1, b"\0\0\0")))),
                                          "multiple of 4"),
}


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
def test_malformed_records_name_the_row(name):
    record, message = BAD_RECORDS[name]
    records = [_example(i=("int64_list", [1])), record]
    spec = {"i": io.VarLenFeature("int64"), "f": io.VarLenFeature("float32")}
    for backend in BACKENDS:
        with pytest.raises(ExampleDecodeError) as info:
            io.decode_examples(records, spec, backend=backend, path="data.tfrecord")
        assert info.value.row == 1 and "data.tfrecord" in str(info.value)
        if backend == "c":
            assert info.value.offset is not None
            assert pytest.importorskip("re").search(message, str(info.value)), str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_required_feature(backend):
    records = [_example(x=("float_list", [1.0])), _example(y=("float_list", [2.0]))]
    with pytest.raises(ExampleDecodeError, match="required feature is missing") as info:
        io.decode_examples(records, {"x": io.FixedLenFeature([], "float32")}, backend=backend)
    assert (info.value.row, info.value.feature) == (1, "x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_dtype(backend):
    records = [_example(x=("float_list", [1.0])), _example(x=("int64_list", [1]))]
    with pytest.raises(ExampleDecodeError, match="wrong data type.*float32") as info:
        io.decode_examples(records, {"x": io.VarLenFeature("float32")}, backend=backend)
    assert (info.value.row, info.value.feature) == (1, "x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_number_of_values(backend):
    records = [_example(x=("int64_list", [1, 2, 3])), _example(x=("int64_list", [1, 2]))]
    spec = {"x": io.FixedLenFeature([3], "int64", default_value=[0, 0, 0])}
    with pytest.raises(ExampleDecodeError, match="needs 3 values, got 2") as info:
        io.decode_examples(records, spec, backend=backend)
    assert (info.value.row, info.value.feature) == (1, "x")


def test_encode_errors_name_row_and_feature():
    spec = {"x": io.FixedLenFeature([2], "int64")}
    with pytest.raises(ExampleEncodeError, match="needs 2 values, got 3") as info:
        io.encode_examples({"x": [[1, 2], [1, 2, 3]]}, spec)
    assert (info.value.row, info.value.feature) == (1, "x")
    with pytest.raises(ExampleEncodeError, match="no default_value") as info:
        io.encode_examples({"x": [[1, 2], None]}, spec)
    assert info.value.row == 1
    with pytest.raises(ExampleEncodeError, match="float64 values for an int64"):
        io.encode_examples({"x": np.zeros((2, 2))}, spec)
    with pytest.raises(ExampleEncodeError, match="string feature"):
        io.encode_examples({"s": [1, 2]}, {"s": io.VarLenFeature("string")})
    with pytest.raises(ExampleEncodeError, match="null value") as info:
        io.encode_examples({"v": [[1], [2, None]]}, {"v": io.VarLenFeature("int64")})
    assert info.value.row == 1
    with pytest.raises(SchemaError, match="missing from the columns"):
        io.encode_examples({}, spec)
    with pytest.raises(SchemaError, match="different lengths"):
        io.encode_examples({"a": [1], "b": [1, 2]}, {"a": io.VarLenFeature("int64"),
                                                      "b": io.VarLenFeature("int64")})


# --- both backends agree with protobuf on random data --------------------------------------

_values = {
    "float32": st.floats(width=32, allow_nan=False),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "string": st.binary(max_size=12),
}
_names = st.sampled_from(["a", "b", "c10", "c1", "é", "long_feature_name_" * 3])


@st.composite
def _batches(draw):
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    spec = {n: io.VarLenFeature(draw(st.sampled_from(list(_values)))) for n in names}
    n = draw(st.integers(0, 6))
    columns = {name: draw(st.lists(st.none() | st.lists(_values[s.dtype], max_size=4),
                                   min_size=n, max_size=n)) for name, s in spec.items()}
    return columns, spec


@settings(max_examples=150, deadline=None)
@given(_batches())
def test_backends_match_protobuf(batch):
    columns, spec = batch
    n = len(next(iter(columns.values())))
    expected = []
    for row in range(n):
        features = {}
        for name, s in spec.items():
            if columns[name][row] is not None:
                kind = {"float32": "float_list", "int64": "int64_list", "string": "bytes_list"}
                features[name] = (kind[s.dtype], columns[name][row])
        expected.append(_example(**features))
    for backend in BACKENDS:
        records = io.encode_examples(columns, spec, backend=backend)
        assert records.to_pylist() == expected
        decoded = io.decode_examples(expected, spec, backend=backend)
        for name in spec:
            want = [[] if v is None else v for v in columns[name]]
            got = decoded[name].to_pylist()
            if spec[name].dtype == "float32":
                want = [np.float32(v).tolist() if False else
                        list(np.asarray(v, np.float32)) for v in want]
                got = [list(np.asarray(v, np.float32)) for v in got]
            assert got == want


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_never_crash_and_backends_agree(data):
    spec = {"a": io.VarLenFeature("int64"), "b": io.VarLenFeature("string")}
    results = []
    for backend in BACKENDS:
        try:
            out = io.decode_examples([data], spec, backend=backend)
            results.append({k: v.to_pylist() for k, v in out.items()})
        except ExampleDecodeError as exc:
            assert exc.row == 0
            results.append("error")
    assert len(set(map(repr, results))) == 1, results


def test_non_utf8_feature_names_are_rejected_like_protobuf():
    record = _ld(1, _entry(b"\xff\xfe", _ld(3, _ld(1, b"\x01"))))
    for backend in BACKENDS:
        with pytest.raises(ExampleDecodeError):
            io.decode_examples([record], {"i": io.VarLenFeature("int64")}, backend=backend)


def test_sliced_arrow_inputs_with_nulls():
    values = [None if i % 3 == 0 else i for i in range(40)]
    strings = [None if i % 4 == 1 else f"s{i}" for i in range(40)]
    table = pa.table({"i": pa.array(values, pa.int64()), "s": pa.array(strings)})
    spec = {"i": io.FixedLenFeature([], "int64", default_value=-1),
            "s": io.FixedLenFeature([], "string", default_value="?")}
    for start, length in [(3, 20), (11, 17), (0, 40), (37, 3)]:
        for backend in BACKENDS:
            out = io.decode_examples(io.encode_examples(table.slice(start, length), spec,
                                                        backend=backend), spec)
            rows = range(start, start + length)
            assert out["i"].tolist() == [-1 if values[r] is None else values[r] for r in rows]
            assert out["s"].tolist() == [b"?" if strings[r] is None else strings[r].encode()
                                         for r in rows]
