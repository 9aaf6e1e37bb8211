"""A pool's stream as the client gets it, as chunk dicts (the HTTP layer writes them as server-sent events).

Chunks carry the public pool model and the routed completion id; the engine's usage-only chunk becomes a final
chunk carrying the routing decision (and the usage, when the client asked for it); a failure after the first
token ends the stream with an ``{"error": ...}`` event.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from frontier.config import PoolConfig
from frontier.errors import FrontierError
from frontier.schemas import POOL_MODELS, Decision
from frontier.serving.observer import RequestObserver

PUBLIC_POOL_MODEL = {pool: model for model, pool in POOL_MODELS.items()}


def decision_body(pool_config: PoolConfig, decision: Decision, usage: dict[str, Any] | None) -> dict[str, Any]:
    """The ``frontier`` member of a response: the decision and the estimated cost of ``usage``."""
    prompt_tokens = (usage or {}).get("prompt_tokens") or 0
    completion_tokens = (usage or {}).get("completion_tokens") or 0
    return {
        "pool": decision.pool,
        "model": pool_config.model,
        "reason": decision.reason,
        "score": decision.score,
        "threshold": decision.threshold,
        **({"margin": decision.margin} if decision.margin is not None else {}),
        "policy_version": decision.policy_version,
        "estimated_cost_usd": pool_config.estimated_cost_usd(prompt_tokens, completion_tokens),
    }


async def client_chunks(
    chunks: AsyncIterator[dict[str, Any]],
    decision: Decision,
    pool_config: PoolConfig,
    include_usage: bool,
    observer: RequestObserver,
    completion_id: str | None,
) -> AsyncIterator[dict[str, Any]]:
    """The engine's ``chunks`` rewritten for the client, then the final chunk (or an error event)."""
    public_model = PUBLIC_POOL_MODEL[decision.pool]
    last: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    try:
        async for chunk in chunks:
            if "error" in chunk:
                yield {"error": chunk["error"]}
                return
            observer.chunk(chunk)
            chunk["model"] = public_model
            if completion_id:
                chunk["id"] = completion_id
            last = chunk
            if chunk.get("usage") and not chunk.get("choices"):
                usage = chunk["usage"]
                continue  # the usage-only chunk becomes the final chunk below
            chunk.pop("usage", None)
            yield chunk
    except FrontierError as exc:
        yield exc.body()
        return
    except Exception as exc:  # noqa: BLE001 - a failure after the first token ends the stream with an error event
        yield FrontierError(502, f"the {decision.pool} pool failed mid-stream: {type(exc).__name__}").body()
        return
    final = {
        "id": (last or {}).get("id", ""),
        "object": "chat.completion.chunk",
        "created": (last or {}).get("created", int(time.time())),
        "model": public_model,
        "choices": [],
    }
    if include_usage and usage is not None:
        final["usage"] = usage
    final["frontier"] = decision_body(pool_config, decision, usage)
    yield final


async def prepend(first: dict[str, Any], rest: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[dict[str, Any]]:
    """``first``, then ``rest``; closing this closes ``rest``."""
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        await rest.aclose()
