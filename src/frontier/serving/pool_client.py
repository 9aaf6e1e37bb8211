"""Calling one pool: the interface the router uses, and its Ray Serve implementation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from frontier import jsonbytes
from frontier.errors import FrontierError


@dataclass
class PoolResult:
    """A pool's answer: a complete response, or a stream of OpenAI chunk dicts."""

    response: dict[str, Any] | None = None
    chunks: AsyncIterator[dict[str, Any]] | None = None


class PoolClient(Protocol):
    """What the router needs from a pool; raises FrontierError for errors before any output."""

    async def chat(self, request: dict[str, Any]) -> PoolResult:
        """Send an OpenAI chat request (``model`` already set to the engine's name)."""

    async def check_health(self) -> None:
        """Raise if the pool cannot serve."""


class PoolSaturated(FrontierError):
    """The pool's queue is full (Ray Serve back-pressure): 429 with Retry-After."""

    def __init__(self, pool: str) -> None:
        super().__init__(
            429, f"the {pool} pool is at capacity; retry later", code="pool_saturated", headers={"Retry-After": "1"}
        )


class PoolUnavailable(FrontierError):
    """The pool failed before producing output (replica died, no replica, engine error): 503."""

    def __init__(self, pool: str, cause: str) -> None:
        super().__init__(
            503, f"the {pool} pool is unavailable ({cause}); retry later", code="pool_unavailable",
            headers={"Retry-After": "2"},
        )


def parse_sse(item: str) -> list[dict[str, Any]]:
    """OpenAI chunks in one or more ``data: ...`` server-sent events; ``[DONE]`` is dropped."""
    chunks = []
    for line in item.splitlines():
        line = line.strip()
        if not line.startswith("data:"):
            continue
        payload = line[len("data:"):].strip()
        if payload and payload != "[DONE]":
            chunks.append(json.loads(payload))
    return chunks


def error_from_engine(error: Any) -> FrontierError:
    """Map an engine ``ErrorResponse`` (pydantic or dict) onto a FrontierError."""
    detail = error.get("error", error) if isinstance(error, dict) else error.error
    get = detail.get if isinstance(detail, dict) else lambda k, d=None: getattr(detail, k, d)
    raw_code = get("code")
    status = raw_code if isinstance(raw_code, int) and 400 <= raw_code < 600 else 500
    return FrontierError(status, str(get("message", "engine error")), param=get("param"), error_type=get("type"))


class ServeLLMPoolClient:
    """A pool behind a ``DeploymentHandle`` to a ``PoolServer`` (Ray Serve LLM's ``LLMServer``): the request goes
    as JSON bytes and the pool validates it with vLLM's model, once."""

    def __init__(self, pool: str, handle: Any) -> None:
        self._pool = pool
        self._handle = handle
        self._stream_handle = handle.options(stream=True)

    async def check_health(self) -> None:
        await self._handle.check_health.remote()

    async def chat(self, request: dict[str, Any]) -> PoolResult:
        from ray.serve.exceptions import BackPressureError

        body = jsonbytes.dumps(request)
        if not request.get("stream"):
            return PoolResult(response=await self._chat_once(body))
        generator = self._stream_handle.chat_stream_json.remote(body)
        try:
            first = await generator.__anext__()
        except StopAsyncIteration:
            raise PoolUnavailable(self._pool, "empty response") from None
        except BackPressureError:
            raise PoolSaturated(self._pool) from None
        except Exception as exc:  # replica death, no replica, engine crash: all retryable
            generator.cancel()
            raise PoolUnavailable(self._pool, type(exc).__name__) from exc
        except BaseException:
            generator.cancel()
            raise
        items = first if isinstance(first, list) else [first]
        head = items[0]
        if _is_error(head) or not isinstance(head, str):
            generator.cancel()
            return PoolResult(response=self._complete_response(head))
        return PoolResult(chunks=_EngineStream(items, generator))

    async def _chat_once(self, body: bytes) -> dict[str, Any]:
        from ray.serve.exceptions import BackPressureError

        try:
            result = await self._handle.chat_json.remote(body)
        except BackPressureError:
            raise PoolSaturated(self._pool) from None
        except Exception as exc:  # replica death, no replica, engine crash: all retryable
            raise PoolUnavailable(self._pool, type(exc).__name__) from exc
        if result is None:
            raise PoolUnavailable(self._pool, "empty response")
        return self._complete_response(orjson.loads(result) if isinstance(result, bytes) else result)

    def _complete_response(self, item: Any) -> dict[str, Any]:
        """A whole (non-streamed) engine answer as a dict; an engine error raised as a FrontierError."""
        if _is_error(item):
            error = error_from_engine(item)
            raise PoolUnavailable(self._pool, error.message) if error.status_code >= 500 else error
        return item.model_dump() if hasattr(item, "model_dump") else dict(item)


def _is_error(item: Any) -> bool:
    return type(item).__name__ == "ErrorResponse" or (isinstance(item, dict) and "error" in item)


class _EngineStream:
    """The engine's chunks; ``aclose()`` stops the generation even when reading never began (the router
    closes the stream of a client that left before it)."""

    def __init__(self, first_items: list[Any], generator: Any) -> None:
        self._generator = generator
        self._chunks = _stream_chunks(first_items, generator)
        self._started = False

    def __aiter__(self) -> "_EngineStream":
        return self

    async def __anext__(self) -> dict[str, Any]:
        self._started = True
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        if not self._started:
            self._generator.cancel()  # once started, closing the chunks below cancels it
        await self._chunks.aclose()


async def _stream_chunks(first_items: list[Any], generator: Any) -> AsyncIterator[dict[str, Any]]:
    try:
        for item in first_items:
            for chunk in parse_sse(item):
                yield chunk
        async for batch in generator:
            for item in batch if isinstance(batch, list) else [batch]:
                if _is_error(item):
                    raise error_from_engine(item)
                for chunk in parse_sse(item):
                    yield chunk
    finally:
        # A client that went away must stop the generation in the engine.
        generator.cancel()
