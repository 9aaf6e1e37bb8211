"""The router's Ray Serve deployment: each replica builds its dependencies, then its HTTP app from them."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from ray import serve

from frontier.config import ObservabilityConfig
from frontier.serving.http.app import build_app
from frontier.serving.http.state import RouterState

logger = logging.getLogger("frontier.ingress")


def request_log_dir(observability: ObservabilityConfig) -> Path:
    """Where this node's router replicas write their request log files (``request_log: file``)."""
    if observability.request_log_dir:
        return Path(observability.request_log_dir)
    import ray._private.worker

    node = ray._private.worker._global_node  # Serve finds its own log directory the same way
    logs = Path(node.get_logs_dir_path()) if node is not None else Path(tempfile.gettempdir()) / "ray" / "logs"
    return logs / "frontier"


@serve.deployment(name="router")
@serve.ingress()
class RouterIngress:
    """Ray Serve ingress: authenticates, validates, routes and forwards to the pool deployments."""

    def __init__(self, config: dict[str, Any], light: Any, reasoning: Any) -> None:
        from frontier.batch.runtime import BatchRuntime, upload_limits
        from frontier.config import FrontierConfig
        from frontier.feedback.redis_server import configured_url, connect
        from frontier.routing.policies import build_router
        from frontier.security.logs import configure_logging
        from frontier.serving.access import AccessControl
        from frontier.serving.metrics import build_metrics
        from frontier.serving.observer import Observer
        from frontier.serving.online import OnlineRouting
        from frontier.serving.pool_client import ServeLLMPoolClient
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
        self.online = None
        if frontier_config.feedback.enabled and redis_client is not None:
            self.online = OnlineRouting(frontier_config, redis_client, redis_url, router).start()
        metrics = build_metrics(frontier_config.observability)
        if self.online is not None:
            metrics.watch_online(self.online.health)
        observer = Observer(
            frontier_config.pools, metrics, RequestTracer.from_config(frontier_config.observability)
        )
        self.service = RouterService(
            frontier_config,
            router,
            {"light": ServeLLMPoolClient("light", light), "reasoning": ServeLLMPoolClient("reasoning", reasoning)},
            access=access,
            observer=observer,
            stats=self.online.live if self.online else None,
            online=self.online,
            sessions=Sessions.from_config(frontier_config, redis_client),
        )
        self.batch = None  # batch workers share this replica's RouterService: its decisions and in-flight counts
        if frontier_config.batch.enabled and redis_url:
            self.batch = BatchRuntime(frontier_config, redis_url, self.service, asyncio.get_running_loop()).start()
        self.state = RouterState(
            service=self.service,
            keys=access.keys,
            max_body_bytes=frontier_config.limits.max_body_bytes,
            path_limits=upload_limits(frontier_config),
            online=self.online,
            batch=self.batch.service if self.batch is not None else None,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The replica's app; Ray Serve calls this once, after the constructor."""
        return build_app(self.state)

    def __del__(self) -> None:
        self.service.observer.shutdown()  # flush spans still waiting for export
        if self.online is not None:
            self.online.stop()
        if self.batch is not None:
            self.batch.stop()
