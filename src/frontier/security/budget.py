"""Per-key reasoning budgets in Redis: a share of the key's calls, and reasoning tokens per UTC day.

A call reserves its budget before it reaches a pool and settles it when it ends, whatever the exit.
``reserve`` checks and counts in one Lua script, so concurrent requests (on any replica) cannot all pass
one check; ``settle`` gives back a call that never reached an engine and replaces the reserved tokens
by the tokens used (or keeps them when the use is unknown, e.g. the client left before the usage chunk).

The share budget admits a reasoning call while the key's reasoning calls in the window are below
``share * calls + 1`` (a first call is possible and the long-run share converges to the budget; a share
of 0 admits none). The token budget admits one while the day's used and reserved tokens are below the
limit (0 admits none); a reasoning call reserves its prompt estimate plus the completion it may produce.
The share window is counted in ``BUCKETS`` slices, so it slides in steps of ``window_s / BUCKETS``.

Redis errors (any ``RedisError``) never fail a request and never open the reasoning pool: while Redis
cannot be asked, a reasoning reservation is refused as ``unavailable`` (the caller routes light or
answers 503) and a light one is granted uncounted; a failed settle leaves the reservation counted (the
safe side). Calls are coroutines on the event loop (the client's asyncio twin).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from frontier.config import FrontierConfig, PoolName
from frontier.redis_guard import FailOpen
from frontier.redis_writes import LoopTwin
from frontier.security.keys import KeyInfo
from frontier.security.state import LimitKeys

BUCKETS = 12
_DAY_S = 86400
_TOKEN_TTL_S = 2 * _DAY_S

# KEYS: the share window's slices, oldest first, current last (none without a share budget), then the
# day's token counter (only for a reasoning call of a key with a token budget).
# ARGV: share ('' = none), tokens per day ('' = none), reasoning call (1/0), tokens to reserve, slice TTL s,
# counter TTL s. Returns '' once counted, else the budget that refuses: 'tokens' or 'share'.
_RESERVE = """
local n = #KEYS
local reasoning = ARGV[3] == '1'
local counter
if ARGV[2] ~= '' then counter = KEYS[n]; n = n - 1 end
if reasoning then
  if counter and tonumber(redis.call('GET', counter) or '0') >= tonumber(ARGV[2]) then return 'tokens' end
  if ARGV[1] ~= '' then
    local calls, deep = 0, 0
    for i = 1, n do
      local v = redis.call('HMGET', KEYS[i], 't', 'r')
      calls = calls + tonumber(v[1] or '0')
      deep = deep + tonumber(v[2] or '0')
    end
    local share = tonumber(ARGV[1])
    local grace = 0
    if share > 0 then grace = 1 end
    if deep >= share * calls + grace then return 'share' end
  end
end
if ARGV[1] ~= '' then
  redis.call('HINCRBY', KEYS[n], 't', 1)
  if reasoning then redis.call('HINCRBY', KEYS[n], 'r', 1) end
  redis.call('EXPIRE', KEYS[n], ARGV[5])
end
if counter and reasoning then
  redis.call('INCRBY', counter, ARGV[4])
  redis.call('EXPIRE', counter, ARGV[6])
end
return ''
"""

# KEYS: the slice that counted the call, the day's token counter. ARGV: calls delta, reasoning calls delta,
# tokens delta. Counters that expired meanwhile are left alone (never recreated without a TTL).
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '0' then redis.call('HINCRBY', KEYS[1], 't', ARGV[1]) end
  if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'r', ARGV[2]) end
end
if ARGV[3] ~= '0' and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], ARGV[3]) end
return 1
"""


@dataclass(frozen=True)
class Reservation:
    """One call counted against a key's budgets until it is settled."""

    key: str
    pool: PoolName
    bucket: int | None = None  # the share window's slice that counted the call
    day: str | None = None  # the UTC day whose counter holds the reserved tokens
    tokens: int = 0


@dataclass(frozen=True)
class Refusal:
    """Why a key may not make a reasoning call now, and when it may again."""

    reason: str
    retry_after_s: float
    unavailable: bool = False  # the budget could not be read (Redis down): not the key's fault


def _utc_day(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d")


class ReasoningBudget:
    """Reasoning budgets of API keys."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "frontier",
        window_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        cooldown_s: float = 1.0,
    ) -> None:
        self.keys = LimitKeys(prefix)
        self.bucket_s = window_s / BUCKETS
        self.clock = clock
        self.guard = FailOpen("reasoning budgets", cooldown_s)
        self.twin = LoopTwin(client)

    @classmethod
    def from_config(cls, client: redis.Redis, config: FrontierConfig, **kwargs) -> ReasoningBudget:
        return cls(client, prefix=config.redis.key_prefix, window_s=config.auth.budget_window_s, **kwargs)

    @staticmethod
    def limited(key: KeyInfo | None) -> bool:
        """Whether the key has any reasoning budget at all."""
        return key is not None and (key.reasoning_share_budget is not None or key.reasoning_tokens_per_day is not None)

    async def reserve(self, key: KeyInfo, pool: PoolName, tokens: int = 0) -> Reservation | Refusal:
        """Count one call of ``key`` on ``pool`` (a reasoning call also ``tokens``), or say why not.

        Only reasoning calls are ever refused; light calls are counted for the share window only.
        """
        reasoning = pool == "reasoning"
        share, per_day = key.reasoning_share_budget, key.reasoning_tokens_per_day
        if share is None and not reasoning:
            return Reservation(key.name, pool)
        now = self.clock()
        bucket = int(now // self.bucket_s) if share is not None else None
        day = _utc_day(now) if per_day is not None and reasoning else None
        keys = [] if bucket is None else [self.keys.calls(key.name, b) for b in range(bucket - BUCKETS + 1, bucket + 1)]
        if day is not None:
            keys.append(self.keys.tokens(key.name, day))
        args = [
            "" if share is None else repr(float(share)),
            "" if day is None else str(per_day),
            int(reasoning),
            int(tokens),
            int(self.bucket_s * (BUCKETS + 1)) + 1,
            _TOKEN_TTL_S,
        ]
        answer = await self.guard.acall(None, self.twin.run_script, _RESERVE, keys, args)
        if answer is None:
            if not reasoning:
                return Reservation(key.name, pool)
            return Refusal("the budget cannot be checked now", max(1.0, self.guard.cooldown_s), unavailable=True)
        answer = answer.decode() if isinstance(answer, bytes) else answer
        if answer == "tokens":
            return Refusal(f"{per_day} reasoning tokens per day", _DAY_S - now % _DAY_S)
        if answer == "share":
            return Refusal(f"reasoning share {share:g} of calls", self.bucket_s - now % self.bucket_s)
        return Reservation(key.name, pool, bucket, day, int(tokens) if day is not None else 0)

    async def settle(self, reservation: Reservation, *, keep_call: bool, tokens: int | None) -> None:
        """Close a reservation. ``keep_call`` False gives the call back (it never reached an engine, or the
        request moved to the other pool); ``tokens`` replaces the reserved tokens (None keeps them)."""
        calls = 0 if keep_call or reservation.bucket is None else -1
        deep = calls if reservation.pool == "reasoning" else 0
        delta = 0 if tokens is None or reservation.day is None else int(tokens) - reservation.tokens
        if calls == 0 and delta == 0:
            return
        keys = [
            self.keys.calls(reservation.key, reservation.bucket or 0),
            self.keys.tokens(reservation.key, reservation.day or ""),
        ]
        await self.guard.acall(None, self.twin.run_script, _SETTLE, keys, [calls, deep, delta])
