"""``frontier serve``: start the whole stack locally (Ray, both vLLM pools, the router) until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from frontier.config import ConfigError, FrontierConfig, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="start the router and both pools on a local Ray")
    parser.add_argument("--config", help="YAML config file (default: the embedded CPU demo config)")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.set_defaults(handler=run)


def config_with_overrides(args: argparse.Namespace) -> FrontierConfig:
    """The config file with ``--host``/``--port`` applied, validated again."""
    config = load_config(args.config)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if not overrides:
        return config
    data = config.model_dump()
    data["server"].update(overrides)
    return FrontierConfig.model_validate(data)


class LocalStack:
    """Redis (embedded unless configured), Ray (local unless an address is given), Serve and the app."""

    def __init__(self, config: FrontierConfig) -> None:
        from frontier.feedback.redis_server import RedisHandle

        self.config = config
        self.redis = RedisHandle(config.redis)

    def start(self) -> str:
        """Start everything; returns the OpenAI base URL."""
        import ray
        from ray import serve

        from frontier.serving.app import build_app

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        redis_url = self.redis.start()
        data = self.config.model_dump()
        data["redis"]["url"] = redis_url  # replicas connect to the server this process started
        config = FrontierConfig.model_validate(data)
        if config.server.ray_address:
            ray.init(address=config.server.ray_address)
        else:
            ray.init(num_cpus=config.server.ray_num_cpus or max(8, os.cpu_count() or 1), include_dashboard=False)
        serve.start(
            http_options={"host": config.server.host, "port": config.server.port},
            logging_config={"enable_access_log": config.server.access_log},
        )
        serve.run(build_app(config), name=config.server.app_name, route_prefix="/", blocking=False)
        return f"http://{config.server.host}:{config.server.port}/v1"

    def stop(self) -> None:
        """Shut Serve down (replicas stop their engines), then Ray, then the embedded Redis."""
        import ray
        from ray import serve

        try:
            if ray.is_initialized():
                serve.shutdown()
        finally:
            try:
                ray.shutdown()
            finally:
                self.redis.stop()


def run(args: argparse.Namespace) -> int:
    from frontier.serving.pools import ModelPathError, resolve_pool_model

    try:
        config = config_with_overrides(args)
        for name in ("light", "reasoning"):
            resolve_pool_model(name, config.pools.get(name))
    except (ConfigError, ModelPathError, ValueError) as exc:
        print(f"frontier serve: {exc}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    from frontier.security.keys import KeyStore

    if warning := KeyStore.from_config(config.auth).startup_warning():
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    stack = LocalStack(config)
    try:
        url = stack.start()
        print(f"Frontier is serving the OpenAI API at {url} (models: frontier, frontier-light, frontier-reasoning)")
        print("Press Ctrl-C to stop.", flush=True)
        stop_requested.wait()
        print("Stopping...", flush=True)
    finally:
        stack.stop()
    return 0
