"""Router overhead: the same requests through Frontier's router and directly to a bare vLLM server.

One run measures, at concurrency 1 and 16, p50/p99 latency and throughput of
  (a) the router path: HTTP -> router replica (`frontier serve`'s direct ingress; routing decision included)
      -> light pool, and
  (b) a bare `vllm serve` OpenAI server on the same demo model with the same engine arguments, and
  (c) the light pool's Ray Serve LLM replica called through a DeploymentHandle (no HTTP, no router),
one after the other on this machine (so they do not compete for cores), and prints their ratios.
The last line is a JSON object with every figure.

    .venv/bin/python benchmarks/overhead.py [--requests 64] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx


from frontier.serving.pools import cpu_threads, resolve_pool_model  # noqa: E402
from frontier.testing.stack import free_port, running_stack, test_config  # noqa: E402

PROMPTS = [
    "hi there, how are you today?",
    "write a short poem about the sea",
    "what is the capital of France?",
    "list three colours",
]


async def _one(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True}
    start = time.perf_counter()
    r = await client.post(url, json=body)
    elapsed = time.perf_counter() - start
    r.raise_for_status()
    assert r.json()["usage"]["completion_tokens"] == max_tokens
    assert model != "frontier" or r.headers["x-frontier-pool"] == "light", dict(r.headers)  # same engine as direct
    return elapsed


async def measure(url: str, model: str, concurrency: int, requests: int, max_tokens: int) -> dict:
    """Latency percentiles (ms) and throughput (req/s) of ``requests`` calls at ``concurrency``."""
    async with httpx.AsyncClient(timeout=300) as client:
        for i in range(4):  # warm-up
            await _one(client, url, model, PROMPTS[i % len(PROMPTS)], max_tokens)
        sem = asyncio.Semaphore(concurrency)

        async def bounded(i: int) -> float:
            async with sem:
                return await _one(client, url, model, PROMPTS[i % len(PROMPTS)], max_tokens)

        start = time.perf_counter()
        latencies = await asyncio.gather(*(bounded(i) for i in range(requests)))
        wall = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    return {
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))],
        "rps": requests / wall,
    }


async def measure_handle(concurrency: int, requests: int, max_tokens: int) -> dict:
    """The light pool's LLMServer called through a Serve DeploymentHandle from this process (no HTTP,
    no router): separates Ray Serve LLM's own cost from the router's."""
    from ray import serve
    from ray.serve.llm.openai_api_models import ChatCompletionRequest

    handle = serve.get_deployment_handle("LLMServer:light-pool", app_name="frontier").options(stream=True)

    async def one(i: int) -> float:
        request = ChatCompletionRequest(
            model="frontier-light-engine", messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            max_tokens=max_tokens, temperature=0, ignore_eos=True)
        start = time.perf_counter()
        async for _ in handle.chat.remote(request):
            pass
        return time.perf_counter() - start

    for i in range(4):
        await one(i)
    sem = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> float:
        async with sem:
            return await one(i)

    start = time.perf_counter()
    latencies = await asyncio.gather(*(bounded(i) for i in range(requests)))
    wall = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    return {"p50_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))],
            "rps": requests / wall}


def run_levels(url: str, model: str, levels: list[int], requests: int, max_tokens: int) -> dict:
    return {c: asyncio.run(measure(url, model, c, requests, max_tokens)) for c in levels}


def bare_vllm(model_dir: str, max_model_len: int, port: int, threads: int) -> subprocess.Popen:
    # Same engine settings as the pool replica, including its compute threads.
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
           "--served-model-name", "direct", "--dtype", "float32", "--enforce-eager",
           "--max-model-len", str(max_model_len), "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(url: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--levels", default="1,16")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    # reasoning_share 0 sends every routed request to light after the full routing decision.
    config = test_config(reasoning_share=0.0)
    data = config.model_dump()
    data["feedback"]["explore_cap"] = 0.0  # every routed request on the light engine, like the direct path
    config = type(config).model_validate(data)
    with running_stack(config) as base:
        routed = run_levels(f"{base}/v1/chat/completions", "frontier", levels, args.requests, args.max_tokens)
        pool_handle = {c: asyncio.run(measure_handle(c, args.requests, args.max_tokens)) for c in levels}

    light = config.pools.light
    port = free_port()
    server = bare_vllm(resolve_pool_model("light", light), light.max_model_len, port, cpu_threads(light))
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        direct = run_levels(f"http://127.0.0.1:{port}/v1/chat/completions", "direct", levels, args.requests,
                            args.max_tokens)
    finally:
        server.terminate()
        server.wait(timeout=60)

    result = {"requests": args.requests, "max_tokens": args.max_tokens, "cpus": os.cpu_count(), "levels": {}}
    for c in levels:
        r, d, h = routed[c], direct[c], pool_handle[c]
        result["levels"][str(c)] = {
            "router": r, "direct": d, "pool_handle": h,
            "router_vs_pool_handle_p50_ms": r["p50_ms"] - h["p50_ms"],
            "p50_overhead_ms": r["p50_ms"] - d["p50_ms"],
            "p99_overhead_ms": r["p99_ms"] - d["p99_ms"],
            "throughput_ratio": r["rps"] / d["rps"],
        }
        print(f"concurrency {c:>3}: router p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms {r['rps']:.1f} req/s | "
              f"direct p50 {d['p50_ms']:.1f} ms p99 {d['p99_ms']:.1f} ms {d['rps']:.1f} req/s | "
              f"overhead p50 {r['p50_ms'] - d['p50_ms']:+.1f} ms, throughput x{r['rps'] / d['rps']:.2f} | "
              f"pool via handle p50 {h['p50_ms']:.1f} ms {h['rps']:.1f} req/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
