"""The decision log: what the policy knew and did for each routed completion, kept for feedback (TTL)."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Mapping

import numpy as np
import redis
from redis.asyncio.client import Pipeline

from frontier.feedback.keys import Keys
from frontier.routing.types import POOLS, DecisionContext

COMPLETION_ID_PREFIX = "chatcmpl-fr"
COMPLETION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,96}$")


def new_completion_id() -> str:
    """An unguessable completion id (160 random bits)."""
    return COMPLETION_ID_PREFIX + secrets.token_urlsafe(20)


def encode_features(phi: np.ndarray) -> bytes:
    """Compact online features: float16 bytes."""
    return np.asarray(phi, dtype=np.float16).tobytes()


def decode_features(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.float16).astype(np.float64)


def encode_offsets(offsets: Mapping[str, float]) -> bytes:
    """Offline logits per pool, in ``POOLS`` order, float32 bytes."""
    return np.array([offsets[pool] for pool in POOLS], dtype=np.float32).tobytes()


def decode_offsets(raw: bytes) -> dict[str, float]:
    values = np.frombuffer(raw, dtype=np.float32)
    return {pool: float(v) for pool, v in zip(POOLS, values, strict=True)}


def encode_request(phi: np.ndarray, offsets: Mapping[str, float]) -> str:
    """A request's online features and offline logits as one base64 token (the controller rescores them)."""
    return base64.b64encode(encode_features(phi) + encode_offsets(offsets)).decode()


def decode_request(token: bytes) -> tuple[np.ndarray, dict[str, float]]:
    raw = base64.b64decode(token)
    return decode_features(raw[:-8]), decode_offsets(raw[-8:])


# KEYS: decision hash, decision index, controller window, its push count. ARGV: ttl (s), max decisions, now,
# cid, decision key prefix, window entry ("" = none), window size, then the hash's field/value pairs. One
# script, so the log never holds more than its budget and an OOM refusal writes nothing.
_RECORD_LUA = """
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[1])
local now = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[1]))
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', ARGV[5] .. oldest[i]) end
end
if ARGV[6] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[6])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[7]) - 1)
  redis.call('INCR', KEYS[4])
end
"""


class DecisionLog:
    """Writes decision contexts under a TTL and a size budget, and feeds the cost controller's window."""

    def __init__(
        self, client: redis.Redis, keys: Keys, ttl_s: int, window: int, clock=time.time, max_decisions: int = 300_000
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.window = window
        self.clock = clock
        self.max_decisions = max_decisions
        self._record = client.register_script(_RECORD_LUA)

    def record(self, cid: str, ctx: DecisionContext) -> None:
        """Store one decision (one round trip), dropping the oldest beyond the budget; Redis errors propagate."""
        keys, args = self._command(cid, ctx)
        self._record(keys=keys, args=args)

    def stage(self, pipe: Pipeline, cid: str, ctx: DecisionContext) -> None:
        """Queue ``record`` on ``pipe``: one EVAL, which needs no script loaded first."""
        keys, args = self._command(cid, ctx)
        pipe.eval(_RECORD_LUA, len(keys), *keys, *args)

    def _command(self, cid: str, ctx: DecisionContext) -> tuple[list[str], list[object]]:
        if ctx.pool not in POOLS:
            raise ValueError(f"unknown pool {ctx.pool!r}")
        now = self.clock()
        fields = {
            "x": encode_features(ctx.features),
            "o": encode_offsets(ctx.offline_logits),
            "fm": ctx.feature_map,
            "pool": ctx.pool,
            "prop": repr(float(ctx.propensity)),
            "pv": ctx.policy_version,
            "sv": int(ctx.stats_version),
            "key": ctx.key_id or "",
            "ts": repr(now),
        }
        recent = ""
        if ctx.routed_by_policy and ctx.score is not None:
            recent = f"{float(ctx.score)!r} {ctx.pool} {encode_request(ctx.features, ctx.offline_logits)}"
        args = [self.ttl_s, self.max_decisions, repr(now), cid, self.keys.decision(""), recent, self.window]
        keys = [self.keys.decision(cid), self.keys.decision_index, self.keys.ctl_recent, self.keys.ctl_seq]
        return keys, args + [item for pair in fields.items() for item in pair]

    def get(self, cid: str) -> dict[str, object] | None:
        """The stored context of ``cid`` (decoded), or None if unknown or expired."""
        raw = self.client.hgetall(self.keys.decision(cid))
        if not raw:
            return None
        out: dict[str, object] = {k.decode(): v for k, v in raw.items()}
        out["x"] = decode_features(raw[b"x"])
        out["o"] = decode_offsets(raw[b"o"])
        for name in ("fm", "pool", "pv", "key"):
            out[name] = raw[f"{name}".encode()].decode()
        out["prop"] = float(raw[b"prop"])
        out["sv"] = int(raw[b"sv"])
        return out
