"""Batch work against interactive traffic: what a running batch costs interactive latency, and batch throughput.

One run, against one server (``--url``; without it a local stack is started like ``make serve``):
  1. interactive alone: ``--users`` concurrent non-streaming chat requests of the load-test mix for ``--duration``;
  2. interactive with a batch: a batch of ``--lines`` lines is submitted, then the same interactive load runs
     while it is in progress (the batch is cancelled afterwards);
  3. batch throughput on an otherwise idle server: a batch of ``--lines`` lines, from creation to completion;
  4. the same requests sent interactively at each concurrency of ``--sweep``: the best throughput.
It reports interactive p50/p99 and 429s with and without the batch and their ratios, and batch throughput
against the best interactive one. The last line is a JSON object with every figure.

    .venv/bin/python benchmarks/batch_interference.py [--url http://127.0.0.1:8000 --api-key KEY]
        [--lines 2000] [--users 8] [--duration 60] [--sweep 4,8,16,32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import time
from typing import Any

import httpx


from frontier.loadtest_workload import build_request  # noqa: E402

TERMINAL = ("completed", "failed", "expired", "cancelled")


def bodies(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` non-streaming chat bodies of the load-test mix."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        _, body = build_request(rng)
        body.pop("stream", None)
        body.pop("stream_options", None)
        out.append(body)
    return out


def quantile(values: list[float], q: float) -> float | None:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 else None


async def interactive(http: httpx.AsyncClient, users: int, duration_s: float, seed: int) -> dict[str, Any]:
    """``users`` loops sending requests for ``duration_s``: latency quantiles of the 200s, status counts, rate."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + duration_s

    async def user(i: int) -> None:
        for body in bodies(10_000, seed + i):
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            response = await http.post("/v1/chat/completions", json=body)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    elapsed = time.perf_counter() - started
    return {"requests": sum(statuses.values()), "statuses": statuses, "rps": round(len(latencies) / elapsed, 3),
            "p50_s": quantile(latencies, 0.5), "p99_s": quantile(latencies, 0.99)}  # fmt: skip


async def submit(http: httpx.AsyncClient, lines: int, seed: int) -> dict[str, Any]:
    data = "".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
        for i, body in enumerate(bodies(lines, seed))
    )
    uploaded = await http.post("/v1/files", data={"purpose": "batch"}, files={"file": ("bench.jsonl", data.encode())})
    uploaded.raise_for_status()
    batch = await http.post("/v1/batches", json={"input_file_id": uploaded.json()["id"],
                                                 "endpoint": "/v1/chat/completions", "completion_window": "24h"})  # fmt: skip
    batch.raise_for_status()
    return batch.json()


async def wait(http: httpx.AsyncClient, batch_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = (await http.get(f"/v1/batches/{batch_id}")).json()
        if batch["status"] in TERMINAL or time.monotonic() > deadline:
            return batch
        await asyncio.sleep(0.5)


async def sweep(http: httpx.AsyncClient, lines: int, concurrencies: list[int], seed: int) -> dict[str, float]:
    """Requests per second sending the batch's requests interactively, per concurrency."""
    out = {}
    for c in concurrencies:
        queue = list(bodies(lines, seed))
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while queue:
                if (await http.post("/v1/chat/completions", json=queue.pop())).status_code != 200:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        out[str(c)] = round((lines - failures) / (time.perf_counter() - started), 3)
    return out


async def run(url: str, key: str | None, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=max(args.users, *args.sweep) + 8)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as http:
        alone = await interactive(http, args.users, args.duration, seed=1)
        running = await submit(http, args.lines, seed=2)
        with_batch = await interactive(http, args.users, args.duration, seed=1)
        progress = (await http.get(f"/v1/batches/{running['id']}")).json()["request_counts"]
        await http.post(f"/v1/batches/{running['id']}/cancel")
        await wait(http, running["id"], args.timeout)
        started = time.perf_counter()
        idle = await wait(http, (await submit(http, args.lines, seed=3))["id"], args.timeout)
        batch_s = time.perf_counter() - started
        best = await sweep(http, args.lines, args.sweep, seed=3)
    batch_rate = idle["request_counts"]["completed"] / batch_s
    ratio = {q: (with_batch[q] / alone[q] if alone[q] and with_batch[q] else None) for q in ("p50_s", "p99_s")}
    return {
        "interactive_alone": alone, "interactive_with_batch": with_batch,
        "batch_lines_done_during_interactive": progress,
        "p50_ratio": ratio["p50_s"], "p99_ratio": ratio["p99_s"],
        "interactive_429_with_batch": with_batch["statuses"].get("429", 0),
        "batch_idle": {"status": idle["status"], "lines_per_s": round(batch_rate, 3), "seconds": round(batch_s, 1)},
        "interactive_rps_by_concurrency": best,
        "batch_vs_best_interactive_throughput": round(batch_rate / max(best.values()), 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start a local stack)")
    parser.add_argument("--api-key", help="API key for --url")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8, 16, 32])
    parser.add_argument("--timeout", type=float, default=3600.0, help="longest wait for a batch")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            from frontier.testing.stack import running_stack, test_config

            url = stack.enter_context(running_stack(test_config()))
        result = asyncio.run(run(url.rstrip("/"), args.api_key, args))
    for name in ("interactive_alone", "interactive_with_batch"):
        r = result[name]
        print(f"{name}: p50 {r['p50_s']} s, p99 {r['p99_s']} s, {r['rps']} req/s, statuses {r['statuses']}")
    print(f"batch on an idle server: {result['batch_idle']}; interactive req/s by concurrency: "
          f"{result['interactive_rps_by_concurrency']}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
