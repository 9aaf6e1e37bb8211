"""Replay a labelled data set through the live online stack (bandit feedback), then score a held-out tail.

The learning phase uses exactly the server's machinery: the online policy's ``online_choice`` on the
live snapshot, the decision log, the feedback queue (Lua intake), the consumer (MULTI/EXEC batches), the
cost controller and the watcher's snapshot. Only the outcome of the pool the policy chose is sent as
feedback; the other pool's label is never revealed.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import redis

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer, ensure_state
from frontier.feedback.controller import CostController
from frontier.feedback.decision_log import DecisionContext
from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.online_model import POOLS, FeatureMap, predictive_probability, sigmoid
from frontier.feedback.online_policy import online_choice, online_params
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.routing.evaluation import quality_curve, summarize
from frontier.routing.policy import StatsSnapshot


@dataclass
class ReplayResult:
    """What a replay measured."""

    tail_rows: np.ndarray
    tail_scores: np.ndarray
    metrics: dict[str, float | int | str]
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (events, tail APGR, running share)
    snapshot: StatsSnapshot = field(default_factory=StatsSnapshot)


def batch_scores(phi: np.ndarray, offsets: np.ndarray, stats: StatsSnapshot, feature_map: FeatureMap) -> np.ndarray:
    """Greedy routing scores of many requests under a snapshot (the policy's score, no exploration)."""
    params = online_params(stats, feature_map)
    probs = [
        sigmoid(offsets[:, i])
        if params is None
        else predictive_probability(params.posterior, params.evidence, phi, offsets[:, i], pool)
        for i, pool in enumerate(POOLS)
    ]
    return (1.0 + probs[1] - probs[0]) / 2.0


def tail_metrics(scores: np.ndarray, light: np.ndarray, reasoning: np.ndarray) -> dict[str, float]:
    summary = summarize(quality_curve(scores, light, reasoning))
    return {"apgr": summary["apgr"], "cpt50": summary["cpt_50"], "cpt80": summary["cpt_80"]}


def replay(
    client: redis.Redis,
    config: FeedbackConfig,
    x: np.ndarray,
    offline_logits: np.ndarray,
    light: np.ndarray,
    reasoning: np.ndarray,
    feature_map: FeatureMap,
    learn_share: float,
    initial_threshold: float,
    learn_fraction: float = 0.5,
    seed: int = 0,
    sync_every: int = 16,
    checkpoints: int = 10,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Learn online on the first ``learn_fraction`` of the shuffled rows, then score the rest."""
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    n_learn = int(round(n * learn_fraction))
    learn, tail = order[:n_learn], order[n_learn:]
    if len(tail) == 0 or n_learn == 0:
        raise ValueError("learn_fraction must leave rows to learn from and rows to score")
    phi = feature_map(x)
    keys = Keys(f"frontier-replay-{uuid.uuid4().hex[:12]}")
    ensure_state(client, keys, feature_map.fingerprint, feature_map.dim, config)
    service = FeedbackService(client, config, keys)
    consumer = FeedbackConsumer(client, keys, config, name="replay")
    controller = CostController(client, keys, config.controller, learn_share)
    live = LiveStats(client, keys, config.poll_interval_s)
    live.refresh()
    rng = random.Random(seed)
    offline_tail = batch_scores(phi[tail], offline_logits[tail], StatsSnapshot(), feature_map)
    result = ReplayResult(tail, offline_tail, {})
    started = time.perf_counter()
    to_reasoning = explored = 0
    every = max(1, n_learn // checkpoints)
    try:
        for t, i in enumerate(learn, start=1):
            snap = live.snapshot()
            threshold = float(snap.values.get("threshold", initial_threshold))
            offsets = dict(zip(POOLS, map(float, offline_logits[i]), strict=True))
            params = online_params(snap, feature_map)
            choice = online_choice(phi[i], offsets, params, threshold, config.explore_cap, rng.random())
            to_reasoning += choice.pool == "reasoning"
            explored += choice.explored
            cid = new_completion_id()
            service.log.record(cid, DecisionContext(
                choice.pool, phi[i], offsets, feature_map.fingerprint, choice.propensity,
                f"replay-{snap.version}", snap.version, score=choice.score,
            ))  # fmt: skip
            outcome = reasoning[i] if choice.pool == "reasoning" else light[i]
            service.submit({"id": cid, "score": float(outcome)})
            if t % sync_every == 0 or t == n_learn:
                while consumer.step(block_ms=1):
                    pass
                controller.step()
                live.refresh()
            if t % every == 0 or t == n_learn:
                scores = batch_scores(phi[tail], offline_logits[tail], live.snapshot(), feature_map)
                apgr = tail_metrics(scores, light[tail], reasoning[tail])["apgr"]
                result.curve.append((t, apgr, to_reasoning / t))
            if progress is not None:
                progress(t)
        assert client.xpending(keys.stream, GROUP)["pending"] == 0
        final = live.snapshot()
    finally:
        for key in client.scan_iter(f"{keys.prefix}:*", count=1000):
            client.delete(key)
    result.snapshot = final
    result.tail_scores = batch_scores(phi[tail], offline_logits[tail], final, feature_map)
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
