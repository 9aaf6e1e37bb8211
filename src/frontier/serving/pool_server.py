"""The pool replica: Ray Serve LLM's ``LLMServer`` plus calls that take and give JSON bytes.

The router sends the engine request as JSON and the pool validates it once, with vLLM's own model: no pydantic
object crosses the Ray call in either direction (pickling one, and ``LLMServer`` rebuilding vLLM's response as
Ray's, cost more than the bytes).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ray.serve.llm.deployment import LLMServer
from ray.serve.llm.openai_api_models import ChatCompletionRequest

from frontier.serving.pool_client import parse_sse


def engine_request_error(exc: BaseException) -> dict[str, Any] | None:
    """The OpenAI error body for a request vLLM refuses (its model or its own checks), or None if ``exc`` is
    not the client's fault."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        message = f"{param}: {first.get('msg')}"
    elif "VLLMClientError" in {cls.__name__ for cls in type(exc).__mro__}:
        param, message = getattr(exc, "parameter", None), str(exc)[:1000]
    else:
        return None
    return {"error": {"message": message, "type": "BadRequestError", "param": param, "code": 400}}


class PoolServer(LLMServer):
    """``LLMServer`` whose chat takes the request as JSON bytes and answers a whole response as JSON bytes."""

    async def _start_engine(self) -> None:
        """``LLMServer``'s engine start, without its usage report when Ray's usage stats are off (as Frontier runs
        Ray): the report lives in a detached actor, a whole Ray worker process idling at ~0.7 % of a core."""
        from ray._common.usage.usage_lib import usage_stats_enabled

        if usage_stats_enabled():
            await super()._start_engine()
        else:
            await self.engine.start()

    def _engine_request(self, body: bytes) -> tuple[Any, dict[str, Any] | None]:
        """vLLM's request from the JSON body, or the client's error body instead."""
        try:
            return ChatCompletionRequest.model_validate_json(body), None
        except Exception as exc:
            if (error := engine_request_error(exc)) is None:
                raise
            return None, error

    async def chat_json(self, body: bytes) -> bytes | dict[str, Any]:
        """A non-streaming chat request (JSON) answered in one call: the response as JSON bytes, or an
        ``{"error": ...}`` dict (the client's fault: code 400; the engine's: 5xx)."""
        request, error = self._engine_request(body)
        if error is not None:
            return error
        await self._maybe_add_request_id_to_request(request)
        serving = self.engine._oai_serving_chat
        if serving is None:
            return {"error": {"message": "the engine is not ready", "type": "ServiceUnavailable", "code": 503}}
        try:
            response = await serving.create_chat_completion(request, raw_request=None)
        except Exception as exc:
            # vLLM's own mapping of its errors onto statuses (its validation errors are 400s), as LLMServer does.
            if not isinstance(exc, ValueError) and engine_request_error(exc) is None:
                raise
            return serving.create_error_response(exc).model_dump()
        if hasattr(response, "error"):  # vLLM's ErrorResponse
            return response.model_dump()
        return response.model_dump_json().encode()

    async def chat_stream_json(self, body: bytes) -> AsyncGenerator[Any, None]:
        """A streaming chat request (JSON): batches of SSE lines, or one error dict.

        ``LLMServer.chat`` holds every batch for the batching interval (50 ms by default), the first token's
        included: that interval was most of the time to first token. Here each output leaves at once until the
        first one that carries generated text; the rest are batched as before, which keeps a long stream's
        per-item cost low."""
        request, error = self._engine_request(body)
        if error is not None:
            yield error
            return
        engine_stream = await self._run_request(request, engine_method="chat", batch_output_stream=False)
        batches = None
        try:
            async for item in engine_stream:
                yield [item]
                if carries_output(item):
                    break
            else:
                return
            batches = self._batch_output_stream(engine_stream)
            async for batch in batches:
                yield batch
        finally:
            if batches is not None:
                await batches.aclose()  # cancels its reading of the engine stream, which ends that stream
            else:
                await engine_stream.aclose()


def carries_output(item: Any) -> bool:
    """Whether a stream item carries generated output, or ends the stream (an error, a usage-only chunk); the
    opening chunk (the assistant's role, no text) does not."""
    if not isinstance(item, str):
        return True
    for chunk in parse_sse(item):
        choices = chunk.get("choices") or []
        if not choices:
            return True
        for choice in choices:
            delta = choice.get("delta") or {}
            if choice.get("finish_reason") or any(delta.get(k) for k in OUTPUT_FIELDS):
                return True
    return False


OUTPUT_FIELDS = ("content", "reasoning_content", "reasoning", "tool_calls")
