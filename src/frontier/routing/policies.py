"""Built-in routing policies that need no trained artifact."""

from __future__ import annotations

import math

from frontier.config import FrontierConfig
from frontier.routing.features import RequestFeatures
from frontier.routing.policy import CostKnob, RoutingPolicy, StatsSnapshot, register_policy, sigmoid
from frontier.schemas import Decision


class HeuristicPolicy(RoutingPolicy):
    """Scores a request from structural signals: length, turns, code, math and explicit intent."""

    name = "heuristic"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    @staticmethod
    def score(features: RequestFeatures) -> float:
        """Probability-like score that the request benefits from reasoning."""
        logit = (
            -2.0
            + 0.45 * math.log1p(features.prompt_chars / 200)
            + 0.25 * min(features.num_user_turns, 8)
            + 0.6 * min(features.code_markers, 5) ** 0.5
            + 0.7 * min(features.math_markers, 5) ** 0.5
            + (0.5 if features.has_tools else 0.0)
            + (3.0 if features.reasoning_intent else 0.0)
        )
        return sigmoid(logit)

    def decide(self, features: RequestFeatures, stats: StatsSnapshot, knob: CostKnob) -> Decision:
        score = self.score(features)
        # The share knob maps directly onto the threshold of a calibrated-looking score.
        threshold = 1.0 - knob.reasoning_share if knob.reasoning_share is not None else self.threshold
        pool = "reasoning" if score > threshold else "light"
        return Decision(pool=pool, reason="policy", score=score, threshold=threshold, policy_version=self.version)


class FixedPolicy(RoutingPolicy):
    """Always the same pool: a baseline and a safe mode."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.name = f"always-{pool}"

    def decide(self, features: RequestFeatures, stats: StatsSnapshot, knob: CostKnob) -> Decision:
        return Decision(pool=self.pool, reason="policy", score=None, threshold=None, policy_version=self.version)


@register_policy("heuristic")
def _heuristic(config: FrontierConfig) -> RoutingPolicy:
    return HeuristicPolicy(threshold=config.router.threshold)


@register_policy("always-light")
def _always_light(config: FrontierConfig) -> RoutingPolicy:
    return FixedPolicy("light")


@register_policy("always-reasoning")
def _always_reasoning(config: FrontierConfig) -> RoutingPolicy:
    return FixedPolicy("reasoning")
