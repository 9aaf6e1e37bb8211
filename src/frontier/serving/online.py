"""Online learning inside a router replica: live state, decision log, feedback intake, consumer.

The decision itself is the Router's (``frontier.routing.router``), fed this replica's live state.
Every router replica runs one ``LiveStats`` watcher (its live state source), logs its routed decisions,
accepts feedback, and runs a feedback consumer (and, with a reasoning-share target, the cost controller)
as supervised background workers; consumers share one Redis consumer group, so several replicas are
safe, and the controller steps only on the replica holding its leader lease.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Any

import redis

from frontier.config import FrontierConfig
from frontier.feedback.consumer import FeedbackConsumer
from frontier.feedback.controller import CostController
from frontier.feedback.keys import Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.redis_server import connect
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.feedback.worker import Worker
from frontier.redis_writes import Write
from frontier.routing.router import Router
from frontier.routing.types import ROUTER_REASONS, DecisionContext, StatsSnapshot
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
        # Nothing here talks to Redis: a replica starts (routing on the offline artifact) while Redis is
        # down; the supervised consumer creates the group and the online state once it is reachable.
        feature_map = router.feature_map
        self._router = router
        self._feature_map = (feature_map.fingerprint, feature_map.dim) if feature_map is not None else None
        # The promotion gate judges at the router's own threshold when the cost controller has published none.
        self._gate_threshold = router.threshold(router.rule.operator_knob, StatsSnapshot(), 0)
        self._stop = threading.Event()
        self.workers: list[Worker] = []
        self.consumer: FeedbackConsumer | None = None
        self.controller: CostController | None = None

    def start(self) -> "OnlineRouting":
        """Start the watcher, a feedback consumer and (with a share target) the cost controller, each a
        supervised worker restarted with backoff after any Redis fault."""
        self.live.start()
        # Blocking stream reads need a longer socket timeout than the request path's client.
        worker_client = connect(self.redis_url, self.config.feedback.consumer_block_ms / 1000 + 5)
        self.consumer = FeedbackConsumer(
            worker_client, self.keys, self.config.feedback, feature_map=self._feature_map,
            gate_threshold=self._gate_threshold,
        )  # fmt: skip
        self._spawn(self.consumer.worker())
        if self.config.router.reasoning_share is not None:
            self.controller = CostController(
                worker_client, self.keys, self.config.feedback.controller, self.config.router.reasoning_share,
                rescore=self._router.rescorer(self.live.snapshot),
            )  # fmt: skip
            self._spawn(self.controller.worker())
        return self

    def _spawn(self, worker: Worker) -> None:
        self.workers.append(worker.start(self._stop))

    def stop(self) -> None:
        self._stop.set()
        self.live.stop()
        for worker in self.workers:
            if worker.thread is not None:
                worker.thread.join(timeout=5)

    def health(self) -> tuple[dict[str, Any], bool]:
        """Cached health for ``/readyz`` and the metrics (no Redis call): Redis as the watcher last saw it,
        each worker's state, the feedback backlog and lag; and whether all of it is fine."""
        workers = {w.name: w.status() for w in [*self.workers, *([self.live.worker] if self.live.worker else [])]}
        if self.controller is not None:
            workers["cost-controller"]["leader"] = self.controller.leader
        redis_state = "ok" if self.live.healthy else f"unavailable: {self.live.last_error or 'not reached yet'}"
        body: dict[str, Any] = {"redis": redis_state, "workers": workers}
        if self.consumer is not None:
            body["feedback"] = {"backlog": self.consumer.backlog, "lag_s": self.consumer.lag_s}
        return body, redis_state == "ok" and all(w["state"] == "ok" for w in workers.values())

    def decision_write(self, context: DecisionContext, served: Decision, key: KeyInfo | None) -> tuple[str, Write]:
        """The served decision's log entry under a new completion id, as a write for the group commit."""
        context = dataclasses.replace(
            context,
            pool=served.pool,
            # Overflow, fallback or a budget chose the served pool, not the router's draw: no propensity, so
            # off-policy evaluation leaves the event out (learning still uses the answer's feedback).
            propensity=context.propensity if served.pool == context.pool else 0.0,
            key_id=key.name if key is not None else None,
            # A request with its own cost knob stays out of the controller's window (False from the router service).
            routed_by_policy=context.routed_by_policy and served.reason in ROUTER_REASONS,
        )
        cid = new_completion_id()
        return cid, self.service.decision_write(cid, context)

    async def submit(self, body: Any, key: KeyInfo | None) -> str:
        """Queue explicit feedback (202); raises the feedback errors (400/403/404/409/503)."""
        return await asyncio.to_thread(self.service.submit, body, key.name if key is not None else None)

    async def implicit_retry(self, retry_of: str, key: KeyInfo | None) -> bool:
        """A re-ask of an earlier light answer on the reasoning pool counts as negative feedback."""
        return await asyncio.to_thread(self.service.implicit_retry, retry_of, key.name if key is not None else None)
