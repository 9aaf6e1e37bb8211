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

import hashlib
import struct
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from frontier.routing.features import RequestFeatures
from frontier.routing.online import Belief
from frontier.routing.types import Pool

_NODES = np.array([NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16)])
_ZL, _ZR = (a.ravel() for a in np.meshgrid(_NODES, _NODES))


@dataclass(frozen=True)
class Choice:
    """A routing choice and how it was made."""

    pool: Pool
    greedy: Pool
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
    greedy = Pool.REASONING if s > threshold else Pool.LIGHT
    other = greedy.other
    e = min(off_greedy_probability(light, reasoning, threshold, correlation), cap) if cap > 0 else 0.0
    if u < e:
        return Choice(other, greedy, s, e, e)
    return Choice(greedy, greedy, s, 1.0 - e, e)


def exploration_draw(seed: int, features: RequestFeatures, state_version: int) -> float:
    """The uniform draw in [0, 1) that decides whether a request explores: a keyed hash of the request.

    Deterministic in (configured seed, the request's text and shape, live state version), so a simulator
    and a live server fed the same requests against the same state make the same choices. The logged
    propensities stay valid: the hash is a pseudo-random function of inputs unrelated to any outcome, so
    over requests and state versions ``u`` is uniform and independent of what feedback will say, and
    ``P(off-greedy | request, state) = min(q, cap)`` as logged. Only an identical request against an
    identical state repeats its draw (its choice is then already logged with the same propensity).
    """
    digest = hashlib.blake2b(digest_size=8, key=struct.pack("<q", seed))
    digest.update(struct.pack("<qiiB", state_version, features.num_messages, features.num_user_turns, features.has_tools))
    digest.update(features.text.encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest(), "little") / 2.0**64
