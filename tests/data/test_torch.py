"""as_torch(): real DataLoader workers read distinct files; every record exactly once."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tft_lite.data as tfd
from tft_lite import io

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
from torch.utils.data import DataLoader  # noqa: E402

SPEC = {"id": tfd.FixedLenFeature([], "int64"), "x": tfd.FixedLenFeature([2], "float32")}
FILES, PER_FILE = 7, [13, 1, 40, 0, 22, 9, 31]  # uneven, one empty: 116 records


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shards")
    start = 0
    for f, n in enumerate(PER_FILE):
        ids = np.arange(start, start + n)
        records = io.encode_examples({"id": ids, "x": np.stack([ids, -ids], 1).astype(
            np.float32)}, SPEC)
        io.write_tfrecords(directory / f"part-{f}.tfrecord.gz", records, "GZIP")
        start += n
    return directory


def _ids(loader) -> list:
    out = []
    for batch in loader:
        assert isinstance(batch["id"], torch.Tensor) and batch["x"].dtype == torch.float32
        assert torch.equal(batch["x"][:, 0], batch["id"].float())
        out.extend(batch["id"].tolist())
    return out


def _read_gzip(filename):
    return tfd.TFRecordDataset(filename, "GZIP")


def _pipeline(directory):
    # list_files without a seed: each worker shuffles its own share of the files, which is
    # still exactly-once because workers split the sorted list first.
    return (tfd.Dataset.list_files(str(directory / "part-*"))
            .interleave(_read_gzip, cycle_length=3, num_parallel_calls=2)
            .shuffle(20).batch(8).map(tfd.parse_examples(SPEC)).prefetch(2))


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_each_record_exactly_once_across_workers(shards, workers):
    loader = DataLoader(_pipeline(shards).as_torch(), batch_size=None, num_workers=workers)
    ids = _ids(loader)
    assert sorted(ids) == list(range(sum(PER_FILE)))  # none twice, none lost
    if workers:
        assert ids != sorted(ids)


@pytest.mark.parametrize("workers", [2, 3])
def test_record_dataset_over_a_file_list_is_split_by_file(shards, workers):
    paths = sorted(str(p) for p in shards.glob("part-*"))
    ds = tfd.TFRecordDataset(paths, "GZIP").batch(5).map(tfd.parse_examples(SPEC))
    ids = _ids(DataLoader(ds.as_torch(), batch_size=None, num_workers=workers))
    assert sorted(ids) == list(range(sum(PER_FILE)))


def test_without_files_workers_split_elements(shards):
    ds = tfd.Dataset.range(50).shuffle(10, seed=3).map(lambda x: {"v": np.int64(x)})
    loader = DataLoader(ds.as_torch(), batch_size=None, num_workers=3)
    values = [int(e["v"]) for e in loader]
    assert sorted(values) == list(range(50))


def test_spawned_workers_get_a_pickled_pipeline(shards):
    loader = DataLoader(_pipeline(shards).as_torch(), batch_size=None, num_workers=2,
                        multiprocessing_context="spawn")
    assert sorted(_ids(loader)) == list(range(sum(PER_FILE)))


def test_elements_become_tensors_and_strings_stay():
    ds = tfd.Dataset.from_tensor_slices({"n": [1, 2], "s": ["a", "b"]}).batch(2)
    (element,) = list(ds.as_torch())
    assert torch.equal(element["n"], torch.tensor([1, 2]))
    assert element["s"].tolist() == [b"a", b"b"]


def test_importing_tft_lite_never_imports_torch():
    code = "import sys, tft_lite, tft_lite.data, tft_lite.io; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
