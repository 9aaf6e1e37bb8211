"""Online learning inside a router replica: live state, decision log, feedback intake, consumer.

The decision itself is the Router's (``frontier.routing.router``), fed this replica's live state.
Every router replica runs one ``LiveStats`` watcher (its live state source), logs its routed decisions,
accepts feedback, and runs a feedback consumer (and, with a reasoning-share target, the cost controller)
in background threads; consumers share one Redis consumer group, so several replicas are safe.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Any

import redis

from frontier.config import FrontierConfig
from frontier.feedback.consumer import FeedbackConsumer, ensure_state
from frontier.feedback.controller import CostController
from frontier.feedback.keys import Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.redis_server import connect
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.routing.router import Router
from frontier.routing.types import ROUTER_REASONS, DecisionContext
from frontier.schemas import Decision
from frontier.security.keys import KeyInfo

logger = logging.getLogger("frontier.online")


class OnlineRouting:
    """The online layer of one router replica; ``stop()`` ends its threads."""

    def __init__(self, config: FrontierConfig, client: redis.Redis, redis_url: str, router: Router) -> None:
        self.config = config
        self.redis_url = redis_url
        self.keys = Keys(config.redis.key_prefix)
        self.service = FeedbackService(client, config.feedback, self.keys)
        self.live = LiveStats(client, self.keys, config.feedback.poll_interval_s)
        feature_map = router.feature_map
        if feature_map is not None:
            try:
                ensure_state(client, self.keys, feature_map.fingerprint, feature_map.dim, config.feedback)
            except redis.RedisError as exc:  # routing starts offline; the consumer creates the state later
                logger.warning("online state not initialised (%s); routing on the offline artifact", exc)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "OnlineRouting":
        """Start the watcher, a feedback consumer and (with a share target) the cost controller."""
        self.live.start()
        # Blocking stream reads need a longer socket timeout than the request path's client.
        worker_client = connect(self.redis_url, self.config.feedback.consumer_block_ms / 1000 + 5)
        consumer = FeedbackConsumer(worker_client, self.keys, self.config.feedback)
        self._spawn("feedback-consumer", consumer.run, self._stop)
        if self.config.router.reasoning_share is not None:
            controller = CostController(
                worker_client, self.keys, self.config.feedback.controller, self.config.router.reasoning_share
            )
            self._spawn("cost-controller", controller.run, self._stop)
        return self

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except Exception:  # noqa: BLE001 - a dying worker must be visible in the logs
                logger.exception("%s stopped", name)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.live.stop()

    async def record(self, context: DecisionContext, served: Decision, key: KeyInfo | None) -> str | None:
        """Log the served decision under a new completion id; None when it could not be logged."""
        context = dataclasses.replace(
            context,
            pool=served.pool,
            key_id=key.name if key is not None else None,
            routed_by_policy=served.reason in ROUTER_REASONS,
        )
        cid = new_completion_id()
        logged = await asyncio.to_thread(self.service.record_decision, cid, context)
        return cid if logged else None

    async def submit(self, body: Any, key: KeyInfo | None) -> str:
        """Queue explicit feedback (202); raises the feedback errors (400/403/404/409/503)."""
        return await asyncio.to_thread(self.service.submit, body, key.name if key is not None else None)

    async def implicit_retry(self, retry_of: str, key: KeyInfo | None) -> bool:
        """A re-ask of an earlier light answer on the reasoning pool counts as negative feedback."""
        return await asyncio.to_thread(self.service.implicit_retry, retry_of, key.name if key is not None else None)
