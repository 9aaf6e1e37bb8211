"""The ``learned`` policy: a trained scorer plus one cost knob.

The score is ``(1 + p_reasoning - p_light) / 2`` (0.5 = no expected gain). The knob sets the threshold:
- ``reasoning_share``: the score quantile that sends that share of the calibration traffic to reasoning;
- ``price_weight`` (lambda): reasoning when ``p_r - lambda * cost_r > p_l - lambda * cost_l``, costs from
  the pools' prices, the prompt length and their expected completion lengths;
- neither: ``router.threshold`` from config.
"""

from __future__ import annotations

from frontier.config import FrontierConfig, PoolsConfig
from frontier.routing.artifact import RouterArtifact, load_artifact
from frontier.routing.features import RequestFeatures
from frontier.routing.policy import CostKnob, RoutingPolicy, StatsSnapshot, register_policy
from frontier.schemas import Decision

CHARS_PER_PROMPT_TOKEN = 4


def extra_reasoning_cost_usd(pools: PoolsConfig, prompt_chars: int) -> float:
    """Expected USD cost of the reasoning pool minus the light pool's for a prompt of ``prompt_chars``."""
    prompt_tokens = prompt_chars // CHARS_PER_PROMPT_TOKEN + 1
    reasoning = pools.reasoning.estimated_cost_usd(prompt_tokens, pools.reasoning.expected_output_tokens)
    light = pools.light.estimated_cost_usd(prompt_tokens, pools.light.expected_output_tokens)
    return reasoning - light


class LearnedPolicy(RoutingPolicy):
    """Routes by a trained artifact's calibrated expected gain of the reasoning pool."""

    name = "learned"

    def __init__(self, artifact: RouterArtifact, pools: PoolsConfig, threshold: float) -> None:
        self.artifact = artifact
        self.pools = pools
        self.threshold = threshold

    @property
    def version(self) -> str:
        return f"{self.name}-{self.artifact.version}"

    def threshold_for(self, features: RequestFeatures, knob: CostKnob) -> float:
        """The score threshold the knob implies for this request."""
        if knob.reasoning_share is not None:
            return self.artifact.threshold_for_share(knob.reasoning_share)
        if knob.price_weight is not None:
            # score > t  <=>  p_r - p_l > lambda * (extra cost), with score = (1 + p_r - p_l) / 2.
            extra = knob.price_weight * extra_reasoning_cost_usd(self.pools, features.prompt_chars)
            return min(max(0.5 + extra / 2.0, 0.0), 1.0)
        return self.threshold

    def decide(self, features: RequestFeatures, stats: StatsSnapshot, knob: CostKnob) -> Decision:
        score = self.artifact.scorer.score(features)
        threshold = self.threshold_for(features, knob)
        pool = "reasoning" if score > threshold else "light"
        return Decision(pool=pool, reason="policy", score=score, threshold=threshold, policy_version=self.version)


@register_policy("learned")
def _learned(config: FrontierConfig) -> RoutingPolicy:
    return LearnedPolicy(load_artifact(config.router.artifact), config.pools, config.router.threshold)
