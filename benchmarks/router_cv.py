"""Leave-subjects-out cross-validation of the learned router on a RouteLLM-format file with a grouping column.

Whole groups (MMLU subjects) are held out per fold; the router is trained with the same code as
``frontier train`` (same embedder as the given artifact) on the other groups and scored on the held-out
ones, next to the prompt-length and random baselines. The grouping column is used only for the split.

Usage: .venv/bin/python benchmarks/router_cv.py [--data F] [--folds 5] [--router DIR] [--out report.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from frontier.routing.artifact import load_artifact
from frontier.routing.datasets import load_outcomes
from frontier.routing.evaluation import baseline_scores, expected_calibration_error, quality_curve, summarize
from frontier.routing.scorer import featurize_prompts, score_from_probabilities
from frontier.routing.training import TrainingSettings, train_scorer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "routellm" / "mmlu_dev.csv"


def group_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per row: groups shuffled with ``seed`` and dealt round-robin to folds."""
    names = sorted(set(groups))
    np.random.default_rng(seed).shuffle(names)
    fold_of = {name: i % folds for i, name in enumerate(names)}
    return np.array([fold_of[g] for g in groups])


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The labelled file, its outcome and grouping columns, and the number of leave-groups-out folds."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--light-col", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    parser.add_argument("--reasoning-col", default="gpt-4-1106-preview")
    parser.add_argument("--group-col", default="domain")
    parser.add_argument("--folds", type=int, default=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--router", default=None, help="artifact whose embedder to use (default: packaged)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args()

    outcomes = load_outcomes(args.data, args.light_col, args.reasoning_col)
    groups = pd.read_csv(args.data, usecols=[args.group_col], dtype=str)[args.group_col].to_numpy()
    fold = group_folds(groups, args.folds, args.seed)
    featurizer = load_artifact(args.router).scorer.featurizer
    x = featurize_prompts(featurizer, outcomes.prompts)
    light, reasoning = outcomes.light, outcomes.reasoning
    rows = []
    for k in range(args.folds):
        train, test = fold != k, fold == k
        trained = train_scorer(x[train], light[train], reasoning[train], TrainingSettings())
        probabilities = trained.params.probabilities(x[test])
        test_prompts = [p for p, t in zip(outcomes.prompts, test) if t]
        scores = {"router": score_from_probabilities(probabilities)}
        scores.update(baseline_scores(test_prompts, light[test], reasoning[test]))
        row = {
            "fold": k,
            "held_out_groups": sorted(set(groups[test])),
            "rows": int(test.sum()),
            **{name: summarize(quality_curve(s, light[test], reasoning[test])) for name, s in scores.items()},
            "ece_light": expected_calibration_error(probabilities[:, 0], light[test]),
            "ece_reasoning": expected_calibration_error(probabilities[:, 1], reasoning[test]),
        }
        rows.append(row)
        print(
            f"fold {k}: {row['rows']:5d} rows, APGR router {row['router']['apgr']:.3f} "
            f"length {row['prompt_length']['apgr']:.3f} | CPT(50%) router {row['router']['cpt_50']:.3f} "
            f"| ECE light {row['ece_light']:.3f} reasoning {row['ece_reasoning']:.3f}",
            flush=True,
        )
    mean = {
        name: {m: float(np.mean([r[name][m] for r in rows])) for m in rows[0]["router"]}
        for name in ("router", "prompt_length", "random", "oracle")
    }
    report = {
        "data": str(args.data),
        "folds": args.folds,
        "mean": mean,
        "mean_ece": {h: float(np.mean([r[f"ece_{h}"] for r in rows])) for h in ("light", "reasoning")},
        "router_beats_length_every_fold": all(r["router"]["apgr"] > r["prompt_length"]["apgr"] for r in rows),
        "per_fold": rows,
    }
    print(
        f"mean APGR router {mean['router']['apgr']:.3f} (length {mean['prompt_length']['apgr']:.3f}, "
        f"oracle {mean['oracle']['apgr']:.3f}); CPT(50%) {mean['router']['cpt_50']:.3f}; "
        f"CPT(80%) {mean['router']['cpt_80']:.3f}; beats length on every fold: "
        f"{report['router_beats_length_every_fold']}"
    )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"apgr": mean["router"]["apgr"], "cpt_50": mean["router"]["cpt_50"]}))


if __name__ == "__main__":
    main()
