"""Router vs. direct pool under Locust load: p50/p99 latency and requests/s of each, and their ratios.

In one run, with the same Locust workload (``FixedPromptUser``: identical short non-streamed requests,
``ignore_eos`` so every answer has exactly --max-tokens tokens, each user back to back):
  (a) the router path: HTTP -> router replica (direct ingress; routing decision included, model ``frontier``,
      reasoning_share 0 so the policy picks light) -> light pool, on the real stack (frontier.testing.stack);
  (b) a bare ``vllm serve`` OpenAI server on the same light demo model and engine arguments.
They run one after the other (not competing for cores). Goal (issue 6): p50 overhead <= 10 ms,
throughput >= 0.9x direct. The last line printed is a JSON object with every figure.

    .venv/bin/python benchmarks/load_router_vs_direct.py [--users 8] [--duration 60s] [--max-tokens 16] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import bare_vllm, wait_http  # noqa: E402

from frontier.cli.loadtest import parse_duration, run_loadtest  # noqa: E402
from frontier.serving.pools import cpu_threads, resolve_pool_model  # noqa: E402
from frontier.testing.stack import free_port, running_stack, test_config  # noqa: E402


def warm_up(root: str, model: str, max_tokens: int, n: int = 4) -> None:
    """A few requests first, so neither side pays for first-request work inside the measurement."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    with httpx.Client(timeout=300) as client:
        for _ in range(n):
            client.post(f"{root}/v1/chat/completions", json=body).raise_for_status()


def measure(root: str, model: str, args: argparse.Namespace, out: Path) -> dict:
    """One headless Locust run of FixedPromptUser against ``root``; its summary."""
    warm_up(root, model, args.max_tokens)
    extra = ["--frontier-model", model, "--frontier-max-tokens", str(args.max_tokens)]
    code, summary = run_loadtest(
        root, args.users, parse_duration(args.duration), out, args.spawn_rate, "FixedPromptUser", extra
    )
    if summary["requests"] == 0:
        raise RuntimeError(f"Locust (exit {code}) recorded no requests against {root}; see {out}")
    return summary


def figures(summary: dict) -> dict:
    latency = summary["latency_ms"]
    return {
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "mean_ms": latency["mean"],
        "rps": summary["requests_per_s"],
        "requests": summary["requests"],
        "failures": summary["failures"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="concurrent Locust users (each sends back to back)")
    parser.add_argument("--duration", default="60s", help="Locust run time per side (e.g. 15s, 2m)")
    parser.add_argument(
        "--spawn-rate", type=float, default=None, help="users started per second (default: all at once)"
    )
    parser.add_argument("--max-tokens", type=int, default=16, help="tokens per answer")
    parser.add_argument("--out", default=None, help="directory for both runs' CSVs and summaries (default: a temp dir)")
    args = parser.parse_args()
    # All users at once: requests/s is counted from the start, so a ramp-up would understate throughput.
    args.spawn_rate = args.spawn_rate or float(args.users)
    out = Path(args.out or tempfile.mkdtemp(prefix="frontier-load-"))

    # reasoning_share 0 sends every routed request to light after the full routing decision.
    config = test_config(reasoning_share=0.0)
    data = config.model_dump()
    data["feedback"]["explore_cap"] = 0.0  # every routed request on the light engine, like the direct path
    config = type(config).model_validate(data)
    with running_stack(config) as base:
        router = measure(base, "frontier", args, out / "router")

    light = config.pools.light
    port = free_port()
    server = bare_vllm(resolve_pool_model("light", light), light.max_model_len, port, cpu_threads(light))
    try:
        direct_root = f"http://127.0.0.1:{port}"
        wait_http(f"{direct_root}/v1/models")
        direct = measure(direct_root, "direct", args, out / "direct")
    finally:
        server.terminate()
        server.wait(timeout=60)

    r, d = figures(router), figures(direct)
    result = {
        "users": args.users,
        "duration": args.duration,
        "max_tokens": args.max_tokens,
        "cpus": os.cpu_count(),
        "router": r,
        "direct": d,
        "router_decisions": router["decision_mix"],
        "p50_overhead_ms": r["p50_ms"] - d["p50_ms"],
        "p99_overhead_ms": r["p99_ms"] - d["p99_ms"],
        "p50_ratio": r["p50_ms"] / d["p50_ms"],
        "p99_ratio": r["p99_ms"] / d["p99_ms"],
        "throughput_ratio": r["rps"] / d["rps"],
        "out": str(out),
    }
    for name, f in (("router", r), ("direct", d)):
        print(
            f"{name:>6}: p50 {f['p50_ms']:.0f} ms  p99 {f['p99_ms']:.0f} ms  {f['rps']:.2f} req/s  "
            f"({f['requests']} requests, {f['failures']} failed)"
        )
    print(
        f" ratio: p50 x{result['p50_ratio']:.2f} ({result['p50_overhead_ms']:+.0f} ms)  "
        f"p99 x{result['p99_ratio']:.2f} ({result['p99_overhead_ms']:+.0f} ms)  "
        f"throughput x{result['throughput_ratio']:.2f}  (Locust latencies are whole ms)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
