"""Paths the Beam layer reads and writes: local files, or any filesystem Beam knows.

A path with a scheme (`gs://`, `s3://`, `hdfs://`, `azfs://` ...) goes through Beam's
`FileSystems`, so sources, sinks and the transform_fn directory work where the workers of
Dataflow, Flink or Spark share no local disk. A local path keeps the plain os calls, whose
renames are atomic. Object stores have no atomic directory rename, so for them the commit
renames object by object (see docs/runners.md for what a reader can see meanwhile).

Only the Beam layer imports this: serving stays Beam-free and reads local directories.
"""
from __future__ import annotations

import os
import shutil
import tempfile

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tft_lite.io.tfrecord import expand_paths
from tft_lite.serving.artifact import write_file

_RAW = CompressionTypes.UNCOMPRESSED  # never let Beam guess compression from a suffix


def is_remote(path) -> bool:
    """Whether `path` names a Beam filesystem other than the local one (it has a scheme)."""
    return FileSystems.get_scheme(os.fspath(path)) is not None


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def split(path: str) -> tuple:
    """(directory, name) of a path."""
    return FileSystems.split(path) if is_remote(path) else os.path.split(path)


def absolute(path: str) -> str:
    return path if is_remote(path) else os.path.abspath(path)


def match(patterns, kind: str = "Input") -> list:
    """A path, a glob pattern or a list of them -> sorted, de-duplicated file paths.

    Raises FileNotFoundError naming the pattern when one matches nothing.
    """
    if isinstance(patterns, (str, bytes, os.PathLike)):
        patterns = [patterns]
    patterns = [os.fsdecode(p) for p in patterns]
    out = []
    for pattern in patterns:
        if not is_remote(pattern):
            out.extend(expand_paths(pattern, kind))
            continue
        found = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        if not found:
            raise FileNotFoundError(f"{kind} file pattern {pattern!r} matches no files")
        out.extend(found)
    return list(dict.fromkeys(out))


def size(path: str) -> int:
    if not is_remote(path):
        return os.path.getsize(path)
    found = FileSystems.match([path])[0].metadata_list
    if not found:
        raise FileNotFoundError(f"{path!r} does not exist")
    return found[0].size_in_bytes


def open_read(path: str):
    """A seekable binary file object."""
    return FileSystems.open(path, compression_type=_RAW) if is_remote(path) else \
        open(path, "rb")


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    """Writes a whole file: locally a temp file renamed into place, remotely one object
    (which object stores make visible only when complete)."""
    if not is_remote(path):
        write_file(path, data)
        return
    with FileSystems.create(path, compression_type=_RAW) as f:
        f.write(data)


def upload(local_path: str, path: str) -> None:
    """Copies a local file to `path` (any filesystem)."""
    if not is_remote(path):
        shutil.copyfile(local_path, path)
        return
    with open(local_path, "rb") as src, FileSystems.create(path, compression_type=_RAW) as dst:
        shutil.copyfileobj(src, dst, 8 << 20)


def rename(source: str, target: str) -> None:
    """Moves a file over `target` (atomic locally; copy + delete on object stores)."""
    if is_remote(source):
        if FileSystems.exists(target):
            FileSystems.delete([target])
        FileSystems.rename([source], [target])
    else:
        os.replace(source, target)


def delete(paths) -> None:
    """Deletes files (missing ones are fine)."""
    for path in paths:
        if is_remote(path):
            if FileSystems.exists(path):
                FileSystems.delete([path])
        elif os.path.lexists(path):
            os.unlink(path)


def makedirs(path: str) -> None:
    if not is_remote(path):  # object stores have no directories
        os.makedirs(path, exist_ok=True)


def files_under(prefix: str) -> list:
    """Every file whose path starts with `prefix`, recursively (on an object store a
    'directory' is a name prefix; Beam's local filesystem lists the same way)."""
    return sorted(m.path for m in FileSystems.match([prefix + "**"])[0].metadata_list)


class LocalStaging:
    """A local temp file to write with local-only writers, published to `path` at `publish`:
    the file itself when `path` is local, an upload when it is remote."""

    def __init__(self, path: str):
        self.path = path
        if is_remote(path):
            fd, self.local_path = tempfile.mkstemp(prefix="tft_lite-", suffix=".part")
            os.close(fd)
        else:
            self.local_path = path

    def publish(self) -> str:
        if self.local_path != self.path:
            try:
                upload(self.local_path, self.path)
            finally:
                self.discard()
        return self.path

    def discard(self) -> None:
        if self.local_path != self.path and os.path.exists(self.local_path):
            os.unlink(self.local_path)
