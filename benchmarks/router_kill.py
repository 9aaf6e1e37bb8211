"""A router replica killed under load: what clients see behind Serve's proxy, its HAProxy mode, or direct ingress.

Starts Frontier as ``benchmarks/overhead.py`` does (``--ingress proxy`` or ``haproxy``: two router replicas, the
cluster's path; ``direct``: one replica answering HTTP itself, as ``frontier serve`` runs), drives
``--concurrency`` clients, kills one router replica (``ray.kill``, no restart) after ``--kill-after`` seconds and
keeps driving for ``--seconds``. Prints the failed requests, the longest gap between two successes, and how long
until a router replica count is back. The last line is JSON.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/router_kill.py --ingress haproxy
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))


def drive(url: str, model: str, stop: threading.Event, log: list[tuple[float, str]]) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 8}
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            try:
                outcome = str(client.post(f"{url}/v1/chat/completions", json=body).status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
                time.sleep(0.05)  # a refused connection must not spin
            log.append((time.monotonic(), outcome))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingress", choices=("proxy", "haproxy", "direct"), default="haproxy")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kill-after", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    from overhead import frontier_app

    from frontier.testing.replicas import router_replicas

    with frontier_app(args.ingress, router_min_replicas=1 if args.ingress == "direct" else 2) as info:
        url, model = info["url"], info["model"]
        deadline = time.monotonic() + 300
        while len(router_replicas()) < (1 if args.ingress == "direct" else 2) and time.monotonic() < deadline:
            time.sleep(1)
        before = len(router_replicas())
        stop, log = threading.Event(), []
        threads = [threading.Thread(target=drive, args=(url, model, stop, log)) for _ in range(args.concurrency)]
        start = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.kill_after)
        import ray

        ray.kill(router_replicas()[0], no_restart=True)
        killed = time.monotonic()
        back = None
        while time.monotonic() - start < args.seconds:
            if back is None and time.monotonic() - killed > 2 and len(router_replicas()) >= before:
                back = time.monotonic() - killed
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=60)
    after = [(t, o) for t, o in sorted(log) if t >= killed]
    successes = [killed] + [t for t, o in after if o == "200"]
    gaps = [b - a for a, b in zip(successes, successes[1:])]
    result = {
        "ingress": args.ingress, "router_replicas": before, "requests_after_kill": len(after),
        "outcomes_after_kill": dict(Counter(o for _, o in after)),
        "failed_after_kill": sum(1 for _, o in after if o != "200"),
        "longest_gap_without_success_s": round(max(gaps, default=args.seconds), 2),
        "first_success_after_kill_s": round(successes[1] - killed, 2) if len(successes) > 1 else None,
        "replicas_back_after_s": None if back is None else round(back, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
