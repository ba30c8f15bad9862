"""WriteTransformFn / ReadTransformFn, and WriteTransformOutput (every output, one commit).

The transform_fn directory is the artifact `tft_lite.serving.load` reads (see
docs/transform_graph.md). It is written to a temp directory and renamed into place, so a
reader sees either the old artifact or the new one, never a mix.

On a remote filesystem (`gs://...`, which has no directory rename) the files are uploaded one
by one, the old graph file removed first and the new one written last: a reader in between
finds no graph, or a graph whose assets' sha256 it checks (and reads nothing half-written).
`tft_lite.serving.load` reads local directories; ReadTransformFn reads remote ones.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import apache_beam as beam

from tft_lite.beam import filesystem as fs
from tft_lite.beam.analyze import TransformFnArtifact
from tft_lite.beam.metadata import TupleInputMixin, DatasetMetadata, feature_spec_of
from tft_lite.beam.runners import check_runner
from tft_lite.beam.sinks import (_SUFFIXES, DEFAULT_COMPRESSION_LEVEL, _TempShards,
                                 check_digests, commit_shards, finish_temp_dirs,
                                 temp_dir_for, write_schema_beside)
from tft_lite.beam.transform import artifact_digest, transform_graph_of
from tft_lite.errors import GraphError
from tft_lite.ir.schema import schema_from_json
from tft_lite.ir.serialize import graph_to_bytes
from tft_lite.serving import artifact as artifact_files


def write_transform_fn(artifact: TransformFnArtifact, path: str) -> None:
    """Saves the artifact under `path` atomically: temp dir, then rename(s)."""
    if fs.is_remote(path):
        _write_remote_transform_fn(artifact, path)
        return
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    transform_graph_of(artifact).save(staging)
    for name in (artifact_files.TRANSFORM_FN_DIR, artifact_files.METADATA_DIR):
        target = os.path.join(path, name)
        old = f"{target}.old-{uuid.uuid4().hex[:8]}"
        os.makedirs(path, exist_ok=True)
        if os.path.exists(target):
            os.replace(target, old)
        os.replace(os.path.join(staging, name), target)
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


class WriteTransformFn(TupleInputMixin, beam.PTransform):
    """transform_fn -> writes `path/transform_fn/` and `path/transformed_metadata/`."""

    def __init__(self, path):
        super().__init__()
        self._path = os.fspath(path)

    def expand(self, transform_fn):
        artifact, _ = transform_fn
        path = self._path
        return artifact | "WriteTransformFn" >> beam.Map(
            lambda a: (write_transform_fn(a, path), path)[1])


def _write_remote_transform_fn(artifact: TransformFnArtifact, path: str) -> None:
    """write_transform_fn on an object store: staged locally, then uploaded file by file
    with the graph last (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="tft_lite-transform_fn-") as staging:
        transform_graph_of(artifact).save(staging)
        local = sorted(os.path.relpath(os.path.join(d, f), staging)
                       for d, _, files in os.walk(staging) for f in files)
        graph_file = os.path.join(artifact_files.TRANSFORM_FN_DIR, artifact_files.GRAPH_FILE)
        fs.delete([fs.join(path, *graph_file.split(os.sep))])
        old = [f for name in (artifact_files.TRANSFORM_FN_DIR, artifact_files.METADATA_DIR)
               for f in fs.files_under(fs.join(path, name) + "/")]
        new = [fs.join(path, *rel.split(os.sep)) for rel in local]
        fs.delete(f for f in old if f not in new)
        for rel in sorted(local, key=lambda rel: rel == graph_file):  # the graph last
            fs.upload(os.path.join(staging, rel), fs.join(path, *rel.split(os.sep)))


def read_transform_fn(path) -> TransformFnArtifact:
    """The artifact of a transform_fn directory (verified like tft_lite.serving.load)."""
    if fs.is_remote(path):
        return _read_remote_transform_fn(path)
    graph = artifact_files.load(path)
    return TransformFnArtifact(graph_to_bytes(graph.graph), dict(graph.assets))


def _read_remote_transform_fn(path: str) -> TransformFnArtifact:
    """Downloads the transform_fn files, then loads and verifies them as serving does."""
    with tempfile.TemporaryDirectory(prefix="tft_lite-transform_fn-") as local:
        download_transform_fn(path, local)
        try:
            graph = artifact_files.load(local)
        except GraphError as exc:
            raise GraphError(f"transform_fn at {path}: {exc}".replace(local, path)) from exc
    return TransformFnArtifact(graph_to_bytes(graph.graph), dict(graph.assets))


def download_transform_fn(path: str, local_dir: str) -> str:
    """Copies `path/transform_fn/` and `path/transformed_metadata/` (any filesystem, e.g.
    gs://) into `local_dir`, which `tft_lite.serving.load` then reads; returns local_dir."""
    for name in (artifact_files.TRANSFORM_FN_DIR, artifact_files.METADATA_DIR):
        base = fs.join(path, name) + "/"
        for source in fs.files_under(base):
            target = os.path.join(local_dir, name, *source[len(base):].split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(fs.read_bytes(source))
    return local_dir


class ReadTransformFn(beam.PTransform):
    """pipeline | ReadTransformFn(path) -> transform_fn = (PCollection, metadata)."""

    def __init__(self, path):
        super().__init__()
        self._path = os.fspath(path)

    def expand(self, pbegin):
        meta_path = fs.join(self._path, artifact_files.METADATA_DIR, "schema.json")
        metadata = DatasetMetadata(schema_from_json(fs.read_bytes(meta_path).decode("utf-8")))
        artifact = read_transform_fn(self._path)
        return pbegin | "TransformFn" >> beam.Create([artifact]), metadata


class WriteTransformOutput(TupleInputMixin, beam.PTransform):
    """((transformed_data, transformed_metadata), transform_fn) -> everything under output_dir.

    Writes `output_dir/<file_prefix>-0000i-of-0000N.tfrecord.gz` (with the schema beside),
    `output_dir/transform_fn/` and `output_dir/transformed_metadata/`, all made visible by a
    single final commit step (the pipeline's last leaf; see sinks.py).
    """

    def __init__(self, output_dir, file_prefix="transformed", num_shards=None,
                 compression="GZIP", compression_level=DEFAULT_COMPRESSION_LEVEL):
        super().__init__()
        self._level = compression_level
        self._output_dir = os.fspath(output_dir)
        self._file_prefix = file_prefix
        self._num_shards = num_shards
        self._compression = compression.upper() if compression else None

    def expand(self, inputs):
        (data, metadata), (artifact, _) = inputs
        spec = feature_spec_of(metadata)
        check_runner(data.pipeline)
        prefix = fs.join(self._output_dir, self._file_prefix)
        temp_dir = temp_dir_for(prefix)
        parts = data | "TempShards" >> _TempShards(temp_dir, spec, self._compression,
                                                   self._num_shards, self._level)
        output_dir, suffix, num_shards = self._output_dir, _SUFFIXES[self._compression], \
            self._num_shards

        def commit(_, parts, artifact):
            check_digests(parts, artifact_digest(artifact))
            write_transform_fn(artifact, output_dir)
            finals = commit_shards(parts, prefix, suffix, num_shards)
            write_schema_beside(prefix, spec,  # the same text as transformed_metadata/
                                transform_graph_of(artifact).transformed_int_domains())
            finish_temp_dirs(temp_dir)
            return finals

        return (data.pipeline | "CommitTrigger" >> beam.Create([None])
                | "Commit" >> beam.Map(commit, parts=beam.pvalue.AsList(parts),
                                       artifact=beam.pvalue.AsSingleton(artifact)))
