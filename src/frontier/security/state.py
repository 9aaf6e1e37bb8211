"""Redis key layout of the per-key limits, and the fail-open guard around Redis calls.

``P`` is ``redis.key_prefix`` (default ``frontier``); ``NAME`` is the API key's configured name.

=============================  ======  ==================================================================
key                            type    contents
=============================  ======  ==================================================================
``P:rl:req:NAME``              string  GCRA theoretical arrival time (s) of the key's chat requests
``P:rl:fb:NAME``               string  the same for its feedback posts
``P:bud:calls:NAME:BUCKET``    hash    ``t`` calls and ``r`` reasoning calls in one slice of
                                       ``auth.budget_window_s``; expires after the window
``P:bud:tok:NAME:YYYYMMDD``    string  reasoning-pool tokens used on that UTC day; expires after 2 days
=============================  ======  ==================================================================
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

logger = logging.getLogger("frontier.security")


@dataclass(frozen=True)
class LimitKeys:
    """Key names under one prefix."""

    prefix: str = "frontier"

    def rate(self, kind: str, name: str) -> str:
        return f"{self.prefix}:rl:{kind}:{name}"

    def calls(self, name: str, bucket: int) -> str:
        return f"{self.prefix}:bud:calls:{name}:{bucket}"

    def tokens(self, name: str, day: str) -> str:
        return f"{self.prefix}:bud:tok:{name}:{day}"


REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class FailOpen:
    """Limits fail open: while Redis is unreachable requests are served unlimited (and that is logged).

    After a failure Redis is skipped for ``cooldown_s`` so an outage adds no latency per request.
    """

    def __init__(self, what: str, cooldown_s: float = 1.0) -> None:
        self.what = what
        self.cooldown_s = cooldown_s
        self._down_until = 0.0
        self._lock = threading.Lock()

    def skip(self) -> bool:
        """Whether Redis is in its cool-down after a failure."""
        return time.monotonic() < self._down_until

    def failed(self, exc: Exception) -> None:
        """Record a Redis failure; logs once per cool-down."""
        with self._lock:
            if not self.skip():
                logger.warning(
                    "Redis unavailable for %s (%s): not enforced for the next %.1f s",
                    self.what,
                    type(exc).__name__,
                    self.cooldown_s,
                )
            self._down_until = time.monotonic() + self.cooldown_s
