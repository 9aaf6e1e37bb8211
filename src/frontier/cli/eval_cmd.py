"""``frontier eval``: a router's quality-vs-reasoning-share frontier against baselines, on labelled prompts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from frontier.cli.outcome_args import add_outcome_arguments
from frontier.config import load_config
from frontier.routing.artifact import ArtifactError, load_artifact
from frontier.routing.datasets import DataError, load_outcomes
from frontier.routing.evaluation import QualityCurve, baseline_scores, quality_curve, summarize
from frontier.routing.policies import learned_router
from frontier.routing.scorer import featurize_prompts
from frontier.routing.types import StatsSnapshot


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a router against random, prompt-length and oracle routers")
    parser.add_argument("--router", default=None, help="router artifact directory (default: the packaged one)")
    add_outcome_arguments(parser)
    parser.add_argument("--out", required=True, help="directory for metrics.json and frontier.png")
    parser.set_defaults(handler=_eval)


def evaluate(scores: dict[str, np.ndarray], light: np.ndarray, reasoning: np.ndarray) -> dict[str, QualityCurve]:
    """Quality curves of several routers on the same prompts."""
    return {name: quality_curve(s, light, reasoning) for name, s in scores.items()}


def plot_frontier(curves: dict[str, QualityCurve], path: Path, title: str) -> None:
    """Quality vs reasoning share of each router, with the two single pools marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, curve in curves.items():
        ax.plot(curve.shares * 100, curve.quality, label=f"{name} (APGR {curve.apgr():.3f})",
                linestyle="--" if name in ("random", "oracle") else "-")
    any_curve = next(iter(curves.values()))
    ax.scatter([0], [any_curve.quality_light], marker="o", s=60, zorder=3, color="black", label="light pool only")
    ax.scatter([100], [any_curve.quality_reasoning], marker="*", s=120, zorder=3, color="black",
               label="reasoning pool only")
    ax.set_xlabel("share of prompts sent to the reasoning pool (%)")
    ax.set_ylabel("mean quality")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _eval(args: argparse.Namespace) -> int:
    try:
        artifact = load_artifact(args.router)
        outcomes = load_outcomes(args.data, args.light_col, args.reasoning_col)
    except (ArtifactError, DataError) as exc:
        print(f"frontier eval: {exc}", file=sys.stderr)
        return 2
    router = learned_router(load_config(), artifact, args.router)
    x = featurize_prompts(artifact.scorer.featurizer, outcomes.prompts)
    scores = {"router": router.scores(x, StatsSnapshot())}
    scores.update(baseline_scores(outcomes.prompts, outcomes.light, outcomes.reasoning))
    try:
        curves = evaluate(scores, outcomes.light, outcomes.reasoning)
        metrics: dict[str, Any] = {name: summarize(curve) for name, curve in curves.items()}
    except ValueError as exc:
        print(f"frontier eval: {exc}", file=sys.stderr)
        return 2
    report = {
        "router_version": artifact.version,
        "data_sha256": outcomes.sha256,
        "rows": len(outcomes.prompts),
        "quality_light": curves["router"].quality_light,
        "quality_reasoning": curves["router"].quality_reasoning,
        "routers": metrics,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_frontier(curves, out / "frontier.png", f"{Path(args.data).name}: {len(outcomes.prompts)} prompts")
    print(f"{'router':<14}{'APGR':>8}{'CPT(50%)':>10}{'CPT(80%)':>10}{'Q@20%':>8}{'Q@50%':>8}")
    for name, m in metrics.items():
        print(f"{name:<14}{m['apgr']:>8.3f}{m['cpt_50']:>10.3f}{m['cpt_80']:>10.3f}"
              f"{m['quality_at_20']:>8.3f}{m['quality_at_50']:>8.3f}")
    print(f"light only {report['quality_light']:.3f}, reasoning only {report['quality_reasoning']:.3f}; "
          f"wrote {out / 'metrics.json'} and {out / 'frontier.png'}")
    return 0
