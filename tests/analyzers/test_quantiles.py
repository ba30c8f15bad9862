"""Tests for tft_lite.analyzers.quantiles: TFT's quantiles sketch re-implemented in numpy.

Where the expected numbers come from (all pasted as literals; nothing here imports TF):
  * "real TFT": tensorflow-transform 1.21 + TensorFlow 2.21 in a separate venv,
    tft_beam.AnalyzeAndTransformDataset (DirectRunner) with a preprocessing_fn returning
    tft.quantiles(x, num_buckets, epsilon[, weights]) tiled per row; boundaries read back from the
    transformed rows (float32).
  * "tfx_bsl": tfx_bsl 1.21 `sketches.QuantilesSketch(epsilon, 1 << 32, num_streams)`, the C++
    sketch that TFT's QuantilesCombiner wraps, driven with the same AddValues / Compact / Merge
    sequence as the test; GetQuantiles(num_buckets).to_pylist() gives float64
    [min, boundaries..., max], compared here with include_max_and_min=True and float64 output.
  * TFT / tfx_bsl test files: tensorflow_transform/analyzers_test.py (_QUANTILES_* cases),
    tensorflow_transform/beam/bucketize_integration_test.py (tight-sequence cases) and
    tfx_bsl/sketches/quantiles_sketch_test.py (every number there was re-checked with tfx_bsl).
"""
from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tft_lite.analyzers import quantiles as q
from tft_lite.analyzers.quantiles import QuantilesCombiner
from tft_lite.errors import SchemaError

_NP_TYPES = (np.float32, np.float64, np.int32, np.int64)


def _run(combiner, batches):
    acc = combiner.create_accumulator()
    for batch in batches:
        acc = combiner.add_input(acc, batch)
    return combiner.extract_output(acc)


def _full(num_buckets, epsilon, **kw):
    """Combiner returning float64 [min, boundaries..., max] like tfx_bsl's GetQuantiles."""
    return QuantilesCombiner(
        num_buckets, epsilon, include_max_and_min=True, bucket_numpy_dtype=np.float64, **kw
    )


def _add_batches(combiner, acc, values, batch_size, weights=None):
    for i in range(0, len(values), batch_size):
        if weights is None:
            acc = combiner.add_input(acc, (values[i : i + batch_size],))
        else:
            acc = combiner.add_input(acc, (values[i : i + batch_size], weights[i : i + batch_size]))
    return acc


def _weyl(n, kind):
    """Deterministic pseudo-random data (no RNG, reproducible anywhere); also used for goldens."""
    i = np.arange(n, dtype=np.uint64)
    u = ((i * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)).astype(np.float64) / 2.0**53
    u = np.clip(u, 1e-12, 1 - 1e-12)
    if kind == "logistic":
        return np.log(u / (1 - u))
    if kind == "expo":
        return -np.log(u) * 100.0
    return u


def _exact_boundaries(values, weights, num_buckets):
    """Independent exact rule the sketch follows when it keeps every distinct value:
    boundary i = the smallest value whose cumulative weight exceeds i * W / num_buckets
    (min and max at both ends)."""
    values = np.asarray(values, np.float64)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, np.float64)
    keep = ~np.isnan(values) & (weights > 0)
    values, weights = values[keep], weights[keep]
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    uniq, start = np.unique(values, return_index=True)
    cum = np.cumsum(np.add.reduceat(weights, start))
    total = cum[-1]
    d = np.arange(num_buckets + 1) * total / num_buckets
    idx = np.minimum(np.searchsorted(cum, d, side="right"), uniq.size - 1)
    return uniq[idx]


def _rank_error(sorted_values, boundaries, num_buckets):
    """Max distance (in ranks) between each boundary's rank interval and its target rank."""
    n = sorted_values.size
    lo = np.searchsorted(sorted_values, boundaries, side="left")
    hi = np.searchsorted(sorted_values, boundaries, side="right")
    target = np.arange(1, num_buckets) * n / num_buckets
    return float(np.maximum(np.maximum(lo - target, target - hi), 0).max())


def _plain(obj):
    if isinstance(obj, tuple):
        return all(_plain(o) for o in obj)
    return obj is None or isinstance(obj, (bool, np.ndarray))


# ------------------------------------------------------------------------------------------
# Small goldens
# ------------------------------------------------------------------------------------------


def test_brief_examples_match_real_tft():
    # real TFT: tft.quantiles([1, 2, 3, 4], 3, 0.01) and tft.quantiles(1..99, 4, 0.01).
    (out,) = _run(QuantilesCombiner(3), [(np.array([1.0, 2.0, 3.0, 4.0]),)])
    assert out.dtype == np.float32 and out.shape == (1, 2)
    np.testing.assert_array_equal(out, [[2, 3]])
    (out,) = _run(QuantilesCombiner(4, 0.01), [(np.arange(1, 100),)])
    np.testing.assert_array_equal(out, [[25, 50, 75]])


@pytest.mark.parametrize(
    "num_buckets, expected",
    [  # bucketize_integration_test's tight sequence; re-checked with tfx_bsl (eps 0.01).
        (2, [3]),
        (3, [2, 3]),
        (4, [2, 3, 4]),
        (5, [1, 2, 3, 4]),
        (6, [1, 2, 3, 3, 4]),
        (7, [1, 2, 2, 3, 3, 4]),
        (8, [1, 2, 2, 3, 3, 4, 4]),
        (9, [1, 1, 2, 2, 3, 3, 4, 4]),
        (10, [1, 1, 2, 2, 3, 3, 3, 4, 4]),
    ],
)
def test_tight_sequence(num_buckets, expected):
    (out,) = _run(QuantilesCombiner(num_buckets), [(np.array([1, 2, 3, 4], np.int32),)])
    np.testing.assert_array_equal(out, [expected])


@pytest.mark.parametrize(
    "values, num_buckets, epsilon, expected",
    [  # tfx_bsl goldens (bucketize_integration_test inputs).
        (range(1, 100, 2), 4, None, [25, 51, 75]),  # TFT's (xfail-marked) test says [24, 50, 75]
        (range(99, 0, -2), 3, None, [33, 67]),
        (range(1, 3000), 2, None, [1500]),
        (range(1, 3000), 3, None, [1000, 2000]),
        (range(1, 3000), 2, 0.001, [1500]),
        (range(1, 100), 10, None, list(range(10, 100, 10))),
        (range(99, 0, -1), 10, None, list(range(10, 100, 10))),
    ],
)
def test_tfx_bsl_small_goldens(values, num_buckets, epsilon, expected):
    (out,) = _run(QuantilesCombiner(num_buckets, epsilon), [(np.array(list(values)),)])
    np.testing.assert_array_equal(out, [expected])


@pytest.mark.parametrize("np_type", _NP_TYPES)
def test_tft_analyzers_test_cases(np_type):
    # tensorflow_transform/analyzers_test.py; TFT's QuantilesCombiner class defaults to
    # output_shape = feature_shape + [num_outputs], hence the explicit output_shape here.
    c = QuantilesCombiner(5, 0.00001, output_shape=[4])
    batches = [
        (np.linspace(1, 100, 100, dtype=np_type),),
        (np.linspace(101, 200, 100, dtype=np_type),),
        (np.linspace(201, 300, 100, dtype=np_type),),
        (np.empty((0, 3)),),
    ]
    np.testing.assert_array_equal(_run(c, batches)[0], np.array([61, 121, 181, 241], np.float32))

    c = QuantilesCombiner(5, 0.00001, feature_shape=[3])
    x = np.vstack(
        [
            np.linspace(1, 100, 100, dtype=np_type),
            np.linspace(101, 200, 100, dtype=np_type),
            np.linspace(201, 300, 100, dtype=np_type),
        ]
    ).T
    (out,) = _run(c, [(x,), (np.empty((0, 3)),)])
    np.testing.assert_array_equal(
        out, [[21, 41, 61, 81], [121, 141, 161, 181], [221, 241, 261, 281]]
    )

    c = QuantilesCombiner(3, 0.00001, output_shape=[2])
    (out,) = _run(c, [(np.linspace(1, 100, 100, dtype=np_type),)])
    np.testing.assert_array_equal(out, [34, 67])

    c = QuantilesCombiner(4, 0.00001, output_shape=[3])
    np.testing.assert_array_equal(_run(c, [(np.array([1, 1], np_type),)])[0], [1, 1, 1])
    c = QuantilesCombiner(4, 0.00001, include_max_and_min=True, output_shape=[5])
    np.testing.assert_array_equal(_run(c, [(np.array([1, 1], np_type),)])[0], [1, 1, 1, 1, 1])
    c = QuantilesCombiner(5, 0.00001, output_shape=[4])
    (out,) = _run(c, [(np.empty((0, 1), np.float32),)])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.zeros(4))


_LIN300 = [np.linspace(1, 100, 100), np.linspace(101, 200, 100), np.linspace(201, 300, 100)]
_W123 = [np.full(100, 1.0), np.full(100, 2.0), np.full(100, 3.0)]


@pytest.mark.parametrize(
    "batches, num_streams, expected",
    [  # tfx_bsl/sketches/quantiles_sketch_test.py, eps 1e-5, num_quantiles = len(expected) - 1
        ([(b,) for b in _LIN300], 1, [[1, 61, 121, 181, 241, 300]]),
        ([(np.array(b),) for b in ([1, 2, 3, 4], [2, 2, 2, 2], [1, 2, 3, 4])], 1, [[1, 2, 3, 4]]),
        ([(np.zeros(100, np.int64),)], 1, [[0, 0, 0, 0]]),
        (
            [(np.linspace(1 + 100 * k, 500 + 100 * k, 500),) for k in range(3)],
            5,
            [[1 + i, 201 + i, 301 + i, 401 + i, 501 + i, 696 + i] for i in range(5)],
        ),
        (list(zip(_LIN300, _W123)), 1, [[1, 111, 171, 221, 261, 300]]),
        (
            list(zip([np.linspace(1 + 100 * k, 500 + 100 * k, 500) for k in range(3)], _W123)),
            5,
            [[1 + i, 231 + i, 331 + i, 431 + i, 541 + i, 696 + i] for i in range(5)],
        ),
        (
            [
                (np.array([1.0, 2.0, np.inf, np.inf, -np.inf, 3.0, 4.0, 5.0, -np.inf]),),
                (np.array([1.0, np.inf, -np.inf]),),
            ],
            1,
            [[-np.inf, -np.inf, 1, 4, np.inf, np.inf]],
        ),
        (
            [(b,) for b in _LIN300] + [(np.array([np.nan, np.nan]),)],
            1,
            [[1, 61, 121, 181, 241, 300]],
        ),
        (
            list(zip(_LIN300 + [np.array([-100, np.nan])], _W123 + [np.array([np.nan, 10000])])),
            1,
            [[1, 111, 171, 221, 261, 300]],
        ),
        ([(b.astype(np.int32),) for b in _LIN300], 1, [[1, 61, 121, 181, 241, 300]]),
        (
            list(zip(_LIN300 + [np.array([1e8, 2e8])], _W123 + [np.array([0.0, -1.0])])),
            1,
            [[1, 111, 171, 221, 261, 300]],
        ),
    ],
    ids=["unweighted", "lumpy", "more_quantiles_than_values", "elementwise", "weighted",
         "weighted_elementwise", "infinity", "nan", "nan_weighted", "int", "negative_weights"],
)
def test_tfx_bsl_sketch_test_cases(batches, num_streams, expected):
    c = _full(
        len(expected[0]) - 1,
        0.00001,
        has_weights=len(batches[0]) == 2,
        feature_shape=[num_streams] if num_streams > 1 else None,
        output_shape=[num_streams, len(expected[0])],
    )
    np.testing.assert_array_equal(_run(c, batches)[0], expected)


def test_real_tft_nan_inf_int_weights_and_empty():
    # All expected values below are real TFT outputs (see module docstring).
    base = list(range(1, 100))
    (out,) = _run(QuantilesCombiner(4, 0.01), [(np.array(base + [np.nan] * 10, np.float32),)])
    np.testing.assert_array_equal(out, [[25, 50, 75]])  # NaN ignored
    inf = np.inf
    inf_in = np.array([1.0, 2.0, inf, inf, -inf, 3.0, 4.0, 5.0, -inf, 1.0, inf, -inf])
    (out,) = _run(QuantilesCombiner(5, 0.01), [(inf_in,)])
    np.testing.assert_array_equal(out, [[-np.inf, 1, 4, np.inf]])  # inf is a value
    (out,) = _run(QuantilesCombiner(4, 0.01), [(np.full(5, np.nan),)])
    np.testing.assert_array_equal(out, np.zeros((1, 3), np.float32))  # nothing left: zeros
    (out,) = _run(QuantilesCombiner(4, 0.01), [(np.array(base, np.int64),)])
    assert out.dtype == np.float32  # float32 for every input dtype
    np.testing.assert_array_equal(out, [[25, 50, 75]])
    w = np.repeat([1.0, 2.0, 3.0], 100)
    c = QuantilesCombiner(5, 0.00001, has_weights=True)
    (out,) = _run(c, [(np.arange(1, 301, dtype=np.float32), w)])
    np.testing.assert_array_equal(out, [[111, 171, 221, 261]])
    w = np.array([0.0, -1.0, np.nan, 1, 1, 1, 1, 1, 1, 1])
    c = QuantilesCombiner(3, 0.01, has_weights=True)
    (out,) = _run(c, [(np.arange(1, 11, dtype=np.float32), w)])
    np.testing.assert_array_equal(out, [[6, 8]])  # weights <= 0 or NaN drop the value


# ------------------------------------------------------------------------------------------
# Large-data goldens
# ------------------------------------------------------------------------------------------

# tfx_bsl, 1M _weyl("logistic"), eps 0.01, 10 buckets, AddValues in batches of 10000, no merge.
_GOLDEN_A = [
    -27.63102111592755, -2.197898423849945, -1.3866127116308085, -0.8476671031280286,
    -0.4057324177941513, -0.0010644151368730823, 0.40617590211235177, 0.8480010946061561,
    1.3870511228016005, 2.198652906039202, 14.436354134304066,
]
# tfx_bsl, 1M _weyl("expo") in np.array_split(x, 7) parts, each AddValues in batches of 4096
# then Compact(); parts Merge()d in order into the first, Compact(); eps 0.001, 100 buckets.
_GOLDEN_B = [
    5.374906872993313e-05, 1.005266978897416, 2.0212069483193487, 3.046144747121826,
    4.082429299333205, 5.1295086797801375, 6.18766792984824, 7.257878516892695, 8.338181715428467,
    9.4315340478981, 10.536876211232897, 11.65431704608914, 12.783647410213087,
    13.926786145415857, 15.082123423127273, 16.251666187983815, 17.434881764420474,
    18.633427166589378, 19.845507511191094, 21.07189750155814, 22.31528957672502,
    23.572183194487014, 24.846853671249118, 26.136955304328108, 27.44350430915803,
    28.769171737397397, 30.11061320444241, 31.471110827670667, 32.850569021498465,
    34.24912455536493, 35.667192165883996, 37.10672637749072, 38.56558186954313,
    40.048654879618454, 41.551344966680986, 43.07941275488639, 44.63034585076565,
    46.20359660379897, 47.804144503846516, 49.42960743750599, 51.08321221386307,
    52.76384967896245, 54.4732160840485, 56.21215814953812, 57.98259254297902, 59.78462086318033,
    61.61809404295219, 63.48720248939325, 65.39333002730224, 67.33433087944685, 69.3144903716253,
    71.3347633439179, 73.39658242120417, 75.50180903246908, 77.65231027625083, 79.85140100407136,
    82.09962139209257, 84.3974334779303, 86.74928922307704, 89.15945812204008, 91.62858460061938,
    94.16058451775861, 96.75859267264795, 99.4252863702209, 102.16465462116513, 104.9840921747079,
    107.88275298601033, 110.86683441549295, 113.94314922044688, 117.1169397090936,
    120.3966469002989, 123.78866199205167, 127.29552898321217, 130.93206836446313,
    134.70498312394142, 138.62914199032755, 142.71418933860457, 146.9662274672462,
    151.41884581153994, 156.06413525211, 160.94769033033876, 166.0699446210476,
    171.48156866870826, 177.2015495453792, 183.25803524190835, 189.7176158656646,
    196.60680253584837, 204.0299544539756, 212.02452631470598, 220.73252887991265,
    230.2493485848185, 240.79453864083723, 252.58142015190873, 265.9265460942987,
    281.3560449993118, 299.57652548810285, 321.90534945688995, 350.63047242069734,
    391.21437454781926, 460.4397088518831, 2763.1021115928547,
]
# tfx_bsl, 300k _weyl("uniform") with weights (i % 4) in 3 parts (batches of 1000, weighted
# AddValues), merged as part2.Merge(part0), .Merge(part1), no compaction; eps 0.005, 20 buckets.
_GOLDEN_C = [
    2.2768462845101922e-06, 0.049956624933963245, 0.09996743510731354, 0.15002278564436977,
    0.20002763495673737, 0.250019155378726, 0.2999289631026987, 0.3500058802374012,
    0.4000107295497688, 0.4499962891107746, 0.5000034152694267, 0.5500238703184578,
    0.6000071530331792, 0.6500432138188738, 0.7000131676432161, 0.7500106489261873,
    0.799987970779926, 0.8499758071872164, 0.8999962622362475, 0.9500130332705804,
    0.9999963159853018,
]


def test_large_goldens_bit_exact_with_tfx_bsl():
    x = _weyl(1_000_000, "logistic")
    c = _full(10, 0.01)
    out = c.extract_output(_add_batches(c, c.create_accumulator(), x, 10000))[0]
    np.testing.assert_array_equal(out.ravel(), _GOLDEN_A)

    x = _weyl(1_000_000, "expo")
    c = _full(100, 0.001)
    parts = [
        c.compact(_add_batches(c, c.create_accumulator(), p, 4096))
        for p in np.array_split(x, 7)
    ]
    out = c.extract_output(c.compact(c.merge_accumulators(parts)))[0]
    np.testing.assert_array_equal(out.ravel(), _GOLDEN_B)

    x = _weyl(300_000, "uniform")
    w = (np.arange(300_000) % 4).astype(np.float64)
    c = _full(20, 0.005, has_weights=True)
    parts = [
        _add_batches(c, c.create_accumulator(), p, 1000, pw)
        for p, pw in zip(np.array_split(x, 3), np.array_split(w, 3))
    ]
    out = c.extract_output(c.merge_accumulators([parts[2], parts[0], parts[1]]))[0]
    np.testing.assert_array_equal(out.ravel(), _GOLDEN_C)


# real TFT (Beam DirectRunner, its own batching / fanout) on _weyl(n, kind).astype(float32).
_TFT_LOGISTIC_100K_10 = [  # tft.quantiles(x, 10, 0.01), n = 100000
    -2.1981070041656494, -1.3864976167678833, -0.8477388620376587, -0.4056556522846222,
    -0.0005481454427354038, 0.40594062209129333, 0.8473605513572693, 1.3863166570663452,
    2.1976780891418457,
]
_TFT_EXPO_100K_100 = [  # tft.quantiles(x, 100, 0.001), n = 100000
    1.005354881286621, 2.0205438137054443, 3.046144723892212, 4.083377838134766,
    5.129839897155762, 6.186342716217041, 7.258519649505615, 8.338924407958984, 9.431784629821777,
    10.536057472229004, 11.652247428894043, 12.783228874206543, 13.92714786529541,
    15.082489013671875, 16.252037048339844, 17.43471336364746, 18.633426666259766,
    19.84550666809082, 21.07172393798828, 22.315113067626953, 23.57096290588379,
    24.846019744873047, 26.136293411254883, 27.442649841308594, 28.76917266845703,
    30.110612869262695, 31.471111297607422, 32.850372314453125, 34.248085021972656,
    35.666465759277344, 37.10664749145508, 38.565582275390625, 40.04611587524414,
    41.55216598510742, 43.07793045043945, 44.62826156616211, 46.20301055908203, 47.80451202392578,
    49.43109893798828, 51.08137130737305, 52.76034164428711, 54.471309661865234,
    56.21206283569336, 57.98086929321289, 59.78261184692383, 61.61630630493164, 63.48720169067383,
    65.39191436767578, 67.33361053466797, 69.31256103515625, 71.33465576171875, 73.39646911621094,
    75.50042724609375, 77.65299224853516, 79.85077667236328, 82.09794616699219, 84.39763641357422,
    86.74828338623047, 89.15877532958984, 91.62788391113281, 94.15950012207031, 96.7594223022461,
    99.42452239990234, 102.16426086425781, 104.98118591308594, 107.8825912475586,
    110.86598205566406, 113.94297790527344, 117.12078857421875, 120.39447784423828,
    123.78768920898438, 127.29452514648438, 130.9310302734375, 134.70477294921875,
    138.63040161132812, 142.71395874023438, 146.97659301757812, 151.4192352294922,
    156.06387329101562, 160.94259643554688, 166.06846618652344, 171.4833221435547,
    177.20123291015625, 183.25396728515625, 189.71762084960938, 196.63072204589844,
    204.04263305664062, 212.01414489746094, 220.7454376220703, 230.27178955078125,
    240.80874633789062, 252.58819580078125, 265.9205017089844, 281.3399658203125,
    299.5708923339844, 321.8834228515625, 350.6286926269531, 391.15911865234375,
    460.6185607910156,
]
_TFT_LOGISTIC_200K_4 = [  # tft.quantiles(x, 4, 0.01), n = 200000
    -1.0990291833877563, -0.000423299556132406, 1.0984708070755005,
]


@pytest.mark.parametrize("batch_size", [1000, 1 << 20])
def test_agreement_with_real_tft_on_large_data(batch_size):
    for n, kind, nb, eps, golden, exact in [
        (100_000, "expo", 100, 0.001, _TFT_EXPO_100K_100, True),
        (200_000, "logistic", 4, 0.01, _TFT_LOGISTIC_200K_4, True),
        (100_000, "logistic", 10, None, _TFT_LOGISTIC_100K_10, False),
    ]:
        x = _weyl(n, kind).astype(np.float32)
        c = QuantilesCombiner(nb, eps)
        (out,) = c.extract_output(_add_batches(c, c.create_accumulator(), x, batch_size))
        golden = np.array([golden], np.float32)
        if exact:
            np.testing.assert_array_equal(out, golden)
        else:
            # TFT's Beam fanout merged partial sketches in another order: both are within the
            # bound, and here they differ by at most 8 ranks out of 100000.
            xs = np.sort(x)
            ranks = lambda b: np.searchsorted(xs, b.ravel(), side="right")  # noqa: E731
            assert np.abs(ranks(out) - ranks(golden)).max() <= 10
            assert _rank_error(xs, out.ravel(), nb) <= c.effective_epsilon * n


# ------------------------------------------------------------------------------------------
# Output dtype / shape, config, inputs
# ------------------------------------------------------------------------------------------


def test_output_dtype_and_shapes():
    x = np.arange(1000, dtype=np.float64)
    (out,) = _run(QuantilesCombiner(10), [(x,)])
    assert out.shape == (1, 9) and out.dtype == np.float32
    (out,) = _run(QuantilesCombiner(10, include_max_and_min=True), [(x,)])
    assert out.shape == (1, 11) and out[0, 0] == 0 and out[0, -1] == 999
    c = QuantilesCombiner(4, feature_shape=[2, 3])
    (out,) = _run(c, [(x[:600].reshape(100, 2, 3),)])
    assert out.shape == (2, 3, 3) and c.result_shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0, 1], [151, 301, 451])  # feature (0, 1): values 1, 7, ...
    (out,) = _run(QuantilesCombiner(4, bucket_numpy_dtype=np.float64, output_shape=[3]), [(x,)])
    assert out.shape == (3,) and out.dtype == np.float64
    (out,) = _run(QuantilesCombiner(4), [])
    assert out.shape == (1, 3) and out.dtype == np.float32 and not out.any()
    (out,) = _run(QuantilesCombiner(4, feature_shape=[2]), [])
    assert out.shape == (2, 3) and not out.any()


def test_empty_inputs():
    c = QuantilesCombiner(4)
    for batches in ([], [(np.array([]),)], [(np.full(3, np.nan),)], [(pa.array([], pa.int64()),)]):
        (out,) = _run(c, batches)
        np.testing.assert_array_equal(out, np.zeros((1, 3), np.float32))
    cw = QuantilesCombiner(4, has_weights=True)
    (out,) = _run(cw, [(np.arange(5.0), np.zeros(5))])
    np.testing.assert_array_equal(out, np.zeros((1, 3), np.float32))
    # Elementwise with one feature empty (all NaN): TFT fails too (misaligned results).
    c2 = QuantilesCombiner(4, feature_shape=[2])
    with pytest.raises(ValueError, match="no \\(non-NaN\\) values"):
        _run(c2, [(np.array([[1.0, np.nan], [2.0, np.nan]]),)])


def test_epsilon_default_and_specs():
    assert q.default_epsilon(4) == 0.01 and q.default_epsilon(200) == 0.005
    assert QuantilesCombiner(4).effective_epsilon == 0.01
    assert QuantilesCombiner(1000).effective_epsilon == 0.001
    assert QuantilesCombiner(4, 0.2).effective_epsilon == 0.2
    # (max_level, block_size) of WeightedQuantilesStream::GetQuantileSpecs(eps / 3, 2**32).
    assert q._quantile_specs(0.01 / 3, 1 << 32) == (20, 5701)
    assert q._quantile_specs(0.001 / 3, 1 << 32) == (17, 48001)
    assert q._quantile_specs(0.1 / 3, 1 << 32) == (23, 661)
    assert q._quantile_specs(0.5 / 3, 1 << 32) == (25, 145)
    assert q._quantile_specs(1e-20, 1000) == (1, 1000)
    assert QuantilesCombiner(4).block_size == 5701


def test_config_stored_unchanged_and_validated():
    c = QuantilesCombiner(num_quantiles=7, epsilon=0.02, feature_shape=[3], has_weights=True)
    assert c.get_config() == {
        "num_quantiles": 7,
        "epsilon": 0.02,
        "bucket_numpy_dtype": np.float32,
        "has_weights": True,
        "output_shape": None,
        "include_max_and_min": False,
        "feature_shape": [3],
        "max_num_values": 1 << 32,
    }
    assert c == QuantilesCombiner(
        num_quantiles=7, epsilon=0.02, feature_shape=[3], has_weights=True
    )
    assert pickle.loads(pickle.dumps(c)) == c
    assert "QuantilesCombiner(" in repr(c)
    for bad in (
        dict(num_quantiles=1),
        dict(num_quantiles=4, epsilon=0),
        dict(num_quantiles=4, epsilon=-1.0),
        dict(num_quantiles=4, output_shape=[2]),
    ):
        with pytest.raises(ValueError):
            QuantilesCombiner(**bad)
    with pytest.raises(TypeError):
        QuantilesCombiner(2.5)


def test_input_types():
    expected = _run(QuantilesCombiner(4), [(np.arange(1, 100, dtype=np.float64),)])[0]
    variants = [
        [(pa.array(np.arange(1, 100)),)],
        [(pa.chunked_array([pa.array(np.arange(1, 50)), pa.array(np.arange(50, 100))]),)],
        [(np.arange(1, 100, dtype=np.int32),)],
        [(np.arange(1, 100, dtype=np.float32).reshape(-1, 1),)],
        [(list(range(1, 100)),)],
        [np.arange(1, 100)],  # a bare array is accepted as the single input
    ]
    for batches in variants:
        np.testing.assert_array_equal(_run(QuantilesCombiner(4), batches)[0], expected)
    c = QuantilesCombiner(4)
    with pytest.raises(ValueError, match="null"):
        c.add_input(c.create_accumulator(), (pa.array([1.0, None]),))
    with pytest.raises(SchemaError):
        c.add_input(c.create_accumulator(), (np.array(["a", "b"]),))
    with pytest.raises(SchemaError):
        QuantilesCombiner(4, feature_shape=[3]).add_input(
            QuantilesCombiner(4, feature_shape=[3]).create_accumulator(), (np.arange(4.0),)
        )
    cw = QuantilesCombiner(4, has_weights=True)
    with pytest.raises(SchemaError):
        cw.add_input(cw.create_accumulator(), (np.arange(4.0), np.ones(3)))
    with pytest.raises(ValueError):
        cw.add_input(cw.create_accumulator(), (np.arange(4.0),))


def test_accumulators_are_plain_and_not_mutated():
    c = QuantilesCombiner(10, 0.1)  # block_size 661: 5000 values go through the levels
    x = _weyl(5000, "logistic")
    acc1 = _add_batches(c, c.create_accumulator(), x[:3000], 700)
    snapshot = pickle.dumps(acc1)
    acc2 = _add_batches(c, c.create_accumulator(), x[3000:], 333)
    assert _plain(acc1) and _plain(acc2)
    c.add_input(acc1, (x[:100],))
    merged = c.merge_accumulators([acc1, acc2])
    c.compact(acc1)
    c.extract_output(acc1)
    assert pickle.dumps(acc1) == snapshot  # nothing modified it in place
    out = c.extract_output(merged)
    np.testing.assert_array_equal(c.extract_output(pickle.loads(pickle.dumps(merged)))[0], out[0])


# ------------------------------------------------------------------------------------------
# Determinism (exact regime) and internals
# ------------------------------------------------------------------------------------------


def _random_schedule(combiner, values, weights, rng):
    """Random split into parts / batches, random compactions, pickling and merge tree."""
    n = len(values)
    cuts = np.sort(rng.integers(0, n + 1, rng.integers(0, 8)))
    accs = []
    for part in np.split(np.arange(n), cuts):
        acc = combiner.create_accumulator()
        for b in np.split(part, np.sort(rng.integers(0, part.size + 1, rng.integers(0, 5)))):
            batch = (values[b],) if weights is None else (values[b], weights[b])
            acc = combiner.add_input(acc, batch)
        if rng.random() < 0.5:
            acc = combiner.compact(acc)
        if rng.random() < 0.3:
            acc = pickle.loads(pickle.dumps(acc))
        accs.append(acc)
    rng.shuffle(accs)
    while len(accs) > 1:
        i = int(rng.integers(0, len(accs) - 1))
        g = int(rng.integers(2, 4))
        merged = combiner.merge_accumulators(accs[i : i + g])
        if rng.random() < 0.5:
            merged = combiner.compact(merged)
        accs[i : i + g] = [merged]
    return combiner.extract_output(accs[0])[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6000),
    distinct=st.integers(1, 600),
    num_buckets=st.integers(2, 50),
    weighted=st.booleans(),
)
def test_split_and_merge_order_invariance_exact_regime(seed, n, distinct, num_buckets, weighted):
    # eps 0.1: block_size 661 >= 600 distinct values, buffer 1322 < n: flushes, levels and
    # merges all happen, yet nothing is dropped, so every schedule gives the exact answer.
    rng = np.random.default_rng(seed)
    values = rng.integers(0, distinct, n).astype(np.float64) * 0.37 - 5
    values[rng.random(n) < 0.05] = np.nan
    weights = rng.integers(-1, 4, n).astype(np.float64) if weighted else None
    c = _full(num_buckets, 0.1, has_weights=weighted)
    expected = _run(c, [(values,) if weights is None else (values, weights)])[0]
    if np.isnan(values).all() or (weighted and not ((weights > 0) & ~np.isnan(values)).any()):
        assert not expected.any()
    else:
        np.testing.assert_array_equal(expected[0], _exact_boundaries(values, weights, num_buckets))
    for _ in range(3):
        np.testing.assert_array_equal(_random_schedule(c, values, weights, rng), expected)


def _random_summary(rng, n, heavy):
    values = np.unique(rng.normal(size=n))
    weights = rng.integers(1, 4, values.size).astype(np.float64)
    if heavy:
        weights[rng.random(values.size) < 0.05] = rng.integers(50, 500)
    return q._summary_from_sorted(values, weights)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), heavy=st.booleans(), size_hint=st.integers(2, 700))
def test_vectorized_compress_and_query_match_scalar_ports(seed, heavy, size_hint):
    rng = np.random.default_rng(seed)
    eps = float(rng.choice([0.0, 0.001, 0.01, 0.1]))
    a = _random_summary(rng, int(rng.integers(2, 3000)), heavy)
    b = _random_summary(rng, int(rng.integers(2, 3000)), heavy)
    for s in (a, b, q._merge(q._compress_reference(a, size_hint, eps), b)):
        got = q._compress(s, size_hint, eps)
        np.testing.assert_array_equal(got, q._compress_reference(s, size_hint, eps))
        merged = q._merge(got, q._compress(b, size_hint * 2, eps))
        np.testing.assert_array_equal(
            q._compress(merged, size_hint, eps), q._compress_reference(merged, size_hint, eps)
        )
        for nq in (2, 3, 10, 257):
            np.testing.assert_array_equal(
                q._generate_quantiles(merged, nq), q._generate_quantiles_reference(merged, nq)
            )


def test_merge_of_summaries_matches_documented_example():
    # weighted_quantiles_summary.h: (1,3,0,3),(4,2,3,5) + (3,1,0,1),(4,1,1,2)
    #   -> (1,3,0,3),(3,1,3,4),(4,3,4,7)
    s1 = np.array([[1, 4], [3, 2], [0, 3], [3, 5]], np.float64)
    s2 = np.array([[3, 4], [1, 1], [0, 1], [1, 2]], np.float64)
    np.testing.assert_array_equal(q._merge(s1, s2), [[1, 3, 4], [3, 1, 3], [0, 3, 4], [3, 4, 7]])


# ------------------------------------------------------------------------------------------
# Large data: error bound and memory
# ------------------------------------------------------------------------------------------

_N_LARGE = 1_000_000


@pytest.fixture(scope="module")
def large_data():
    x = _weyl(_N_LARGE, "logistic") * np.where(_weyl(_N_LARGE, "uniform") < 0.3, 100.0, 1.0)
    return x, np.sort(x)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    epsilon=st.sampled_from([0.005, 0.01, 0.05]),
    num_buckets=st.sampled_from([4, 10, 100]),
    mode=st.sampled_from(["flat", "beam", "tree"]),
)
def test_rank_error_bound_on_1e6_values(large_data, seed, epsilon, num_buckets, mode):
    """Every boundary's rank is within epsilon * n of its target i * n / num_buckets."""
    x, xs = large_data
    rng = np.random.default_rng(seed)
    c = QuantilesCombiner(num_buckets, epsilon, bucket_numpy_dtype=np.float64)
    cuts = np.sort(rng.integers(0, _N_LARGE, int(rng.integers(0, 64))))
    accs = []
    for part in np.split(x, cuts):
        acc = _add_batches(c, c.create_accumulator(), part, int(rng.integers(100, 50000)))
        accs.append(c.compact(acc) if mode != "flat" else acc)
    if mode == "flat":
        accs = [c.merge_accumulators(accs)]
    elif mode == "beam":  # TFT: CombineGlobally(...).with_fanout(10), compact, final merge
        groups = [accs[i::10] for i in range(10) if accs[i::10]]
        accs = [c.merge_accumulators([c.compact(c.merge_accumulators(g)) for g in groups])]
    else:  # a deep binary merge tree, compacting at every level
        while len(accs) > 1:
            accs = [
                c.compact(c.merge_accumulators(accs[i : i + 2]))
                for i in range(0, len(accs), 2)
            ]
    (out,) = c.extract_output(accs[0])
    assert out.shape == (1, num_buckets - 1)
    assert np.all(np.diff(out.ravel()) >= 0)
    assert _rank_error(xs, out.ravel(), num_buckets) <= epsilon * _N_LARGE


def test_memory_is_bounded(large_data):
    x, _ = large_data
    c = QuantilesCombiner(10, 0.01)
    acc = _add_batches(c, c.create_accumulator(), x, 100_000)
    ((buf_v, buf_w, levels),), _ = acc
    max_level, block = q._quantile_specs(0.01 / 3, 1 << 32)
    assert buf_w is None and buf_v.size < 2 * block
    assert len(levels) <= max_level and all(s.shape[1] <= block + 1 for s in levels)
    assert len(pickle.dumps(acc)) < 2_000_000  # vs 8 MB of raw input
    compacted = c.compact(acc)
    ((buf_v, _, levels),), _ = compacted
    assert buf_v.size == 0 and sum(s.shape[1] for s in levels) <= block + 1
