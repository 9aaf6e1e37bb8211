"""The routing decision's vocabulary: pools, reasons, the cost knob, the live state, a conversation's state and
the decision context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import numpy as np


class Pool(StrEnum):
    """A model pool; the value is the wire string (JSON, headers, metrics, Redis)."""

    LIGHT = "light"
    REASONING = "reasoning"

    @property
    def other(self) -> "Pool":
        return Pool.REASONING if self is Pool.LIGHT else Pool.LIGHT


POOLS: tuple[Pool, Pool] = (Pool.LIGHT, Pool.REASONING)


class Reason(StrEnum):
    """Why a request went to its pool; the value is the wire string."""

    POLICY = "policy"  # the router's greedy choice
    EXPLORE = "explore"  # the router went off its greedy choice to learn
    EXPLICIT = "explicit"  # the caller named a pool model
    EFFORT = "effort"  # the caller's reasoning_effort
    OVERFLOW = "overflow"  # the chosen pool was busy or saturated
    FALLBACK = "fallback"  # the chosen pool failed before answering
    BUDGET = "budget"  # the key's reasoning budget was spent
    SESSION = "session"  # a follow-up turn stayed on the pool that answered its conversation's previous turn
    SESSION_SWITCH = "session_switch"  # a follow-up turn's score cleared the threshold by the switching margin


# Reasons of decisions the router made itself (these feed the share controller and learning).
ROUTER_REASONS = frozenset({Reason.POLICY, Reason.EXPLORE, Reason.SESSION, Reason.SESSION_SWITCH})
# Reasons of decisions that kept or moved a known conversation.
SESSION_REASONS = frozenset({Reason.SESSION, Reason.SESSION_SWITCH})
# Reasons of decisions the caller made.
CALLER_REASONS = frozenset({Reason.EXPLICIT, Reason.EFFORT})


@dataclass(frozen=True)
class CostKnob:
    """The operator's (or a request's) cost setting: at most one of the two is set."""

    reasoning_share: float | None = None
    price_weight: float | None = None


@dataclass(frozen=True)
class SessionState:
    """A known conversation at its new turn: the pool that answered its previous turn, and the size of the history
    (prompt tokens) that pool holds in its prefix cache and a switch would prefill again."""

    pool: Pool
    history_tokens: int = 0


@dataclass(frozen=True)
class StatsSnapshot:
    """The live routing state at one moment (online posterior, controller threshold); empty when there is none."""

    version: int = 0
    values: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # Read-only arrays (the online posterior's mean/cov) and string labels (the feature map's fingerprint).
    params: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class DecisionContext:
    """Everything the online learner and off-policy evaluation need about one routed decision."""

    pool: Pool
    features: np.ndarray
    offline_logits: Mapping[str, float]
    feature_map: str
    propensity: float
    policy_version: str
    stats_version: int
    key_id: str | None = None
    score: float | None = None
    routed_by_policy: bool = True
