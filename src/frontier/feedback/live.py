"""The live policy statistics every router replica holds: one background watcher per replica.

The watcher subscribes to ``P:online:updates`` and also polls ``P:online:version`` and the controller
threshold every ``poll_interval_s`` (<= 2 s), so a new version is visible within that time even if a
publish is missed. ``snapshot()`` only reads an attribute: it never blocks. While Redis is down the
last snapshot stays in force; the watcher reconnects on its own.
"""

from __future__ import annotations

import logging
import threading
from types import MappingProxyType

import numpy as np
import redis

from frontier.feedback.consumer import decode_state
from frontier.feedback.keys import Keys
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
        self._thread: threading.Thread | None = None
        self.healthy = False
        self.last_error: str | None = None

    def snapshot(self) -> StatsSnapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Poll once; returns True if a new snapshot was installed. Redis errors propagate."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.version)
        pipe.hget(self.keys.ctl, "threshold")
        raw_version, raw_threshold = pipe.execute()
        seen = (int(raw_version or 0), raw_threshold)
        self.healthy, self.last_error = True, None
        if seen == self._seen:
            return False
        raw_online = self.client.hgetall(self.keys.online)
        threshold = float(raw_threshold) if raw_threshold is not None else None
        self._snapshot = snapshot_from_redis(raw_online, threshold)
        self._seen = (self._snapshot.version, raw_threshold)
        return True

    def start(self) -> "LiveStats":
        """Load once (best effort) and start the background watcher thread."""
        try:
            self.refresh()
        except redis.RedisError as exc:
            self._mark_down(exc)
        self._thread = threading.Thread(target=self._loop, name="frontier-live-stats", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _mark_down(self, exc: Exception) -> None:
        if self.healthy or self.last_error is None:
            logger.warning("online statistics: Redis unavailable (%s); keeping version %d", exc, self._snapshot.version)
        self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"

    def _loop(self) -> None:
        pubsub = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.keys.channel)
                # Wakes early on a publish; either way the poll below catches up.
                pubsub.get_message(timeout=self.poll_interval_s)
                self.refresh()
            except (redis.RedisError, OSError) as exc:
                self._mark_down(exc)
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except (redis.RedisError, OSError):
                        pass
                    pubsub = None
                self._stop.wait(self.poll_interval_s)
        if pubsub is not None:
            pubsub.close()
