"""The facade the HTTP layer calls: log decisions, accept feedback, report Redis health.

Every method is synchronous and bounded by the client's socket timeout; from an event loop call them
with ``await asyncio.to_thread(...)``. Redis failures become ``FeedbackUnavailable`` (503 +
Retry-After) for feedback; the request path (``record_decision``/``implicit_retry``) never raises for
an outage and skips Redis for ``cooldown_s`` after a failure so routing adds no latency while it is down.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from frontier.config import FeedbackConfig
from frontier.feedback.decision_log import DecisionLog, new_completion_id
from frontier.feedback.errors import FeedbackUnavailable
from frontier.feedback.keys import Keys
from frontier.feedback.queue import FeedbackQueue, ensure_group
from frontier.routing.types import DecisionContext

logger = logging.getLogger("frontier.feedback")

__all__ = ["FeedbackService", "new_completion_id"]


class FeedbackService:
    """Decision logging and feedback intake over one Redis client."""

    def __init__(
        self,
        client: redis.Redis,
        config: FeedbackConfig,
        keys: Keys | None = None,
        cooldown_s: float = 1.0,
        clock=time.time,
    ) -> None:
        self.client = client
        self.config = config
        self.keys = keys or Keys()
        self.cooldown_s = cooldown_s
        self.log = DecisionLog(client, self.keys, config.decision_ttl_s, config.controller.window, clock)
        self.queue = FeedbackQueue(client, self.keys, clock)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._group_ready = False

    def _skip(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, exc: Exception, what: str) -> None:
        with self._lock:
            if not self._skip():
                logger.warning(
                    "Redis unavailable during %s (%s); pausing Redis writes for %.1f s", what, exc, self.cooldown_s
                )
            self._down_until = time.monotonic() + self.cooldown_s

    def _ensure_group(self) -> None:
        if not self._group_ready:
            ensure_group(self.client, self.keys)
            self._group_ready = True

    def record_decision(self, completion_id: str, context: DecisionContext) -> bool:
        """Log a routed decision under ``completion_id`` (from ``new_completion_id()``); False if not logged."""
        if self._skip():
            return False
        try:
            self.log.record(completion_id, context)
            return True
        except redis.RedisError as exc:
            self._failed(exc, "decision logging")
            return False

    def submit(self, body: Any, key_id: str | None = None) -> str:
        """Queue feedback durably; returns the stream entry id (202).

        Raises FeedbackInvalid (400), FeedbackNotFound (404), FeedbackConflict (409) or
        FeedbackUnavailable (503, ``headers`` carries Retry-After); nothing is recorded on an error.
        """
        try:
            self._ensure_group()
            return self.queue.submit(body, key_id)
        except redis.RedisError as exc:  # down, read-only, out of memory...: nothing was recorded
            self._failed(exc, "feedback intake")
            raise FeedbackUnavailable(self.config.retry_after_s, type(exc).__name__) from None

    def implicit_retry(self, retry_of: str, key_id: str | None = None) -> bool:
        """``x-frontier-retry-of``: the client re-asked an earlier light answer elsewhere -> negative feedback.

        Call it when the new request goes to the reasoning pool. Returns True if it was queued.
        """
        if self._skip():
            return False
        try:
            self._ensure_group()
            return self.queue.retry(retry_of, key_id) is not None
        except redis.RedisError as exc:
            self._failed(exc, "implicit feedback")
            return False

    def health(self) -> str:
        """``ok`` or ``unavailable: ...`` for /readyz."""
        try:
            self.client.ping()
            return "ok"
        except redis.RedisError as exc:
            return f"unavailable: {type(exc).__name__}"
