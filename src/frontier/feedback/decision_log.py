"""The decision log: what the policy knew and did for each routed completion, kept for feedback (TTL)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping

import numpy as np
import redis

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


class DecisionLog:
    """Writes decision contexts with a TTL and feeds the cost controller's window."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int, window: int, clock=time.time) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.window = window
        self.clock = clock

    def record(self, cid: str, ctx: DecisionContext) -> None:
        """Store one decision (one round trip); Redis errors propagate."""
        if ctx.pool not in POOLS:
            raise ValueError(f"unknown pool {ctx.pool!r}")
        key = self.keys.decision(cid)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(
            key,
            mapping={
                "x": encode_features(ctx.features),
                "o": encode_offsets(ctx.offline_logits),
                "fm": ctx.feature_map,
                "pool": ctx.pool,
                "prop": repr(float(ctx.propensity)),
                "pv": ctx.policy_version,
                "sv": int(ctx.stats_version),
                "key": ctx.key_id or "",
                "ts": repr(self.clock()),
            },
        )
        pipe.expire(key, self.ttl_s)
        if ctx.routed_by_policy and ctx.score is not None:
            pipe.lpush(self.keys.ctl_recent, f"{float(ctx.score)!r} {ctx.pool}")
            pipe.ltrim(self.keys.ctl_recent, 0, self.window - 1)
        pipe.execute()

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
