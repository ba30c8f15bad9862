"""Parity with TensorFlow Transform 1.21 on the bundled housing data (the acceptance check).

tests/golden/housing_tft/ holds what TFT computed (outputs.csv, vocabulary files,
transformed_schema.pbtxt) for the preprocessing_fn in its README; below is the same function
ported to tft_lite. Integer outputs and files must match exactly. Float outputs must match
to a relative 1e-6 of the column's scale: TFT accumulates mean/var in float32 (with Beam's
batch order), tft_lite sums exactly and rounds once, so the two differ by float32 rounding
of the statistics, which shows up as ~1e-7 absolute in z-scores whose value is near 0.
"""
import os

import numpy as np
import pyarrow.csv as pcsv
import pytest

import tft_lite as tft
from tft_lite import serving

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden", "housing_tft")
CSV = os.path.join(HERE, "..", "data", "housing", "housing.csv")


def preprocessing_fn(inputs):
    """The README's preprocessing_fn, ported: tf.* -> tft.*, sparse.to_dense -> TFT's mapper."""
    age, income = inputs["housing_median_age"], inputs["median_income"]
    ocean = inputs["ocean_proximity"]
    beds = inputs["total_bedrooms"]  # VarLen: missing rows have no value
    beds_mean = tft.mean(beds)
    beds_dense = tft.squeeze(
        tft.sparse_tensor_to_dense_with_shape(beds, [None, 1], default_value=np.nan), 1)
    beds_filled = tft.where(tft.math.is_nan(beds_dense), beds_mean, beds_dense)
    zero = income * 0.0
    tft.vocabulary(ocean, vocab_filename="ocean_freq", store_frequency=True)
    return {
        "median_house_value": inputs["median_house_value"],
        "age_centered_z": tft.scale_to_z_score(age - tft.mean(age)),
        "income_b4": tft.bucketize(income, 4),
        "income_b10": tft.bucketize(income, 10),
        "ocean_id": tft.compute_and_apply_vocabulary(ocean, num_oov_buckets=2),
        "ocean_top3": tft.compute_and_apply_vocabulary(ocean, top_k=3, default_value=-1),
        "ocean_hash": tft.hash_strings(ocean, 16),
        "ocean_keyed": tft.hash_strings(ocean, 16, key=[7, 11]),
        "rooms_01": tft.scale_to_0_1(inputs["total_rooms"]),
        "pop_mm": tft.scale_by_min_max(inputs["population"], -1.0, 1.0),
        "beds_filled_z": tft.scale_to_z_score(beds_filled),
        "households_log_z": tft.scale_to_z_score(tft.math.log1p(inputs["households"])),
        "lat_bucket": tft.apply_buckets(inputs["latitude"], [[34.0, 36.0, 38.0]]),
        "income_mean": zero + tft.mean(income),
        "income_var": zero + tft.var(income),
        "income_min": zero + tft.min(income),
        "income_max": zero + tft.max(income),
        "rooms_sum": zero + tft.cast(tft.sum(inputs["total_rooms"]), "float32"),
        "n_rows": tft.cast(zero, "int64") + tft.size(income),
    }


def raw_feature_spec(table):
    spec = {name: tft.FixedLenFeature([], "float32") for name in table.column_names}
    spec["total_bedrooms"] = tft.VarLenFeature("float32")  # its nulls become absent values
    spec["ocean_proximity"] = tft.FixedLenFeature([], "string")
    return spec


@pytest.fixture(scope="module")
def housing():
    table = pcsv.read_csv(CSV)
    graph = tft.analyze(preprocessing_fn, table.to_batches(max_chunksize=1000),
                        raw_feature_spec(table))
    return table, graph


@pytest.fixture(scope="module")
def golden_outputs():
    return pcsv.read_csv(os.path.join(GOLDEN, "outputs.csv"))


def _check_outputs(outputs, golden):
    assert sorted(outputs) == sorted(golden.column_names)
    for name in golden.column_names:
        want = golden.column(name).to_numpy()
        got = outputs[name]
        if want.dtype.kind in "iu":
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            assert got.dtype == np.float32, name
            scale = float(np.max(np.abs(want)))
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * scale, err_msg=name)


def test_outputs_match_tft(housing, golden_outputs):
    table, graph = housing
    _check_outputs(graph.transform(table), golden_outputs)


def test_saved_artifact_matches_tft_files(housing, golden_outputs, tmp_path):
    table, graph = housing
    graph.save(tmp_path)
    assets = sorted(os.listdir(tmp_path / "transform_fn" / "assets"))
    assert assets == sorted(os.listdir(os.path.join(GOLDEN, "assets")))
    for name in assets:
        ours = (tmp_path / "transform_fn" / "assets" / name).read_bytes()
        with open(os.path.join(GOLDEN, "assets", name), "rb") as f:
            assert ours == f.read(), name
    with open(os.path.join(GOLDEN, "transformed_schema.pbtxt")) as f:
        assert (tmp_path / "transformed_metadata" / "schema.pbtxt").read_text() == f.read()
    loaded = serving.load(tmp_path)
    _check_outputs(loaded.transform(table), golden_outputs)


def test_same_function_and_data_give_the_same_bytes(housing):
    table, graph = housing
    from tft_lite.ir.serialize import graph_to_bytes
    again = tft.analyze(preprocessing_fn, table.to_batches(max_chunksize=1000),
                        raw_feature_spec(table))
    assert graph_to_bytes(again.graph) == graph_to_bytes(graph.graph)
    assert again.assets == graph.assets
