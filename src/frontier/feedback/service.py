"""The facade the HTTP layer calls: log decisions and accept feedback.

Every method is synchronous and bounded by the client's socket timeout; from an event loop call them
with ``await asyncio.to_thread(...)``. Any Redis error becomes ``FeedbackUnavailable`` (503 +
Retry-After) for feedback; the request path (``record_decision``/``implicit_retry``) fails open through
``frontier.redis_guard.FailOpen``: it never raises for Redis and skips it for ``cooldown_s`` after a failure.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import redis

from frontier.config import FeedbackConfig
from frontier.feedback.decision_log import DecisionLog, new_completion_id
from frontier.feedback.errors import FeedbackUnavailable
from frontier.feedback.keys import Keys
from frontier.feedback.queue import FeedbackQueue
from frontier.redis_guard import REDIS_ERRORS, FailOpen
from frontier.redis_writes import Write
from frontier.routing.types import DecisionContext

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
        self.log = DecisionLog(
            client, self.keys, config.decision_ttl_s, config.controller.window, clock, config.max_decisions
        )
        self.queue = FeedbackQueue(client, self.keys, clock, config.max_backlog, config.retry_after_s)
        self.guard = FailOpen("decision logging", cooldown_s)

    def record_decision(self, completion_id: str, context: DecisionContext) -> bool:
        """Log a routed decision under ``completion_id`` (from ``new_completion_id()``); False if not logged."""
        return self.guard.call(False, self._record, completion_id, context)

    def decision_write(self, completion_id: str, context: DecisionContext) -> Write:
        """``record_decision`` as a write for the request path's group commit."""
        return Write(self.client, self.guard, functools.partial(self.log.stage, cid=completion_id, ctx=context))

    def _record(self, completion_id: str, context: DecisionContext) -> bool:
        self.log.record(completion_id, context)
        return True

    def submit(self, body: Any, key_id: str | None = None) -> str:
        """Queue feedback durably; returns the stream entry id (202).

        Raises FeedbackInvalid (400), FeedbackNotFound (404), FeedbackConflict (409) or
        FeedbackUnavailable / FeedbackBacklogFull (503, ``headers`` carries Retry-After); nothing is
        recorded on an error. Always asks Redis, even while the request path is failing open.
        """
        try:
            return self.queue.submit(body, key_id)
        except REDIS_ERRORS as exc:  # down, read-only, out of memory...: the script wrote nothing
            self.guard.failed(exc)
            raise FeedbackUnavailable(self.config.retry_after_s, type(exc).__name__) from None

    def implicit_retry(self, retry_of: str, key_id: str | None = None) -> bool:
        """``x-frontier-retry-of``, or a known conversation moved by the client to reasoning (an explicit model or
        ``reasoning_effort`` on its next turn; ``retry_of`` is then its previous turn): the client re-asked an
        earlier light answer elsewhere -> negative feedback on that decision.

        Call it when the new request goes to the reasoning pool. Returns True if it was queued.
        """
        return self.guard.call(None, self.queue.retry, retry_of, key_id) is not None

    def health(self) -> str:
        """``ok`` or ``unavailable: ...`` from a ping (``/readyz`` reads the watchers' cached state instead)."""
        try:
            self.client.ping()
            return "ok"
        except REDIS_ERRORS as exc:
            return f"unavailable: {type(exc).__name__}"
