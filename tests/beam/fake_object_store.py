"""A Beam FileSystem behaving like an object store (GCS, S3), for tests: `fakeobj://`.

Objects live under a local root (`FakeObjectStore.root`) but nothing about them is local to
the code under test: there are no directories (listing is by name prefix, recursive), an
object appears only when its writer closes, and rename is copy + delete. Code that opened a
`fakeobj://` path with os calls would fail (or create a `fakeobj:` directory, which the tests
check for). Importing this module registers the scheme (Beam finds FileSystem subclasses).
"""
from __future__ import annotations

import io
import os
import shutil
import uuid

from apache_beam.io.filesystem import CompressionTypes, FileMetadata, FileSystem
from apache_beam.io.filesystems import FileSystems

SCHEME = "fakeobj"


class _ClosingWriter(io.BufferedWriter):
    """Writes to a hidden local file, renamed to the object's name on close."""

    def __init__(self, target):
        self._target = target
        self._tmp = f"{target}.uploading-{uuid.uuid4().hex}"
        os.makedirs(os.path.dirname(target), exist_ok=True)
        super().__init__(io.FileIO(self._tmp, "w"))

    def close(self):
        if self.closed:
            return
        super().close()
        os.replace(self._tmp, self._target)


class FakeObjectStore(FileSystem):
    root = None  # set by the tests

    @classmethod
    def scheme(cls):
        return SCHEME

    @classmethod
    def local(cls, path: str) -> str:
        assert path.startswith(SCHEME + "://"), path
        return os.path.join(cls.root, path[len(SCHEME) + 3:])

    @classmethod
    def url(cls, local: str) -> str:
        return f"{SCHEME}://" + os.path.relpath(local, cls.root).replace(os.sep, "/")

    def join(self, basepath, *paths):
        out = basepath.rstrip("/")
        for part in paths:
            out += "/" + part.strip("/")
        return out

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, prefix):
        local = self.local(prefix)
        base = os.path.dirname(local) if not os.path.isdir(local) else local
        for directory, _, files in os.walk(base):
            for name in files:
                path = os.path.join(directory, name)
                if path.startswith(local) and ".uploading-" not in name:
                    yield FileMetadata(self.url(path), os.path.getsize(path))

    def create(self, path, mime_type="application/octet-stream",
               compression_type=CompressionTypes.AUTO):
        assert compression_type == CompressionTypes.UNCOMPRESSED, compression_type
        return _ClosingWriter(self.local(path))

    def open(self, path, mime_type="application/octet-stream",
             compression_type=CompressionTypes.AUTO):
        assert compression_type == CompressionTypes.UNCOMPRESSED, compression_type
        return open(self.local(path), "rb")

    def copy(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            os.makedirs(os.path.dirname(self.local(destination)), exist_ok=True)
            shutil.copyfile(self.local(source), self.local(destination))

    def rename(self, sources, destinations):
        self.copy(sources, destinations)
        self.delete(sources)

    def exists(self, path):
        return os.path.isfile(self.local(path))

    def size(self, path):
        return os.path.getsize(self.local(path))

    def last_updated(self, path):
        return os.path.getmtime(self.local(path))

    def checksum(self, path):
        return str(self.size(path))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        for path in paths:
            os.unlink(self.local(path))


assert FileSystems.get_filesystem(f"{SCHEME}://bucket/x").scheme() == SCHEME
