"""Where batch files live: a local directory or an object store, behind one small interface.

Both are ``pyarrow.fs`` file systems (``LocalFileSystem``, ``S3FileSystem``, ``GcsFileSystem``, ...), so a
cluster only changes ``batch.storage_uri``. Objects are written whole (a temporary name, then a move on a
local disk; object stores publish an object only when its upload completes), so a reader never sees half a file.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.fs as pafs
from platformdirs import user_data_dir

from frontier.config import BatchConfig


class Storage:
    """Named blobs under one root of a ``pyarrow.fs`` file system."""

    def __init__(self, filesystem: pafs.FileSystem, root: str) -> None:
        self.fs = filesystem
        self.root = root.rstrip("/")
        self.local = isinstance(filesystem, pafs.LocalFileSystem)
        if self.local:
            self.fs.create_dir(self.root, recursive=True)

    @classmethod
    def from_uri(cls, uri: str) -> "Storage":
        """A storage for a local path or a URI (``s3://bucket/prefix``, ``gs://...``, ``file:///...``)."""
        if "://" not in uri:
            return cls(pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve()))
        filesystem, root = pafs.FileSystem.from_uri(uri)
        return cls(filesystem, root)

    @classmethod
    def from_config(cls, config: BatchConfig) -> "Storage":
        """``batch.storage_uri``, or a directory under the user data directory."""
        return cls.from_uri(config.storage_uri or str(Path(user_data_dir("frontier")) / "batch-files"))

    def _path(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid storage name {name!r}")
        return f"{self.root}/{name}"

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` (replacing it), all or nothing."""
        path = self._path(name)
        target = f"{path}.{uuid.uuid4().hex}.part" if self.local else path
        with self.fs.open_output_stream(target) as out:
            out.write(data)
        if self.local:
            self.fs.move(target, path)

    def read(self, name: str) -> bytes:
        """The whole blob; FileNotFoundError when it is missing."""
        with self.fs.open_input_stream(self._path(name)) as stream:
            return stream.readall()

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (one ranged read on object stores)."""
        with self.fs.open_input_file(self._path(name)) as f:
            return f.read_at(length, offset)

    def delete(self, name: str) -> None:
        """Remove the blob; a missing one is not an error."""
        try:
            self.fs.delete_file(self._path(name))
        except FileNotFoundError:
            pass
