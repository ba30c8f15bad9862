"""Sinks: sharded TFRecord files of tf.train.Example, and the transform_fn directory.

Like Beam's FileBasedSink, shards are written to temp files first and renamed into place by
one final commit step that runs after every write finished (it takes the temp files as a
side input). A failed run therefore leaves only a hidden temp directory, never a
complete-looking output; re-running into the same prefix replaces the old shards. Funnelling
every output into the commit also makes the commit the pipeline's last leaf, which runners
that compute only the final leaf (Beam 2.77's DaskRunner) need.

Prefixes on a remote filesystem (`gs://...`) work the same way through Beam's FileSystems
(tft_lite/beam/filesystem.py): a worker writes its shard to a local temp file and uploads it
into the temp directory, and the commit renames object by object.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import uuid

import apache_beam as beam

from tft_lite.beam import filesystem as fs
from tft_lite.beam.batches import in_global_window
from tft_lite.beam.metadata import TupleInputMixin, feature_spec_of
from tft_lite.beam.runners import check_runner
from tft_lite.io.example import encode_examples
from tft_lite.io.schema_pbtxt import schema_to_pbtxt
from tft_lite.io.tfrecord import TFRecordWriter
from tft_lite.ir.schema import schema_to_json

_SUFFIXES = {None: ".tfrecord", "GZIP": ".tfrecord.gz", "ZLIB": ".tfrecord.zlib"}
# The sinks' default compression level: ISA-L level 1 writes ~12x faster than TensorFlow's
# zlib level 6 (543 vs 43 MB/s on Criteo-shaped Examples) for files ~1.6x larger; at level 6
# compression alone would take most of a pipeline's time (docs/io.md, docs/benchmarks.md).
DEFAULT_COMPRESSION_LEVEL = 1


def shard_name(prefix: str, index: int, count: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}{suffix}"


def _digest_of(batch) -> str:
    """The transform_fn digest stamped on a transformed batch ("" for raw data)."""
    metadata = batch.schema.metadata or {}
    return metadata.get(b"tft_lite.transform_fn.sha256", b"").decode("ascii")


class _WriteBundleShards(beam.DoFn):
    """Encodes batches and writes each bundle's records to one temp file."""

    def __init__(self, temp_dir, spec, compression, level=None):
        self._temp_dir, self._spec, self._compression = temp_dir, spec, compression
        self._level = level
        self._writer = self._staging = None
        self._digests = set()

    def start_bundle(self):
        self._writer = self._staging = None
        self._digests = set()

    def process(self, batch):
        if self._writer is None:
            fs.makedirs(self._temp_dir)
            self._staging = fs.LocalStaging(fs.join(self._temp_dir, f"{uuid.uuid4().hex}.part"))
            self._writer = TFRecordWriter(self._staging.local_path, self._compression,
                                          self._level)
        self._writer.write_batch(encode_examples(batch, self._spec))
        self._digests.add(_digest_of(batch))

    def finish_bundle(self):
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except BaseException:
            self._staging.discard()
            raise
        yield in_global_window((self._staging.publish(), writer.records_written,
                                tuple(sorted(self._digests))))

    def teardown(self):
        if self._writer is not None:  # a failed bundle: drop its partial local file
            self._writer.abort()
            self._staging.discard()


class _WriteGroupedShard(beam.DoFn):
    """Writes one shard from all the batches routed to it (fixed num_shards)."""

    def __init__(self, temp_dir, spec, compression, level=None):
        self._temp_dir, self._spec, self._compression = temp_dir, spec, compression
        self._level = level

    def process(self, keyed):
        index, batches = keyed
        fs.makedirs(self._temp_dir)
        staging = fs.LocalStaging(fs.join(self._temp_dir, f"shard-{index:05d}.part"))
        digests = set()
        try:
            with TFRecordWriter(staging.local_path, self._compression, self._level) as writer:
                for batch in batches:
                    writer.write_batch(encode_examples(batch, self._spec))
                    digests.add(_digest_of(batch))
        except BaseException:
            staging.discard()
            raise
        yield staging.publish(), writer.records_written, tuple(sorted(digests))


_MIN_ROWS_PER_SLICE = 64


class _RouteToShards(beam.DoFn):
    """(shard index, rows) for a fixed number of shards: each batch is cut into up to
    num_shards slices (zero-copy) dealt round-robin, so every shard gets rows even when the
    input is one large batch (a small CSV is one range, one batch; routing whole batches left
    3 of the housing demo's 4 shards empty). Slices keep at least _MIN_ROWS_PER_SLICE rows:
    many shards and small batches must not become per-row elements."""

    def __init__(self, num_shards):
        self._num_shards = num_shards
        self._next = 0

    def setup(self):
        self._next = uuid.uuid4().int % self._num_shards

    def process(self, batch):
        rows = batch.num_rows
        pieces = max(1, min(self._num_shards, rows // _MIN_ROWS_PER_SLICE))
        bounds = [rows * i // pieces for i in range(pieces + 1)]
        for start, end in zip(bounds, bounds[1:]):
            self._next = (self._next + 1) % self._num_shards
            yield self._next, batch.slice(start, end - start)


class InconsistentRunError(RuntimeError):
    """Shards were transformed by a transform_fn other than the one being committed."""


def check_digests(parts, expected: str | None = None) -> None:
    """Every shard must come from one transform_fn (and from `expected`, when given).

    A runner that evaluates the analysis twice and gets different results (Beam 2.77's
    DaskRunner re-evaluates side inputs with state that leaks between evaluations) would
    otherwise write records transformed with wrong statistics next to a correct graph.
    """
    digests = {d for part in parts for d in part[2]}
    if expected is not None:
        digests.add(expected)
    if len(digests) > 1:
        raise InconsistentRunError(
            f"the runner produced {len(digests)} different transform_fns in one run (the "
            "records were transformed with analyzer results other than those being written); "
            "nothing was committed. This is a runner bug: see docs/runners.md")


def commit_shards(parts, prefix: str, suffix: str, num_shards=None) -> list:
    """Renames temp shard files to their final names; removes stale shards of `prefix`.

    Args:
      parts: (temp path, record count, transform_fn digests) tuples; sorted by path for a
        stable numbering.
    Returns:
      The final file names.
    """
    parts = sorted(parts)
    count = num_shards or max(len(parts), 1)
    finals = []
    for index in range(count):
        final = shard_name(prefix, index, count, suffix)
        if index < len(parts):
            fs.rename(parts[index][0], final)
        else:  # a requested shard that got no data is still written, empty
            staging = fs.LocalStaging(final)
            with TFRecordWriter(staging.local_path, _compression_of(suffix)):
                pass
            staging.publish()
        finals.append(final)
    directory, name = fs.split(prefix)
    pattern = re.compile(re.escape(name) + r"-\d{5}-of-\d{5}" + re.escape(suffix) + "$")
    candidates = (fs.files_under(prefix + "-") if fs.is_remote(prefix) else
                  glob.glob(glob.escape(prefix) + "-*-of-*" + suffix))
    fs.delete(stale for stale in candidates if stale not in finals and
              fs.split(stale)[0] == directory and pattern.match(fs.split(stale)[1]))
    return finals


def _compression_of(suffix):
    return {v: k for k, v in _SUFFIXES.items()}[suffix]


def write_schema_beside(prefix: str, spec: dict, int_domains: dict | None = None) -> None:
    """`<prefix>.schema.json` and `<prefix>.schema.pbtxt` next to the shards (atomic).

    int_domains: name -> (min, max, is_categorical) of integer features (the vocabulary ids'
    ranges a transform graph knows), as in its transformed_metadata/schema.pbtxt.
    """
    for extension, text in ((".schema.json", schema_to_json(spec)),
                            (".schema.pbtxt", schema_to_pbtxt(spec, int_domains))):
        fs.write_bytes(prefix + extension, text.encode("utf-8"))


class _TempShards(beam.PTransform):
    """Batches -> (temp path, record count) for each written temp shard."""

    def __init__(self, temp_dir, spec, compression, num_shards, level=None):
        super().__init__()
        self._args = (temp_dir, spec, compression, level)
        self._num_shards = num_shards

    def expand(self, batches):
        if not self._num_shards:
            return batches | "WriteBundles" >> beam.ParDo(_WriteBundleShards(*self._args))
        return (batches
                | "Route" >> beam.ParDo(_RouteToShards(self._num_shards))
                | "GroupShards" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(_WriteGroupedShard(*self._args)))


class WriteTFRecords(TupleInputMixin, beam.PTransform):
    """Writes RecordBatches as sharded TFRecord files of tf.train.Example.

    Args:
      file_path_prefix: shards are named `<prefix>-00000-of-00004.tfrecord.gz`.
      num_shards: None writes one shard per bundle; N deals rows to exactly N shards.
      compression: "GZIP" (default) or None (or "ZLIB").
      compression_level: 0-9 (TFRecordWriter's levels). Default 1 (ISA-L: fast, files ~1.6x
        larger than at TensorFlow's 6); None or 6 gives TensorFlow's level and bytes.
      metadata: the batches' DatasetMetadata / feature spec; pass the transformed metadata.
        With it, `<prefix>.schema.json` and `.schema.pbtxt` are written beside the shards.

    Input: a PCollection of RecordBatches, or (PCollection, metadata). Output: a PCollection
    with the list of final file names, produced by the commit step once all shards exist.
    """

    def __init__(self, file_path_prefix, num_shards=None, compression="GZIP", metadata=None,
                 compression_level=DEFAULT_COMPRESSION_LEVEL):
        super().__init__()
        self._level = compression_level
        self._prefix = os.fspath(file_path_prefix)
        self._num_shards = num_shards
        self._compression = compression.upper() if compression else None
        if self._compression not in _SUFFIXES:
            raise ValueError(f"compression must be 'GZIP', 'ZLIB' or None, got {compression!r}")
        self._metadata = metadata

    def expand(self, pcoll):
        if isinstance(pcoll, tuple):
            pcoll, self._metadata = pcoll
        if self._metadata is None:
            raise ValueError("WriteTFRecords needs the batches' metadata (feature spec)")
        spec = feature_spec_of(self._metadata)
        check_runner(pcoll.pipeline)
        temp_dir = temp_dir_for(self._prefix)
        parts = pcoll | "TempShards" >> _TempShards(temp_dir, spec, self._compression,
                                                    self._num_shards, self._level)
        prefix, suffix, num_shards = self._prefix, _SUFFIXES[self._compression], \
            self._num_shards

        def commit(_, parts):
            check_digests(parts)
            finals = commit_shards(parts, prefix, suffix, num_shards)
            write_schema_beside(prefix, spec)
            finish_temp_dirs(temp_dir)
            return finals

        return (pcoll.pipeline | "CommitTrigger" >> beam.Create([None])
                | "Commit" >> beam.Map(commit, parts=beam.pvalue.AsList(parts)))


def temp_dir_for(prefix: str) -> str:
    """A hidden, run-unique temp directory next to the output (same filesystem: renames)."""
    directory, name = fs.split(fs.absolute(prefix))
    return fs.join(directory, f".tft_lite-temp-{name}-{uuid.uuid4().hex[:12]}")


def finish_temp_dirs(temp_dir: str) -> list:
    """Removes this run's temp directory and those that failed runs into the same prefix left
    behind (their partial shards can be large); returns the stale ones removed.

    Runs into one prefix must not overlap: a run whose temp directory is removed under it
    fails at its commit, loudly, instead of mixing shards.
    """
    directory, name = fs.split(temp_dir)
    mine = re.fullmatch(r"(\.tft_lite-temp-.*-)[0-9a-f]{12}", name)
    if fs.is_remote(temp_dir):
        return _finish_remote_temp_dirs(directory, name, mine)
    stale = []
    if mine:
        pattern = re.compile(re.escape(mine.group(1)) + r"[0-9a-f]{12}")
        stale = sorted(os.path.join(directory, other) for other in os.listdir(directory)
                       if other != name and pattern.fullmatch(other))
    for path in [temp_dir] + stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def _finish_remote_temp_dirs(directory: str, name: str, mine) -> list:
    """finish_temp_dirs on an object store: a 'directory' is the objects under a prefix."""
    prefix = fs.join(directory, mine.group(1) if mine else name)
    files = fs.files_under(prefix)
    fs.delete(files)
    stale = {fs.join(directory, path[len(directory):].lstrip("/").split("/")[0])
             for path in files}
    return sorted(stale - {fs.join(directory, name)})
