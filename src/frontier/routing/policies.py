"""Building the Router that ``router.policy`` names: ``learned`` (default), ``heuristic``, ``always-*``.

Every policy is the same ``Router`` (one decision path, one threshold rule); they differ only in the
offline scorer: a trained artifact, or a hand-set logistic score over structural signals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from frontier.config import FrontierConfig
from frontier.routing.artifact import DEFAULT_ARTIFACT, RouterArtifact, load_artifact
from frontier.routing.feature_map import online_feature_map
from frontier.routing.features import RequestFeatures
from frontier.routing.router import Router, ThresholdRule, extra_reasoning_cost_usd, switch_rule
from frontier.routing.types import CostKnob, Pool

# Weights of the heuristic's logit over (log1p(chars/200), turns, sqrt code markers, sqrt math
# markers, tools, reasoning intent).
HEURISTIC_WEIGHTS = np.array([0.45, 0.25, 0.6, 0.7, 0.5, 3.0])
HEURISTIC_BIAS = -2.0


class HeuristicHeads:
    """The heuristic's "heads": logits (-h, h), so the router's score ``(1 + p_r - p_l) / 2`` is sigmoid(h)."""

    mean = np.zeros(len(HEURISTIC_WEIGHTS))
    scale = np.ones(len(HEURISTIC_WEIGHTS))

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float64) @ HEURISTIC_WEIGHTS + HEURISTIC_BIAS
        return np.stack([-h, h], axis=-1)


class HeuristicScorer:
    """Scores a request from structural signals: length, turns, code, math, tools and explicit intent."""

    params = HeuristicHeads()

    def featurize(self, features: RequestFeatures) -> np.ndarray:
        return np.array(
            [
                math.log1p(features.prompt_chars / 200),
                min(features.num_user_turns, 8),
                min(features.code_markers, 5) ** 0.5,
                min(features.math_markers, 5) ** 0.5,
                float(features.has_tools),
                float(features.reasoning_intent),
            ],
            dtype=np.float32,
        )


def _rule(config: FrontierConfig, share_threshold: Callable[[float], float]) -> ThresholdRule:
    return ThresholdRule(
        operator_knob=default_knob(config),
        share_threshold=share_threshold,
        extra_cost_usd=partial(extra_reasoning_cost_usd, config.pools),
        default=config.router.threshold,
        switch=switch_rule(config.router.session, config.pools),
    )


def learned_router(config: FrontierConfig, artifact: RouterArtifact, artifact_dir: str | Path | None) -> Router:
    """The router of a trained artifact (loaded from ``artifact_dir``; None = the packaged default)."""
    params = artifact.scorer.params
    directory = artifact_dir if artifact_dir is not None else DEFAULT_ARTIFACT
    return Router(
        f"learned-{artifact.version}",
        artifact.scorer,
        online_feature_map(directory, params.mean, params.scale, config.feedback.online_dim),
        _rule(config, artifact.threshold_for_share),
        explore_cap=config.feedback.explore_cap,
        seed=config.feedback.explore_seed,
    )


def _learned(config: FrontierConfig) -> Router:
    return learned_router(config, load_artifact(config.router.artifact), config.router.artifact)


def _heuristic(config: FrontierConfig) -> Router:
    scorer = HeuristicScorer()
    params = scorer.params
    return Router(
        "heuristic-1",
        scorer,
        online_feature_map(None, params.mean, params.scale, config.feedback.online_dim),
        # The heuristic's score is uncalibrated: a share maps straight onto its scale (ends exact).
        _rule(config, lambda share: 1.0 - share),
        explore_cap=config.feedback.explore_cap,
        seed=config.feedback.explore_seed,
    )


def _pinned(pool: Pool) -> Callable[[FrontierConfig], Router]:
    def build(config: FrontierConfig) -> Router:
        return Router(f"always-{pool}-1", None, None, _rule(config, lambda share: 1.0 - share), pinned=pool)

    return build


POLICIES: dict[str, Callable[[FrontierConfig], Router]] = {
    "learned": _learned,
    "heuristic": _heuristic,
    "always-light": _pinned(Pool.LIGHT),
    "always-reasoning": _pinned(Pool.REASONING),
}


def build_router(config: FrontierConfig) -> Router:
    """The Router of ``config.router.policy``."""
    try:
        factory = POLICIES[config.router.policy]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown routing policy {config.router.policy!r}; known: {known}") from None
    return factory(config)


def default_knob(config: FrontierConfig) -> CostKnob:
    """The operator's cost knob from config."""
    return CostKnob(reasoning_share=config.router.reasoning_share, price_weight=config.router.price_weight)
