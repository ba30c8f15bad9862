"""The demo pipelines run end to end on the bundled data."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pipelines"))

import codec_roundtrip  # noqa: E402
import housing  # noqa: E402


def test_codec_roundtrip_demo(tmp_path, capsys):
    codec_roundtrip.main(["--output", str(tmp_path), "--shards", "3"])
    out = capsys.readouterr().out
    assert "20,640 records from 3 files match the CSV exactly" in out
    assert sorted(os.listdir(tmp_path)) == [
        f"housing-{i:05d}-of-00003.tfrecord.gz" for i in range(3)]


def test_housing_demo(tmp_path, capsys):
    housing.main(["--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert "wrote 4 TFRecord shards" in out and out.count("    -> {") == 3
    # row 0's nested z-score equals TFT's golden value (tests/golden/housing_tft)
    assert "'age_centered_z': 0.98214" in out
    assert sorted(os.listdir(tmp_path)) == [
        *[f"housing-{i:05d}-of-00004.tfrecord.gz" for i in range(4)], "housing.schema.json",
        "housing.schema.pbtxt", "transform_fn", "transformed_metadata"]
