"""The ``frontier`` command: each subcommand lives in its own module with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "frontier.cli.serve",
    "frontier.cli.config_cmd",
    "frontier.cli.loadtest",
    "frontier.cli.keys",
    "frontier.cli.train",
    "frontier.cli.score",
    "frontier.cli.eval_cmd",
    "frontier.cli.bench",
    "frontier.cli.replay",
    "frontier.cli.batch_cmd",
    "frontier.cli.router_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="frontier", description="Frontier: a self-hosted LLM router.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``frontier``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
