"""Request-level routing: explicit models and ``reasoning_effort`` first, then the policy."""

from __future__ import annotations

from frontier.errors import FrontierError
from frontier.routing.features import RequestFeatures
from frontier.routing.policy import CostKnob, RoutingPolicy, StatsSnapshot
from frontier.schemas import POOL_MODELS, PUBLIC_MODELS, ROUTED_MODEL, Decision

EFFORT_POOLS = {"minimal": "light", "high": "reasoning"}


def route(
    model: str,
    reasoning_effort: str | None,
    features: RequestFeatures,
    policy: RoutingPolicy,
    stats: StatsSnapshot,
    knob: CostKnob,
) -> Decision:
    """Decide the pool for a request to ``model``; unknown models raise a 404."""
    if model in POOL_MODELS:
        return Decision(pool=POOL_MODELS[model], reason="explicit", policy_version=policy.version)
    if model != ROUTED_MODEL:
        raise FrontierError(
            404,
            f"The model '{model}' does not exist. Available models: {', '.join(PUBLIC_MODELS)}.",
            param="model",
            code="model_not_found",
        )
    if reasoning_effort in EFFORT_POOLS:
        return Decision(pool=EFFORT_POOLS[reasoning_effort], reason="effort", policy_version=policy.version)
    return policy.decide(features, stats, knob)
