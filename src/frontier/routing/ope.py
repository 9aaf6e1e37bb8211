"""Off-policy evaluation of routing policies from the decision log (pure numpy).

Each logged decision has the pool the live policy chose, the probability it had of choosing it (the
logged propensity: exploration makes it < 1) and the feedback on that pool's answer. A candidate policy
is judged on the same requests without serving it: inverse propensity scoring (IPS), its self-normalised
form (SNIPS), and the doubly robust estimate (DR), which adds the candidate's own outcome model so that
requests where the candidate disagrees with a greedy logger still count.

The value of a policy is quality minus the cost of reasoning in quality units: a score threshold ``t``
on ``(1 + gain) / 2`` means reasoning is worth it when its gain exceeds ``2t - 1``, so that is its price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Weights above this are clipped: one rarely explored request must not decide a promotion alone.
MAX_WEIGHT = 20.0


@dataclass(frozen=True)
class LoggedDecisions:
    """Logged routing decisions with feedback: one entry per request."""

    reasoning: np.ndarray  # bool, the logged pool was reasoning
    propensity: np.ndarray  # probability the logging policy had of that pool
    reward: np.ndarray  # feedback on the logged pool's answer, in [0, 1]

    def __post_init__(self) -> None:
        n = len(self.reasoning)
        if len(self.propensity) != n or len(self.reward) != n:
            raise ValueError("reasoning, propensity and reward must have one entry per decision")
        if n and (np.any(self.propensity <= 0) or np.any(self.propensity > 1)):
            raise ValueError("propensities must be in (0, 1]")


@dataclass(frozen=True)
class Estimate:
    """A policy's estimated value per request, with its standard error and how much data backs it."""

    ips: float
    snips: float
    dr: float
    dr_stderr: float
    matched: int  # logged decisions where the candidate chose the logged pool
    n: int


def reasoning_price(threshold: float) -> float:
    """The quality a reasoning call must add to be worth its cost, implied by a score threshold."""
    return 2.0 * threshold - 1.0


def _terms(
    logged: LoggedDecisions, candidate_reasoning: np.ndarray, predicted: np.ndarray, price: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-request importance weights, IPS terms and DR terms of a deterministic candidate."""
    candidate = np.asarray(candidate_reasoning, dtype=bool)
    logged_pool = np.asarray(logged.reasoning, dtype=bool)
    weight = np.where(candidate == logged_pool, np.minimum(1.0 / logged.propensity, MAX_WEIGHT), 0.0)
    reward = np.asarray(logged.reward, dtype=np.float64) - np.where(logged_pool, price, 0.0)
    chosen = np.where(candidate, predicted[:, 1] - price, predicted[:, 0])
    logged_model = np.where(logged_pool, predicted[:, 1] - price, predicted[:, 0])
    return weight, weight * reward, chosen + weight * (reward - logged_model)


def _stderr(terms: np.ndarray) -> float:
    return float(np.std(terms, ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("inf")


def estimate(
    logged: LoggedDecisions,
    candidate_reasoning: np.ndarray,
    predicted: np.ndarray,
    price: float,
) -> Estimate:
    """Value of a deterministic candidate that routes to reasoning where ``candidate_reasoning`` is True.

    ``predicted`` (n, 2) is an outcome model's P(adequate) of [light, reasoning] per request (the DR
    model term); compare two candidates with the same outcome model.
    """
    n = len(logged.reasoning)
    if n == 0:
        return Estimate(0.0, 0.0, 0.0, float("inf"), 0, 0)
    weight, ips_terms, dr_terms = _terms(logged, candidate_reasoning, predicted, price)
    snips = float(np.sum(ips_terms) / np.sum(weight)) if np.sum(weight) > 0 else 0.0
    matched = int(np.sum(weight > 0))
    return Estimate(float(np.mean(ips_terms)), snips, float(np.mean(dr_terms)), _stderr(dr_terms), matched, n)


@dataclass(frozen=True)
class Comparison:
    """Candidate minus live DR value on the same logged requests (paired), with its standard error."""

    difference: float
    stderr: float
    n: int

    def not_worse(self, z: float = 2.0) -> bool:
        """The promotion rule: the candidate is not significantly worse than the live policy."""
        return self.n > 0 and self.difference >= -z * self.stderr


def compare(
    logged: LoggedDecisions,
    candidate_reasoning: np.ndarray,
    live_reasoning: np.ndarray,
    predicted: np.ndarray,
    price: float,
) -> Comparison:
    """Paired DR comparison of a candidate against the live policy on one log."""
    n = len(logged.reasoning)
    if n == 0:
        return Comparison(0.0, float("inf"), 0)
    diff = _terms(logged, candidate_reasoning, predicted, price)[2] - _terms(logged, live_reasoning, predicted, price)[2]
    return Comparison(float(np.mean(diff)), _stderr(diff) if n > 1 else 0.0, n)
