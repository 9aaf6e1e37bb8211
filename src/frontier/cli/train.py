"""``frontier train``: train a router artifact on a RouteLLM-format CSV file."""

from __future__ import annotations

import argparse
import json
import sys

from frontier.cli.outcome_args import add_outcome_arguments
from frontier.routing.artifact import ArtifactError, load_artifact
from frontier.routing.datasets import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a learned router on labelled prompts")
    add_outcome_arguments(parser)
    parser.add_argument("--out", required=True, help="directory to write the artifact to")
    parser.add_argument(
        "--embedding-from", default=None, help="artifact whose static embedder to reuse (default: the packaged one)"
    )
    parser.add_argument("--name", default="router", help="name recorded in the artifact's version")
    parser.add_argument(
        "--length-prior", type=float, default=0.0,
        help="tilt towards reasoning for longer prompts, in calibrated logits per standard deviation of log "
             "length (0: fit the data as is, for traffic like the training data; the packaged default's value "
             "for unseen domains is frontier.routing.training.TRANSFER_SETTINGS.length_prior)",
    )
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from frontier.routing.training import TrainingSettings, train_router_from_csv

    try:
        embedder = load_artifact(args.embedding_from).scorer.featurizer.embedder
        settings = TrainingSettings(length_prior=args.length_prior)
        summary = train_router_from_csv(
            args.data, args.light_col, args.reasoning_col, args.out, embedder, name=args.name, settings=settings
        )
    except (ArtifactError, DataError, ValueError) as exc:
        print(f"frontier train: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0
