"""Leave-subjects-out replay: does online learning from bandit feedback help on subjects never trained on?

For each fold the offline scorer is trained (same code and settings as ``benchmarks/router_cv.py``) on
the other folds' groups; the held-out fold's rows are then replayed exactly like ``frontier replay``
(``Router.decide`` on the live state): shuffled with the seed, the first ``--learn-fraction`` streamed
through the live online stack (embedded Redis, decision log, feedback queue, consumer, cost controller)
with bandit feedback only, the rest scored without learning (``Router.scores``). APGR is computed once over the whole tail of a fold (all its held-out groups
together), as ``frontier replay`` does. The grouping column is used only for the split.

Usage: .venv/bin/python benchmarks/replay_cv.py [--seeds 0 1] [--folds 5] [--out report.json]
       [--map standardizer|train-pca|learn-pca] [--set prior_variance=0.3 --set online_dim=32 ...]
``--set`` overrides a FeedbackConfig field for this run (validated like a config file).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from router_cv import add_split_arguments, group_folds

from frontier.config import FeedbackConfig, load_config
from frontier.feedback.redis_server import EmbeddedRedis, connect
from frontier.feedback.replay import replay
from frontier.routing.artifact import PARAM_NAMES, load_artifact
from frontier.routing.datasets import file_sha256, load_outcomes
from frontier.routing.feature_map import FeatureMap, online_feature_map
from frontier.routing.features import RequestFeatures, features_from_prompt
from frontier.routing.router import Router, ThresholdRule
from frontier.routing.scorer import ScorerParams, featurize_prompts
from frontier.routing.training import TrainingSettings, train_scorer
from frontier.routing.types import CostKnob


def share_threshold(quantiles: np.ndarray, share: float) -> float:
    """Score threshold sending ``share`` of the calibration traffic to reasoning (as the artifact does)."""
    if share <= 0.0 or share >= 1.0:
        return 1.0 if share <= 0.0 else 0.0
    return float(np.interp(1.0 - share, np.linspace(0.0, 1.0, len(quantiles)), quantiles))


class RowScorer:
    """A fold's trained heads over cached feature vectors: request ``i`` (its text) has the vector ``x[i]``."""

    def __init__(self, x: np.ndarray, params: ScorerParams) -> None:
        self.x, self.params = x, params

    def featurize(self, features: RequestFeatures) -> np.ndarray:
        return self.x[int(features.text)]


def fold_router(data: dict[str, np.ndarray], k: int, kind: str, learn: np.ndarray, config: FeedbackConfig,
                share: float) -> Router:  # fmt: skip
    """Fold ``k``'s router: its trained heads, the ``kind`` of online map, ``share`` as the operator's knob."""
    params = ScorerParams(**{name: data[f"param_{name}"][k] for name in PARAM_NAMES})
    feature_map = online_map(kind, data["x"][data["fold"] != k], data["x"][learn], params, config.online_dim)
    rule = ThresholdRule(CostKnob(reasoning_share=share), lambda s: share_threshold(data["quantiles"][k], s),
                         lambda chars: 0.0)  # fmt: skip
    return Router(f"fold-{k}", RowScorer(data["x"], params), feature_map, rule, config.explore_cap, config.explore_seed)


def fold_inputs(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Features, outcomes, folds and each fold's trained heads (cached by data hash)."""
    cache = args.cache / f"replay-cv-v2-{file_sha256(args.data)[:12]}-f{args.folds}-s{args.fold_seed}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    outcomes = load_outcomes(args.data, args.light_col, args.reasoning_col)
    groups = pd.read_csv(args.data, usecols=[args.group_col], dtype=str)[args.group_col].to_numpy()
    fold = group_folds(groups, args.folds, args.fold_seed)
    x = featurize_prompts(load_artifact(args.router).scorer.featurizer, outcomes.prompts)
    trained = [
        train_scorer(x[fold != k], outcomes.light[fold != k], outcomes.reasoning[fold != k], TrainingSettings())
        for k in range(args.folds)
    ]
    arrays = {"x": x, "light": outcomes.light, "reasoning": outcomes.reasoning, "fold": fold,
              "quantiles": np.stack([t.score_quantiles for t in trained]),
              **{f"param_{name}": np.stack([getattr(t.params, name) for t in trained]) for name in PARAM_NAMES}}  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)
    return arrays


def online_map(kind: str, x_train: np.ndarray, x_learn: np.ndarray, params: ScorerParams, dim: int) -> FeatureMap:
    """The online feature map: ``standardizer`` is what server and ``frontier replay`` derive from an artifact
    that ships no map; ``train-pca`` a map an artifact could ship (PCA of its training features);
    ``learn-pca`` (an experiment) PCA of the unlabelled learning traffic."""
    if kind == "learn-pca":
        return FeatureMap.fit_pca(x_learn, dim)
    if kind == "train-pca":
        return FeatureMap.fit_pca(x_train, dim)
    return online_feature_map(None, params.mean, params.scale, dim)


def feedback_config(base: FeedbackConfig, overrides: list[str]) -> FeedbackConfig:
    """``base`` with ``name=value`` overrides (validated like a config file)."""
    values = base.model_dump()
    for item in overrides:
        name, _, value = item.partition("=")
        values[name] = json.loads(value)
    return FeedbackConfig.model_validate(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--fold-seed", type=int, default=0, help="seed of the group-to-fold split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="replay seeds (shuffle, exploration)")
    parser.add_argument("--learn-fraction", type=float, default=0.5)
    parser.add_argument("--learn-share", type=float, default=0.5, help="reasoning share held while learning")
    parser.add_argument("--router", default=None, help="artifact whose embedder to use (default: packaged)")
    parser.add_argument("--config", default=None, help="Frontier config whose feedback section is used")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=JSON", help="FeedbackConfig override")
    parser.add_argument("--map", choices=("standardizer", "train-pca", "learn-pca"), default="standardizer")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "frontier-replay-cv")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args()

    config = feedback_config(load_config(args.config).feedback, args.set)
    data = fold_inputs(args)
    runs = []
    with tempfile.TemporaryDirectory(prefix="frontier-replay-cv-") as tmp:
        embedded = EmbeddedRedis(Path(tmp) / "redis")
        client = connect(embedded.start(), 5.0)
        try:
            for k in range(args.folds):
                rows = np.nonzero(data["fold"] == k)[0]
                requests = [features_from_prompt(str(i)) for i in rows]
                for seed in args.seeds:
                    n_learn = round(len(rows) * args.learn_fraction)
                    learn = rows[np.random.default_rng(seed).permutation(len(rows))[:n_learn]]
                    router = fold_router(data, k, args.map, learn, config, args.learn_share)
                    result = replay(
                        client, config, router, requests, data["light"][rows], data["reasoning"][rows],
                        learn_fraction=args.learn_fraction, seed=seed,
                    )  # fmt: skip
                    m = result.metrics
                    runs.append({"fold": k, "seed": seed, **m})
                    print(
                        f"fold {k} seed {seed}: tail APGR {m['tail_apgr']:.3f} (offline {m['offline_tail_apgr']:.3f}) "
                        f"learn reasoning share {m['learn_reasoning_share']:.3f} explored "
                        f"{m['learn_explored_share']:.3f} [{m['seconds']} s]",
                        flush=True,
                    )
        finally:
            embedded.stop()
    keys = ("tail_apgr", "offline_tail_apgr", "learn_reasoning_share", "learn_explored_share", "tail_cpt50")
    per_fold = [
        {"fold": k, **{key: float(np.mean([r[key] for r in runs if r["fold"] == k])) for key in keys}}
        for k in range(args.folds)
    ]
    mean = {key: float(np.mean([r[key] for r in runs])) for key in keys}
    print("fold  tail_apgr  offline  learn_share")
    for row in per_fold:
        print(f"{row['fold']:4d}  {row['tail_apgr']:.3f}      {row['offline_tail_apgr']:.3f}    "
              f"{row['learn_reasoning_share']:.3f}")  # fmt: skip
    print(f"mean  {mean['tail_apgr']:.3f}      {mean['offline_tail_apgr']:.3f}    {mean['learn_reasoning_share']:.3f}")
    report = {
        "config": config.model_dump(),
        "map": args.map,
        "seeds": args.seeds,
        "mean": mean,
        "per_fold": per_fold,
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"mean": mean, "per_fold_tail_apgr": [r["tail_apgr"] for r in per_fold]}))


if __name__ == "__main__":
    main()
