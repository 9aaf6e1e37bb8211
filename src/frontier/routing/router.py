"""The router: Frontier's one routing decision. Serving, ``frontier replay``, ``score``, ``eval`` and ``bench`` call it.

``Router.decide(features, live, knob)`` is pure given its arguments: explicit pool models and
``reasoning_effort`` first; otherwise the offline scorer's logits, corrected by the online residual in the
live state (when it was learned over this router's feature map), compared with the threshold the cost
knob implies (``threshold_for``, the one threshold rule), explored within a cap with a reproducible draw.
It returns the Decision and the context the decision log keeps to learn from feedback.
A follow-up turn of a known conversation (``session``) does not explore: it stays on the pool that answered its
previous turn unless its score clears the threshold by a margin (``follow_up``, the one switching rule).
``Router.scores(x, live)`` is the same greedy score for a batch of feature vectors (evaluation).

The score has the learned router's scale: ``(1 + P(reasoning ok) - P(light ok)) / 2``, 0.5 = no gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from frontier.config import PoolsConfig, SessionConfig
from frontier.errors import FrontierError
from frontier.routing.exploration import Choice, choose, exploration_draw
from frontier.routing.feature_map import FeatureMap
from frontier.routing.features import RequestFeatures
from frontier.routing.online import Posterior, belief, logit_correlation, predictive_probability, sigmoid
from frontier.routing.types import POOLS, CostKnob, DecisionContext, Pool, Reason, SessionState, StatsSnapshot
from frontier.schemas import POOL_MODELS, PUBLIC_MODELS, ROUTED_MODEL, Decision

EFFORT_POOLS = {"minimal": Pool.LIGHT, "high": Pool.REASONING}
CHARS_PER_PROMPT_TOKEN = 4


class _Heads(Protocol):
    mean: np.ndarray
    scale: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Calibrated logits (..., 2) of P(adequate): light, reasoning."""


class OfflineScorer(Protocol):
    """The offline part of a router (``frontier.routing.scorer.Scorer`` fits)."""

    params: _Heads

    def featurize(self, features: RequestFeatures) -> np.ndarray:
        """The scorer's feature vector of a request."""


def extra_reasoning_cost_usd(pools: PoolsConfig, prompt_chars: int) -> float:
    """Expected USD cost of the reasoning pool minus the light pool's for a prompt of ``prompt_chars``."""
    prompt_tokens = prompt_chars // CHARS_PER_PROMPT_TOKEN + 1
    reasoning = pools.reasoning.estimated_cost_usd(prompt_tokens, pools.reasoning.expected_output_tokens)
    light = pools.light.estimated_cost_usd(prompt_tokens, pools.light.expected_output_tokens)
    return reasoning - light


@dataclass(frozen=True)
class SwitchRule:
    """What moving a conversation to the other pool costs, in score points: ``penalty`` plus ``cache_weight``
    points per USD of prefix cache the move throws away (the history's tokens at the target pool's input price)."""

    penalty: float = 0.25
    cache_weight: float = 10.0
    input_price_per_mtok: Mapping[Pool, float] = field(default_factory=dict)

    def margin(self, target: Pool, history_tokens: int) -> float:
        usd = history_tokens * self.input_price_per_mtok.get(target, 0.0) / 1_000_000
        return self.penalty + self.cache_weight * usd


def switch_rule(session: SessionConfig, pools: PoolsConfig) -> SwitchRule:
    """The switching rule of ``router.session`` at the pools' input prices."""
    prices = {pool: pools.get(pool).price_input_per_mtok for pool in POOLS}
    return SwitchRule(session.switch_penalty, session.cache_weight, prices)


@dataclass(frozen=True)
class ThresholdRule:
    """What the threshold depends on besides the request: the operator's knob, the router's calibrated
    share quantiles (``share_threshold``, exact at 0 and 1), the pools' prices and ``router.threshold``;
    and what a follow-up turn must clear beyond it to move its conversation (``switch``)."""

    operator_knob: CostKnob
    share_threshold: Callable[[float], float]
    extra_cost_usd: Callable[[int], float]
    default: float = 0.5
    switch: SwitchRule = SwitchRule()


def threshold_for(rule: ThresholdRule, knob: CostKnob, live: StatsSnapshot, prompt_chars: int) -> float:
    """THE threshold rule: the score above which a request of ``prompt_chars`` goes to reasoning.

    - ``reasoning_share``: the cost controller's live threshold when the knob is the operator's and the
      controller has published one; else the calibrated share quantile. A share of exactly 0 or 1 is always
      the quantile (exact: nothing / everything), so no request slips past the controller's window.
    - ``price_weight`` (lambda): reasoning when ``p_r - p_l > lambda * extra cost``, i.e.
      ``score > 0.5 + lambda * extra / 2``, clamped to [0, 1].
    - neither: ``router.threshold``.
    """
    share = knob.reasoning_share
    if share is not None:
        if 0.0 < share < 1.0 and knob == rule.operator_knob and "threshold" in live.values:
            return float(live.values["threshold"])
        return rule.share_threshold(share)
    if knob.price_weight is not None:
        t = 0.5 + knob.price_weight * rule.extra_cost_usd(prompt_chars) / 2.0
        return 0.5 if math.isnan(t) else min(max(t, 0.0), 1.0)
    return rule.default


def follow_up(session: SessionState, score: float, threshold: float, rule: SwitchRule) -> tuple[Pool, Reason, float]:
    """THE switching rule: a follow-up turn's pool, reason and margin. It stays on its conversation's pool unless
    its score is past the threshold, towards the other pool, by the margin a move to that pool costs."""
    target = session.pool.other
    margin = rule.margin(target, session.history_tokens)
    leaves = score > threshold + margin if target is Pool.REASONING else score < threshold - margin
    return (target, Reason.SESSION_SWITCH, margin) if leaves else (session.pool, Reason.SESSION, margin)


@dataclass(frozen=True)
class OnlineParams:
    """The online model's part of a live state: the joint posterior and its evidence against the artifact."""

    posterior: Posterior
    evidence: float


def online_params(live: StatsSnapshot, feature_map: FeatureMap) -> OnlineParams | None:
    """The online parameters in ``live`` if they were learned over this feature map, else None."""
    if live.labels.get("feature_map") != feature_map.fingerprint or "mean" not in live.params:
        return None
    return OnlineParams(Posterior(live.params["mean"], live.params["cov"]), float(live.values.get("evidence", 0.0)))


def online_choice(
    phi: np.ndarray, offsets: Mapping[str, float], params: OnlineParams | None, threshold: float, cap: float, u: float
) -> Choice:
    """Choice for one request; without online parameters it is the offline scorer's, unexplored."""
    if params is None:
        light, reasoning = (belief(None, 0.0, phi, offsets[pool], pool) for pool in POOLS)
        return choose(light, reasoning, threshold, 0.0, u)
    light, reasoning = (belief(params.posterior, params.evidence, phi, offsets[pool], pool) for pool in POOLS)
    corr = logit_correlation(params.posterior, np.asarray(phi, dtype=np.float64))
    return choose(light, reasoning, threshold, cap, u, corr)


def greedy_scores(phi: np.ndarray, offsets: np.ndarray, params: OnlineParams | None) -> np.ndarray:
    """``online_choice``'s score for many requests (rows of ``phi`` and of the (n, 2) ``offsets``)."""
    probs = [
        sigmoid(offsets[:, i])
        if params is None
        else predictive_probability(params.posterior, params.evidence, phi, offsets[:, i], pool)
        for i, pool in enumerate(POOLS)
    ]
    return (1.0 + probs[1] - probs[0]) / 2.0


@dataclass(frozen=True)
class RoutedDecision:
    """A decision, and for a decision the router made itself the context its feedback needs."""

    decision: Decision
    context: DecisionContext | None = None


class Router:
    """One routing brain: offline scorer + online residual + threshold rule + capped exploration.

    ``pinned`` makes a fixed-pool router (``always-light``/``always-reasoning``): no score, no learning.
    """

    def __init__(
        self,
        name: str,
        scorer: OfflineScorer | None,
        feature_map: FeatureMap | None,
        rule: ThresholdRule,
        explore_cap: float = 0.0,
        seed: int = 0,
        pinned: Pool | None = None,
    ) -> None:
        if pinned is None and (scorer is None or feature_map is None):
            raise ValueError("a router needs a scorer and a feature map unless it is pinned to one pool")
        self.name = name
        self.scorer = scorer
        self.feature_map = feature_map
        self.rule = rule
        self.explore_cap = explore_cap
        self.seed = seed
        self.pinned = pinned

    def threshold(self, knob: CostKnob, live: StatsSnapshot, prompt_chars: int) -> float:
        return threshold_for(self.rule, knob, live, prompt_chars)

    def decide(
        self,
        features: RequestFeatures,
        live: StatsSnapshot,
        knob: CostKnob,
        *,
        model: str = ROUTED_MODEL,
        reasoning_effort: str | None = None,
        draw: float | None = None,
        session: SessionState | None = None,
    ) -> RoutedDecision:
        """Route one request to ``model``; unknown models raise a 404. ``draw`` overrides the exploration draw.

        ``session``: the request is a follow-up turn of a known conversation (explicit models and
        ``reasoning_effort`` still win; a pinned router stays pinned)."""
        if model in POOL_MODELS:
            return RoutedDecision(Decision(pool=POOL_MODELS[model], reason=Reason.EXPLICIT, policy_version=self.name))
        if model != ROUTED_MODEL:
            raise FrontierError(
                404,
                f"The model '{model}' does not exist. Available models: {', '.join(PUBLIC_MODELS)}.",
                param="model",
                code="model_not_found",
            )
        if reasoning_effort in EFFORT_POOLS:
            pool = EFFORT_POOLS[reasoning_effort]
            return RoutedDecision(Decision(pool=pool, reason=Reason.EFFORT, policy_version=self.name))
        if self.pinned is not None:
            return RoutedDecision(Decision(pool=self.pinned, reason=Reason.POLICY, policy_version=self.name))
        x = self.scorer.featurize(features)
        offsets = dict(zip(POOLS, (float(v) for v in self.scorer.params.logits(x)), strict=True))
        phi = self.feature_map(x)
        params = online_params(live, self.feature_map)
        threshold = self.threshold(knob, live, features.prompt_chars)
        cap = self.explore_cap if session is None else 0.0  # a conversation's pool is not explored
        if draw is None:
            # Only a request that can explore needs its draw (hashing a long prompt is not free).
            can_explore = params is not None and cap > 0
            draw = exploration_draw(self.seed, features, live.version) if can_explore else 1.0
        choice = online_choice(phi, offsets, params, threshold, cap, draw)
        pool, reason, margin = choice.pool, Reason.EXPLORE if choice.explored else Reason.POLICY, None
        if session is not None:
            pool, reason, margin = follow_up(session, choice.score, threshold, self.rule.switch)
        # The live state's version shows when an online model over this router's features took part.
        version = f"{self.name}+online-{live.version}" if params is not None else self.name
        decision = Decision(
            pool=pool, reason=reason, score=choice.score, threshold=threshold, margin=margin, policy_version=version
        )
        context = DecisionContext(
            pool=pool,
            features=phi,
            offline_logits=offsets,
            feature_map=self.feature_map.fingerprint,
            propensity=choice.propensity,
            policy_version=version,
            stats_version=live.version,
            score=choice.score,
        )
        return RoutedDecision(decision, context)

    def rescorer(self, live: Callable[[], StatsSnapshot]) -> tuple[int, Callable[..., np.ndarray]] | None:
        """For the cost controller: the online feature dimension and the greedy scores of logged requests
        (online features, (n, 2) offline logits) under the current live state; None without an online model."""
        fm = self.feature_map
        if fm is None or self.pinned is not None:
            return None
        return fm.dim, lambda phi, offsets: greedy_scores(phi, offsets, online_params(live(), fm))

    def scores(self, x: np.ndarray, live: StatsSnapshot) -> np.ndarray:
        """Greedy scores of many requests from their feature vectors (n, d): ``decide``'s ``score`` for each
        (for a pinned router, 1 for reasoning and 0 for light)."""
        x = np.asarray(x)
        if self.pinned is not None:
            return np.full(len(x), 1.0 if self.pinned is Pool.REASONING else 0.0)
        offsets = np.asarray(self.scorer.params.logits(x), dtype=np.float64)
        return greedy_scores(self.feature_map(x), offsets, online_params(live, self.feature_map))
