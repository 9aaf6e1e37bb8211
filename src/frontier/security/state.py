"""Redis key layout of the per-key limits (the fail-open guard lives in ``frontier.redis_guard``).

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

from dataclasses import dataclass

from frontier.redis_guard import REDIS_ERRORS, FailOpen


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


__all__ = ["REDIS_ERRORS", "FailOpen", "LimitKeys"]
