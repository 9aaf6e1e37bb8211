"""Per-key request and feedback rate limits, held in Redis and shared by every router replica.

The limiter is GCRA (the generic cell rate algorithm): one Redis value per key, updated by one Lua
script, so concurrent replicas never over-admit. A key with rate R per minute and burst B = max(1,
ceil(R * auth.burst_fraction)) gets at most R + B requests accepted in any 60 s window (66 for
60 rpm at the default 0.1). Time comes from Redis (``TIME``) so replica clocks do not matter; tests
inject a clock instead. Calls are coroutines on the event loop (the client's asyncio twin), bounded by its
socket timeout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import redis

from frontier.config import FrontierConfig
from frontier.errors import FrontierError
from frontier.security.keys import KeyInfo
from frontier.redis_guard import FailOpen
from frontier.redis_writes import LoopTwin
from frontier.security.state import LimitKeys

# KEYS[1]: theoretical arrival time. ARGV: emission interval (s), burst tolerance (s), now (s; "" = Redis TIME).
# Returns {allowed (0/1), seconds until the next request would be allowed (as a string)}.
_GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[3])
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, string.format('%.6f', allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0'}
"""


@dataclass(frozen=True)
class RateDecision:
    """Whether one request is admitted, and if not how long to wait."""

    allowed: bool
    retry_after_s: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` in whole seconds (at least 1)."""
        return str(max(1, math.ceil(self.retry_after_s)))


def burst_size(rate: int, burst_fraction: float) -> int:
    """Requests a key may make at once."""
    return max(1, math.ceil(rate * burst_fraction))


class RateLimiter:
    """GCRA rate limits per key and kind (``req``, ``fb``) in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "frontier",
        burst_fraction: float = 0.1,
        feedback_per_minute: int = 60,
        period_s: float = 60.0,
        clock: Callable[[], float] | None = None,
        cooldown_s: float = 1.0,
    ) -> None:
        self.client = client
        self.keys = LimitKeys(prefix)
        self.burst_fraction = burst_fraction
        self.feedback_per_minute = feedback_per_minute
        self.period_s = period_s
        self.clock = clock
        self.guard = FailOpen("rate limits", cooldown_s)
        self.twin = LoopTwin(client)

    @classmethod
    def from_config(cls, client: redis.Redis, config: FrontierConfig, **kwargs) -> RateLimiter:
        return cls(
            client,
            prefix=config.redis.key_prefix,
            burst_fraction=config.auth.burst_fraction,
            feedback_per_minute=config.auth.feedback_per_minute,
            **kwargs,
        )

    async def acquire(self, kind: str, name: str, per_period: int) -> RateDecision:
        """Admit one event of ``kind`` for key ``name`` at ``per_period`` events per period, or not.

        Any Redis error admits it (fail open, logged once per cool-down)."""
        return await self.guard.acall(RateDecision(True), self._gcra, kind, name, per_period)

    async def _gcra(self, kind: str, name: str, per_period: int) -> RateDecision:
        interval = self.period_s / per_period
        tolerance = (burst_size(per_period, self.burst_fraction) - 1) * interval
        now = "" if self.clock is None else repr(float(self.clock()))
        keys, args = [self.keys.rate(kind, name)], [repr(interval), repr(tolerance), now]
        allowed, wait = await self.twin.run_script(_GCRA, keys, args)
        return RateDecision(bool(int(allowed)), float(wait))

    async def check_request(self, key: KeyInfo | None) -> None:
        """Admit one chat request of ``key``; raises FrontierError 429 with Retry-After when over its rpm."""
        if key is None or key.rpm is None:
            return
        await self._admit("req", key, key.rpm, "rate limit of {rate} requests per minute", "rate_limit_exceeded")

    async def check_feedback(self, key: KeyInfo | None) -> None:
        """Admit one feedback post of ``key``; raises FrontierError 429 with Retry-After when over its limit."""
        if key is None:
            return
        rate = key.feedback_per_minute or self.feedback_per_minute
        await self._admit("fb", key, rate, "feedback limit of {rate} per minute", "feedback_rate_limit_exceeded")

    async def _admit(self, kind: str, key: KeyInfo, rate: int, limit: str, code: str) -> None:
        decision = await self.acquire(kind, key.name, rate)
        if not decision.allowed:
            raise FrontierError(
                429,
                f"{limit.format(rate=rate)} exceeded for key {key.name!r}; retry after {decision.retry_after_header} s",
                code=code,
                headers={"Retry-After": decision.retry_after_header},
            )
