"""``frontier score``: score every prompt of a CSV file with a router artifact."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from frontier.config import load_config
from frontier.routing.artifact import ArtifactError, load_artifact
from frontier.routing.datasets import DataError, load_prompts
from frontier.routing.policies import learned_router
from frontier.routing.scorer import featurize_prompts
from frontier.routing.types import StatsSnapshot


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help="score prompts with a router (higher = more benefit from reasoning)")
    parser.add_argument("--router", default=None, help="router artifact directory (default: the packaged one)")
    parser.add_argument("--data", required=True, help="CSV with a 'prompt' column")
    parser.add_argument("--out", required=True, help="CSV to write, with columns row and score")
    parser.set_defaults(handler=_score)


def _score(args: argparse.Namespace) -> int:
    try:
        artifact = load_artifact(args.router)
        prompts = load_prompts(args.data)
    except (ArtifactError, DataError) as exc:
        print(f"frontier score: {exc}", file=sys.stderr)
        return 2
    router = learned_router(load_config(), artifact, args.router)
    scores = router.scores(featurize_prompts(artifact.scorer.featurizer, prompts), StatsSnapshot())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "score"])
        writer.writerows((i, f"{s:.6f}") for i, s in enumerate(scores))
    print(f"wrote {len(scores)} scores to {out} (router {artifact.version})")
    return 0
