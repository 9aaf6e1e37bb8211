"""Online cost control: hold the realised reasoning share of routed traffic at the operator's target.

Each step looks at the last ``window`` policy-routed decisions (``P:ctl:recent``, written by the
decision log): the threshold becomes the score quantile that would have sent ``target + integral +
proportional * (target - share)`` of them to reasoning (feed-forward, fast under drift); the integral term
removes what the quantile alone misses (exploration, a score distribution that moves with learning) and
the proportional one repays a deficit of the window (the first requests, routed before there was a window)
without winding the integral up into an overshoot. State lives in ``P:ctl`` so
all replicas route with the same threshold. Tolerance: on traffic whose score distribution changes
slower than the window, the realised window share stays within ``controller.tolerance`` (default
±3 points) of the target.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from frontier.config import ControllerConfig
from frontier.feedback.decision_log import decode_request
from frontier.feedback.keys import Keys
from frontier.feedback.worker import Worker
from frontier.routing.types import POOLS

# Current greedy scores of requests from their online features and offline logits (the live model's).
Rescore = Callable[[np.ndarray, np.ndarray], np.ndarray]

INTEGRAL_LIMIT = 0.25


@dataclass(frozen=True)
class ControllerState:
    """Threshold, integral term and the last measured share."""

    threshold: float | None = None
    integral: float = 0.0
    share: float | None = None
    n: int = 0


def control_step(
    scores: np.ndarray,
    to_reasoning: np.ndarray,
    target: float,
    state: ControllerState,
    gain: float,
    proportional: float = 0.0,
) -> ControllerState:
    """The next controller state from the window's scores and realised pools (pure)."""
    n = len(scores)
    if n == 0:
        return state
    share = float(np.mean(to_reasoning))
    integral = float(np.clip(state.integral + gain * (target - share), -INTEGRAL_LIMIT, INTEGRAL_LIMIT))
    level = float(np.clip(target + integral + proportional * (target - share), 0.0, 1.0))
    if level <= 0.0:
        threshold = float(np.max(scores)) + 1e-9
    elif level >= 1.0:
        threshold = float(np.min(scores)) - 1e-9
    else:
        threshold = float(np.quantile(scores, 1.0 - level))
    return ControllerState(threshold, integral, share, n)


def parse_window(raw: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and reasoning flags from ``P:ctl:recent`` entries ``"score pool [request]"``."""
    scores, flags = [], []
    for item in raw:
        score, pool = item.decode().split(" ")[:2]
        scores.append(float(score))
        flags.append(pool == "reasoning")
    return np.array(scores, dtype=np.float64), np.array(flags, dtype=bool)


def entry_request(item: bytes) -> tuple[np.ndarray, dict[str, float]] | None:
    """Online features and offline logits of one window entry; None for an entry without them."""
    parts = item.split(b" ")
    return decode_request(parts[2]) if len(parts) >= 3 else None


def window_requests(
    raw: list[bytes], dim: int, decode: Callable[[bytes], Any] = entry_request
) -> tuple[np.ndarray, np.ndarray] | None:
    """Online features (n, dim) and offline logits (n, 2) of the window's requests; None unless every entry
    carries them over a ``dim``-feature map."""
    rows = []
    for item in raw:
        row = decode(item)
        if row is None or len(row[0]) != dim:
            return None
        rows.append(row)
    if not rows:
        return None
    return np.stack([phi for phi, _ in rows]), np.array([[o[p] for p in POOLS] for _, o in rows])


# KEYS: the lease. ARGV: holder, lease (ms). Takes a free lease or renews our own; 1 if we hold it now.
_LEASE_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class CostController:
    """Runs ``control_step`` against Redis. ``run`` steps only while this replica holds the leader lease
    (``P:ctl:leader``, expiring after ``lease_s`` unless renewed), so the gain does not multiply with the
    number of replicas; ``step`` itself is safe to race (optimistic WATCH).

    ``rescore`` (the online feature map's dimension, the live model's scoring): the window's requests are
    scored by the current model instead of the one that routed them, so the threshold does not lag while
    learning moves every score (without it the share drifted to 0.7 on unseen math: online_learning_lab.py)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        config: ControllerConfig,
        target: float,
        clock=time.time,
        name: str | None = None,
        rescore: tuple[int, Rescore] | None = None,
    ) -> None:
        self.client = client
        self.rescore = rescore
        self.keys = keys
        self.config = config
        self.target = target
        self.clock = clock
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lease_s = max(3 * config.interval_s, 2.0)
        self.leader = False
        self._lease = client.register_script(_LEASE_LUA)
        self._decoded: dict[bytes, Any] = {}  # the window's entries, each decoded once while it stays in it

    def state(self) -> ControllerState:
        raw = self.client.hgetall(self.keys.ctl)
        if not raw or float(raw.get(b"target", b"-1")) != self.target:
            return ControllerState()
        return ControllerState(float(raw[b"threshold"]), float(raw[b"integral"]), float(raw[b"share"]), int(raw[b"n"]))

    def step(self) -> ControllerState:
        """One control step; returns the state now in Redis."""
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.keys.ctl)
                    current = self.state()
                    raw = self.client.lrange(self.keys.ctl_recent, 0, self.config.window - 1)
                    scores, flags = parse_window(raw)
                    requests = window_requests(raw, self.rescore[0], self._decode) if self.rescore is not None else None
                    self._decoded = {item: self._decoded[item] for item in raw if item in self._decoded}
                    if requests is not None:
                        scores = self.rescore[1](*requests)
                    new = control_step(
                        scores, flags, self.target, current, self.config.gain, self.config.proportional_gain
                    )
                    if new.threshold is None:
                        pipe.unwatch()
                        return new
                    pipe.multi()
                    pipe.hset(
                        self.keys.ctl,
                        mapping={
                            "threshold": repr(new.threshold),
                            "integral": repr(new.integral),
                            "share": repr(new.share),
                            "n": new.n,
                            "target": repr(self.target),
                            "updated_at": repr(self.clock()),
                        },
                    )
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def _decode(self, item: bytes) -> Any:
        if (row := self._decoded.get(item)) is None:
            row = self._decoded[item] = entry_request(item)
        return row

    def lead(self) -> bool:
        """Take or renew the leader lease; whether this replica leads now."""
        self.leader = False  # an error below leaves us a follower
        self.leader = bool(self._lease(keys=[self.keys.ctl_leader], args=[self.name, int(self.lease_s * 1000)]))
        return self.leader

    def tick(self) -> ControllerState | None:
        """One step if this replica leads, else None."""
        return self.step() if self.lead() else None

    def worker(self, **options: Any) -> Worker:
        """This controller as a supervised worker stepping every ``interval_s``."""
        return Worker("cost-controller", self.tick, interval_s=self.config.interval_s, **options)

    def run(self, stop: threading.Event) -> None:
        """Step every ``interval_s`` while leading until ``stop`` is set, riding out every Redis fault."""
        self.worker().run(stop)
