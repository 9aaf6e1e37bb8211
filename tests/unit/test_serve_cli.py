"""``frontier serve`` pieces that need no Ray: direct-ingress environment, port checks."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from frontier.cli.serve import IDLE_ENV, LocalStack, PortInUseError, local_serve_env, port_is_free, uses_direct_ingress
from frontier.config import load_config


def _config(port: int = 8123, router_max_replicas: int = 1):
    data = load_config().model_dump()
    data["server"]["port"] = port
    data["router"]["autoscaling"].update(min_replicas=1, max_replicas=router_max_replicas)
    return type(load_config()).model_validate(data)


def test_one_router_replica_listens_on_the_server_port_itself():
    config = _config(port=8123)
    env = local_serve_env(config)
    assert uses_direct_ingress(config)
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1" and env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert float(env["RAY_SERVE_CONTROL_LOOP_INTERVAL_S"]) == 0.5  # Ray's 0.1 s loop was most of the idle CPU
    # Metrics exported each second, no C++ event-loop timing, no 0.1 s log-file globbing, no idle workers kept.
    assert int(env["RAY_SERVE_METRICS_EXPORT_INTERVAL_MS"]) == 1000 and env["RAY_event_stats"] == "0"
    assert env["RAY_LOG_MONITOR_MANY_FILES_THRESHOLD"] == "0" and env["RAY_num_workers_soft_limit"] == "0"
    # Ray's allocator hands out range(min, max): exactly port 8123.
    assert (env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"], env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]) == (
        "8123", "8124")
    # A replacement router replica must not try the port while the dead one's connections sit in TIME_WAIT
    # (60 s on Linux): Ray would give the port up for good.
    assert float(env["RAY_SERVE_PORT_QUARANTINE_S"]) > 60


def test_several_router_replicas_or_a_remote_ray_keep_the_serve_proxy():
    several = _config(router_max_replicas=3)
    assert not uses_direct_ingress(several)
    env = local_serve_env(several)
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "0" and env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT" not in env
    data = _config().model_dump()
    data["server"]["ray_address"] = "auto"
    assert not uses_direct_ingress(type(several).model_validate(data))
    data["server"].update(ray_address=None, direct_ingress=False)
    assert not uses_direct_ingress(type(several).model_validate(data))


def test_port_is_free_sees_a_listening_socket():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        taken = server.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
    assert port_is_free("127.0.0.1", taken)


def test_stack_refuses_a_taken_port_before_starting_anything(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        stack = LocalStack(_config(port=server.getsockname()[1]))
        started = []
        monkeypatch.setattr(stack.redis, "start", lambda: started.append("redis"))
        with pytest.raises(PortInUseError, match="already in use"):
            stack.start()
        assert started == []


def test_stack_environment_is_restored_after_stop(monkeypatch):
    monkeypatch.setenv("RAY_SERVE_THROUGHPUT_OPTIMIZED", "0")
    monkeypatch.delenv("RAY_SERVE_ENABLE_DIRECT_INGRESS", raising=False)
    stack = LocalStack(_config())
    stack._set_env(local_serve_env(_config()))
    assert os.environ["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"
    stack._restore_env()
    assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "0"
    assert "RAY_SERVE_ENABLE_DIRECT_INGRESS" not in os.environ
