"""Sources, sinks and the transform_fn directory on a remote filesystem (an object store with
no directories and copy-based renames: tests/beam/fake_object_store.py), as on Dataflow
with gs:// paths: the same graph bytes and records as a local run, stale shards and temp
files removed, and nothing written to the local disk."""
from __future__ import annotations

import collections
import os
import shutil

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tft_lite.beam as tft_beam
from tft_lite import io
from tft_lite.beam import filesystem as fs
from tests.beam import fake_object_store
from tests.beam.fake_object_store import FakeObjectStore
from tests.beam.test_pipeline import (CSV, HOUSING_SPEC, _Collect, analyze_and_write,
                                      collected, graph_bytes, no_quantiles_fn, records, run)

STORE = f"{fake_object_store.SCHEME}://bucket"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The object store's backing root; the test runs in an empty working directory, which
    must stay empty (a `fakeobj:` directory there would mean a remote path went to os)."""
    FakeObjectStore.root = str(tmp_path / "objects")
    os.makedirs(os.path.join(FakeObjectStore.root, "bucket", "in"))
    shutil.copyfile(CSV, FakeObjectStore.local(f"{STORE}/in/housing.csv"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield FakeObjectStore
    assert os.listdir(cwd) == []


def objects(prefix: str) -> list:
    return sorted(p[len(prefix):] for p in fs.files_under(prefix))


def remote_records(prefix_pattern: str) -> collections.Counter:
    return collections.Counter(io.read_tfrecords(FakeObjectStore.local(prefix_pattern), "GZIP"))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local_reference")
    analyze_and_write(str(out), no_quantiles_fn, num_shards=2)
    return out


def write_remote(output_dir, lazy, num_shards=2):
    def build(pipeline):
        raw = pipeline | tft_beam.ReadCsv(f"{STORE}/in/*.csv", schema=HOUSING_SPEC,
                                          block_size=400_000, lazy=lazy)
        transformed, transform_fn = ((raw, tft_beam.DatasetMetadata(HOUSING_SPEC))
                                     | tft_beam.AnalyzeAndTransformDataset(no_quantiles_fn))
        (transformed, transform_fn) | tft_beam.WriteTransformOutput(
            output_dir, num_shards=num_shards)
    run(build)


@pytest.mark.parametrize("lazy", [False, True])
def test_pipeline_on_an_object_store_equals_the_local_run(store, local_run, lazy):
    out = f"{STORE}/out"
    write_remote(out, lazy)
    local_names = sorted(os.path.relpath(os.path.join(d, f), local_run).replace(os.sep, "/")
                         for d, _, files in os.walk(local_run) for f in files)
    assert objects(out + "/") == local_names
    assert fs.read_bytes(f"{out}/transform_fn/transform_graph.pb") == graph_bytes(local_run)
    assert remote_records(f"{STORE}/out/transformed-*") == records(local_run)
    assert not [p for p in fs.files_under(f"{STORE}/") if ".tft_lite-temp-" in p]


def test_rerun_replaces_shards_and_transform_fn_files(store, local_run):
    out = f"{STORE}/out"
    write_remote(out, lazy=True, num_shards=3)
    stale_asset = f"{out}/transform_fn/assets/left_over"
    fs.write_bytes(stale_asset, b"x\n")
    write_remote(out, lazy=True, num_shards=2)
    shards = [p for p in objects(out + "/") if ".tfrecord" in p]
    assert shards == ["transformed-00000-of-00002.tfrecord.gz",
                      "transformed-00001-of-00002.tfrecord.gz"]
    assert not fs.files_under(stale_asset)
    assert remote_records(f"{STORE}/out/transformed-*") == records(local_run)


def test_read_transform_fn_and_sources_from_an_object_store(store, local_run, tmp_path):
    out = f"{STORE}/out"
    write_remote(out, lazy=False)
    parquet = f"{STORE}/in/housing.parquet"
    os.makedirs(os.path.dirname(FakeObjectStore.local(parquet)), exist_ok=True)
    pq.write_table(pa.csv.read_csv(CSV), FakeObjectStore.local(parquet))
    collect = tmp_path / "collect"
    collect.mkdir()

    def build(pipeline):
        transform_fn = pipeline | "ReadFn" >> tft_beam.ReadTransformFn(out)
        raw = pipeline | tft_beam.ReadParquet(parquet, lazy=True)
        transformed, metadata = (((raw, tft_beam.DatasetMetadata(HOUSING_SPEC)), transform_fn)
                                 | tft_beam.TransformDataset())
        (transformed, metadata) | tft_beam.WriteTFRecords(f"{STORE}/again/part", num_shards=2,
                                                          metadata=metadata)
        spec = tft_beam.metadata.feature_spec_of(transform_fn[1])
        (pipeline | "ReadBack" >> tft_beam.ReadTFRecord(f"{out}/transformed-*", spec)
         | beam.Map(lambda batch: batch.num_rows) | beam.ParDo(_Collect(str(collect))))
    run(build)
    assert remote_records(f"{STORE}/again/part-*") == records(local_run)
    assert sum(collected(collect)) == sum(records(local_run).values())


def test_a_pattern_matching_nothing_names_it(store):
    with pytest.raises(FileNotFoundError, match="fakeobj://bucket/nothing/\\*.csv"):
        tft_beam.ReadCsv(f"{STORE}/nothing/*.csv", schema=HOUSING_SPEC)


def test_a_corrupt_remote_tfrecord_names_the_remote_file(store):
    path = f"{STORE}/in/bad.tfrecord"
    fs.write_bytes(path, b"\x05\x00\x00\x00\x00\x00\x00\x00garbage-garbage")
    with pytest.raises(Exception, match="fakeobj://bucket/in/bad.tfrecord"):
        run(lambda p: p | tft_beam.ReadTFRecord(path, HOUSING_SPEC, compression_type=None))


def test_housing_demo_with_object_store_paths(store, capsys):
    """pipelines/housing.py as docs/runners.md runs it on Dataflow (gs:// in and out)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "pipelines"))
    import housing
    housing.main(["--input", f"{STORE}/in/housing.csv", "--output", f"{STORE}/housing"])
    out = capsys.readouterr().out
    assert "wrote 4 TFRecord shards" in out and out.count("    -> {") == 3
    assert "'age_centered_z': 0.98214" in out
    assert f"{STORE}/housing/transform_fn/transform_graph.pb" in fs.files_under(
        f"{STORE}/housing/transform_fn/")


def test_a_failed_run_leaves_nothing_that_looks_complete(store):
    bad = FakeObjectStore.local(f"{STORE}/in/housing.csv")
    with open(bad, "ab") as f:
        f.write(b"-122.0,37.0,not-a-number,1,1,1,1,1,1,NEAR BAY\n")
    with pytest.raises(Exception, match="housing.csv.*line 20642"):
        write_remote(f"{STORE}/out", lazy=True)
    assert [p for p in fs.files_under(f"{STORE}/out") if ".tft_lite-temp-" not in p] == []
