"""Start the real Frontier stack (Redis, local Ray, Serve, both vLLM CPU pools, router) for tests and benchmarks."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from frontier.cli.serve import free_port
from frontier.config import FrontierConfig, load_config


def test_config(keys: list[dict[str, Any]] | None = None, **router_overrides: Any) -> FrontierConfig:
    """The embedded CPU config on a free port with a private embedded Redis; optional API key entries."""
    data = load_config().model_dump()
    data["server"].update(host="127.0.0.1", port=free_port(), request_timeout_s=120)
    data["router"].update(router_overrides)
    data["redis"].update(url=None, data_dir=tempfile.mkdtemp(prefix="frontier-test-redis-"))
    if keys is not None:
        data["auth"]["keys"] = keys
    return FrontierConfig.model_validate(data)


def wait_ready(base: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/readyz", timeout=10)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    raise TimeoutError(f"stack not ready after {timeout_s}s: {last}")


@contextmanager
def running_local_stack(config: FrontierConfig) -> Iterator[Any]:
    """Run the stack with this process as the Ray driver; yields the ``LocalStack`` (``.redis`` is its Redis)."""
    from frontier.cli.serve import LocalStack

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    stack = LocalStack(config)
    try:
        stack.start()
        wait_ready(root_url(config))
        yield stack
    finally:
        stack.stop()


def root_url(config: FrontierConfig) -> str:
    return f"http://{config.server.host}:{config.server.port}"


@contextmanager
def running_stack(config: FrontierConfig) -> Iterator[str]:
    """Run the stack with this process as the Ray driver; yields the server root URL."""
    with running_local_stack(config):
        yield root_url(config)
