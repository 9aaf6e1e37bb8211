"""Serving overhead, peers side by side: bare vLLM, Ray Serve LLM, LiteLLM's proxy and Frontier.

Each peer serves the demo light model with the light pool's engine arguments, one stack after the other
(never two at once):
  bare       a bare vLLM OpenAI server (`python -m vllm.entrypoints.openai.api_server`);
  serve_llm  Ray Serve LLM's own OpenAI app (`build_openai_app`) on the light pool's LLMConfig;
  litellm    LiteLLM's proxy (its own venv, created on demand) in front of a bare vLLM server;
  forward    Frontier's Serve stack (both pools) behind an ingress that forwards to light without deciding
             (`frontier.testing.forwarder`): the baseline for what Frontier's decision, logging and limits cost;
  frontier   Frontier's stack (both pools, Redis), `model: frontier` routed to light, decisions logged;
  frontier_proxy, frontier_haproxy (only when named in --peers): the same with a router that may scale to
             two replicas, so clients enter through Ray Serve's proxy (as on a cluster), or its HAProxy mode;
  frontier_limits (only when named): Frontier called with an API key that has a rate limit and reasoning
             budgets (limits that never refuse), so each request also passes its key's limit and budget checks.
Per peer: idle CPU over --idle-s, then at each concurrency N non-streamed requests of --max-tokens tokens
(ignore_eos): p50/p99 latency, throughput, and CPU per request from /proc split into engine (vLLM engine
core and workers) and framework (every other process of the stack; the load generator is not counted);
then a short streamed pass for time to first token. The last line printed is a JSON object.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/overhead.py [--requests 96] [--peers bare,frontier]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from frontier.cli.serve import free_port
from frontier.config import load_config
from frontier.serving.pools import engine_model_id, llm_config_dict, resolve_pool_model
from frontier.testing.procstat import Proc, StackMeter, cpu_used, end_processes

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("bare", "serve_llm", "litellm", "forward", "frontier")
NAMED_PEERS = ("frontier_proxy", "frontier_haproxy", "frontier_limits")  # run only when named
LITELLM_SPEC = "litellm[proxy]==1.108.0"  # the newest whose [proxy] extra installs from PyPI here
PROMPTS = ["hi there, how are you today?", "write a short poem about the sea", "what is the capital of France?",
           "list three colours"]


def light_engine() -> tuple[str, dict, dict[str, str], dict]:
    """The light pool's model directory, engine kwargs, engine environment and full LLMConfig dict."""
    light = load_config().pools.light
    model = resolve_pool_model("light", light)
    config = llm_config_dict("light", light, model)
    return model, config["engine_kwargs"], config["runtime_env"]["env_vars"], config


def vllm_flags(engine_kwargs: dict) -> list[str]:
    flags = []
    for key, value in engine_kwargs.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            flags += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return flags


def bare_vllm(model_dir: str, max_model_len: int, port: int, threads: int, engine_kwargs: dict | None = None,
              log=subprocess.DEVNULL) -> subprocess.Popen:
    """A vLLM OpenAI server serving ``direct``; ``engine_kwargs`` default to the CPU pool's basic ones."""
    engine_kwargs = engine_kwargs or {"max_model_len": max_model_len, "dtype": "float32", "enforce_eager": True}
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
           "--served-model-name", "direct", "--host", "127.0.0.1", "--port", str(port), *vllm_flags(engine_kwargs)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


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


@dataclass
class Stack:
    """A running peer: where to send requests, its processes, and what to stop."""

    base: str  # root URL, without /v1
    model: str
    procs: list[subprocess.Popen]
    markers: list[str] = field(default_factory=list)
    expect_pool: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request (an API key)

    @property
    def meter(self) -> StackMeter:
        return StackMeter([p.pid for p in self.procs], self.markers)


def _body(model: str, prompt: str, max_tokens: int, stream: bool = False) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True, "stream": stream}


async def _one(client: httpx.AsyncClient, stack: Stack, prompt: str, max_tokens: int) -> float:
    start = time.perf_counter()
    r = await client.post(f"{stack.base}/v1/chat/completions", json=_body(stack.model, prompt, max_tokens),
                          headers=stack.headers)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"{r.status_code}: {r.text[:500]}")
    assert r.json()["usage"]["completion_tokens"] == max_tokens, r.text[:500]
    if stack.expect_pool:
        assert r.headers.get("x-frontier-pool") == stack.expect_pool, dict(r.headers)
    return elapsed


async def _ttft(client: httpx.AsyncClient, stack: Stack, prompt: str, max_tokens: int) -> float:
    """Seconds to the first chunk carrying generated text (the whole stream is read)."""
    first = None
    start = time.perf_counter()
    body = _body(stack.model, prompt, max_tokens, stream=True)
    async with client.stream("POST", f"{stack.base}/v1/chat/completions", json=body, headers=stack.headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code}: {(await r.aread())[:500]!r}")
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the stream carried no generated text")
    return first


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _load(stack: Stack, concurrency: int, requests: int, max_tokens: int) -> tuple[list[float], float]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=concurrency)) as client:
        sem = asyncio.Semaphore(concurrency)

        async def bounded(i: int) -> float:
            async with sem:
                return await _one(client, stack, PROMPTS[i % len(PROMPTS)], max_tokens)

        start = time.perf_counter()
        latencies = await asyncio.gather(*(bounded(i) for i in range(requests)))
        return latencies, time.perf_counter() - start


async def _ttft_pass(stack: Stack, requests: int, max_tokens: int) -> list[float]:
    async with httpx.AsyncClient(timeout=300) as client:
        return [await _ttft(client, stack, PROMPTS[i % len(PROMPTS)], max_tokens) for i in range(requests)]


async def _warm_up(stack: Stack, max_tokens: int, timeout_s: float = 600) -> None:
    """Wait until a chat request succeeds (engines may still be loading), then send a few more."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=120) as client:
        while True:
            dead = [p.args for p in stack.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a process of the stack exited: {dead}")
            try:
                await _one(client, stack, PROMPTS[0], max_tokens)
                break
            except (httpx.HTTPError, RuntimeError, AssertionError) as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{stack.base} not serving after {timeout_s}s: {exc!r}") from exc
                await asyncio.sleep(1)
        for i in range(4):
            await _one(client, stack, PROMPTS[i % len(PROMPTS)], max_tokens)
        await _ttft(client, stack, PROMPTS[0], max_tokens)


def _cpu_figures(before: dict[int, Proc], after: dict[int, Proc], requests: int, top: int = 8) -> dict:
    use = cpu_used(before, after)
    by_label = sorted(((k, v) for k, v in use.framework_by_label.items() if v), key=lambda kv: -kv[1])[:top]
    return {"framework_ms_per_req": 1000 * use.framework_s / requests,
            "engine_ms_per_req": 1000 * use.engine_s / requests,
            "top_framework_ms_per_req": {k: round(1000 * v / requests, 2) for k, v in by_label},
            "engine_processes": list(use.engine_labels),
            "framework_processes": len([p for p in after.values() if p.label not in use.engine_labels])}


def measure(stack: Stack, args: argparse.Namespace) -> dict:
    """Idle CPU, each concurrency level with its CPU per request, and time to first token."""
    asyncio.run(_warm_up(stack, args.max_tokens))
    meter = stack.meter
    before = meter.snapshot()
    time.sleep(args.idle_s)  # the idle window itself
    after = meter.snapshot()
    use = cpu_used(before, after)
    result = {"idle": {"framework_cpu_pct": 100 * use.framework_s / args.idle_s,
                       "engine_cpu_pct": 100 * use.engine_s / args.idle_s,
                       "top_framework_cpu_pct": {k: round(100 * v / args.idle_s, 2) for k, v in sorted(
                           use.framework_by_label.items(), key=lambda kv: -kv[1])[:5] if v}},
              "levels": {}}
    for c in args.levels:
        before = meter.snapshot()
        latencies, wall = asyncio.run(_load(stack, c, args.requests, args.max_tokens))
        after = meter.snapshot()
        ms = [x * 1000 for x in latencies]
        result["levels"][str(c)] = {"p50_ms": statistics.median(ms), "p99_ms": _pct(ms, 0.99),
                                    "rps": args.requests / wall, **_cpu_figures(before, after, args.requests)}
    ttft = asyncio.run(_ttft_pass(stack, args.ttft_requests, args.max_tokens))
    result["ttft_p50_ms"] = statistics.median(x * 1000 for x in ttft)
    return result


def _stop(stack: Stack, timeout_s: float = 120) -> None:
    """Stop the drivers (closing a child driver's stdin asks it to shut down), then any process of the stack
    left behind, by pid (checked against its start time)."""
    known = stack.meter.snapshot()
    for p in stack.procs:
        if p.stdin:
            p.stdin.close()
        else:
            p.terminate()
    deadline = time.monotonic() + timeout_s
    for p in stack.procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    known.update(StackMeter([], stack.markers).snapshot())
    end_processes(known.values())


def _child_driver(peer: str, logs: Path, timeout_s: float = 900) -> tuple[subprocess.Popen, dict]:
    """Start this script as the Ray driver of ``peer``; returns it and its handshake (url, model, markers)."""
    handshake = logs / f"{peer}.json"
    log = open(logs / f"{peer}.log", "w")
    child = subprocess.Popen([sys.executable, __file__, "--child", peer, "--handshake", str(handshake)],
                             stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while not handshake.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise RuntimeError(f"{peer} driver did not start; see {log.name}")
        time.sleep(0.5)
    return child, json.loads(handshake.read_text())


@contextmanager
def running_peer(peer: str, logs: Path, litellm_venv: Path):
    if peer in CHILD_APPS:
        child, info = _child_driver(peer, logs)
        stack = Stack(info["url"], info["model"], [child], info["markers"], info.get("expect_pool"),
                      info.get("headers", {}))
    else:
        model, engine_kwargs, env, _ = light_engine()
        vport = free_port()
        vllm = bare_vllm(model, engine_kwargs["max_model_len"], vport, int(env["OMP_NUM_THREADS"]), engine_kwargs,
                         log=open(logs / f"{peer}-vllm.log", "w"))
        stack = Stack(f"http://127.0.0.1:{vport}", "direct", [vllm])
        if peer == "litellm":
            proxy, port = litellm_proxy(litellm_venv, vport, logs)
            stack.procs.append(proxy)
            stack.base, stack.model = f"http://127.0.0.1:{port}", "light"
    try:
        yield stack
    finally:
        _stop(stack)


def ensure_litellm(venv: Path, spec: str = LITELLM_SPEC) -> Path:
    """LiteLLM's CLI in its own venv, installed there on first use (never into the project's venv)."""
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        print(f"installing {spec} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", spec], check=True,
                       capture_output=True, timeout=1800)
    return exe


def litellm_proxy(venv: Path, vllm_port: int, logs: Path) -> tuple[subprocess.Popen, int]:
    """LiteLLM's proxy routing model ``light`` to the vLLM server (model ``direct``) on ``vllm_port``."""
    exe = venv / "bin" / "litellm"
    config = {"model_list": [{"model_name": "light", "litellm_params": {
        "model": "hosted_vllm/direct", "api_base": f"http://127.0.0.1:{vllm_port}/v1", "api_key": "none"}}]}
    path = logs / "litellm.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    # Bundled price map (no fetch at start); no key, like the Frontier peer, on 127.0.0.1 only.
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True",
               LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true")
    proc = subprocess.Popen([str(exe), "--config", str(path), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], env=env, stdin=subprocess.DEVNULL,
                            stdout=open(logs / "litellm.log", "w"), stderr=subprocess.STDOUT)
    return proc, port


def child_main(peer: str, handshake: Path) -> None:
    """The Ray driver of a peer, in its own process so that the load generator is not part of the stack."""
    import setproctitle

    setproctitle.setproctitle(f"overhead::{peer}-driver")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with CHILD_APPS[peer]() as info:
        import ray._private.worker as ray_worker

        info["markers"] = [ray_worker._global_node.get_session_dir_path()]
        tmp = handshake.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.rename(handshake)
        sys.stdin.read()  # until the benchmark closes our stdin


@contextmanager
def serve_llm_app():
    import ray
    from ray import serve
    from ray.serve.llm import LLMConfig, build_openai_app

    _, _, _, config = light_engine()
    config["deployment_config"]["logging_config"] = {"enable_access_log": False}
    os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"  # the Serve mode Frontier runs in
    ray.init(num_cpus=max(8, os.cpu_count() or 1), include_dashboard=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
        serve.run(build_openai_app({"llm_configs": [LLMConfig(**config)]}), name="serve_llm", route_prefix="/",
                  blocking=False)
        yield {"url": f"http://127.0.0.1:{port}", "model": engine_model_id("light")}
    finally:
        serve.shutdown()
        ray.shutdown()


@contextmanager
def frontier_app(ingress: str = "direct", router_min_replicas: int = 1, limits: bool = False):
    """``ingress``: direct (one router replica answers HTTP itself, as ``frontier serve`` runs), proxy (the router
    may scale, so clients enter through Serve's proxy, as on a cluster) or haproxy (the same behind Ray Serve's
    HAProxy mode, ``RAY_SERVE_ENABLE_HA_PROXY=1``). ``limits``: called with a key that has limits and budgets."""
    from frontier.security.keys import generate_key, hash_key
    from frontier.testing.stack import running_stack, test_config

    api_key = generate_key()
    limited = {"name": "bench", "sha256": hash_key(api_key), "rpm": 10**7, "reasoning_share_budget": 0.5,
               "reasoning_tokens_per_day": 10**12}  # never refuses: what the checks cost, not what they answer
    # reasoning_share 0 and no exploration: every routed request goes to light after the full decision.
    config = test_config([limited] if limits else None, reasoning_share=0.0)
    data = config.model_dump()
    data["feedback"]["explore_cap"] = 0.0
    if ingress != "direct":
        data["router"]["autoscaling"].update(min_replicas=router_min_replicas, max_replicas=max(2, router_min_replicas))
    if ingress == "haproxy":
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
    with running_stack(type(config).model_validate(data)) as base:
        headers = {"Authorization": f"Bearer {api_key}"} if limits else {}
        yield {"url": base, "model": "frontier", "expect_pool": "light", "headers": headers}


@contextmanager
def forward_app():
    """The forwarder on Frontier's Serve stack, started as ``frontier serve`` starts it (throughput-optimized
    Serve, direct ingress on the server port), with the same pools."""
    import ray
    from ray import serve

    from frontier.cli.serve import local_serve_env, uses_direct_ingress
    from frontier.serving.pools import build_pool_deployment
    from frontier.testing.forwarder import MODEL, Forwarder
    from frontier.testing.stack import test_config

    config = test_config()
    os.environ.update(local_serve_env(config))
    ray.init(num_cpus=config.server.ray_num_cpus or max(8, os.cpu_count() or 1), include_dashboard=False)
    try:
        port = config.server.port
        proxy_port = free_port() if uses_direct_ingress(config) else port
        serve.start(http_options={"host": "127.0.0.1", "port": proxy_port}, logging_config={"enable_access_log": False})
        pools = [build_pool_deployment(name, config.pools.get(name)) for name in ("light", "reasoning")]
        forwarder = Forwarder.options(max_ongoing_requests=config.router.max_ongoing_requests)  # as the router
        serve.run(forwarder.bind(*pools), name="frontier", route_prefix="/", blocking=False)
        yield {"url": f"http://127.0.0.1:{port}", "model": MODEL}
    finally:
        serve.shutdown()
        ray.shutdown()


CHILD_APPS = {"serve_llm": serve_llm_app, "forward": forward_app, "frontier": frontier_app,
              "frontier_proxy": partial(frontier_app, "proxy"), "frontier_haproxy": partial(frontier_app, "haproxy"),
              "frontier_limits": partial(frontier_app, limits=True)}


def ratios(peers: dict, levels: list[int]) -> dict:
    """Each peer's figures over the bare server's (None where the bare figure is 0)."""
    bare, hi = peers.get("bare", {}), str(max(levels))
    if "levels" not in bare:
        return {}

    def ratio(r: dict, c: str, key: str) -> float | None:
        den = bare["levels"][c][key] if c else bare[key]
        return (r["levels"][c][key] if c else r[key]) / den if den else None

    return {name: {**{f"framework_cpu_c{c}": ratio(r, str(c), "framework_ms_per_req") for c in levels},
                   **{f"p50_c{c}": ratio(r, str(c), "p50_ms") for c in levels},
                   f"throughput_c{hi}": ratio(r, hi, "rps"), "ttft_p50": ratio(r, "", "ttft_p50_ms")}
            for name, r in peers.items() if name != "bare" and "levels" in r}


def print_tables(result: dict, levels: list[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    main = Table(title=f"{result['requests']} requests x {result['max_tokens']} tokens per level, "
                       f"{result['cpus']} CPUs; CPU per request from /proc")
    for col in ("peer", "conc", "p50 ms", "p99 ms", "req/s", "framework ms/req", "engine ms/req",
                "TTFT p50 ms", "idle framework CPU %"):
        main.add_column(col, justify="left" if col == "peer" else "right")
    top = Table(title=f"Top framework processes at concurrency {max(levels)} (ms CPU per request)")
    top.add_column("peer")
    top.add_column("process: ms/request")
    for name, r in result["peers"].items():
        if "levels" not in r:
            main.add_row(name, "-", "skipped", *[""] * 6)
            continue
        for i, c in enumerate(levels):
            lv = r["levels"][str(c)]
            main.add_row(name if i == 0 else "", str(c), f"{lv['p50_ms']:.1f}", f"{lv['p99_ms']:.1f}",
                         f"{lv['rps']:.1f}", f"{lv['framework_ms_per_req']:.1f}", f"{lv['engine_ms_per_req']:.1f}",
                         f"{r['ttft_p50_ms']:.1f}" if i == 0 else "",
                         f"{r['idle']['framework_cpu_pct']:.1f}" if i == 0 else "")
        tops = r["levels"][str(max(levels))]["top_framework_ms_per_req"]
        top.add_row(name, ", ".join(f"{k}: {v:.1f}" for k, v in tops.items()))
    console.print(main)
    for name, r in result["peers"].items():
        if "skipped" in r:
            console.print(f"{name} skipped: {r['skipped']}", markup=False)
    if top.row_count:
        console.print(top)
    if result["ratios"]:
        rt = Table(title="Against the bare vLLM server (peer / bare)")
        keys = list(next(iter(result["ratios"].values())))
        rt.add_column("peer")
        for k in keys:
            rt.add_column(k, justify="right")
        for name, r in result["ratios"].items():
            rt.add_row(name, *("-" if r[k] is None else f"x{r[k]:.2f}" for k in keys))
        console.print(rt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--levels", default="1,16")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--ttft-requests", type=int, default=16)
    parser.add_argument("--litellm-venv", type=Path, default=ROOT / ".venv-litellm")
    parser.add_argument("--child", choices=sorted(CHILD_APPS), help=argparse.SUPPRESS)
    parser.add_argument("--handshake", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, args.handshake)
    args.levels = [int(x) for x in args.levels.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    if unknown := set(peers) - set(PEERS) - set(NAMED_PEERS):
        parser.error(f"unknown peers: {sorted(unknown)}")

    logs = Path(tempfile.mkdtemp(prefix="frontier-overhead-"))
    print(f"logs: {logs}", flush=True)
    results: dict[str, dict] = {}
    if "litellm" in peers:
        try:
            ensure_litellm(args.litellm_venv)
        except (subprocess.SubprocessError, OSError) as exc:
            detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")[-600:]
            print(f"SKIPPED litellm: installing {LITELLM_SPEC} into {args.litellm_venv} failed: {exc}\n{detail}")
            results["litellm"] = {"skipped": f"installing {LITELLM_SPEC} failed: {exc}"}
    for peer in peers:
        if peer in results:
            continue
        print(f"--- {peer}", flush=True)
        try:
            with running_peer(peer, logs, args.litellm_venv) as stack:
                results[peer] = measure(stack, args)
        except Exception as exc:  # one broken peer must not cost the others' figures
            traceback.print_exc()
            results[peer] = {"skipped": f"failed: {exc!r}"[:500]}
    result = {"requests": args.requests, "max_tokens": args.max_tokens, "cpus": os.cpu_count(),
              "idle_s": args.idle_s, "ttft_requests": args.ttft_requests, "levels": args.levels,
              "peers": {p: results[p] for p in peers}, "ratios": ratios(results, args.levels)}
    print_tables(result, args.levels)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
