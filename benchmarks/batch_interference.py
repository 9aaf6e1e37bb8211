"""Batch work against interactive traffic: what a running batch costs interactive latency, and batch throughput.

One run, against one server (``--url``; without it a local stack is started like ``make serve``), after 15 s of
Locust traffic that warms the engines up and is not counted:
  1. interactive alone: Locust (``frontier loadtest``'s realistic ``ChatUser`` mix) with ``--users`` users for
     ``--duration`` seconds;
  2. interactive with a batch: a batch of ``--lines`` lines is submitted, then the same interactive load runs
     while it is in progress (the batch is cancelled afterwards);
  3. batch throughput on an otherwise idle server: a batch of ``--throughput-lines`` lines, from creation to
     completion;
  4. the same requests sent interactively at each concurrency of ``--sweep``: the best throughput.
It reports interactive p50/p99 and 429s with and without the batch and their ratios, and batch throughput
against the best interactive one. The last line is a JSON object with every figure.

    .venv/bin/python benchmarks/batch_interference.py [--url http://127.0.0.1:8000 --api-key KEY]
        [--lines 2000] [--throughput-lines 400] [--users 8] [--duration 60] [--sweep 4,8,16,32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from frontier.cli.loadtest import run_loadtest
from frontier.testing.batch_client import TERMINAL, chat_bodies as bodies


def interactive(url: str, key: str | None, users: int, duration_s: int, out_dir: Path) -> dict[str, Any]:
    """Locust's realistic mix (``ChatUser``) for ``duration_s``: latency quantiles, request rate and 429s."""
    extra = ["--frontier-api-key", key] if key else []
    code, summary = run_loadtest(url, users, duration_s, out_dir, user_class="ChatUser", extra=extra)
    latency = summary["latency_ms"]
    throttled = sum(e["occurrences"] for e in summary["errors"] if "HTTP 429" in e["error"])
    return {"requests": summary["requests"], "failures": summary["failures"], "http_429": throttled,
            "rps": summary["requests_per_s"], "p50_ms": latency.get("p50"), "p99_ms": latency.get("p99"),
            "locust_exit_code": code}  # fmt: skip


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


async def run(url: str, key: str | None, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=max(args.users, *args.sweep) + 8)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as http:
        await asyncio.to_thread(interactive, url, key, args.users, 15, out_dir / "warm_up")  # not counted
        alone = await asyncio.to_thread(interactive, url, key, args.users, args.duration, out_dir / "alone")
        running = await submit(http, args.lines, seed=2)
        with_batch = await asyncio.to_thread(interactive, url, key, args.users, args.duration, out_dir / "with_batch")
        progress = (await http.get(f"/v1/batches/{running['id']}")).json()["request_counts"]
        await http.post(f"/v1/batches/{running['id']}/cancel")
        await wait(http, running["id"], args.timeout)
        started = time.perf_counter()
        idle = await wait(http, (await submit(http, args.throughput_lines, seed=3))["id"], args.timeout)
        batch_s = time.perf_counter() - started
        best = await sweep(http, args.throughput_lines, args.sweep, seed=3)
    batch_rate = idle["request_counts"]["completed"] / batch_s
    ratio = {q: (with_batch[q] / alone[q] if alone[q] and with_batch[q] else None) for q in ("p50_ms", "p99_ms")}
    return {
        "interactive_alone": alone, "interactive_with_batch": with_batch,
        "batch_lines_done_during_interactive": progress,
        "p50_ratio": ratio["p50_ms"], "p99_ratio": ratio["p99_ms"],
        "interactive_429_with_batch": with_batch["http_429"],
        "batch_idle": {"status": idle["status"], "lines_per_s": round(batch_rate, 3), "seconds": round(batch_s, 1)},
        "interactive_rps_by_concurrency": best,
        "batch_vs_best_interactive_throughput": round(batch_rate / max(best.values()), 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start a local stack)")
    parser.add_argument("--api-key", help="API key for --url")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--throughput-lines", type=int, default=400, help="lines of the throughput phases (3 and 4)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=int, default=60, help="seconds of each Locust phase")
    parser.add_argument("--out", default=None, help="directory for Locust's CSVs (default: a temporary one)")
    parser.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8, 16, 32])
    parser.add_argument("--timeout", type=float, default=3600.0, help="longest wait for a batch")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            from frontier.testing.stack import running_stack, test_config

            url = stack.enter_context(running_stack(test_config()))
        out_dir = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        result = asyncio.run(run(url.rstrip("/"), args.api_key, args, out_dir))
    for name in ("interactive_alone", "interactive_with_batch"):
        r = result[name]
        print(f"{name}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['rps']} req/s, {r['failures']} failed, {r['http_429']} 429s")
    print(f"batch on an idle server: {result['batch_idle']}; interactive req/s by concurrency: "
          f"{result['interactive_rps_by_concurrency']}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
