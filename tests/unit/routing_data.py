"""Synthetic RouteLLM-format data for the learned-router tests: hard maths prompts need the reasoning pool."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

EASY_TOPICS = ["the weather today", "a good name for a cat", "your favourite colour", "a short poem about tea",
               "the capital of France", "a polite greeting", "a fun weekend plan", "a synonym for happy"]
HARD_TOPICS = ["the integral of x^3 * sin(x) from 0 to 7", "the probability that 5 dice sum to 17",
               "the eigenvalues of [[2, 1], [1, 3]]", "the number of primes below 1000 congruent to 3 mod 4",
               "the derivative of ln(x^2 + 1) / x at x = 2", "how many ways 12 rooks fit on a 12 x 12 board"]


FILLER = ["kindly", "also", "briefly", "today", "friend", "again", "now", "quickly", "here", "really", "maybe",
          "clearly", "simply", "just", "honestly", "overall"]


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, bool, bool]]:
    """(prompt, light correct, reasoning correct): hard prompts defeat the light pool most of the time."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        hard = rng.random() < 0.4
        topic = rng.choice(HARD_TOPICS if hard else EASY_TOPICS)
        filler = " ".join(rng.choice(FILLER, size=rng.integers(0, 8)))
        prompt = f"Question {i}: compute {topic}. {filler}" if hard else f"Tell me about {topic}, please. {filler}"
        light = rng.random() < (0.2 if hard else 0.9)
        reasoning = rng.random() < (0.85 if hard else 0.92)
        rows.append((prompt, bool(light), bool(reasoning)))
    return rows


def write_csv(path: Path, rows: list[tuple[str, bool, bool]]) -> Path:
    """Write rows as a RouteLLM CSV with columns prompt, light, reasoning."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "light", "reasoning"])
        writer.writerows(rows)
    return path
