"""The router's real FastAPI app (``frontier.serving.http.app.build_app``) served in-process over ASGI: no Ray,
no engines.

The routes, error handlers, body parsing and middleware are the ones a router replica serves; the pools
are fakes that answer at once. Used by unit tests (hostile inputs, auth) and ``benchmarks/hostile_inputs.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from frontier.batch.service import BatchService
from frontier.config import AuthConfig, FrontierConfig, load_config
from frontier.routing.policies import build_router
from frontier.security.keys import KeyStore, hash_key
from frontier.serving.http.app import build_app
from frontier.serving.http.state import RouterState
from frontier.serving.pool_client import PoolResult
from frontier.serving.router_service import RouterService


def _answer(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


async def _chunks(model: str):
    yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
           "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
    yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
           "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


class InstantPool:
    """A pool that answers every request at once and remembers what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def chat(self, request: dict[str, Any]) -> PoolResult:
        self.requests.append(request)
        if request.get("stream"):
            return PoolResult(chunks=_chunks(request["model"]))
        return PoolResult(response=_answer(request["model"]))

    async def check_health(self) -> None:
        return None


def pool_contexts(light: int, reasoning: int | None = None) -> FrontierConfig:
    """The embedded config with these pool context lengths (``max_model_len``, in tokens)."""
    data = load_config().model_dump()
    data["pools"]["light"]["max_model_len"] = light
    data["pools"]["reasoning"]["max_model_len"] = light if reasoning is None else reasoning
    return FrontierConfig.model_validate(data)


def router_app(
    config: FrontierConfig | None = None, keys: list[str] | None = None, batch: BatchService | None = None
) -> tuple[FastAPI, RouterService]:
    """The router's app and the RouterService behind it: the configured routing policy and an ``InstantPool``
    per pool; ``keys`` (plain keys) turn authentication on, ``batch`` the Files and Batches routes."""
    config = config or load_config()
    service = RouterService(config, build_router(config), {"light": InstantPool(), "reasoning": InstantPool()})
    entries = [{"name": f"key{i}", "sha256": hash_key(key)} for i, key in enumerate(keys or [])]
    auth = AuthConfig.model_validate({**config.auth.model_dump(), "keys": entries})
    keystore = KeyStore.from_config(auth, environ={})
    state = RouterState(service, keystore, config.limits.max_body_bytes, batch=batch)
    return build_app(state), service


def client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process (sending ``headers`` with every request)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router", timeout=60,
                             headers=headers)
