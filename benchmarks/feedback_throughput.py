"""Feedback throughput and request-path cost against a real (embedded) Redis server.

Measures: decision logging latency (request path), the live policy's per-request online scoring,
feedback intake latency, and how many events per second one consumer applies. Prints a JSON object
as its last line. Usage: ``.venv/bin/python benchmarks/feedback_throughput.py [--events N] [--dim K]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

import numpy as np

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer, ensure_state
from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.redis_server import EmbeddedRedis, connect
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.routing.feature_map import FeatureMap
from frontier.routing.router import online_choice, online_params
from frontier.routing.types import DecisionContext


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000, help="feedback events to queue and apply")
    parser.add_argument("--dim", type=int, default=32, help="online feature dimension (feedback.online_dim)")
    parser.add_argument("--input-dim", type=int, default=394, help="scorer feature vector length")
    parser.add_argument("--batch", type=int, default=256, help="consumer batch size")
    args = parser.parse_args()

    config = FeedbackConfig(online_dim=args.dim, consumer_batch=args.batch, consumer_block_ms=10)
    fmap = FeatureMap.random(args.input_dim, args.dim)
    keys = Keys("bench")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as data_dir, EmbeddedRedis(data_dir) as server:
        client = connect(server.url, 1.0)
        ensure_state(client, keys, fmap.fingerprint, fmap.dim, config)
        service = FeedbackService(client, config, keys)

        log_times, cids = [], []
        for i in range(args.events):
            x = rng.standard_normal(args.input_dim).astype(np.float32)
            ctx = DecisionContext(
                "light" if i % 3 else "reasoning", fmap(x), {"light": 0.3, "reasoning": 1.1}, fmap.fingerprint,
                0.97, "bench-1", 1, key_id="k", score=float(rng.random()),
            )  # fmt: skip
            cid = new_completion_id()
            t0 = time.perf_counter()
            service.record_decision(cid, ctx)
            log_times.append(time.perf_counter() - t0)
            cids.append(cid)

        submit_times = []
        for i, cid in enumerate(cids):
            body = {"id": cid, "rating": "up"} if i % 2 else {"id": cid, "score": 0.5}
            t0 = time.perf_counter()
            service.submit(body, "k")
            submit_times.append(time.perf_counter() - t0)

        consumer = FeedbackConsumer(client, keys, config, name="bench")
        t0 = time.perf_counter()
        applied = 0
        while applied < args.events:
            applied += consumer.step(block_ms=10)
        consume_s = time.perf_counter() - t0
        assert client.xpending(keys.stream, GROUP)["pending"] == 0

        live = LiveStats(client, keys)
        live.refresh()
        snap = live.snapshot()
        params = online_params(snap, fmap)
        decide_times, draw = [], random.Random(0)
        for _ in range(5000):
            x = rng.standard_normal(args.input_dim).astype(np.float32)
            t0 = time.perf_counter()
            online_choice(fmap(x), {"light": 0.3, "reasoning": 1.1}, params, 0.55, 0.05, draw.random())
            live.snapshot()
            decide_times.append(time.perf_counter() - t0)

    log_p50, log_p99 = percentiles(log_times)
    sub_p50, sub_p99 = percentiles(submit_times)
    dec_p50, dec_p99 = percentiles(decide_times)
    result = {
        "events": args.events,
        "online_dim": args.dim,
        "consumer_events_per_s": round(args.events / consume_s, 1),
        "record_decision_p50_ms": round(log_p50, 3),
        "record_decision_p99_ms": round(log_p99, 3),
        "online_decide_p50_ms": round(dec_p50, 3),
        "online_decide_p99_ms": round(dec_p99, 3),
        "request_path_added_p50_ms": round(log_p50 + dec_p50, 3),
        "submit_p50_ms": round(sub_p50, 3),
        "submit_p99_ms": round(sub_p99, 3),
    }
    print(f"consumer: {result['consumer_events_per_s']:.0f} events/s (target >= 2000); "
          f"request path adds p50 {result['request_path_added_p50_ms']:.3f} ms (target <= 2 ms)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
