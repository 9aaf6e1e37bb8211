"""Pool health as one router replica sees it: a background probe that routing and ``/readyz`` both read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from frontier.config import PoolName, ServerConfig
from frontier.serving.metrics import HealthSource
from frontier.serving.pool_client import PoolClient

RETRY_PROBE_TIMEOUT_S = 1.0


class PoolHealth:
    """One probe loop per replica, however many callers ask: ``healthy`` steers routed traffic (two failed
    probes in a row mark a pool down), ``current()`` answers readiness from the last round, no pool call."""

    def __init__(self, pools: Mapping[PoolName, PoolClient], server: ServerConfig) -> None:
        self.pools = pools
        self.server = server
        self.healthy: dict[PoolName, bool] = {name: True for name in pools}
        self.states: dict[PoolName, str] = {}  # the last round: "ok" or why not; empty before the first
        self._last_answer: dict[PoolName, float] = {name: 0.0 for name in pools}
        self._probed = asyncio.Event()
        self._task: asyncio.Task | None = None

    def ensure_probing(self) -> None:
        """Start the probe loop (on the running event loop) unless it runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe_forever())

    def answered(self, pool: PoolName) -> None:
        """A call to ``pool`` got output: it serves, whatever a slow probe says."""
        self._last_answer[pool] = time.monotonic()

    async def current(self) -> dict[PoolName, str]:
        """Each pool's state from the last probe round (the first round is awaited, at most a probe timeout)."""
        self.ensure_probing()
        if not self._probed.is_set():
            try:
                await asyncio.wait_for(self._probed.wait(), timeout=self.server.health_probe_timeout_s + 1)
            except asyncio.TimeoutError:
                return {name: "unavailable: not probed yet" for name in self.pools}
        return dict(self.states)

    async def _probe_forever(self) -> None:
        failures = {pool: 0 for pool in self.pools}
        while True:
            started = time.monotonic()
            states = await self.readiness(timeout_s=self.server.health_probe_timeout_s)
            for pool, state in states.items():
                # A slow probe of a pool that answered requests meanwhile is load, not ill health.
                serving = self._last_answer[pool] >= started
                self.states[pool] = "ok" if serving else state
                failures[pool] = 0 if state == "ok" or serving else failures[pool] + 1
                if failures[pool] == 0:
                    self.healthy[pool] = True
                elif failures[pool] >= 2:
                    self.healthy[pool] = False
            self._probed.set()
            await asyncio.sleep(self.server.health_probe_interval_s)

    async def has_live_replica(self, pool: PoolName) -> bool:
        """A quick probe before a retry; no answer in time marks the pool down."""
        try:
            await asyncio.wait_for(self.pools[pool].check_health(), timeout=RETRY_PROBE_TIMEOUT_S)
            return True
        except Exception:  # noqa: BLE001 - no answer in time means no replica to retry on
            self.healthy[pool] = False
            return False

    async def readiness(self, timeout_s: float = 5.0) -> dict[PoolName, str]:
        """Probe every pool now: ``ok`` or an error string per pool."""

        async def probe(name: PoolName) -> tuple[PoolName, str]:
            try:
                await asyncio.wait_for(self.pools[name].check_health(), timeout=timeout_s)
                return name, "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                return name, f"unavailable: {type(exc).__name__}"

        return dict(await asyncio.gather(*(probe(name) for name in self.pools)))


async def readiness_report(health: PoolHealth, online: HealthSource | None = None) -> tuple[dict[str, Any], bool]:
    """The ``/readyz`` body, and whether both pools can serve (from the last probe round: no pool call per hit).

    Routing goes on without Redis (feedback gets 503), so the online layer's trouble (``online``: its cached
    health) makes the status ``degraded`` but does not unready the replica.
    """
    pools = await health.current()
    ready = all(state == "ok" for state in pools.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "pools": pools}
    if online is not None:
        details, healthy = online()
        body.update(details)
        if ready and not healthy:
            body["status"] = "degraded"
    return body, ready
