"""The router's gatekeeper: API keys, per-key rate limits and reasoning budgets, input limits.

A budget is reserved for the pool a request is about to call (again when overflow or fallback moves it to
the other pool) and settled when the request ends; while Redis is down a budgeted key gets the light pool
(routed requests) or 503 (explicit reasoning requests), never an unbudgeted reasoning call.

Redis-backed checks run on the event loop (asyncio twins of the Redis client), bounded by its socket timeout.
Without a Redis client only keys and input limits apply.
"""

from __future__ import annotations

import math
from typing import Any

from frontier.config import FrontierConfig, PoolName
from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.budget import ReasoningBudget, Refusal, Reservation
from frontier.security.keys import KeyInfo, KeyStore, requires_key
from frontier.security.limits import check_request_limits, prompt_bytes, send_error
from frontier.routing.types import CALLER_REASONS
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
            await self.limiter.check_request(key)

    async def admit_feedback(self, key: KeyInfo | None) -> None:
        """The key's feedback rate (429 with Retry-After)."""
        if self.limiter is not None and key is not None:
            await self.limiter.check_feedback(key)

    async def admit_implicit_feedback(self, key: KeyInfo | None) -> bool:
        """Whether a re-ask (``x-frontier-retry-of``) may count as feedback: it spends the key's feedback rate
        like a post, and over that rate it is simply not counted (the chat request itself goes on)."""
        try:
            await self.admit_feedback(key)
        except FrontierError:
            return False
        return True

    def budgeted(self, key: KeyInfo | None) -> bool:
        """Whether requests of ``key`` reserve a reasoning budget."""
        return self.budget is not None and ReasoningBudget.limited(key)

    def reasoning_tokens(self, request: ChatCompletionRequest) -> int:
        """Tokens a reasoning call of ``request`` may use: its prompt (at about 4 bytes a token) and the
        completion asked for, else the rest of the context; at most the pool's context."""
        context = self.config.pools.get("reasoning").max_model_len
        asked = request.max_completion_tokens or request.max_tokens or context
        return min(context, math.ceil(prompt_bytes(request) / 4) + asked)

    async def reserve(
        self,
        decision: Decision,
        key: KeyInfo | None,
        request: ChatCompletionRequest,
        switching: FrontierError | None = None,
    ) -> tuple[Decision, Reservation | None]:
        """Reserve the key's budget for a call on ``decision.pool``: the decision to serve and its reservation.

        Over budget a routed reasoning decision goes light (reason ``budget``) and an explicit one gets 429
        (503 while the budget cannot be read). When a routed request is leaving its pool after overflow or
        fallback, ``switching`` is the error that made it leave: that error stands instead.
        """
        if not self.budgeted(key):
            return decision, None
        assert key is not None and self.budget is not None
        tokens = self.reasoning_tokens(request) if decision.pool == "reasoning" else 0
        granted = await self.budget.reserve(key, decision.pool, tokens)
        if isinstance(granted, Reservation):
            return decision, granted
        if switching is not None:
            raise switching
        if decision.reason in CALLER_REASONS:
            raise over_budget(key, granted)
        light = decision.model_copy(update={"pool": "light", "reason": "budget"})
        reservation = await self.budget.reserve(key, "light")
        assert isinstance(reservation, Reservation)  # light calls are never refused
        return light, reservation

    async def settle(self, reservation: Reservation, keep_call: bool, tokens: int | None) -> None:
        """Close a budget reservation (see ``ReasoningBudget.settle``)."""
        if self.budget is not None:
            await self.budget.settle(reservation, keep_call=keep_call, tokens=tokens)

    def check_pool_fit(self, request: ChatCompletionRequest, pool: PoolName) -> None:
        """The request's size against the chosen pool's context length (400 before any engine work)."""
        check_request_limits(request, self.config.limits, max_model_len=self.config.pools.get(pool).max_model_len)


def over_budget(key: KeyInfo, refusal: Refusal) -> FrontierError:
    """The error for an explicit reasoning request the key's budget refuses: 429, or 503 without Redis."""
    retry = {"Retry-After": str(max(1, math.ceil(refusal.retry_after_s)))}
    if refusal.unavailable:
        return FrontierError(
            503, "the reasoning budget cannot be checked now; use model 'frontier' or 'frontier-light', or retry",
            code="budget_unavailable", headers=retry,
        )  # fmt: skip
    return FrontierError(
        429,
        f"reasoning budget of key {key.name!r} exhausted ({refusal.reason}); use model 'frontier' or "
        "'frontier-light', or retry later",
        code="reasoning_budget_exceeded",
        headers=retry,
    )


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
