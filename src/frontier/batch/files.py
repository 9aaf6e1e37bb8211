"""OpenAI file objects: content in the batch storage, metadata in Redis, each owned by the API key that made it.

A file of another key is answered like a missing one (404), so ids of others' files cannot be probed.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import redis

from frontier.batch.storage import Storage
from frontier.errors import FrontierError
from frontier.feedback.keys import Keys

UPLOAD_PURPOSES = ("batch",)


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def file_object(meta: dict[str, str]) -> dict[str, Any]:
    """The OpenAI ``file`` object of stored metadata."""
    return {
        "id": meta["id"],
        "object": "file",
        "bytes": int(meta["bytes"]),
        "created_at": int(meta["created_at"]),
        "filename": meta["filename"],
        "purpose": meta["purpose"],
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


class FileStore:
    """Create, read and delete files of one owner (an API key name, "" without authentication)."""

    def __init__(self, client: redis.Redis, keys: Keys, storage: Storage) -> None:
        self.client = client
        self.keys = keys
        self.storage = storage

    def create(self, data: bytes, filename: str, purpose: str, owner: str, file_id: str | None = None) -> dict[str, Any]:
        """Store ``data`` and its metadata (content first, so metadata never names a missing blob)."""
        file_id = file_id or new_file_id()
        path = f"{file_id}.jsonl"
        self.storage.write(path, data)
        meta = {"id": file_id, "bytes": str(len(data)), "created_at": str(int(time.time())), "filename": filename,
                "purpose": purpose, "key": owner, "path": path}  # fmt: skip
        self.client.hset(self.keys.file(file_id), mapping=meta)
        return file_object(meta)

    def meta(self, file_id: str, owner: str) -> dict[str, str]:
        """The stored metadata of ``owner``'s file; 404 for a missing file or another key's."""
        meta = {k.decode(): v.decode() for k, v in self.client.hgetall(self.keys.file(file_id)).items()}
        if not meta or meta.get("key") != owner:
            raise FrontierError(404, f"no such file: {file_id}", param="file_id", code="file_not_found")
        return meta

    def get(self, file_id: str, owner: str) -> dict[str, Any]:
        return file_object(self.meta(file_id, owner))

    def content(self, file_id: str, owner: str) -> bytes:
        meta = self.meta(file_id, owner)
        try:
            return self.storage.read(meta["path"])
        except FileNotFoundError:
            raise FrontierError(404, f"the content of file {file_id} is gone from storage", code="file_not_found") from None

    def delete(self, file_id: str, owner: str) -> dict[str, Any]:
        meta = self.meta(file_id, owner)
        self.client.delete(self.keys.file(file_id))
        self.storage.delete(meta["path"])
        return {"id": file_id, "object": "file", "deleted": True}
