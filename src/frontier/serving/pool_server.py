"""The pool replica: Ray Serve LLM's ``LLMServer`` plus calls that take and give JSON bytes.

The router sends the engine request as JSON and the pool validates it once, with vLLM's own model: no pydantic
object crosses the Ray call in either direction (pickling one, and ``LLMServer`` rebuilding vLLM's response as
Ray's, cost more than the bytes).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ray.serve.llm.deployment import LLMServer


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

    def _engine_request(self, body: bytes) -> Any:
        from ray.serve.llm.openai_api_models import ChatCompletionRequest

        return ChatCompletionRequest.model_validate_json(body)

    async def chat_json(self, body: bytes) -> bytes | dict[str, Any]:
        """A non-streaming chat request (JSON) answered in one call: the response as JSON bytes, or an
        ``{"error": ...}`` dict (the client's fault: code 400; the engine's: 5xx)."""
        try:
            request = self._engine_request(body)
        except Exception as exc:
            if (error := engine_request_error(exc)) is None:
                raise
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
        """A streaming chat request (JSON): ``LLMServer.chat``'s batches of SSE lines, or one error dict."""
        try:
            request = self._engine_request(body)
        except Exception as exc:
            if (error := engine_request_error(exc)) is None:
                raise
            yield error
            return
        stream = await self.chat(request)
        try:
            async for item in stream:
                yield item
        finally:
            await stream.aclose()
