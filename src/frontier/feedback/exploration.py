"""Exploration with a budget: capped Thompson sampling with exact, logged propensities (pure functions).

Scores are on the learned router's scale: ``score = (1 + P(reasoning ok) - P(light ok)) / 2`` in [0, 1],
reasoning when ``score > threshold``. Thompson sampling would pick the pool whose *sampled* score clears
the threshold. We compute, by a fixed
quadrature over the two pools' (correlated) logit posteriors, the probability ``q`` that this differs from the greedy
choice, and go off-greedy with probability ``min(q, cap)``. So exploration concentrates on uncertain
requests near the threshold, never exceeds ``cap`` of routed traffic, vanishes as the posterior sharpens,
and the propensity of the chosen pool is known exactly (for off-policy evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from frontier.feedback.online_model import Belief

_NODES = np.array([NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16)])
_ZL, _ZR = (a.ravel() for a in np.meshgrid(_NODES, _NODES))


@dataclass(frozen=True)
class Choice:
    """A routing choice and how it was made."""

    pool: str
    greedy: str
    score: float
    propensity: float
    off_greedy_probability: float

    @property
    def explored(self) -> bool:
        return self.pool != self.greedy


def score(light: Belief, reasoning: Belief) -> float:
    """Routing score: 0.5 + expected gain of the reasoning pool / 2."""
    return (1.0 + reasoning.probability() - light.probability()) / 2.0


def off_greedy_probability(light: Belief, reasoning: Belief, threshold: float, correlation: float = 0.0) -> float:
    """Probability that a Thompson sample's choice differs from the greedy one (deterministic).

    ``correlation`` is the posterior correlation of the two pools' residual logits.
    """
    greedy_reason = score(light, reasoning) > threshold
    z_reason = correlation * _ZL + np.sqrt(max(1.0 - correlation**2, 0.0)) * _ZR
    sampled = (1.0 + reasoning.sample(z_reason) - light.sample(_ZL)) / 2.0
    return float(np.mean((sampled > threshold) != greedy_reason))


def choose(
    light: Belief, reasoning: Belief, threshold: float, cap: float, u: float, correlation: float = 0.0
) -> Choice:
    """Greedy choice, explored with probability ``min(q, cap)`` using the uniform draw ``u`` in [0, 1)."""
    s = score(light, reasoning)
    greedy = "reasoning" if s > threshold else "light"
    other = "light" if greedy == "reasoning" else "reasoning"
    e = min(off_greedy_probability(light, reasoning, threshold, correlation), cap) if cap > 0 else 0.0
    if u < e:
        return Choice(other, greedy, s, e, e)
    return Choice(greedy, greedy, s, 1.0 - e, e)
