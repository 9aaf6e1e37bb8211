"""The router's gatekeeper: API keys, per-key rate limits and reasoning budgets, input limits.

Redis-backed checks are synchronous redis-py calls bounded by the client's socket timeout; they run
in a worker thread so the event loop never blocks. Without a Redis client only keys and input
limits apply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from frontier.config import FrontierConfig, PoolName
from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.budget import ReasoningBudget
from frontier.security.keys import KeyInfo, KeyStore, requires_key
from frontier.security.limits import check_request_limits, send_error
from frontier.security.ratelimit import RateLimiter


class AccessControl:
    """Who may call, how often, how much reasoning, and how big a request may be."""

    def __init__(
        self,
        config: FrontierConfig,
        keys: KeyStore,
        limiter: RateLimiter | None = None,
        budget: ReasoningBudget | None = None,
    ) -> None:
        self.config = config
        self.keys = keys
        self.limiter = limiter
        self.budget = budget

    @classmethod
    def from_config(cls, config: FrontierConfig, redis_client: Any | None) -> "AccessControl":
        """Keys from config and ``FRONTIER_API_KEYS``; limits in Redis when a client is given."""
        keys = KeyStore.from_config(config.auth)
        if redis_client is None:
            return cls(config, keys)
        return cls(
            config, keys, RateLimiter.from_config(redis_client, config), ReasoningBudget.from_config(redis_client, config)
        )

    def authenticate(self, authorization: str | None) -> KeyInfo | None:
        """The caller, None when authentication is off; 401 for a missing or unknown key."""
        return self.keys.authenticate(authorization)

    async def admit_chat(self, request: ChatCompletionRequest, key: KeyInfo | None) -> None:
        """Input limits (400), then the key's request rate (429 with Retry-After)."""
        check_request_limits(request, self.config.limits)
        if self.limiter is not None and key is not None and key.rpm is not None:
            await asyncio.to_thread(self.limiter.check_request, key)

    async def admit_feedback(self, key: KeyInfo | None) -> None:
        """The key's feedback rate (429 with Retry-After)."""
        if self.limiter is not None and key is not None:
            await asyncio.to_thread(self.limiter.check_feedback, key)

    async def within_budget(self, decision: Decision, key: KeyInfo | None) -> Decision:
        """A routed reasoning decision over the key's budget goes light (reason ``budget``); explicit -> 429."""
        if self.budget is None or decision.pool != "reasoning" or not ReasoningBudget.limited(key):
            return decision
        return await asyncio.to_thread(self.budget.apply, decision, key)

    def check_pool_fit(self, request: ChatCompletionRequest, pool: PoolName) -> None:
        """The request's size against the chosen pool's context length (400 before any engine work)."""
        check_request_limits(request, self.config.limits, max_model_len=self.config.pools.get(pool).max_model_len)

    async def record_usage(self, key: KeyInfo | None, pool: PoolName, tokens: int) -> None:
        """Count a served call against the key's reasoning budget."""
        if self.budget is not None and ReasoningBudget.limited(key):
            await asyncio.to_thread(self.budget.record, key, pool, tokens)


class AuthMiddleware:
    """ASGI middleware: every path but health, readiness and metrics needs a valid key (401 otherwise).

    The caller's ``KeyInfo`` (or None when authentication is off) is left in ``scope["state"]``
    under ``frontier_key`` for the routes.
    """

    def __init__(self, app: Any, keys: KeyStore) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not requires_key(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            key = self.keys.authenticate(headers.get("authorization"))
        except FrontierError as exc:
            await send_error(send, exc)
            return
        scope.setdefault("state", {})[KEY_STATE] = key
        await self.app(scope, receive, send)


KEY_STATE = "frontier_key"
