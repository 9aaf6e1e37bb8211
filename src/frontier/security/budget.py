"""Per-key reasoning budgets in Redis: a share of the key's calls, and reasoning tokens per UTC day.

``allow_reasoning`` answers before a call whether the key may use the reasoning pool; ``record`` counts
the call afterwards. The share budget admits a reasoning call while the key's reasoning calls in the
window are below ``share * calls + 1`` (so a first call is possible and the long-run share converges
to the budget; a share of 0 admits none). Both budgets are soft by the number of concurrent calls of
one key. The share window is counted in ``BUCKETS`` slices, so it slides in steps of
``window_s / BUCKETS``. Redis unavailable: allowed (fail open, logged). Calls are synchronous; from an
event loop use ``await asyncio.to_thread(...)``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from frontier.config import FrontierConfig, PoolName
from frontier.errors import FrontierError
from frontier.schemas import Decision
from frontier.security.keys import KeyInfo
from frontier.security.state import REDIS_ERRORS, FailOpen, LimitKeys

BUCKETS = 12
EXPLICIT_REASONS = frozenset({"explicit", "effort"})  # the caller asked for the pool by model or reasoning_effort
_DAY_S = 86400
_TOKEN_TTL_S = 2 * _DAY_S


@dataclass(frozen=True)
class BudgetState:
    """Whether a key may use the reasoning pool now, and if not when it may again."""

    allowed: bool
    retry_after_s: float = 0.0
    reason: str = ""


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
        self.client = client
        self.keys = LimitKeys(prefix)
        self.bucket_s = window_s / BUCKETS
        self.clock = clock
        self.guard = FailOpen("reasoning budgets", cooldown_s)

    @classmethod
    def from_config(cls, client: redis.Redis, config: FrontierConfig, **kwargs) -> ReasoningBudget:
        return cls(client, prefix=config.redis.key_prefix, window_s=config.auth.budget_window_s, **kwargs)

    @staticmethod
    def limited(key: KeyInfo | None) -> bool:
        """Whether the key has any reasoning budget at all."""
        return key is not None and (key.reasoning_share_budget is not None or key.reasoning_tokens_per_day is not None)

    def state(self, key: KeyInfo | None) -> BudgetState:
        """The key's budget now."""
        if not self.limited(key) or self.guard.skip():
            return BudgetState(True)
        assert key is not None
        now = self.clock()
        try:
            with self.client.pipeline(transaction=False) as pipe:
                if key.reasoning_tokens_per_day is not None:
                    pipe.get(self.keys.tokens(key.name, _utc_day(now)))
                if key.reasoning_share_budget is not None:
                    current = int(now // self.bucket_s)
                    for bucket in range(current - BUCKETS + 1, current + 1):
                        pipe.hmget(self.keys.calls(key.name, bucket), "t", "r")
                replies = pipe.execute()
        except REDIS_ERRORS as exc:
            self.guard.failed(exc)
            return BudgetState(True)
        if key.reasoning_tokens_per_day is not None:
            used = int(replies.pop(0) or 0)
            if used >= key.reasoning_tokens_per_day:
                until_midnight = _DAY_S - now % _DAY_S
                return BudgetState(False, until_midnight, f"{key.reasoning_tokens_per_day} reasoning tokens per day")
        if key.reasoning_share_budget is not None:
            calls = sum(int(t or 0) for t, _ in replies)
            reasoning = sum(int(r or 0) for _, r in replies)
            grace = 1 if key.reasoning_share_budget > 0 else 0  # lets a key with a share make its first call
            if reasoning >= key.reasoning_share_budget * calls + grace:
                next_bucket = self.bucket_s - now % self.bucket_s
                return BudgetState(False, next_bucket, f"reasoning share {key.reasoning_share_budget:g} of calls")
        return BudgetState(True)

    def allow_reasoning(self, key: KeyInfo | None) -> bool:
        """Whether the key may send one more call to the reasoning pool (routed calls go light otherwise)."""
        return self.state(key).allowed

    def require_reasoning(self, key: KeyInfo | None) -> None:
        """For explicit reasoning requests: raises FrontierError 429 with Retry-After when over budget."""
        state = self.state(key)
        if not state.allowed:
            assert key is not None
            raise FrontierError(
                429,
                f"reasoning budget of key {key.name!r} exhausted ({state.reason}); use model 'frontier' or "
                "'frontier-light', or retry later",
                code="reasoning_budget_exceeded",
                headers={"Retry-After": str(max(1, math.ceil(state.retry_after_s)))},
            )

    def apply(self, decision: Decision, key: KeyInfo | None) -> Decision:
        """The decision within the key's budget: a routed reasoning decision over budget goes light with
        reason ``budget``; an explicit one (model or reasoning_effort) raises FrontierError 429."""
        if decision.pool != "reasoning" or not self.limited(key):
            return decision
        if decision.reason in EXPLICIT_REASONS:
            self.require_reasoning(key)
            return decision
        if self.allow_reasoning(key):
            return decision
        return decision.model_copy(update={"pool": "light", "reason": "budget"})

    def record(self, key: KeyInfo | None, pool: PoolName, tokens: int = 0) -> None:
        """Count one served call of ``key`` on ``pool`` that used ``tokens`` (prompt + completion)."""
        if not self.limited(key) or self.guard.skip():
            return
        assert key is not None
        now = self.clock()
        try:
            with self.client.pipeline(transaction=True) as pipe:
                if key.reasoning_share_budget is not None:
                    calls = self.keys.calls(key.name, int(now // self.bucket_s))
                    pipe.hincrby(calls, "t", 1)
                    if pool == "reasoning":
                        pipe.hincrby(calls, "r", 1)
                    pipe.expire(calls, int(self.bucket_s * (BUCKETS + 1)) + 1)
                if key.reasoning_tokens_per_day is not None and pool == "reasoning" and tokens > 0:
                    day = self.keys.tokens(key.name, _utc_day(now))
                    pipe.incrby(day, int(tokens))
                    pipe.expire(day, _TOKEN_TTL_S)
                pipe.execute()
        except REDIS_ERRORS as exc:
            self.guard.failed(exc)
