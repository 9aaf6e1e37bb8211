"""Router metrics as RouteLLM defines them: quality vs reasoning share, PGR, APGR, CPT, calibration error.

A router scores each prompt (higher = more benefit from the reasoning pool); sending the top share ``c``
of prompts to the reasoning pool gives quality ``q(c)``. Scores that tie are treated as a random order
within the tie (their expected quality), so a constant score is exactly the random router. Between the
points ``k/n`` the curve is linear, and APGR is its exact integral over ``c`` in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRIC_SHARES = (0.2, 0.5)
CPT_LEVELS = (0.5, 0.8)


@dataclass(frozen=True)
class QualityCurve:
    """Quality after sending the top ``k`` of ``n`` prompts to reasoning, for k = 0..n."""

    shares: np.ndarray
    quality: np.ndarray
    quality_light: float
    quality_reasoning: float

    def quality_at(self, share: float) -> float:
        """Mean quality when a ``share`` of prompts goes to the reasoning pool."""
        return float(np.interp(share, self.shares, self.quality))

    @property
    def pgr(self) -> np.ndarray:
        """Performance gap recovered at each point of the curve."""
        gap = self.quality_reasoning - self.quality_light
        if gap <= 0:
            raise ValueError(
                f"the reasoning pool ({self.quality_reasoning:.4f}) is not better than the light pool "
                f"({self.quality_light:.4f}) on this data: PGR is undefined"
            )
        return (self.quality - self.quality_light) / gap

    def pgr_at(self, share: float) -> float:
        """PGR when a ``share`` of prompts goes to the reasoning pool."""
        return float(np.interp(share, self.shares, self.pgr))

    def apgr(self) -> float:
        """Average PGR over reasoning shares in [0, 1] (exact integral of the piecewise-linear curve)."""
        pgr = self.pgr
        return float(np.sum((pgr[1:] + pgr[:-1]) * np.diff(self.shares)) / 2)

    def cpt(self, level: float) -> float:
        """Smallest reasoning share whose PGR reaches ``level`` (1.0 if never)."""
        pgr = self.pgr
        hits = np.nonzero(pgr >= level - 1e-12)[0]
        if hits.size == 0:
            return 1.0
        k = int(hits[0])
        if k == 0:
            return 0.0
        # Linear between the last point below the level and the first one at or above it.
        lo, hi = pgr[k - 1], pgr[k]
        frac = (level - lo) / (hi - lo)
        return float(self.shares[k - 1] + frac * (self.shares[k] - self.shares[k - 1]))


def quality_curve(scores: np.ndarray, light: np.ndarray, reasoning: np.ndarray) -> QualityCurve:
    """The quality curve of a router's ``scores`` on prompts with per-pool qualities in [0, 1]."""
    scores = np.asarray(scores, dtype=np.float64)
    light = np.asarray(light, dtype=np.float64)
    reasoning = np.asarray(reasoning, dtype=np.float64)
    n = scores.shape[0]
    if n == 0 or light.shape != (n,) or reasoning.shape != (n,):
        raise ValueError("scores, light and reasoning must be non-empty 1-D arrays of the same length")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    gain = (reasoning - light)[order]
    # Within a run of tied scores every prompt gets the run's mean gain (expected value of a random order).
    starts = np.concatenate(([0], np.nonzero(np.diff(sorted_scores))[0] + 1))
    run_sums = np.add.reduceat(gain, starts)
    run_lengths = np.diff(np.concatenate((starts, [n])))
    smoothed = np.repeat(run_sums / run_lengths, run_lengths)
    cumulative = np.concatenate(([0.0], np.cumsum(smoothed)))
    quality = (light.sum() + cumulative) / n
    return QualityCurve(
        shares=np.arange(n + 1) / n,
        quality=quality,
        quality_light=float(light.mean()),
        quality_reasoning=float(reasoning.mean()),
    )


def summarize(curve: QualityCurve) -> dict[str, float]:
    """The headline metrics of one router."""
    metrics = {"apgr": curve.apgr()}
    for level in CPT_LEVELS:
        metrics[f"cpt_{round(level * 100)}"] = curve.cpt(level)
    for share in METRIC_SHARES:
        metrics[f"quality_at_{round(share * 100)}"] = curve.quality_at(share)
    return metrics


def baseline_scores(prompts: list[str], light: np.ndarray, reasoning: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of the reference routers: random (all tied), prompt length, and the oracle."""
    return {
        "random": np.zeros(len(prompts)),
        "prompt_length": np.array([len(p) for p in prompts], dtype=np.float64),
        "oracle": np.asarray(reasoning, dtype=np.float64) - np.asarray(light, dtype=np.float64),
    }


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins: sum over bins of |mean outcome - mean probability| weighted by bin size."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    if probabilities.shape != outcomes.shape or probabilities.size == 0:
        raise ValueError("probabilities and outcomes must be non-empty arrays of the same shape")
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(outcomes[mask].mean() - probabilities[mask].mean())
    return float(total)
