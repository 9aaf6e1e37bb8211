"""Online-learning lab: which bandit learner ranks unseen prompts best while holding the reasoning share?

Pure math, in process (no Redis): each run shuffles a held-out unit with its seed, streams the first
``--learn-fraction`` through a learner with bandit feedback (only the chosen pool's label is revealed),
applying feedback in batches of ``--sync`` events like the consumer and stepping the cost controller
(``control_step``, the production rule) between batches; the rest (the tail) is then scored greedily.

Units (the offline scorer of each is trained, with ``frontier train``'s code, on every other row of the
shared data, so every unit is unseen): ``mmlu`` (routellm/mmlu_dev, 5 leave-subjects-out folds), ``math``
(zeroeval_math_crux math rows, a GSM8K proxy), ``mmlu_pro`` (a seeded sample) and ``arena`` (chat). The
``domain`` column is used only to split. Also reported: offline scorer, prompt length and a full-information
ceiling (two logistic heads on the router's features fitted with both labels of the learning half) on the
same tails, and, after learning at a fixed threshold (``--modes fixed``), the share of a few chit-chat
prompts sent to reasoning (the global-bias failure).

``production`` runs the shipped math (``frontier.routing`` online model, exploration and scores, the
consumer's prior and limits from the default ``FeedbackConfig``, the controller rescoring its window);
the other approaches are ``online_lab_learners.Learner`` variants (``APPROACHES``, or ``--variant JSON``).

Usage: nice -n 10 .venv/bin/python benchmarks/online_learning_lab.py [--approaches previous production ...]
       [--seeds 0 1] [--modes share fixed] [--prepared CACHED.npz]
Last line: JSON {"references": {unit: ...}, "approach/mode": {unit: {"tail_apgr", "learn_share", ...},
"mean_tail_apgr", "max_share_error"}}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from online_lab_learners import Approach, Learner, feature_map, sig

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import limits, prior
from frontier.feedback.controller import ControllerState, control_step
from frontier.routing.artifact import load_artifact
from frontier.routing.datasets import load_outcomes
from frontier.routing.evaluation import quality_curve, summarize
from frontier.routing.feature_map import FeatureMap
from frontier.routing.online import Event, OnlineState, apply_batch
from frontier.routing.router import OnlineParams, greedy_scores, online_choice
from frontier.routing.scorer import featurize_prompts
from frontier.routing.training import fit_logistic, standardizer, train_scorer
from frontier.routing.types import POOLS

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
FILES = {  # name: (path, light column, reasoning column)
    "mmlu": ("routellm/mmlu_dev.csv", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"),
    "zeroeval": ("routing/zeroeval_math_crux.csv", "gpt-4o-mini-2024-07-18", "o1-mini-2024-09-12"),
    "mmlu_pro": ("routing/mmlu_pro_gemini-1.5-flash_vs_pro.csv", "gemini-1.5-flash-002", "gemini-1.5-pro-002"),
    "arena": ("routing/arena_bench_v1_chat_scores.csv", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"),
}
CHITCHAT = ["hi there, how are you?", "thanks!", "what's your name?", "good morning", "tell me a joke",
            "hello", "ok cool", "how's the weather where you are?", "bye for now", "nice to meet you"]  # fmt: skip


def prepare(cache: Path, mmlu_pro_rows: int) -> dict[str, np.ndarray]:
    """Features, labels and, per unit, out-of-unit offline logits and share quantiles (cached)."""
    artifact = load_artifact()
    path = cache / f"lab-{artifact.version}-p{mmlu_pro_rows}.npz"
    if path.is_file():
        return dict(np.load(path))
    parts = []
    for name, (rel, light_col, reasoning_col) in FILES.items():
        out = load_outcomes(DATA / rel, light_col, reasoning_col)
        domain = pd.read_csv(DATA / rel, usecols=["domain"], dtype=str)["domain"].to_numpy()
        parts.append(pd.DataFrame({"file": name, "domain": domain, "prompt": out.prompts,
                                   "light": out.light, "reasoning": out.reasoning}))  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    x = featurize_prompts(artifact.scorer.featurizer, frame["prompt"].tolist())
    unit = np.full(len(frame), "", dtype=object)
    subjects = sorted(set(frame.domain[frame.file == "mmlu"]))
    np.random.default_rng(0).shuffle(subjects)
    fold_of = {s: f"mmlu{i % 5}" for i, s in enumerate(subjects)}
    is_mmlu = (frame.file == "mmlu").to_numpy()
    unit[is_mmlu] = [fold_of[d] for d in frame.domain[is_mmlu]]
    unit[((frame.file == "zeroeval") & (frame.domain == "math")).to_numpy()] = "math"
    pro = np.nonzero((frame.file == "mmlu_pro").to_numpy())[0]
    unit[np.random.default_rng(0).choice(pro, size=min(mmlu_pro_rows, len(pro)), replace=False)] = "mmlu_pro"
    unit[(frame.file == "arena").to_numpy()] = "arena"
    held = {"mmlu_pro": (frame.file == "mmlu_pro").to_numpy(), "arena": (frame.file == "arena").to_numpy(),
            "math": (frame.file == "zeroeval").to_numpy() & (frame.domain == "math").to_numpy()}  # fmt: skip
    light, reasoning = frame.light.to_numpy(), frame.reasoning.to_numpy()
    logits = np.zeros((len(frame), 2))
    arrays: dict[str, np.ndarray] = {}
    chit = featurize_prompts(artifact.scorer.featurizer, CHITCHAT)
    for u in sorted(set(unit) - {""}):
        train = ~held.get(u, unit == u)
        trained = train_scorer(x[train], light[train], reasoning[train])
        logits[unit == u] = trained.params.logits(x[unit == u])
        arrays[f"q_{u}"] = trained.score_quantiles
        arrays[f"mean_{u}"], arrays[f"scale_{u}"] = trained.params.mean, trained.params.scale
        arrays[f"chit_{u}"] = trained.params.logits(chit)
        arrays[f"train_{u}"] = train
        print(f"offline scorer for {u}: {train.sum()} training rows", flush=True)
    lengths = frame.prompt.str.len().to_numpy()
    arrays.update(x=x, light=light, reasoning=reasoning, unit=unit.astype(str), logits=logits, chit_x=chit,
                  length=lengths)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def apgr(scores: np.ndarray, light: np.ndarray, reasoning: np.ndarray) -> float:
    return summarize(quality_curve(scores, light, reasoning))["apgr"]


class Production:
    """The shipped math (``frontier.routing``, the consumer's prior and limits) behind the lab's learner API."""

    def __init__(self, config: FeedbackConfig, dim: int) -> None:
        self.config, self.prior = config, prior(config, dim)
        self.state = OnlineState.initial("lab", self.prior)

    def _params(self) -> OnlineParams:
        return OnlineParams(self.state.posterior, self.state.evidence)

    def score(self, phi: np.ndarray, off: np.ndarray) -> np.ndarray:
        return greedy_scores(np.atleast_2d(phi), np.atleast_2d(off), self._params())

    def choose(self, phi: np.ndarray, off: np.ndarray, threshold: float, cap: float, u: float) -> tuple[int, float]:
        choice = online_choice(phi, dict(zip(POOLS, off)), self._params(), threshold, cap, u)
        return POOLS.index(choice.pool), choice.propensity

    def apply(self, events: list[tuple]) -> None:
        batch = [Event(phi, dict(zip(POOLS, off)), {POOLS[pool]: y}, "lab") for phi, off, pool, y, _, _ in events]
        c = self.config
        self.state = apply_batch(self.state, batch, 0.0, self.prior, c.half_life_events, c.half_life_s, limits(c))


def run(a: Approach | None, data: dict, unit: str, seed: int, mode: str, args: argparse.Namespace) -> dict:
    """One learning run on one unit (``a`` None: the production math with the default FeedbackConfig);
    ``mode``: ``share`` (controller at 0.5) or ``fixed`` (threshold 0.55)."""
    rows = np.nonzero(data["unit"] == unit)[0]
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    n_learn = round(len(rows) * args.learn_fraction)
    if a is None:
        fmap = FeatureMap.from_standardizer(data[f"mean_{unit}"], data[f"scale_{unit}"], FeedbackConfig().online_dim)
        rescore = True
    else:
        x_train = data["x"][data[f"train_{unit}"]]
        fmap = feature_map(a.features, a.dim, x_train[np.random.default_rng(0).permutation(len(x_train))[:8000]])
        rescore = a.share_rule == "rescore"
    phi, off = np.asarray(fmap(data["x"][order]), dtype=np.float64), data["logits"][order]
    light, reasoning = data["light"][order], data["reasoning"][order]
    learner = Production(FeedbackConfig(), phi.shape[1]) if a is None else Learner(a, phi.shape[1])
    quantiles = data[f"q_{unit}"]
    threshold = float(np.interp(0.5, np.linspace(0, 1, len(quantiles)), quantiles)) if mode == "share" else 0.55
    ctl, rng = ControllerState(), np.random.default_rng(seed + 1000)
    pending, window, pools, explored = [], [], [], 0
    for t in range(n_learn):
        pool, prop = learner.choose(phi[t], off[t], threshold, args.explore_cap, rng.random())
        explored += prop < 0.5
        pools.append(pool)
        pending.append((phi[t], off[t], pool, reasoning[t] if pool else light[t], prop, 1.0))
        if a is not None and a.full_info:
            pending.append((phi[t], off[t], 1 - pool, light[t] if pool else reasoning[t], 1.0, 1.0))
        window.append(float(np.ravel(learner.score(phi[t], off[t]))[0]))
        if (t + 1) % args.sync == 0 or t + 1 == n_learn:
            learner.apply(pending)
            pending = []
            if mode == "share":
                lo = max(0, t + 1 - 2000)
                scores = learner.score(phi[lo : t + 1], off[lo : t + 1]) if rescore else np.array(window[lo:])
                flags = np.array(pools[lo:]) == 1
                # Research learners keep the controller they were measured with (no proportional term).
                proportional = args.proportional_gain if a is None else 0.0
                ctl = control_step(scores, flags, 0.5, ctl, args.controller_gain, proportional)
                threshold = ctl.threshold
    n = n_learn
    out = {
        "tail_apgr": apgr(learner.score(phi[n:], off[n:]), light[n:], reasoning[n:]),
        "learn_share": float(np.mean(pools)),
        "explored": explored / n_learn,
    }
    if mode == "fixed":
        chit_phi, chit_off = np.asarray(fmap(data["chit_x"]), dtype=np.float64), data[f"chit_{unit}"]
        out["chitchat_share"] = float(np.mean(learner.score(chit_phi, chit_off) > 0.55))
        out["chitchat_offline"] = float(np.mean((1 + sig(chit_off[:, 1]) - sig(chit_off[:, 0])) / 2 > 0.55))
    return out


def references(data: dict, unit: str, seed: int, args: argparse.Namespace) -> dict:
    """Offline scorer, prompt length and the full-information ceiling on the same tail."""
    rows = np.nonzero(data["unit"] == unit)[0]
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    n = round(len(rows) * args.learn_fraction)
    learn, tail = order[:n], order[n:]
    light, reasoning = data["light"], data["reasoning"]
    off = data["logits"][tail]
    x = data["x"]
    mean, scale = standardizer(x[learn])
    heads = [fit_logistic((x[learn] - mean) / scale, lab[learn], 0.3) for lab in (light, reasoning)]
    z = (x[tail] - mean) / scale
    ceiling = sig(z @ heads[1][0] + heads[1][1]) - sig(z @ heads[0][0] + heads[0][1])
    return {
        "offline": apgr(sig(off[:, 1]) - sig(off[:, 0]), light[tail], reasoning[tail]),
        "length": apgr(data["length"][tail].astype(float), light[tail], reasoning[tail]),
        "ceiling_full_info": apgr(ceiling, light[tail], reasoning[tail]),
    }


_BEST = dict(share_rule="rescore", correlation=0.95, bias_variance=0.001)  # the shipped settings
APPROACHES = {a.name: a for a in [
    Approach("previous"),  # before this lab: random projection of 32, r 0.8, bias prior 1, stale-score controller
    Approach("previous+rescore", share_rule="rescore"),
    Approach("r0.95", share_rule="rescore", correlation=0.95),
    Approach("r0.95-nobias", **_BEST),
    Approach("r0.99", share_rule="rescore", correlation=0.99, bias_variance=0.001),
    Approach("r0", share_rule="rescore", correlation=0.0, bias_variance=0.001),
    Approach("ips3", ips_clip=3.0, **_BEST),
    Approach("flat-explore", explore="flat", **_BEST),
    Approach("no-explore", explore="none", **_BEST),
    Approach("gain-dr", learner="gain-dr", **_BEST),
    Approach("v0.3", variance=0.3, **_BEST),
    Approach("v3", variance=3.0, **_BEST),
    Approach("dim16", dim=16, **_BEST),
    Approach("dim64", dim=64, **_BEST),
    Approach("pca32", features="pca", **_BEST),
    Approach("struct+pca32", features="struct+pca", **_BEST),
    Approach("struct+rand32", features="struct+rand", **_BEST),
    Approach("std32+struct", features="std+struct", **_BEST),
    Approach("std32+length", features="std+len", **_BEST),
    Approach("clusters+struct+pca32", features="clusters+struct+pca", share_rule="rescore", correlation=0.95),
    Approach("cap200", evidence_cap=200.0, **_BEST),
    Approach("full-info", full_info=True, **_BEST),  # both labels of every learning request: a ceiling
]}  # fmt: skip
UNITS = {"mmlu": [f"mmlu{i}" for i in range(5)], "math": ["math"], "mmlu_pro": ["mmlu_pro"], "arena": ["arena"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--approaches", nargs="*", default=["previous", "production"], help=f"production, {', '.join(APPROACHES)}"
    )
    parser.add_argument("--variant", action="append", default=[], metavar="JSON", help='e.g. {"name": "x", "dim": 48}')
    parser.add_argument("--units", nargs="+", default=list(UNITS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--modes", nargs="+", default=["share"], choices=("share", "fixed"))
    parser.add_argument("--learn-fraction", type=float, default=0.5)
    parser.add_argument("--explore-cap", type=float, default=0.05)
    parser.add_argument("--sync", type=int, default=16, help="events per consumer batch")
    parser.add_argument("--controller-gain", type=float, default=FeedbackConfig().controller.gain)
    parser.add_argument("--proportional-gain", type=float, default=FeedbackConfig().controller.proportional_gain)
    parser.add_argument("--mmlu-pro-rows", type=int, default=2400)
    parser.add_argument("--prepared", type=Path, help="a prepared lab-*.npz from the cache (another artifact's)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "frontier-online-lab")
    args = parser.parse_args()
    approaches = [(n, APPROACHES.get(n)) for n in args.approaches]  # production: None
    approaches += [(v["name"], Approach(**v)) for v in map(json.loads, args.variant)]
    data = dict(np.load(args.prepared)) if args.prepared else prepare(args.cache, args.mmlu_pro_rows)
    report: dict[str, dict] = {"references": {}}
    for name in args.units:
        refs = [references(data, u, s, args) for u in UNITS[name] for s in args.seeds]
        report["references"][name] = {k: float(np.mean([r[k] for r in refs])) for k in refs[0]}
    print("references:", json.dumps(report["references"]), flush=True)
    for label, a in approaches:
        for mode in args.modes:
            started, row = time.perf_counter(), {}
            for name in args.units:
                runs = [run(a, data, u, s, mode, args) for u in UNITS[name] for s in args.seeds]
                row[name] = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in runs[0]}
            row["mean_tail_apgr"] = round(float(np.mean([row[n]["tail_apgr"] for n in args.units])), 4)
            row["max_share_error"] = round(max(abs(row[n]["learn_share"] - 0.5) for n in args.units), 4)
            report[f"{label}/{mode}"] = row
            cells = " ".join(f"{n} {row[n]['tail_apgr']:.3f}@{row[n]['learn_share']:.2f}" for n in args.units)
            chit = [f"{row[n]['chitchat_share']:.1f}" for n in args.units] if mode == "fixed" else []
            extra = " chit " + " ".join(chit) if chit else ""
            print(f"{label:28s} {mode:5s} {cells} | mean {row['mean_tail_apgr']:.3f}{extra} "
                  f"[{time.perf_counter() - started:.0f} s]", flush=True)  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
