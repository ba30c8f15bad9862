"""serving/rules.py: each op's numpy rule on direct inputs (numpy, pyarrow, ragged).

TFT-golden checks of the same rules through whole graphs are in tests/test_local.py; the
coverage test below makes sure every op of ir/ops.py is exercised by one or the other.
"""
import hashlib

import numpy as np
import pyarrow as pa
import pytest

from tft_lite.errors import SchemaError
from tft_lite.ir.ops import OPS
from tft_lite.serving.assets import AssetFile
from tft_lite.serving.rules import RULES
from tft_lite.serving.values import Ragged

F = np.array([1.5, -2.0, np.nan, np.inf], np.float32)
R = Ragged(np.array([1.0, 2.0, 3.0], np.float32), np.array([0, 2, 2, 3]))
S = np.array([b"a", b"B c", b""], dtype=object)
SA = pa.array([b"a", b"B c", b""], pa.large_binary())


def _asset(text: bytes) -> AssetFile:
    return AssetFile("v", text, hashlib.sha256(text).hexdigest())


def rows(x):
    """A comparable form of any run-time value."""
    if isinstance(x, Ragged):
        values = x.values.to_pylist() if isinstance(x.values, pa.Array) else x.values.tolist()
        return [values[a:b] for a, b in zip(x.row_splits[:-1], x.row_splits[1:])]
    if isinstance(x, pa.Array):
        return x.to_pylist()
    return np.asarray(x).tolist()


CASES = [
    ("constant", [], {"value": np.array([1, 2])}, [1, 2]),
    ("is_inf", [F], {}, [False, False, False, True]),
    ("is_finite", [F], {}, [True, True, False, False]),
    ("is_nan", [R], {}, [[False, False], [], [False]]),
    ("logical_xor", [np.array([True, False]), np.array([True, True])], {}, [False, True]),
    ("logical_or", [np.array([True, False]), np.array(False)], {}, [True, False]),
    ("logical_and", [np.array([True, False]), np.array(True)], {}, [True, False]),
    ("log", [np.array([1.0, 0.0, -1.0])], {}, [0.0, -np.inf, np.nan]),
    ("greater_equal", [np.array([1, 2]), np.array(2)], {}, [False, True]),
    ("logical_not", [np.array([True, False])], {}, [False, True]),
    ("add", [R, R], {}, [[2.0, 4.0], [], [6.0]]),
    ("subtract", [R, np.float32(1)], {}, [[0.0, 1.0], [], [2.0]]),
    ("equal", [SA, np.array(b"a", dtype=object)], {}, [True, False, False]),
    ("not_equal", [S, np.array(b"a", dtype=object)], {}, [False, True, True]),
    ("less", [F, np.float32(0)], {}, [False, True, False, False]),
    ("less_equal", [np.array([1, 2]), np.array(1)], {}, [True, False]),
    ("greater", [np.array([1, 2]), np.array(1)], {}, [False, True]),
    ("where", [np.array([True, False]), SA[:2], np.array(b"z", dtype=object)], {},
     [b"a", b"z"]),
    ("cast", [np.array([-1.7, 0.0, 2.9]), ], {"dtype": "int64"}, [-1, 0, 2]),
    ("cast", [np.array([-1.7, 0.0])], {"dtype": "bool"}, [True, False]),
    ("negative", [np.array([1, -2])], {}, [-1, 2]),
    ("divide", [np.array([1, 3]), np.array(2)], {}, [0.5, 1.5]),
    ("multiply", [np.array([1, 3]), np.array(2)], {}, [2, 6]),
    ("squeeze", [np.array([[1], [2]])], {"axis": 1}, [1, 2]),
    ("expand_dims", [np.array([1, 2])], {"axis": 1}, [[1], [2]]),
    ("fill_missing", [Ragged(SA[:2], np.array([0, 1, 1, 2]))],
     {"default_value": np.array(b"?", dtype=object)}, [b"a", b"?", b"B c"]),
    ("to_dense", [R], {"width": 2, "default_value": np.array(0, np.float32)},
     [[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]),
    ("row_lengths", [R], {}, [2, 0, 1]),
    ("reduce_sum", [np.array([[1, 2], [3, 4]])], {"axis": 1}, [3, 7]),
    ("reduce_mean", [np.array([[1.0, 2.0], [3.0, 5.0]])], {"axis": 1}, [1.5, 4.0]),
    ("reduce_max", [Ragged(np.array([5, 1]), np.array([0, 0, 2]))], {"axis": 1},
     [np.iinfo(np.int64).min, 5]),
    ("reduce_min", [np.array([[1, 2], [3, 0]])], {"axis": 1}, [1, 0]),
    ("lower", [SA], {}, [b"a", b"b c", b""]),
    ("upper", [S], {}, [b"A", b"B C", b""]),
    ("strip", [Ragged(np.array([b" a ", b"\tb"], dtype=object), np.array([0, 2]))], {},
     [[b"a", b"b"]]),
    ("length", [np.array([[b"ab", b""]], dtype=object)], {}, [[2, 0]]),
    ("substr", [SA[:2]], {"pos": -1, "length": 5}, [b"a", b"c"]),
    ("regex_replace", [SA], {"pattern": "([a-c])", "rewrite": "<\\1>", "replace_global": True},
     [b"<a>", b"B <c>", b""]),
    ("to_number", [pa.array([b" 12", b"+3", b"-4"])], {"dtype": "int64"}, [12, 3, -4]),
    ("to_number", [np.array([b"1e3", b"nan"], dtype=object)], {"dtype": "float64"},
     [1000.0, float("nan")]),
    ("split", [SA], {"sep": " "}, [[b"a"], [b"B", b"c"], [b""]]),
    ("split", [pa.array([b"  x  y ", b"", b"z"])], {"sep": ""}, [[b"x", b"y"], [], [b"z"]]),
    ("hash_strings", [Ragged(SA, np.array([0, 3]))], {"hash_buckets": 1, "key": ()}, [[0, 0, 0]]),
    ("apply_buckets", [np.array([0.5, 1.0, np.nan]), np.array([[1.0]], np.float32)], {},
     [0, 1, 1]),
    ("apply_buckets", [np.array([1, 2, 3]), np.array([[2]], np.int32)], {}, [0, 1, 1]),
    ("apply_vocabulary", [np.array([5, 7, 5]), _asset(b"7\n")],
     {"default_value": -1, "num_oov_buckets": 0, "store_frequency": False}, [-1, 0, -1]),
    ("apply_vocabulary", [Ragged(SA, np.array([0, 1, 3])), _asset(b"3 B__SPACE__c\n1 a\n")],
     {"default_value": -9, "num_oov_buckets": 0, "store_frequency": True}, [[1], [-9, -9]]),
]


@pytest.mark.parametrize("op,args,attrs,want", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule(op, args, attrs, want):
    with np.errstate(all="ignore"):  # as the interpreter runs rules
        got = rows(RULES[op](*args, **attrs))
    if op in ("to_number", "log"):
        np.testing.assert_array_equal(np.array(got, float), np.array(want, float))
    else:
        assert got == want


def test_oov_hashes_integers_as_decimal_strings():
    from tft_lite.kernels.hashing import fingerprint64
    out = RULES["apply_vocabulary"](np.array([12, 7]), _asset(b"7\n"), default_value=-1,
                                    num_oov_buckets=5, store_frequency=False)
    assert out.tolist() == [1 + int(fingerprint64([b"12"])[0] % 5), 0]


RULE_ERRORS = [
    ("add", [R, Ragged(np.ones(3), np.array([0, 1, 2, 3]))], {}, "different row lengths"),
    ("fill_missing", [R], {"default_value": np.array(0.0)}, "row 0 has 2 values"),
    ("to_dense", [R], {"width": 1, "default_value": np.array(0.0)}, "row 0 has 2 values"),
    ("squeeze", [np.zeros((2, 3))], {"axis": 1}, "has size 3, not 1"),
    ("substr", [SA], {"pos": 2, "length": 1}, "pos 2 is out of range for row 0"),
    ("to_number", [S], {"dtype": "float32"}, "row 0: 'a' is not a valid float32"),
]


@pytest.mark.parametrize("op,args,attrs,fragment", RULE_ERRORS, ids=[c[0] for c in RULE_ERRORS])
def test_rule_errors(op, args, attrs, fragment):
    with pytest.raises(SchemaError, match=fragment):
        RULES[op](*args, **attrs)


def test_every_op_has_a_rule_and_a_test():
    from tests.test_local import SPEC_A, preprocessing_fn_a, preprocessing_fn_b
    from tft_lite.trace import trace
    traced = {n.op for fn, spec in [(preprocessing_fn_a, SPEC_A), (
        preprocessing_fn_b, {"x": SPEC_A["x"]})] for n in trace(fn, spec).nodes}
    serving_ops = {op for op in OPS if not op.startswith("analyzer_") and op != "asset"}
    assert serving_ops <= set(RULES)
    untested = serving_ops - traced - {case[0] for case in CASES}
    assert not untested
    assert {op for op in OPS if op.startswith("analyzer_")} <= traced


def test_where_with_a_constant_condition_picks_an_operand():
    x, y = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    assert RULES["where"](np.array(True), x, y) is x
    assert RULES["where"](np.array(False), x, y) is y
    # broadcasting or differing dtypes still go through np.where
    assert RULES["where"](np.array(True), np.float32(5), y).tolist() == [5.0, 5.0]
    assert RULES["where"](np.array(False), x, y.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("num_bounds", [0, 1, 3, 9, 200])
def test_bucket_counting_matches_searchsorted(dtype, num_bounds):
    from tft_lite.serving.rules import _bucket_indices
    rng = np.random.default_rng(num_bounds)
    bounds = np.sort(rng.normal(0, 3, num_bounds)).astype(dtype)
    if num_bounds > 1:
        bounds[1] = bounds[0]  # repeated boundary
    x = rng.normal(0, 3, 500).astype(dtype)
    if num_bounds:
        x[::5] = bounds[rng.integers(0, num_bounds, 100)]  # values on a boundary
    if dtype != np.int64:
        x[::7], x[::11], x[::13], x[::17] = np.nan, np.inf, -np.inf, -0.0
    want = np.searchsorted(bounds, x, side="right")
    got = _bucket_indices(bounds, x)
    assert got.dtype == np.int64 and got.tolist() == want.tolist()
    unsorted = bounds[::-1].copy()
    assert _bucket_indices(unsorted, x).tolist() == np.searchsorted(unsorted, x,
                                                                    side="right").tolist()


def test_transform_outputs_never_share_an_array():
    import tft_lite as tft
    spec = {"x": tft.FixedLenFeature([], "float32")}
    data = {"x": np.array([1.0, 2.0, 4.0], np.float32)}
    def fn(inputs):
        z = tft.scale_to_z_score(inputs["x"])  # its where() returns the division's array
        return {"a": z, "b": z, "c": z / 1.0}
    graph = tft.analyze(fn, data, spec)
    out = graph.transform(data)
    assert out["a"] is not out["b"]
    np.testing.assert_array_equal(out["a"], out["b"])
