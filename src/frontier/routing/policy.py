"""Routing policies: pure functions of (request features, statistics snapshot) to a Decision."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from frontier.config import FrontierConfig
from frontier.routing.features import RequestFeatures
from frontier.schemas import Decision


@dataclass(frozen=True)
class StatsSnapshot:
    """Routing statistics at one moment (e.g. learned online); empty when there are none."""

    version: int = 0
    values: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # Read-only arrays (e.g. online posterior means/covariances) and string labels (e.g. a fingerprint).
    params: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class CostKnob:
    """The operator's (or a request's) cost setting: at most one of the two is set."""

    reasoning_share: float | None = None
    price_weight: float | None = None


class RoutingPolicy(ABC):
    """Turns request features and a statistics snapshot into a Decision, with no side effects."""

    name: str = "abstract"

    @property
    def version(self) -> str:
        """Policy name and version, shown to clients as ``policy_version``."""
        return f"{self.name}-1"

    @abstractmethod
    def decide(self, features: RequestFeatures, stats: StatsSnapshot, knob: CostKnob) -> Decision:
        """Pick a pool for a routed request."""


PolicyFactory = Callable[[FrontierConfig], RoutingPolicy]
POLICY_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Class/function decorator that makes a policy available under ``router.policy: NAME``."""

    def wrap(factory: PolicyFactory) -> PolicyFactory:
        POLICY_REGISTRY[name] = factory
        return factory

    return wrap


def build_policy(config: FrontierConfig) -> RoutingPolicy:
    """Instantiate the policy named in ``config.router.policy``."""
    # Importing the modules registers the shipped policies.
    import frontier.routing.policies  # noqa: F401
    import frontier.routing.learned  # noqa: F401

    try:
        factory = POLICY_REGISTRY[config.router.policy]
    except KeyError:
        known = ", ".join(sorted(POLICY_REGISTRY))
        raise ValueError(f"unknown routing policy {config.router.policy!r}; known: {known}") from None
    return factory(config)


def default_knob(config: FrontierConfig) -> CostKnob:
    """The operator's cost knob from config."""
    return CostKnob(reasoning_share=config.router.reasoning_share, price_weight=config.router.price_weight)


def sigmoid(x: float) -> float:
    """Numerically safe logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
