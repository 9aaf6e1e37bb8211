"""``frontier serve``: start the whole stack locally (Ray, both vLLM pools, the router) until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any

from frontier.config import ConfigError, FrontierConfig, load_config


class PortInUseError(RuntimeError):
    """The configured server port is taken by another process."""


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


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP server could listen on ``host:port`` now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


# Longer than Linux's TIME_WAIT (60 s), which Ray's replica socket (no SO_REUSEADDR) cannot bind through.
CONTROL_LOOP_INTERVAL_S = "0.5"
PORT_QUARANTINE_S = 65


# What an idle stack spends, cut where nothing a user sees depends on it (together about a third of an idle stack's
# CPU on two cores): every replica and handle exports its cached metrics each second instead of ten times a second
# (Prometheus scrapes every 15 s or so); no per-handler timing in Ray's C++ event loops (a debugging aid); the log
# monitor looks for new log files every half second instead of on every 0.1 s pass; and no idle worker processes
# are kept (Serve runs actors; a task's worker starts when one is needed).
IDLE_ENV = {
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
    "RAY_event_stats": "0",
    "RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "0",
    "RAY_num_workers_soft_limit": "0",
}


def uses_direct_ingress(config: FrontierConfig) -> bool:
    """Whether the router replica answers HTTP on ``server.port`` itself: a Ray this process starts, and
    one router replica (clients know one port; with more, the Serve proxy balances between them)."""
    server = config.server
    return server.direct_ingress and not server.ray_address and config.router.autoscaling.max_replicas == 1


def local_serve_env(config: FrontierConfig) -> dict[str, str]:
    """Environment of a Ray this process starts: Ray Serve's throughput-optimized mode, with direct ingress
    on ``server.port`` when ``uses_direct_ingress``. Ray Serve reads it when its controller and replicas start.
    """
    env = {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
        # The Serve controller reconciles every 0.1 s by default: most of an idle stack's CPU. Scaling and
        # replacing replicas take seconds anyway, so a half-second loop costs them little.
        "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": CONTROL_LOOP_INTERVAL_S,
        **IDLE_ENV,
    }
    if uses_direct_ingress(config):
        port = config.server.port
        env.update({
            "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),  # exclusive: exactly server.port
            # No external load balancer has to notice a stopping replica, so it need not keep listening.
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
            # Ray binds without SO_REUSEADDR and gives up on a port for good once a bind fails. A replica that
            # died leaves its connections in TIME_WAIT for 60 s, so its replacement must wait that long for
            # the one port clients know, and not try it (and lose it) before.
            "RAY_SERVE_PORT_QUARANTINE_S": str(PORT_QUARANTINE_S),
        })
    return env


def replica_runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Ray job runtime_env that carries ``FRONTIER_API_KEYS`` to router replicas on an existing cluster.

    Replicas of a Ray this process starts inherit its environment; those on a cluster started elsewhere do
    not, and would come up with authentication off. ``serve.run`` gives deployments without a runtime_env of
    their own (the router) the job's.
    """
    from frontier.security.keys import API_KEYS_ENV

    value = (environ if environ is not None else os.environ).get(API_KEYS_ENV)
    return {} if value is None else {"env_vars": {API_KEYS_ENV: value}}


class LocalStack:
    """Redis (embedded unless configured), Ray (local unless an address is given), Serve and the app."""

    def __init__(self, config: FrontierConfig) -> None:
        from frontier.feedback.redis_server import RedisHandle

        self.config = config
        self.redis = RedisHandle(config.redis)
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> str:
        """Start everything; returns the OpenAI base URL."""
        import ray
        from ray import serve

        from frontier.serving.app import build_app

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        server = self.config.server
        if not port_is_free(server.host, server.port):
            raise PortInUseError(f"server.port {server.port} on {server.host} is already in use")
        redis_url = self.redis.start()
        data = self.config.model_dump()
        data["redis"]["url"] = redis_url  # replicas connect to the server this process started
        config = FrontierConfig.model_validate(data)
        proxy_port = free_port(server.host) if uses_direct_ingress(config) else server.port
        if server.ray_address:
            ray.init(address=server.ray_address, runtime_env=replica_runtime_env() or None)
        else:
            # Set before Ray starts: its processes inherit this environment.
            self._set_env(local_serve_env(config))
            ray.init(num_cpus=server.ray_num_cpus or max(8, os.cpu_count() or 1), include_dashboard=False)
        serve.start(
            http_options={"host": server.host, "port": proxy_port},
            logging_config={"enable_access_log": server.access_log},
        )
        serve.run(build_app(config), name=config.server.app_name, route_prefix="/", blocking=False)
        return f"http://{server.host}:{server.port}/v1"

    def _set_env(self, env: dict[str, str]) -> None:
        for name, value in env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

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
                self._restore_env()


def run(args: argparse.Namespace) -> int:
    from frontier.security.keys import KeyStore
    from frontier.serving.ingress import request_log_dir
    from frontier.serving.pools import ModelPathError, resolve_pool_model

    try:
        config = config_with_overrides(args)
        for name in ("light", "reasoning"):
            resolve_pool_model(name, config.pools.get(name))
        keys = KeyStore.from_config(config.auth)  # a key source that holds no key stops here (fail closed)
    except (ConfigError, ModelPathError, ValueError) as exc:
        print(f"frontier serve: {exc}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    if warning := keys.startup_warning():
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    stack = LocalStack(config)
    try:
        try:
            url = stack.start()
        except PortInUseError as exc:
            print(f"frontier serve: {exc}", file=sys.stderr)
            return 2
        print(f"Frontier is serving the OpenAI API at {url} (models: frontier, frontier-light, frontier-reasoning)")
        if config.observability.request_log == "file":
            print(f"Request log: {request_log_dir(config.observability)}/requests-*.jsonl")
        print("Press Ctrl-C to stop.", flush=True)
        stop_requested.wait()
        print("Stopping...", flush=True)
    finally:
        stack.stop()
    return 0
