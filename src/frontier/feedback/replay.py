"""Replay a labelled data set through the live online stack (bandit feedback), then score a held-out tail.

The learning phase is the server's path: ``Router.decide`` on the watcher's live state (the operator's
knob, a reasoning share, so the cost controller's threshold applies), the decision log, the feedback
queue (Lua intake), the consumer (MULTI/EXEC batches), the cost controller and the watcher's snapshot.
Only the outcome of the pool the router chose is sent as feedback; the other pool's label is never
revealed. The tail is scored with ``Router.scores``: the greedy score ``decide`` would report.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import redis

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer, ensure_state
from frontier.feedback.controller import CostController
from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.routing.evaluation import quality_curve, summarize
from frontier.routing.features import RequestFeatures
from frontier.routing.router import Router
from frontier.routing.types import Pool, Reason, StatsSnapshot


@dataclass
class ReplayResult:
    """What a replay measured."""

    tail_rows: np.ndarray
    tail_scores: np.ndarray
    metrics: dict[str, float | int | str]
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (events, tail APGR, running share)
    snapshot: StatsSnapshot = field(default_factory=StatsSnapshot)


def tail_metrics(scores: np.ndarray, light: np.ndarray, reasoning: np.ndarray) -> dict[str, float]:
    summary = summarize(quality_curve(scores, light, reasoning))
    return {"apgr": summary["apgr"], "cpt50": summary["cpt_50"], "cpt80": summary["cpt_80"]}


def split_rows(n: int, learn_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The learning rows and the tail of ``n`` rows shuffled with ``seed`` (the simulator's and ``--live``'s)."""
    order = np.random.default_rng(seed).permutation(n)
    n_learn = int(round(n * learn_fraction))
    if n_learn == 0 or n_learn == n:
        raise ValueError("learn_fraction must leave rows to learn from and rows to score")
    return order[:n_learn], order[n_learn:]


def replay(
    client: redis.Redis,
    config: FeedbackConfig,
    router: Router,
    requests: Sequence[RequestFeatures],
    light: np.ndarray,
    reasoning: np.ndarray,
    learn_fraction: float = 0.5,
    seed: int = 0,
    sync_every: int = 16,
    checkpoints: int = 10,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Learn online on the first ``learn_fraction`` of the rows shuffled with ``seed``, then score the rest.

    The router's operator knob must be a reasoning share: the cost controller holds it while learning.
    """
    knob = router.rule.operator_knob
    if knob.reasoning_share is None or router.feature_map is None:
        raise ValueError("replay needs a learning router whose operator knob is a reasoning share")
    n = len(requests)
    learn, tail = split_rows(n, learn_fraction, seed)
    n_learn = len(learn)
    x_tail = np.stack([router.scorer.featurize(requests[i]) for i in tail])
    feature_map = router.feature_map
    keys = Keys(f"frontier-replay-{uuid.uuid4().hex[:12]}")
    ensure_state(client, keys, feature_map.fingerprint, feature_map.dim, config)
    service = FeedbackService(client, config, keys)
    gate_threshold = router.threshold(knob, StatsSnapshot(), 0)  # the gate's until the controller publishes one
    consumer = FeedbackConsumer(client, keys, config, name="replay", gate_threshold=gate_threshold)
    live = LiveStats(client, keys, config.poll_interval_s)
    rescore = router.rescorer(live.snapshot)
    controller = CostController(client, keys, config.controller, knob.reasoning_share, rescore=rescore)
    live.refresh()
    offline_tail = router.scores(x_tail, StatsSnapshot())
    result = ReplayResult(tail, offline_tail, {})
    started = time.perf_counter()
    to_reasoning = explored = 0
    every = max(1, n_learn // checkpoints)
    try:
        for t, i in enumerate(learn, start=1):
            routed = router.decide(requests[i], live.snapshot(), knob)
            pool = routed.decision.pool
            to_reasoning += pool == Pool.REASONING
            explored += routed.decision.reason == Reason.EXPLORE
            cid = new_completion_id()
            service.log.record(cid, routed.context)
            service.submit({"id": cid, "score": float(reasoning[i] if pool == Pool.REASONING else light[i])})
            if t % sync_every == 0 or t == n_learn:
                while consumer.step(block_ms=1):
                    pass
                live.refresh()  # the controller scores its window with the model the next requests meet
                controller.step()
                live.refresh()
            if t % every == 0 or t == n_learn:
                apgr = tail_metrics(router.scores(x_tail, live.snapshot()), light[tail], reasoning[tail])["apgr"]
                result.curve.append((t, apgr, to_reasoning / t))
            if progress is not None:
                progress(t)
        assert client.xpending(keys.stream, GROUP)["pending"] == 0
        final = live.snapshot()
    finally:
        for key in client.scan_iter(f"{keys.prefix}:*", count=1000):
            client.delete(key)
    result.snapshot = final
    result.tail_scores = router.scores(x_tail, final)
    online_m = tail_metrics(result.tail_scores, light[tail], reasoning[tail])
    offline_m = tail_metrics(offline_tail, light[tail], reasoning[tail])
    result.metrics = {
        "learn_rows": int(n_learn),
        "tail_rows": int(n - n_learn),
        "learn_reasoning_share": to_reasoning / n_learn,
        "learn_explored_share": explored / n_learn,
        "tail_apgr": online_m["apgr"],
        "tail_cpt50": online_m["cpt50"],
        "tail_cpt80": online_m["cpt80"],
        "offline_tail_apgr": offline_m["apgr"],
        "offline_tail_cpt50": offline_m["cpt50"],
        "policy_version": int(final.version),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return result
