"""The one configuration model used by the CLI, ``serve deploy`` and the Helm chart."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from frontier.config.access import ApiKeyEntry, AuthConfig, BatchConfig, LimitsConfig
from frontier.config.base import PoolName, Strict
from frontier.config.online import ControllerConfig, FeedbackConfig, ObservabilityConfig, RedisConfig
from frontier.config.serving import (
    AutoscalingConfig,
    PoolConfig,
    PoolsConfig,
    PrefixAffinityConfig,
    ReplicaResources,
    RouterConfig,
    ServerConfig,
    SessionConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH", "ApiKeyEntry", "AuthConfig", "AutoscalingConfig", "BatchConfig", "ConfigError",
    "ControllerConfig", "FeedbackConfig", "FrontierConfig", "LimitsConfig", "ObservabilityConfig", "PoolConfig",
    "PoolName", "PoolsConfig", "PrefixAffinityConfig", "RedisConfig", "ReplicaResources", "RouterConfig",
    "ServerConfig", "SessionConfig", "load_config",
]


class FrontierConfig(Strict):
    """Everything a Frontier deployment needs."""

    pools: PoolsConfig = Field(description="The light and the reasoning pool.")
    router: RouterConfig = Field(default_factory=RouterConfig, description="Routing policy and router deployment.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="HTTP server settings.")
    redis: RedisConfig = Field(default_factory=RedisConfig, description="Redis server for feedback and online state.")
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig, description="Online learning from feedback.")
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Prometheus metrics and OpenTelemetry traces."
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys and per-key limits.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Input limits on chat requests.")
    batch: BatchConfig = Field(default_factory=BatchConfig, description="OpenAI Files and Batches API and its task queue.")


class ConfigError(ValueError):
    """A configuration file that cannot be used, with a message for the operator."""


DEFAULT_CONFIG_PATH = Path(__file__).parent.parent / "defaults" / "frontier-cpu.yaml"


def load_config(path: str | Path | None = None) -> FrontierConfig:
    """Load and validate a YAML config file; ``None`` loads the embedded CPU default."""
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        data = yaml.safe_load(source.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return FrontierConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration:\n{exc}") from exc
