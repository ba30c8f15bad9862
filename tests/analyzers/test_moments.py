"""Tests for tft_lite.analyzers.moments (min, max, sum, size, mean, var).

Golden values: produced once with tensorflow-transform 1.21 / TensorFlow 2.21 (/work/tfvenv),
by running `tft_beam.AnalyzeDataset` (DirectRunner) on the listed instances with a
preprocessing_fn returning tft.min/max/sum/size/mean/var of the feature (float32 or int64
FixedLenFeature; other dtypes via tf.cast inside the preprocessing_fn), and reading the
analyzer outputs back with TFTransformOutput.transform_raw_features. They are pasted as literals;
these tests never import TensorFlow.
"""
import pickle
import random
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_lite.analyzers.moments import (
    MaxCombiner,
    MeanAndVarCombiner,
    MeanCombiner,
    MinCombiner,
    MinMaxCombiner,
    SizeCombiner,
    SumCombiner,
    VarCombiner,
)

nan, inf = float("nan"), float("inf")


def _combiners(input_dtype, rid, instance_shape=None):
    kw = dict(reduce_instance_dims=rid, instance_shape=instance_shape)
    return {
        "minmax": MinMaxCombiner(input_dtype=input_dtype, **kw),
        "sum": SumCombiner(input_dtype=input_dtype, **kw),
        "size": SizeCombiner(**kw),
        "meanvar": MeanAndVarCombiner(input_dtype=input_dtype, **kw),
    }


def _analyze(x, input_dtype, rid=True, instance_shape=None, batches=None):
    """All analyzers on x; `batches` = list of row slices fed as separate add_input calls."""
    out = {}
    for name, comb in _combiners(input_dtype, rid, instance_shape).items():
        acc = comb.create_accumulator()
        if x is not None:
            for sl in batches or [slice(None)]:
                acc = comb.add_input(acc, (x[sl],))
        res = comb.extract_output(acc)
        if name == "minmax":
            out["min"], out["max"] = res
        elif name == "meanvar":
            out["mean"], out["var"] = res
        else:
            out[name] = res[0]
    return out


# name, rows, feature dtype, analyzer input dtype, reduce_instance_dims, instance_shape,
# expected {output: (dtype, value)} -- all from TFT 1.21 (see module docstring).
TFT_GOLDEN = [
    ("f32_basic", [1.0, 2.0, 3.0, 4.0], "float32", True, None,
     {"max": ("float32", 4.0), "mean": ("float32", 2.5), "min": ("float32", 1.0),
      "size": ("int64", 4), "sum": ("float32", 10.0), "var": ("float32", 1.25)}),
    ("f32_nan", [1.0, nan, 3.0], "float32", True, None,
     {"max": ("float32", nan), "mean": ("float32", 2.0), "min": ("float32", nan),
      "size": ("int64", 3), "sum": ("float32", nan), "var": ("float32", 1.0)}),
    ("f32_inf", [1.0, inf, -2.0], "float32", True, None,
     {"max": ("float32", inf), "mean": ("float32", -0.5), "min": ("float32", -2.0),
      "size": ("int64", 3), "sum": ("float32", inf), "var": ("float32", 2.25)}),
    ("f32_neginf", [1.0, -inf, 5.0], "float32", True, None,
     {"max": ("float32", 5.0), "mean": ("float32", 3.0), "min": ("float32", -inf),
      "size": ("int64", 3), "sum": ("float32", -inf), "var": ("float32", 4.0)}),
    ("f32_allnan", [nan, nan], "float32", True, None,
     {"max": ("float32", nan), "mean": ("float32", 0.0), "min": ("float32", nan),
      "size": ("int64", 2), "sum": ("float32", nan), "var": ("float32", 0.0)}),
    ("f32_empty", [], "float32", True, None,
     {"max": ("float32", -inf), "mean": ("float32", 0.0), "min": ("float32", inf),
      "size": ("int64", 0), "sum": ("float32", 0.0), "var": ("float32", 0.0)}),
    ("f32_vals", [1.5, 2.25, -7.125, 1e10], "float32", True, None,
     {"max": ("float32", 1e10), "mean": ("float32", 2500000000.0), "min": ("float32", -7.125),
      "size": ("int64", 4), "sum": ("float32", 1e10), "var": ("float32", 1.875000037576645e19)}),
    ("f32_nan_batched", [1.0, 2.0, nan, 4.0], "float32", True, None,  # TFT batch size 1
     {"max": ("float32", nan), "mean": ("float32", 2.3333332538604736), "min": ("float32", nan),
      "size": ("int64", 4), "sum": ("float32", nan), "var": ("float32", 1.5555555820465088)}),
    ("i64_basic", [3, -7, 12, 5], "int64", True, None,
     {"max": ("int64", 12), "mean": ("float32", 3.25), "min": ("int64", -7),
      "size": ("int64", 4), "sum": ("int64", 13), "var": ("float32", 46.1875)}),
    ("i64_empty", [], "int64", True, None,
     {"max": ("int64", -9223372036854775807), "mean": ("float32", 0.0),
      "min": ("int64", 9223372036854775807), "size": ("int64", 0), "sum": ("int64", 0),
      "var": ("float32", 0.0)}),
    ("i64_big", [2**40 + 1, 2**40 + 3], "int64", True, None,  # cast to float32 first
     {"max": ("int64", 1099511627779), "mean": ("float32", 1099511627776.0),
      "min": ("int64", 1099511627777), "size": ("int64", 2), "sum": ("int64", 2199023255556),
      "var": ("float32", 0.0)}),
    ("f32_vec_rid_false", [[1.0, nan], [3.0, 4.0], [inf, 6.0]], "float32", False, None,
     {"max": ("float32", [inf, nan]), "mean": ("float32", [2.0, 5.0]),
      "min": ("float32", [1.0, nan]), "size": ("int64", [3, 3]),
      "sum": ("float32", [inf, nan]), "var": ("float32", [1.0, 1.0])}),
    ("f32_vec_rid_true", [[1.0, nan], [3.0, 4.0], [inf, 6.0]], "float32", True, None,
     {"max": ("float32", nan), "mean": ("float32", 3.5), "min": ("float32", nan),
      "size": ("int64", 6), "sum": ("float32", nan), "var": ("float32", 3.25)}),
    ("i64_vec_rid_false", [[1, -2], [3, 4], [5, -6]], "int64", False, None,
     {"max": ("int64", [5, 4]), "mean": ("float32", [3.0, -1.3333333730697632]),
      "min": ("int64", [1, -6]), "size": ("int64", [3, 3]), "sum": ("int64", [9, -4]),
      "var": ("float32", [2.6666667461395264, 16.88888931274414])}),
    ("f32_vec_allnan_col", [[1.0, nan], [3.0, nan]], "float32", False, None,
     {"max": ("float32", [3.0, nan]), "mean": ("float32", [2.0, nan]),
      "min": ("float32", [1.0, nan]), "size": ("int64", [2, 2]),
      "sum": ("float32", [4.0, nan]), "var": ("float32", [1.0, nan])}),
    ("f32_vec_empty", [], "float32", False, (2,),
     {"max": ("float32", [-inf, -inf]), "mean": ("float32", [0.0, 0.0]),
      "min": ("float32", [inf, inf]), "size": ("int64", [0, 0]),
      "sum": ("float32", [0.0, 0.0]), "var": ("float32", [0.0, 0.0])}),
    # float32 feature, tf.cast to the dtype inside the preprocessing_fn:
    ("u8_empty", [], "uint8", True, None,
     {"max": ("uint8", 1), "min": ("uint8", 255), "sum": ("uint64", 0),
      "mean": ("float32", 0.0), "var": ("float32", 0.0), "size": ("int64", 0)}),
    ("u16_empty", [], "uint16", True, None,
     {"max": ("uint16", 1), "min": ("uint16", 65535), "sum": ("uint64", 0),
      "mean": ("float32", 0.0), "var": ("float32", 0.0), "size": ("int64", 0)}),
    ("i32_empty", [], "int32", True, None,
     {"max": ("int32", -2147483647), "min": ("int32", 2147483647), "sum": ("int64", 0),
      "mean": ("float32", 0.0), "var": ("float32", 0.0), "size": ("int64", 0)}),
    ("i16_empty", [], "int16", True, None,
     {"max": ("int16", -32767), "min": ("int16", 32767), "sum": ("int64", 0),
      "mean": ("float32", 0.0), "var": ("float32", 0.0), "size": ("int64", 0)}),
    ("i8_empty", [], "int8", True, None,
     {"max": ("int8", -127), "min": ("int8", 127), "sum": ("int64", 0),
      "mean": ("float32", 0.0), "var": ("float32", 0.0), "size": ("int64", 0)}),
    ("f64_empty", [], "float64", True, None,
     {"max": ("float64", -inf), "min": ("float64", inf), "sum": ("float64", 0.0),
      "mean": ("float64", 0.0), "var": ("float64", 0.0), "size": ("int64", 0)}),
    ("u8_vals", [3, 200, 7], "uint8", True, None,
     {"max": ("uint8", 200), "min": ("uint8", 3), "sum": ("uint64", 210),
      "mean": ("float32", 70.0), "var": ("float32", 8452.6669921875), "size": ("int64", 3)}),
    ("negzero", [-0.0, -0.0], "float32", True, None,
     {"max": ("float32", -0.0), "min": ("float32", -0.0), "sum": ("float32", 0.0),
      "mean": ("float32", 0.0), "var": ("float32", 0.0), "size": ("int64", 2)}),
    ("negzero_pos", [-0.0, 1.0], "float32", True, None,
     {"max": ("float32", 1.0), "min": ("float32", -0.0), "sum": ("float32", 1.0),
      "mean": ("float32", 0.5), "var": ("float32", 0.25), "size": ("int64", 2)}),
    ("f64_of_f32", np.array([0.1, 0.2, 0.3], np.float32).tolist(), "float64", True, None,
     {"max": ("float64", 0.30000001192092896), "min": ("float64", 0.10000000149011612),
      "sum": ("float64", 0.6000000163912773), "mean": ("float64", 0.2000000054637591),
      "var": ("float64", 0.006666667362054211), "size": ("int64", 3)}),
]


def _assert_bit_equal(actual, dtype, value, what):
    expected = np.asarray(value, dtype=dtype)
    assert actual.dtype == np.dtype(dtype), what
    assert actual.shape == expected.shape, what
    if actual.dtype.kind == "f":
        # NaN == NaN, and the sign of zeros/infinities must match too.
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
        ok = ~np.isnan(expected)
        np.testing.assert_array_equal(actual[ok], expected[ok], err_msg=what)
        np.testing.assert_array_equal(np.signbit(actual[ok]), np.signbit(expected[ok]),
                                      err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


_GOLDEN_PARAMS = [
    pytest.param(case, batching, id=f"{case[0]}-{batching}")
    for case in TFT_GOLDEN
    for batching in (["one", "singles"] + ([] if case[1] else ["none"]))
]


@pytest.mark.parametrize("case,batching", _GOLDEN_PARAMS)
def test_tft_golden(case, batching):
    name, rows, dtype, rid, instance_shape, expected = case
    x = np.array(rows, dtype=dtype)
    if not rows and not rid:
        x = x.reshape((0,) + tuple(instance_shape))
    if batching == "one":
        out = _analyze(x, dtype, rid, instance_shape)
    elif batching == "singles":
        out = _analyze(x, dtype, rid, instance_shape, [slice(i, i + 1) for i in range(len(x))])
    else:  # empty data and no add_input call at all (TFT: no batches)
        out = _analyze(None, dtype, rid, instance_shape)
    for key, (out_dtype, value) in expected.items():
        _assert_bit_equal(out[key], out_dtype, value, f"{name}/{key}")


# ----------------------------------------------------------------------------- references


def _ref_minmax(x, rid):
    xs = x.reshape(-1, 1) if rid else x.reshape(len(x), int(np.prod(x.shape[1:])))
    mins, maxs = [], []
    for col in xs.T:
        if col.dtype.kind == "f" and np.isnan(col).any():
            mins.append(nan)
            maxs.append(nan)
            continue
        mn, mx = col.min(), col.max()
        if col.dtype.kind == "f":
            zeros = col[col == 0]
            if mn == 0:
                mn = -0.0 if np.signbit(zeros).any() else 0.0
            if mx == 0:
                mx = 0.0 if (~np.signbit(zeros)).any() else -0.0
        mins.append(mn)
        maxs.append(mx)
    shape = () if rid else x.shape[1:]
    return (np.array(mins, x.dtype).reshape(shape), np.array(maxs, x.dtype).reshape(shape))


def _frac_to_float(f):
    try:
        return float(f)
    except OverflowError:
        return inf if f > 0 else -inf


def _ref_mean_var(x, rid, out_dtype):
    """Exact mean/var with fractions, rounded once to float64 then cast (TFT rules for NaN)."""
    with np.errstate(over="ignore"):
        xc = x.astype(out_dtype)
    xs = xc.reshape(-1, 1) if rid else xc.reshape(len(xc), int(np.prod(xc.shape[1:])))
    finite_total = int(np.isfinite(xs).sum())
    shape = () if rid else x.shape[1:]
    if finite_total == 0:
        z = np.zeros(shape, out_dtype)
        return z, z.copy()
    means, variances = [], []
    for col in xs.T:
        vals = [Fraction(float(v)) for v in col if np.isfinite(v)]
        if not vals:
            means.append(nan)
            variances.append(nan)
            continue
        n = len(vals)
        m = sum(vals) / n
        means.append(_frac_to_float(m))
        variances.append(_frac_to_float(sum((v - m) ** 2 for v in vals) / n))
    with np.errstate(over="ignore"):
        return (np.array(means).astype(out_dtype).reshape(shape),
                np.array(variances).astype(out_dtype).reshape(shape))


def _ref_sum(x, rid, out_dtype):
    xs = x.reshape(-1, 1) if rid else x.reshape(len(x), int(np.prod(x.shape[1:])))
    res = []
    for col in xs.T:
        if np.isnan(col).any() or (np.isposinf(col).any() and np.isneginf(col).any()):
            res.append(nan)
        elif np.isposinf(col).any():
            res.append(inf)
        elif np.isneginf(col).any():
            res.append(-inf)
        else:
            res.append(_frac_to_float(sum((Fraction(float(v)) for v in col), Fraction(0))))
    shape = () if rid else x.shape[1:]
    with np.errstate(over="ignore"):
        return np.array(res).astype(out_dtype).reshape(shape)


# ----------------------------------------------------------------------------- split/merge


def _outputs_bytes(outputs):
    return [(o.dtype.str, o.shape, o.tobytes()) for o in outputs]


def _run_split(comb, x, cuts, rnd):
    """Feed x in pieces (some chained into one accumulator), merge in a random tree."""
    bounds = [0] + sorted(cuts) + [len(x)]
    pieces = [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    accs = []
    acc = None
    for piece in pieces:
        if acc is None or rnd.random() < 0.5:
            if acc is not None:
                accs.append(acc)
            acc = comb.create_accumulator()
        acc = comb.add_input(acc, (piece,))
    if acc is not None:
        accs.append(acc)
    accs = [pickle.loads(pickle.dumps(a)) for a in accs]
    if rnd.random() < 0.3:
        accs.append(comb.create_accumulator())
    while len(accs) > 1:
        rnd.shuffle(accs)
        k = rnd.randint(2, len(accs))
        merged = comb.merge_accumulators(accs[:k])
        if rnd.random() < 0.5:
            merged = comb.compact(merged)
        accs = [merged] + accs[k:]
    final = accs[0] if accs else comb.create_accumulator()
    return comb.extract_output(final)


SPECIAL_FLOATS = [0.0, -0.0, nan, inf, -inf, 5e-324, -5e-324, 1.7976931348623157e308,
                  -1.7976931348623157e308, 1e9, 1e-300, 3.0]


def _float_values(width):
    special = [v for v in SPECIAL_FLOATS
               if width == 64 or np.isnan(v) or np.isinf(v) or
               (abs(v) < 3e38 and (v == 0 or abs(v) > 1e-40))]
    return st.one_of(st.sampled_from(special),
                     st.floats(width=width, allow_nan=False, allow_infinity=False),
                     st.integers(-1000, 1000).map(float))


@st.composite
def _dataset(draw):
    dtype = draw(st.sampled_from(["float32", "float64", "int64", "float16"]))
    rid = draw(st.booleans())
    ncols = draw(st.integers(1, 3))
    nrows = draw(st.integers(0, 25))
    if dtype == "int64":
        elem = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-5, 5))
    elif dtype == "float16":
        elem = st.one_of(st.sampled_from([0.0, -0.0, nan, inf, -inf, 65504.0, 6e-8]),
                         st.floats(width=16, allow_nan=False, allow_infinity=False))
    else:
        elem = _float_values(32 if dtype == "float32" else 64)
    rows = draw(st.lists(st.lists(elem, min_size=ncols, max_size=ncols),
                         min_size=nrows, max_size=nrows))
    x = np.array(rows, dtype=dtype).reshape(nrows, ncols)
    cuts = draw(st.lists(st.integers(0, nrows), max_size=6))
    return x, dtype, rid, cuts


@settings(max_examples=150, deadline=None)
@given(_dataset(), st.randoms(use_true_random=False))
def test_split_merge_invariance_and_reference(data, rnd):
    x, dtype, rid, cuts = data
    instance_shape = None if rid else (x.shape[1],)
    for name, comb in _combiners(dtype, rid, instance_shape).items():
        with np.errstate(over="ignore", invalid="ignore"):
            whole = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
            split = _run_split(comb, x, cuts, rnd)
        assert _outputs_bytes(split) == _outputs_bytes(whole), name
        if name == "minmax" and len(x):
            for got, ref in zip(whole, _ref_minmax(x, rid)):
                _assert_bit_equal(got, ref.dtype, ref, "minmax")
        if name == "meanvar":
            out_dtype = comb.output_dtypes()[0]
            for got, ref in zip(whole, _ref_mean_var(x, rid, out_dtype)):
                _assert_bit_equal(got, out_dtype, ref, "meanvar")
        if name == "sum" and x.dtype.kind == "f":
            ref = _ref_sum(x, rid, comb.output_dtypes()[0])
            _assert_bit_equal(whole[0], ref.dtype, ref, "sum")


def test_merge_tree_shapes_many_batches():
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(300, 4)) * 10.0 ** rng.integers(-8, 8, size=(300, 4))).astype(np.float32)
    x[5, 1] = nan
    x[17, 2] = inf
    for rid in (True, False):
        for comb in _combiners("float32", rid).values():
            whole = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
            for seed in range(5):
                rnd = random.Random(seed)
                cuts = [rnd.randint(0, 300) for _ in range(rnd.randint(0, 40))]
                assert _outputs_bytes(_run_split(comb, x, cuts, rnd)) == _outputs_bytes(whole)


# ----------------------------------------------------------------------------- numerics


def test_1e9_plus_noise_matches_numpy_float64():
    rng = np.random.default_rng(0)
    x = 1e9 + rng.normal(0.0, 1e-3, size=200_000)
    comb = MeanAndVarCombiner(input_dtype="float64")
    accs = []
    for chunk in np.array_split(x, 37):
        accs.append(comb.add_input(comb.create_accumulator(), (chunk,)))
    mean, var = comb.extract_output(comb.merge_accumulators(accs[::-1]))
    assert mean.dtype == np.float64 and var.dtype == np.float64
    np.testing.assert_allclose(mean, np.mean(x), rtol=1e-9)
    np.testing.assert_allclose(var, np.var(x), rtol=1e-9)
    # A naive E[x^2] - E[x]^2 in float64 would be off by orders of magnitude here.
    naive = np.mean(x * x) - np.mean(x) ** 2
    assert abs(naive - np.var(x)) > 1e-3 * np.var(x)


def test_mean_var_are_correctly_rounded():
    rng = np.random.default_rng(1)
    x = 1e9 + rng.normal(0.0, 1.0, size=3000)
    mean, var = MeanAndVarCombiner(input_dtype="float64").extract_output(
        MeanAndVarCombiner(input_dtype="float64").add_input(
            MeanAndVarCombiner(input_dtype="float64").create_accumulator(), (x,)))
    ref_mean, ref_var = _ref_mean_var(x, True, np.float64)
    assert mean.tobytes() == ref_mean.tobytes()
    assert var.tobytes() == ref_var.tobytes()


def test_sum_of_cancelling_values_is_exact():
    x = np.array([1e308, 1.0, -1e308, 1e-300, 1e308, -1e308], np.float64)
    comb = SumCombiner(input_dtype="float64")
    (s,) = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
    assert s == 1.0 + 1e-300 and s.dtype == np.float64
    # Overflowing exact sum rounds to inf like IEEE.
    big = np.full(4, 1.7976931348623157e308)
    (s,) = comb.extract_output(comb.add_input(comb.create_accumulator(), (big,)))
    assert s == inf
    (s,) = comb.extract_output(comb.add_input(comb.create_accumulator(), (-big,)))
    assert s == -inf


def test_float32_sum_overflow_and_float16_dtypes():
    comb = SumCombiner(input_dtype="float32")
    x = np.full(3, 3e38, np.float32)
    (s,) = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
    assert s.dtype == np.float32 and s == np.float32(inf)
    h = np.array([1.5, 2.0, 65504.0], np.float16)
    (s,) = SumCombiner(input_dtype="float16").extract_output(
        SumCombiner(input_dtype="float16").add_input(
            SumCombiner(input_dtype="float16").create_accumulator(), (h,)))
    assert s.dtype == np.float32 and s == 65507.5  # TFT: float16 sums to float32
    mv = MeanAndVarCombiner(input_dtype="float16")
    mean, var = mv.extract_output(mv.add_input(mv.create_accumulator(), (h,)))
    assert mean.dtype == np.float16 and var.dtype == np.float16


def test_integer_sum_wraps_like_numpy():
    x = np.array([2**63 - 1, 1, 5], np.int64)
    comb = SumCombiner(input_dtype="int64")
    (s,) = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
    assert s.dtype == np.int64 and int(s) == -(2**63) + 5
    u = np.array([2**64 - 1, 2], np.uint64)
    cu = SumCombiner(input_dtype="uint64")
    (s,) = cu.extract_output(cu.add_input(cu.create_accumulator(), (u,)))
    assert s.dtype == np.uint64 and int(s) == 1
    ci = SumCombiner(input_dtype="int32")
    big = np.array([2**31 - 1] * 2, np.int32)
    (s,) = ci.extract_output(ci.add_input(ci.create_accumulator(), (big,)))
    assert s.dtype == np.int64 and int(s) == 2 * (2**31 - 1)


def test_output_dtype_and_integer_cast_to_float32_first():
    # TFT casts x to the output dtype before reducing: 2**24 + 1 is not a float32.
    x = np.array([2**24 + 1, 2**24 + 1], np.int64)
    comb = MeanAndVarCombiner(input_dtype="int64")
    mean, var = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
    assert mean.dtype == np.float32 and float(mean) == 2**24 and float(var) == 0.0
    comb64 = MeanAndVarCombiner(input_dtype="int64", output_dtype="float64")
    mean, _ = comb64.extract_output(comb64.add_input(comb64.create_accumulator(), (x,)))
    assert mean.dtype == np.float64 and float(mean) == 2**24 + 1
    c32 = MeanAndVarCombiner(input_dtype="float64", output_dtype="float32")
    mean, _ = c32.extract_output(c32.add_input(c32.create_accumulator(), (np.array([0.1]),)))
    assert mean.dtype == np.float32 and mean == np.float32(0.1)


# ----------------------------------------------------------------------------- API details


def test_single_output_combiners():
    x = np.array([[1.0, 5.0], [3.0, -1.0]], np.float32)
    for cls, expected in ((MinCombiner, [1.0, -1.0]), (MaxCombiner, [3.0, 5.0]),
                          (MeanCombiner, [2.0, 2.0]), (VarCombiner, [1.0, 9.0])):
        comb = cls(input_dtype="float32", reduce_instance_dims=False)
        out = comb.extract_output(comb.add_input(comb.create_accumulator(), (x,)))
        assert len(out) == 1 and len(comb.output_dtypes()) == 1
        assert out[0].tolist() == expected


def test_pyarrow_and_3d_inputs():
    comb = MeanAndVarCombiner(input_dtype="float32")
    acc = comb.add_input(comb.create_accumulator(), (pa.array([1.0, 2.0, 3.0], pa.float32()),))
    acc = comb.add_input(acc, (pa.chunked_array([[4.0], [5.0]], pa.float32()),))
    mean, var = comb.extract_output(acc)
    assert float(mean) == 3.0 and float(var) == 2.0
    size = SizeCombiner()
    acc = size.add_input(size.create_accumulator(), (pa.array(["a", "b"]),))
    assert int(size.extract_output(acc)[0]) == 2
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    mm = MinMaxCombiner(input_dtype="float64", reduce_instance_dims=False)
    mn, mx = mm.extract_output(mm.add_input(mm.create_accumulator(), (x,)))
    assert mn.shape == (3, 4) and mn.tolist() == x[0].tolist() and mx.tolist() == x[1].tolist()
    sz = SizeCombiner(reduce_instance_dims=False)
    (s,) = sz.extract_output(sz.add_input(sz.create_accumulator(), (x,)))
    assert s.shape == (3, 4) and (s == 2).all()


def test_empty_elementwise_without_shape_and_with_empty_batch():
    comb = MinMaxCombiner(input_dtype="float32", reduce_instance_dims=False)
    mn, mx = comb.extract_output(comb.create_accumulator())
    assert mn.shape == (0,) and mx.shape == (0,)
    acc = comb.add_input(comb.create_accumulator(), (np.zeros((0, 3), np.float32),))
    mn, mx = comb.extract_output(acc)
    assert mn.tolist() == [inf] * 3 and mx.tolist() == [-inf] * 3


def test_errors():
    with pytest.raises(TypeError):
        MinMaxCombiner(input_dtype="uint32")
    with pytest.raises(TypeError):
        SumCombiner(input_dtype="bool")
    with pytest.raises(TypeError):
        MeanAndVarCombiner(input_dtype="float32", output_dtype="int64")
    comb = MeanAndVarCombiner(input_dtype="float32", reduce_instance_dims=False)
    acc = comb.add_input(comb.create_accumulator(), (np.zeros((2, 3), np.float32),))
    with pytest.raises(ValueError):
        comb.add_input(acc, (np.zeros((2, 4), np.float32),))
    other = comb.add_input(comb.create_accumulator(), (np.zeros((2, 2), np.float32),))
    with pytest.raises(ValueError):
        comb.merge_accumulators([acc, other])
    with pytest.raises(TypeError):  # float64 -> float32 is not a safe cast
        comb.add_input(comb.create_accumulator(), (np.zeros((2, 3), np.float64),))
    with pytest.raises(ValueError):
        comb.add_input(comb.create_accumulator(), (np.float32(1.0),))
    with pytest.raises(ValueError):
        two = (np.zeros(2, np.float32), np.zeros(2, np.float32))
        comb.add_input(comb.create_accumulator(), two)
    with pytest.raises(ValueError):
        comb.add_input(comb.create_accumulator(), (pa.array([1.0, None], pa.float32()),))


def test_config_is_stored_unchanged_and_accumulators_pickle():
    shape = [2]
    comb = MeanAndVarCombiner(input_dtype="int32", reduce_instance_dims=False,
                              output_dtype=None, instance_shape=shape)
    assert comb.get_config() == {"input_dtype": "int32", "reduce_instance_dims": False,
                                 "output_dtype": None, "instance_shape": shape}
    assert comb.get_config()["instance_shape"] is shape
    assert comb == MeanAndVarCombiner(input_dtype="int32", reduce_instance_dims=False,
                                      instance_shape=[2])
    acc = comb.add_input(comb.create_accumulator(), (np.array([[1, 2], [3, 4]], np.int32),))
    clone = pickle.loads(pickle.dumps(acc))
    assert _outputs_bytes(comb.extract_output(clone)) == _outputs_bytes(comb.extract_output(acc))


def test_merge_does_not_mutate_other_accumulators():
    comb = SumCombiner(input_dtype="int64", reduce_instance_dims=False)
    a = comb.add_input(comb.create_accumulator(), (np.array([[1, 2]]),))
    b = comb.add_input(comb.create_accumulator(), (np.array([[10, 20]]),))
    b_before = pickle.dumps(b)
    comb.merge_accumulators([a, b])
    comb.merge_accumulators([a, b])
    assert pickle.dumps(b) == b_before
    assert comb.extract_output(comb.merge_accumulators([a, b]))[0].tolist() == [11, 22]
