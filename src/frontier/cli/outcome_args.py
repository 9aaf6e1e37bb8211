"""Command-line arguments shared by the commands that read a labelled RouteLLM-format CSV."""

from __future__ import annotations

import argparse


def add_outcome_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--light-col`` and ``--reasoning-col`` (all required)."""
    parser.add_argument("--data", required=True, help="CSV with a 'prompt' column and one outcome column per pool")
    parser.add_argument("--light-col", required=True, help="column with the light pool's outcomes")
    parser.add_argument("--reasoning-col", required=True, help="column with the reasoning pool's outcomes")
