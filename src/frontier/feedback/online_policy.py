"""The live routing policy: offline scorer + online residual (from a StatsSnapshot) + capped exploration.

Pure given its inputs: ``decide_online(features, stats, knob, u)`` reads nothing but its arguments and
the immutable scorer/feature map, and returns the Decision together with the context the decision log
stores. The score has the learned router's scale: ``(1 + P(reasoning ok) - P(light ok)) / 2``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from frontier.feedback.decision_log import DecisionContext
from frontier.feedback.exploration import Choice, choose
from frontier.feedback.online_model import POOLS, FeatureMap, Posterior, belief, logit_correlation
from frontier.routing.features import RequestFeatures
from frontier.routing.policy import CostKnob, RoutingPolicy, StatsSnapshot
from frontier.schemas import Decision


class _Heads(Protocol):
    def logits(self, x: np.ndarray) -> np.ndarray:
        """Calibrated logits (..., 2) of P(adequate): light, reasoning."""


class OfflineScorer(Protocol):
    """What the online layer needs from the offline router (``frontier.routing.scorer.Scorer`` fits)."""

    params: _Heads

    def featurize(self, features: RequestFeatures) -> np.ndarray:
        """The scorer's feature vector of a request."""


@dataclass(frozen=True)
class OnlineParams:
    """The online model's part of a snapshot: the joint posterior and its evidence against the artifact."""

    posterior: Posterior
    evidence: float


def online_params(stats: StatsSnapshot, feature_map: FeatureMap) -> OnlineParams | None:
    """The online parameters in ``stats`` if they were learned over this feature map, else None."""
    if stats.labels.get("feature_map") != feature_map.fingerprint or "mean" not in stats.params:
        return None
    return OnlineParams(Posterior(stats.params["mean"], stats.params["cov"]), float(stats.values.get("evidence", 0.0)))


def online_choice(
    phi: np.ndarray,
    offsets: Mapping[str, float],
    params: OnlineParams | None,
    threshold: float,
    explore_cap: float,
    u: float,
) -> Choice:
    """Choice for one request; without online parameters it is the offline scorer's, unexplored."""
    if params is None:
        light, reasoning = (belief(None, 0.0, phi, offsets[pool], pool) for pool in POOLS)
        return choose(light, reasoning, threshold, 0.0, u)
    light, reasoning = (belief(params.posterior, params.evidence, phi, offsets[pool], pool) for pool in POOLS)
    corr = logit_correlation(params.posterior, np.asarray(phi, dtype=np.float64))
    return choose(light, reasoning, threshold, explore_cap, u, corr)


@dataclass(frozen=True)
class OnlineDecision:
    """A decision plus what the decision log needs to learn from its feedback."""

    decision: Decision
    context: DecisionContext
    choice: Choice


class OnlinePolicy(RoutingPolicy):
    """Routes on the offline scorer corrected by the live online statistics, exploring within a cap."""

    def __init__(
        self,
        scorer: OfflineScorer,
        feature_map: FeatureMap,
        operator_knob: CostKnob,
        default_threshold: float = 0.5,
        reasoning_extra_cost_usd: float = 0.0,
        explore_cap: float = 0.05,
        rng: random.Random | None = None,
        name: str = "learned",
        share_threshold: Callable[[float], float] | None = None,
    ) -> None:
        self.scorer = scorer
        self.feature_map = feature_map
        self.operator_knob = operator_knob
        self.default_threshold = default_threshold
        self.reasoning_extra_cost_usd = reasoning_extra_cost_usd
        self.explore_cap = explore_cap
        self.rng = rng or random.Random()
        self.name = f"{name}+online"
        self.share_threshold = share_threshold

    def threshold(self, stats: StatsSnapshot, knob: CostKnob) -> float:
        """The controller's threshold for the operator's knob; else the artifact's calibrated share
        threshold (``share_threshold``, e.g. ``RouterArtifact.threshold_for_share``); a price weight:
        gain > lambda * extra cost. A share of exactly 0 or 1 is exact (no controller needed), so a
        request scoring above everything in the controller's window cannot slip through."""
        exact_end = knob.reasoning_share is not None and knob.reasoning_share in (0.0, 1.0)
        if exact_end and self.share_threshold is not None:
            return self.share_threshold(knob.reasoning_share)
        if knob == self.operator_knob and "threshold" in stats.values:
            return float(stats.values["threshold"])
        if knob.reasoning_share is not None and self.share_threshold is not None:
            return self.share_threshold(knob.reasoning_share)
        if knob.price_weight is not None:
            return 0.5 + knob.price_weight * self.reasoning_extra_cost_usd / 2.0
        return self.default_threshold

    def decide_online(
        self, features: RequestFeatures, stats: StatsSnapshot, knob: CostKnob, u: float | None = None
    ) -> OnlineDecision:
        x = self.scorer.featurize(features)
        offsets = dict(zip(POOLS, (float(v) for v in self.scorer.params.logits(x)), strict=True))
        phi = self.feature_map(x)
        params = online_params(stats, self.feature_map)
        threshold = self.threshold(stats, knob)
        draw = self.rng.random() if u is None else u
        choice = online_choice(phi, offsets, params, threshold, self.explore_cap, draw)
        version = f"{self.name}-{stats.version if params is not None else 0}"
        decision = Decision(
            pool=choice.pool,
            reason="explore" if choice.explored else "policy",
            score=choice.score,
            threshold=threshold,
            policy_version=version,
        )
        context = DecisionContext(
            pool=choice.pool,
            features=phi,
            offline_logits=offsets,
            feature_map=self.feature_map.fingerprint,
            propensity=choice.propensity,
            policy_version=version,
            stats_version=stats.version,
            score=choice.score,
        )
        return OnlineDecision(decision, context, choice)

    def decide(self, features: RequestFeatures, stats: StatsSnapshot, knob: CostKnob) -> Decision:
        return self.decide_online(features, stats, knob).decision
