"""Where the routed path's CPU goes: per-thread CPU of the router and pool replicas, and a py-spy profile of each.

Runs Frontier as ``benchmarks/overhead.py`` does (``model: frontier``, every request routed to the light pool
after the full decision), drives ``--concurrency`` clients for ``--seconds``, and meanwhile reads each replica's
threads from ``/proc/<pid>/task`` (C++ threads of Ray's core worker included, which a Python profiler cannot
see) and samples its Python stacks with py-spy. Prints, per replica: CPU per request by thread, and the share
of Python samples by the package that is running (the innermost frame outside the standard library) and by
Frontier function (inclusive). The last line is JSON.

    python benchmarks/profile_router.py --seconds 20 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from frontier.testing.procstat import all_processes

TICKS = os.sysconf("SC_CLK_TCK")
REPLICAS = {"router": "ServeReplica:frontier:router", "light_pool": "ServeReplica:frontier:LLMServer:light-pool"}
PACKAGES = ("frontier", "ray", "starlette", "fastapi", "uvicorn", "vllm", "pydantic", "pydantic_core", "redis",
            "opentelemetry", "prometheus_client", "orjson", "httpx", "anyio", "msgpack", "grpc")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Thread id -> (name, CPU seconds so far) of one process."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return threads


def thread_use(before: dict, after: dict, requests: int) -> dict[str, float]:
    """ms per request by thread name (threads of one name summed), busiest first."""
    by_name: Counter = Counter()
    for tid, (name, cpu) in after.items():
        by_name[name] += cpu - before.get(tid, (name, 0.0))[1]
    return {k: round(1000 * v / requests, 3) for k, v in by_name.most_common() if v > 0}


def _package(path: str) -> str | None:
    """The package a frame's file (as py-spy names it: relative to its ``sys.path`` entry) belongs to, or None
    for the standard library."""
    top = path.split("/", 1)[0]
    if top in PACKAGES:
        return top
    if "/" not in path or top in sys.stdlib_module_names:
        return None
    return "other libraries"


def summarise_profile(raw: Path, top: int = 25) -> dict:
    """Shares of samples by running package and by Frontier function, from py-spy's raw (collapsed) output."""
    packages: Counter = Counter()
    functions: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [m for f in stack.split(";") if (m := FRAME.match(f))]
        owner = next((p for m in reversed(frames) if (p := _package(m["file"]))), "python (stdlib)")
        packages[owner] += n
        for name in {f"{Path(m['file']).stem}.{m['func']}" for m in frames if _package(m["file"]) == "frontier"}:
            functions[name] += n
    share = lambda c: {k: round(v / total, 3) for k, v in c.most_common(top)}  # noqa: E731
    return {"samples": total, "by_package": share(packages), "frontier_inclusive": share(functions)}


async def _drive(stack, concurrency: int, seconds: float, max_tokens: int) -> int:
    """Requests done by ``concurrency`` clients in a loop for ``seconds``."""
    from overhead import _one

    done = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=120) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await _one(client, stack, "Say something short.", max_tokens)
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second (0: CPU by thread only)")
    args = parser.parse_args()
    if args.rate and shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        sys.exit("py-spy is not installed (pip install py-spy)")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    sys.path.insert(0, str(Path(__file__).parent))
    from overhead import _warm_up, running_peer  # the same stack, config and driver the overhead benchmark measures

    out = Path(tempfile.mkdtemp(prefix="frontier-profile-"))
    with running_peer("frontier", out, Path(".venv-litellm")) as stack:
        asyncio.run(_warm_up(stack, args.max_tokens))
        asyncio.run(_drive(stack, args.concurrency, 10, args.max_tokens))
        pids = {name: next(p.pid for p in stack.meter.snapshot().values() if marker in p.label)
                for name, marker in REPLICAS.items()}
        spies = {name: subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", str(args.rate), "--format",
                                         "raw", "--duration", str(int(args.seconds)), "--output",
                                         str(out / f"{name}.txt"), "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for name, pid in pids.items()} if args.rate else {}
        before = {name: thread_cpu(pid) for name, pid in pids.items()}
        requests = asyncio.run(_drive(stack, args.concurrency, args.seconds, args.max_tokens))
        after = {name: thread_cpu(pid) for name, pid in pids.items()}
        for spy in spies.values():
            spy.wait(timeout=60)
    result = {"concurrency": args.concurrency, "requests": requests, "rps": round(requests / args.seconds, 1),
              "replicas": {}}
    for name in REPLICAS:
        threads = thread_use(before[name], after[name], requests)
        profile = summarise_profile(out / f"{name}.txt") if (out / f"{name}.txt").exists() else {}
        result["replicas"][name] = {"ms_per_req": round(sum(threads.values()), 3), "threads": threads, **profile}
        print(f"--- {name}: {result['replicas'][name]['ms_per_req']} ms CPU per request")
        print("  threads:", json.dumps(threads))
        for key in ("by_package", "frontier_inclusive"):
            print(f"  {key}:", json.dumps(profile.get(key, {})))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
