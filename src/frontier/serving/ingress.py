"""The router's Ray Serve deployment: each replica builds its dependencies, then its HTTP app from them."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from ray import serve

from frontier.config import FrontierConfig, ObservabilityConfig, PoolName
from frontier.serving.http.app import build_app
from frontier.serving.http.state import RouterState

if TYPE_CHECKING:
    from frontier.batch.runtime import BatchRuntime
    from frontier.serving.online import OnlineRouting
    from frontier.serving.pool_client import PoolClient

logger = logging.getLogger("frontier.ingress")


def request_log_dir(observability: ObservabilityConfig) -> Path:
    """Where this node's router replicas write their request log files (``request_log: file``)."""
    if observability.request_log_dir:
        return Path(observability.request_log_dir)
    import ray._private.worker

    node = ray._private.worker._global_node  # Serve finds its own log directory the same way
    logs = Path(node.get_logs_dir_path()) if node is not None else Path(tempfile.gettempdir()) / "ray" / "logs"
    return logs / "frontier"


@dataclass
class Replica:
    """One router replica's dependencies: the state its app serves, and what it must stop when it goes."""

    state: RouterState
    online: OnlineRouting | None
    batch: BatchRuntime | None

    def stop(self) -> None:
        self.state.service.observer.shutdown()  # flush spans still waiting for export
        if self.online is not None:
            self.online.stop()
        if self.batch is not None:
            self.batch.stop()


def build_replica(config: dict[str, Any], pools: Mapping[PoolName, PoolClient]) -> Replica:
    """A router replica's dependencies from its config and pool clients, built on the running event loop.

    ``RouterIngress`` calls it with Ray Serve pool handles; ``benchmarks/router_app_cpu.py`` with instant pools,
    so that what it measures is the replica's own request path.
    """
    from frontier.batch.runtime import BatchRuntime, upload_limits
    from frontier.feedback.redis_server import configured_url, connect
    from frontier.routing.policies import build_router
    from frontier.security.logs import configure_logging
    from frontier.serving.access import AccessControl
    from frontier.serving.metrics import build_metrics
    from frontier.serving.observer import Observer
    from frontier.serving.online import OnlineRouting
    from frontier.serving.router_service import RouterService
    from frontier.serving.sessions import Sessions
    from frontier.serving.tracing import RequestTracer

    frontier_config = FrontierConfig.model_validate(config)
    observability = frontier_config.observability
    configure_logging(
        log_prompts=observability.log_prompts,
        request_log=observability.request_log,
        request_log_file=request_log_dir(observability) / f"requests-{os.getpid()}.jsonl",
    )  # fmt: skip
    redis_url = configured_url(frontier_config.redis)
    redis_client = connect(redis_url, frontier_config.redis.socket_timeout_s) if redis_url else None
    access = AccessControl.from_config(frontier_config, redis_client)
    if warning := access.keys.startup_warning():
        logger.warning(warning)
    router = build_router(frontier_config)
    online = None
    if frontier_config.feedback.enabled and redis_client is not None:
        online = OnlineRouting(frontier_config, redis_client, redis_url, router).start()
    metrics = build_metrics(frontier_config.observability)
    if online is not None:
        metrics.watch_online(online.health)
    observer = Observer(frontier_config.pools, metrics, RequestTracer.from_config(frontier_config.observability))
    service = RouterService(
        frontier_config,
        router,
        pools,
        access=access,
        observer=observer,
        stats=online.live if online else None,
        online=online,
        sessions=Sessions.from_config(frontier_config, redis_client),
    )
    batch = None  # batch workers share this replica's RouterService: its decisions and in-flight counts
    if frontier_config.batch.enabled and redis_url:
        batch = BatchRuntime(frontier_config, redis_url, service, asyncio.get_running_loop()).start()
    state = RouterState(
        service=service,
        keys=access.keys,
        max_body_bytes=frontier_config.limits.max_body_bytes,
        path_limits=upload_limits(frontier_config),
        online=online,
        batch=batch.service if batch is not None else None,
    )
    return Replica(state, online, batch)


@serve.deployment(name="router")
@serve.ingress()
class RouterIngress:
    """Ray Serve ingress: authenticates, validates, routes and forwards to the pool deployments."""

    def __init__(self, config: dict[str, Any], light: Any, reasoning: Any) -> None:
        from frontier.serving.pool_client import ServeLLMPoolClient

        pools = {"light": ServeLLMPoolClient("light", light), "reasoning": ServeLLMPoolClient("reasoning", reasoning)}
        self.replica = build_replica(config, pools)
        self.state = self.replica.state

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The replica's app; Ray Serve calls this once, after the constructor."""
        return build_app(self.state)

    def __del__(self) -> None:
        self.replica.stop()
