"""The demo pipelines run end to end on the bundled data."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pipelines"))

import codec_roundtrip  # noqa: E402


def test_codec_roundtrip_demo(tmp_path, capsys):
    codec_roundtrip.main(["--output", str(tmp_path), "--shards", "3"])
    out = capsys.readouterr().out
    assert "20,640 records from 3 files match the CSV exactly" in out
    assert sorted(os.listdir(tmp_path)) == [
        f"housing-{i:05d}-of-00003.tfrecord.gz" for i in range(3)]
