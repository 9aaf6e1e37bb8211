"""The Files and Batches API of one router replica: what the HTTP routes call, off the event loop.

Every Redis or storage fault on these calls is a 503 with ``Retry-After`` (the request can be repeated),
never a 500.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from frontier.batch.files import UPLOAD_PURPOSES, FileStore
from frontier.batch.lines import CHAT_ENDPOINT, parse_input
from frontier.batch.queue import BatchQueue
from frontier.batch.storage import Storage
from frontier.config import BatchConfig
from frontier.errors import FrontierError
from frontier.feedback.keys import Keys
from frontier.security.keys import KeyInfo

T = TypeVar("T")

WINDOWS = {"24h": 86400}
KNOBS = {"frontier_reasoning_share": ("reasoning_share", 0.0, 1.0), "frontier_price_weight": ("price_weight", 0.0, math.inf)}
MAX_METADATA = 16


def owner_of(key: KeyInfo | None) -> str:
    """The owner name of a caller's files and batches ("" without authentication)."""
    return key.name if key is not None else ""


def batch_knob(metadata: dict[str, str] | None) -> dict[str, float] | None:
    """The batch's own cost knob from its metadata (``frontier_reasoning_share`` or ``frontier_price_weight``)."""
    knob: dict[str, float] = {}
    for name, (field, low, high) in KNOBS.items():
        if metadata and name in metadata:
            try:
                value = float(metadata[name])
            except ValueError:
                value = math.nan
            if not low <= value <= high:
                raise FrontierError(400, f"metadata.{name} must be a number in [{low}, {high}]", param=f"metadata.{name}")
            knob[field] = value
    if len(knob) > 1:
        raise FrontierError(400, "set at most one of metadata.frontier_reasoning_share and frontier_price_weight",
                            param="metadata")  # fmt: skip
    return knob or None


class BatchService:
    """Files and batches over one Redis client and one storage."""

    def __init__(self, client: redis.Redis, keys: Keys, storage: Storage, config: BatchConfig) -> None:
        self.config = config
        self.storage = storage
        self.files = FileStore(client, keys, storage)
        self.queue = BatchQueue(client, keys, config)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread; Redis and storage faults become 503."""
        try:
            return await asyncio.to_thread(fn, *args)
        except (redis.RedisError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise FrontierError(404, "the file's content is gone from storage", code="file_not_found") from None
            raise FrontierError(503, f"batch storage is unavailable ({type(exc).__name__}); retry later",
                                code="batch_unavailable", headers={"Retry-After": "5"}) from None  # fmt: skip

    async def upload(self, data: bytes, filename: str, purpose: str, key: KeyInfo | None) -> dict[str, Any]:
        if purpose not in UPLOAD_PURPOSES:
            raise FrontierError(400, f"purpose must be one of {', '.join(UPLOAD_PURPOSES)}", param="purpose")
        if len(data) > self.config.max_file_bytes:
            raise FrontierError(413, f"the file is larger than {self.config.max_file_bytes} bytes", param="file",
                                code="file_too_large")  # fmt: skip
        return await self.call(self.files.create, data, filename, purpose, owner_of(key))

    async def create_batch(self, body: dict[str, Any], key: KeyInfo | None) -> dict[str, Any]:
        """Check the request and every line of its input file, then queue the valid lines."""
        owner = owner_of(key)
        if body.get("endpoint") != CHAT_ENDPOINT:
            raise FrontierError(400, f"endpoint must be {CHAT_ENDPOINT} (the only one this server batches)",
                                param="endpoint", code="invalid_endpoint")  # fmt: skip
        window = body.get("completion_window")
        if window not in WINDOWS:
            raise FrontierError(400, f"completion_window must be one of {', '.join(WINDOWS)}", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict) or len(metadata) > MAX_METADATA
            or not all(isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                       for k, v in metadata.items())
        ):  # fmt: skip
            raise FrontierError(400, "metadata: at most 16 string pairs (keys up to 64, values up to 512 characters)",
                                param="metadata")  # fmt: skip
        knob = batch_knob(metadata)
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str):
            raise FrontierError(400, "input_file_id is required", param="input_file_id")
        meta = await self.call(self.files.meta, file_id, owner)
        if meta["purpose"] != "batch":
            raise FrontierError(400, f"file {file_id} was not uploaded with purpose 'batch'", param="input_file_id")
        data = await self.call(self.storage.read, meta["path"])
        parsed = await asyncio.to_thread(parse_input, data, CHAT_ENDPOINT, self.config.max_lines)
        now = int(time.time())
        spec = {
            "input_file_id": file_id, "input_path": meta["path"], "endpoint": CHAT_ENDPOINT,
            "completion_window": window, "metadata": metadata, "created_at": now, "expires_at": now + WINDOWS[window],
            "knob": knob,
            # The owner's budgets apply to its lines; its request rate does not (batch lines never use it up).
            "owner": {"name": owner, "reasoning_share_budget": key.reasoning_share_budget if key else None,
                      "reasoning_tokens_per_day": key.reasoning_tokens_per_day if key else None},
        }  # fmt: skip
        return await self.call(self.queue.create, spec, parsed, owner)


def owner_key(spec: dict[str, Any]) -> KeyInfo | None:
    """The caller a batch's lines are routed for: its owner with its budgets, without a request rate."""
    owner = spec["owner"]
    if not owner["name"]:
        return None
    return KeyInfo(name=owner["name"], reasoning_share_budget=owner["reasoning_share_budget"],
                   reasoning_tokens_per_day=owner["reasoning_tokens_per_day"])  # fmt: skip


def spec_of(state: dict[str, str]) -> dict[str, Any]:
    return json.loads(state["spec"])
