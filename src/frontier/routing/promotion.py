"""The promotion gate's verdict (pure numpy): is a candidate online state not worse than the served one?

Both states decide greedily, as ``Router.scores`` does (``greedy_scores``, reasoning when the score is
above the threshold), on logged events that neither learned from; ``routing/ope`` then estimates each
decision rule's value (quality minus ``reasoning_price(threshold)`` per reasoning call) from the logged
propensities and rewards, and compares the two on the same events (paired doubly robust difference).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from frontier.routing.online import predictive_probability, sigmoid
from frontier.routing.ope import Comparison, Estimate, LoggedDecisions, compare, estimate, reasoning_price
from frontier.routing.router import OnlineParams, greedy_scores
from frontier.routing.types import POOLS

# How many standard errors worse than the served state a candidate may look and still be promoted.
PROMOTION_Z = 2.0


@dataclass(frozen=True)
class LoggedEvents:
    """Logged decisions with feedback and what a state needs to score them again."""

    phi: np.ndarray  # (n, k) online features
    offsets: np.ndarray  # (n, 2) offline logits, light and reasoning
    decisions: LoggedDecisions
    versions: np.ndarray  # (n,) the learner version that first contained each event

    def after(self, version: int) -> "LoggedEvents":
        """The events a state frozen at ``version`` has not learned from."""
        keep = self.versions > version
        d = self.decisions
        return LoggedEvents(
            self.phi[keep],
            self.offsets[keep],
            LoggedDecisions(d.reasoning[keep], d.propensity[keep], d.reward[keep]),
            self.versions[keep],
        )

    def __len__(self) -> int:
        return len(self.versions)


@dataclass(frozen=True)
class Verdict:
    """Both states' estimated values, their paired difference, and whether the candidate may be served."""

    candidate: Estimate
    served: Estimate
    comparison: Comparison
    threshold: float
    promote: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def pool_probabilities(phi: np.ndarray, offsets: np.ndarray, params: OnlineParams | None) -> np.ndarray:
    """A state's greedy P(adequate) of [light, reasoning] per event, (n, 2): the doubly robust outcome model."""
    if params is None:
        return sigmoid(offsets)
    return np.stack(
        [predictive_probability(params.posterior, params.evidence, phi, offsets[:, i], pool) for i, pool in enumerate(POOLS)],
        axis=1,
    )


def judge(
    events: LoggedEvents,
    candidate: OnlineParams | None,
    served: OnlineParams | None,
    threshold: float,
    z: float = PROMOTION_Z,
) -> Verdict:
    """The gate's verdict on ``events`` (which neither state may have learned from).

    The outcome model of the doubly robust terms is the mean of both states' predictions, so it favours
    neither. With no events there is no evidence, and the candidate is not promoted."""
    price = reasoning_price(threshold)
    phi, offsets = np.asarray(events.phi, dtype=np.float64), np.asarray(events.offsets, dtype=np.float64)
    candidate_reasoning = greedy_scores(phi, offsets, candidate) > threshold
    served_reasoning = greedy_scores(phi, offsets, served) > threshold
    predicted = 0.5 * (pool_probabilities(phi, offsets, candidate) + pool_probabilities(phi, offsets, served))
    logged = events.decisions
    comparison = compare(logged, candidate_reasoning, served_reasoning, predicted, price)
    return Verdict(
        estimate(logged, candidate_reasoning, predicted, price),
        estimate(logged, served_reasoning, predicted, price),
        comparison,
        threshold,
        comparison.not_worse(z),
    )
