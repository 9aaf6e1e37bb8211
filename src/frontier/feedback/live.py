"""The live policy statistics every router replica holds: one background watcher per replica.

The watcher reads the served state (``P:served``: what the promotion gate, a rollback or a reset put
there, not the learner's latest). It subscribes to ``P:online:updates`` and also polls the served version
and the controller threshold every ``poll_interval_s`` (<= 2 s), so a new version is visible within that time even if a
publish is missed. ``snapshot()`` only reads an attribute: it never blocks. While Redis is down the
last snapshot stays in force; the watcher is a supervised ``Worker`` and reconnects on its own.
"""

from __future__ import annotations

import logging
import threading
from types import MappingProxyType

import numpy as np
import redis

from frontier.feedback.consumer import decode_state
from frontier.feedback.keys import Keys
from frontier.feedback.worker import Worker
from frontier.routing.types import POOLS, StatsSnapshot

logger = logging.getLogger("frontier.feedback.live")


def snapshot_from_redis(raw_online: dict[bytes, bytes], threshold: float | None) -> StatsSnapshot:
    """A StatsSnapshot of the online model hash (read-only arrays) and the controller threshold."""
    values: dict[str, float] = {}
    if threshold is not None:
        values["threshold"] = threshold
    if not raw_online:
        return StatsSnapshot(version=0, values=MappingProxyType(values))
    state, version = decode_state(raw_online)
    params: dict[str, np.ndarray] = {"mean": state.posterior.mean, "cov": state.posterior.cov}
    for pool in POOLS:
        values[f"{pool}:n"] = float(state.counts[pool])
    values["evidence"] = state.evidence
    values["applied"] = float(state.applied)
    return StatsSnapshot(
        version=version,
        values=MappingProxyType(values),
        params=MappingProxyType(params),
        labels=MappingProxyType({"feature_map": state.feature_map}),
    )


class LiveStats:
    """``StatsSource`` backed by Redis; start() it once per replica and stop() it on shutdown."""

    def __init__(self, client: redis.Redis, keys: Keys, poll_interval_s: float = 0.5) -> None:
        self.client = client
        self.keys = keys
        self.poll_interval_s = poll_interval_s
        self._snapshot = StatsSnapshot()
        self._seen: tuple[int, bytes | None] | None = None
        self._stop = threading.Event()
        self._pubsub: redis.client.PubSub | None = None
        self.worker: Worker | None = None
        self.healthy = False
        self.last_error: str | None = None

    def snapshot(self) -> StatsSnapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Poll once; returns True if a new snapshot was installed. Redis errors propagate."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.served, "version")
        pipe.hget(self.keys.ctl, "threshold")
        raw_version, raw_threshold = pipe.execute()
        seen = (int(raw_version or 0), raw_threshold)
        self.healthy, self.last_error = True, None
        if seen == self._seen:
            return False
        raw_online = self.client.hgetall(self.keys.served)
        threshold = float(raw_threshold) if raw_threshold is not None else None
        self._snapshot = snapshot_from_redis(raw_online, threshold)
        self._seen = (self._snapshot.version, raw_threshold)
        return True

    def start(self) -> "LiveStats":
        """Load once (best effort) and start the supervised background watcher."""
        try:
            self.refresh()
        except redis.RedisError as exc:
            self._mark_down(exc)
        self.worker = Worker(
            "live-stats", self._poll, setup=self._subscribe, on_error=self._mark_down,
            backoff_s=(self.poll_interval_s, max(self.poll_interval_s, 2.0)),
        ).start(self._stop)  # fmt: skip
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.worker is not None and self.worker.thread is not None:
            self.worker.thread.join(timeout=5)
        self._close()

    def _mark_down(self, exc: Exception) -> None:
        if self.healthy or self.last_error is None:
            logger.warning("online statistics: Redis unavailable (%s); keeping version %d", exc, self._snapshot.version)
        self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"

    def _subscribe(self) -> None:
        self._close()
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.keys.channel)

    def _poll(self) -> None:
        assert self._pubsub is not None
        # Wakes early on a publish; either way the poll below catches up.
        self._pubsub.get_message(timeout=self.poll_interval_s)
        self.refresh()

    def _close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except (redis.RedisError, OSError):
                pass
