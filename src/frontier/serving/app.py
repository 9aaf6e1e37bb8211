"""Builds the Ray Serve application from a FrontierConfig: two pools and the router, bound together."""

from __future__ import annotations

from typing import Any

from frontier.config import FrontierConfig, load_config


def build_app(config: FrontierConfig):
    """The bound Ray Serve application (router ingress -> light and reasoning pools)."""
    from frontier.serving.ingress import RouterIngress
    from frontier.serving.pools import build_pool_deployment

    light = build_pool_deployment("light", config.pools.light, access_log=config.server.access_log)
    reasoning = build_pool_deployment("reasoning", config.pools.reasoning, access_log=config.server.access_log)
    router = RouterIngress.options(
        logging_config={"enable_access_log": config.server.access_log},
        autoscaling_config=config.router.autoscaling.model_dump(),
        max_ongoing_requests=config.router.max_ongoing_requests,
        ray_actor_options={"num_cpus": config.router.num_cpus, "resources": dict(config.router.custom_resources)},
    )
    return router.bind(config.model_dump(mode="json"), light, reasoning)


def app_builder(args: dict[str, Any]):
    """Entry point for ``serve deploy`` / KubeRay: ``import_path: frontier.serving.app:app_builder``.

    ``args`` is either ``{"config": {...FrontierConfig...}}`` or ``{"config_path": FILE}``.
    """
    if "config" in args:
        config = FrontierConfig.model_validate(args["config"])
    else:
        config = load_config(args.get("config_path"))
    return build_app(config)


def serve_config(config: FrontierConfig, import_path: str = "frontier.serving.app:app_builder") -> dict[str, Any]:
    """A Ray Serve config file (for ``serve deploy``) that builds this deployment."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {
            "host": "0.0.0.0",
            "port": config.server.port,
            "request_timeout_s": config.server.request_timeout_s,
        },
        "applications": [
            {
                "name": config.server.app_name,
                "route_prefix": "/",
                "import_path": import_path,
                "args": {"config": config.model_dump(mode="json")},
            }
        ],
    }
