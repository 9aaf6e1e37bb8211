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


# KEYS: the window list, its push count. ARGV: the count the caller has read up to ("" = none), the window size.
# Returns the count now, 1 if the entries are the whole window (else only those pushed since), the list's length,
# and the entries, newest first: one atomic read, so no push falls between the count and the entries.
_WINDOW_LUA = """
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local last = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local whole = (last == nil or last > seq or seq - last >= size) and 1 or 0
local new = whole == 1 and size or seq - last
local entries = new > 0 and redis.call('LRANGE', KEYS[1], 0, new - 1) or {}
return {seq, whole, redis.call('LLEN', KEYS[1]), entries}
"""


class Window:
    """The controller's copy of ``P:ctl:recent`` (entries ``"score pool [request]"``): each entry parsed once, when
    it arrives, into a ring of ``size`` rows, so a step costs what is new rather than the whole window.

    ``dim``: the online feature map's dimension; with it, each entry's request (online features and offline
    logits) is kept for rescoring, and ``requests()`` gives them while every entry carries one of that size."""

    def __init__(self, size: int, dim: int | None = None) -> None:
        self.size, self.dim = size, dim
        self.scores = np.zeros(size)
        self.flags = np.zeros(size, dtype=bool)
        self.carries = np.zeros(size, dtype=bool)
        self.phi = np.zeros((size, dim or 0))
        self.logits = np.zeros((size, len(POOLS)))
        self.seq: int | None = None  # how many pushes the copy has seen (``P:ctl:seq``); None: none read yet
        self.count = self.head = 0

    def clear(self) -> None:
        self.count = self.head = 0
        self.seq = None

    def push(self, entries: list[bytes]) -> None:
        """Add entries given newest first (as the list holds them); the oldest beyond ``size`` leave."""
        for item in reversed(entries[: self.size]):
            score, pool, *request = item.split(b" ", 2)
            i = self.head
            self.scores[i], self.flags[i] = float(score), pool == b"reasoning"
            row = decode_request(request[0]) if request and self.dim else None
            self.carries[i] = row is not None and len(row[0]) == self.dim
            if self.carries[i]:
                self.phi[i] = row[0]
                self.logits[i] = [row[1][p] for p in POOLS]
            self.head = (i + 1) % self.size
            self.count = min(self.count + 1, self.size)

    def decisions(self) -> tuple[np.ndarray, np.ndarray]:
        """The logged scores and reasoning flags of the window (in no particular order)."""
        return self.scores[: self.count], self.flags[: self.count]

    def requests(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Online features (n, dim) and offline logits (n, 2) of the window's requests; None unless every entry
        carries them."""
        n = self.count
        if not n or not self.dim or not self.carries[:n].all():
            return None
        return self.phi[:n], self.logits[:n]


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
        self._read = client.register_script(_WINDOW_LUA)
        self.window = Window(config.window, rescore[0] if rescore is not None else None)

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
                    self.catch_up()
                    scores, flags = self.window.decisions()
                    requests = self.window.requests() if self.rescore is not None else None
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

    def catch_up(self) -> None:
        """Bring the window's copy up to ``P:ctl:recent``: only the entries pushed since the last read, or the
        whole list when the copy cannot be trusted (first read, a reset or lost count, a copy that disagrees with
        the list's length)."""
        keys, last = [self.keys.ctl_recent, self.keys.ctl_seq], self.window.seq
        while True:
            seq, whole, length, entries = self._read(keys=keys, args=["" if last is None else last, self.window.size])
            if whole:
                self.window.clear()
            self.window.push(entries)
            self.window.seq = int(seq)
            if whole or self.window.count == min(int(length), self.window.size):
                return
            last = None

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
