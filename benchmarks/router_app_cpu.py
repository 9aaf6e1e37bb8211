"""A router replica's own CPU per request, in-process: Frontier's app against the forwarder's, without Ray.

Both apps are the ones a replica serves: Frontier's built by ``frontier.serving.ingress.build_replica`` (the
routing policy, online routing, conversations, metrics and request log, against a real embedded Redis; and as
``frontier-limits`` with an API key that has a rate limit and reasoning budgets, so each request also passes
authentication, the key's rate limit and a budget reservation), the forwarder's by
``frontier.testing.forwarder.forwarding_app``. Their pools answer at once
(``frontier.testing.asgi_app.InstantPool``) and httpx calls them over ASGI, so the difference is what deciding,
logging and limits cost a replica, with the HTTP framework around them; the client's own CPU is in both figures.
``--profile DIR`` also samples each app's run at c=16 with py-spy (all threads) into DIR. The last line is JSON.

    python benchmarks/router_app_cpu.py --requests 2000 --levels 1,16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import re
import tempfile
import threading
import time
from pathlib import Path

from frontier.feedback.redis_server import RedisHandle
from frontier.security.keys import hash_key
from frontier.serving.ingress import build_replica
from frontier.serving.http.app import build_app
from frontier.testing.asgi_app import InstantPool, client
from frontier.testing.forwarder import MODEL, forwarding_app
from frontier.testing.stack import test_config

sys.path.insert(0, str(Path(__file__).parent))
from profile_router import thread_cpu as proc_threads, thread_use  # noqa: E402

API_KEY = "sk-router-app-cpu"
LIMITED = {"name": "bench", "sha256": hash_key(API_KEY), "rpm": 10**7, "reasoning_share_budget": 0.5,
           "reasoning_tokens_per_day": 10**12}  # limits that never refuse: their cost, not their answers
PROMPTS = ["hi there, how are you today?", "write a short poem about the sea", "what is the capital of France?",
           "list three colours"]


def frontier_config(redis_url: str, logs: Path, keys: list[dict] | None = None) -> dict:
    """Frontier as ``benchmarks/overhead.py`` runs it: every request routed to light after the full decision."""
    data = test_config(keys, reasoning_share=0.0).model_dump()
    data["feedback"]["explore_cap"] = 0.0
    data["redis"]["url"] = redis_url
    data["observability"]["request_log_dir"] = str(logs)
    return data


async def drive(app, model: str, concurrency: int, requests: int, headers: dict[str, str]) -> dict:
    """``requests`` chat completions from ``concurrency`` clients; CPU (every thread of this process) and wall."""
    async with client(app, headers=headers) as http:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            body = {"model": model, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                    "max_tokens": 16}
            async with semaphore:
                r = await http.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")

        await asyncio.gather(*(one(i) for i in range(64)))  # warm-up
        threads, cpu, wall = thread_cpu(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        by_thread = thread_use(threads, thread_cpu(), requests)
    return {"cpu_ms_per_req": round(1000 * cpu / requests, 3), "req_per_s": round(requests / wall, 1),
            "threads": by_thread}


def thread_cpu() -> dict[int, tuple[str, float]]:
    """Native thread id -> (Python thread name, CPU seconds so far) of this process."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    threads = proc_threads(os.getpid()).items()
    return {tid: (re.sub(r"_\d+$|-\d+.*$", "", names.get(tid, name)), cpu) for tid, (name, cpu) in threads}


def profiled(name: str, out: Path | None, rate: int = 250):
    """A py-spy recorder of this process for one run (None without ``--profile``)."""
    if out is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([spy, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format", "raw",
                             "--output", str(out / f"{name}.txt"), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args: argparse.Namespace, redis_url: str, logs: Path) -> dict:
    pools = {"light": InstantPool(), "reasoning": InstantPool()}
    replicas = [build_replica(frontier_config(redis_url, logs, keys), pools) for keys in (None, [LIMITED])]
    apps = {"forwarder": (forwarding_app(InstantPool()), MODEL, {}),
            "frontier": (build_app(replicas[0].state), "frontier", {}),
            "frontier-limits": (build_app(replicas[1].state), "frontier", {"Authorization": f"Bearer {API_KEY}"})}
    result: dict = {}
    try:
        for level in args.levels:
            for name, (app, model, headers) in apps.items():
                spy = profiled(f"{name}-c{level}", args.profile) if level == max(args.levels) else None
                result.setdefault(name, {})[f"c{level}"] = await drive(app, model, level, args.requests, headers)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
                    spy.wait(timeout=30)
    finally:
        for replica in replicas:
            replica.stop()
    result["gap_ms"] = {name: {c: round(result[name][c]["cpu_ms_per_req"] - result["forwarder"][c]["cpu_ms_per_req"], 3)
                               for c in result[name]} for name in ("frontier", "frontier-limits")}  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    parser.add_argument("--profile", type=Path, default=None, help="a folder for py-spy profiles (raw format)")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="frontier-app-cpu-"))
    config = test_config()
    with RedisHandle(config.redis) as redis:
        result = asyncio.run(run(args, redis.url, logs))
    shutil.rmtree(logs, ignore_errors=True)
    for name in ("forwarder", "frontier", "frontier-limits"):
        print(name, json.dumps(result[name]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
