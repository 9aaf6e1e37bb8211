"""The one fail-open guard for Redis calls on the request path.

Any ``redis.RedisError`` (unreachable, timeout, OOM under ``noeviction``, READONLY replica, NOGROUP,
EXECABORT, a script error...) inside ``FailOpen.call`` (``acall`` for a coroutine) returns the caller's
fallback instead of raising, is logged once per cool-down, and makes the guard skip Redis for ``cooldown_s``
so an outage adds no latency per request. What a fallback means is the caller's choice: "allowed" for limits,
"not logged" for the decision log. Code that must not pretend (feedback intake) uses
``FailOpen.failed`` to share the state and raises a 503 itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import redis

logger = logging.getLogger("frontier.redis")

REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError,)

P = ParamSpec("P")
T = TypeVar("T")


class FailOpen:
    """Fail-open state of one Redis-backed feature (``what`` names it in logs and health)."""

    def __init__(self, what: str, cooldown_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.last_error: str | None = None
        self._down_until = float("-inf")
        self._lock = threading.Lock()

    def skip(self) -> bool:
        """Whether Redis is in its cool-down after a failure."""
        return self.clock() < self._down_until

    def failed(self, exc: BaseException) -> None:
        """Record a Redis failure; logs once per cool-down."""
        with self._lock:
            if not self.skip():
                logger.warning(
                    "Redis unavailable for %s (%s: %s): failing open for the next %.1f s",
                    self.what, type(exc).__name__, exc, self.cooldown_s,
                )  # fmt: skip
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._down_until = self.clock() + self.cooldown_s

    async def acall(self, fallback: T, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call`` for a coroutine function: ``await fn(*args, **kwargs)``, or ``fallback``."""
        if self.skip():
            return fallback
        try:
            return await fn(*args, **kwargs)
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return fallback

    def call(self, fallback: T, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, or ``fallback`` while cooling down or when it raises a Redis error."""
        if self.skip():
            return fallback
        try:
            return fn(*args, **kwargs)
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return fallback
