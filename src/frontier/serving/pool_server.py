"""The pool replica: Ray Serve LLM's ``LLMServer`` plus a one-call path for non-streaming chat."""

from __future__ import annotations

from typing import Any

from ray.serve.llm.deployment import LLMServer


class PoolServer(LLMServer):
    """``LLMServer`` whose non-streaming chat answers in one call.

    ``LLMServer.chat`` always returns a stream, even for a single response, and a streaming call costs
    the caller and the replica an object per item plus the stream's bookkeeping. ``chat_once`` answers
    with the response (or the engine's error) itself, so a non-streaming request is one plain call.
    """

    async def chat_once(self, request: Any) -> Any:
        """The complete response to a non-streaming chat request, or the engine's ``ErrorResponse``."""
        stream = await self.chat(request)
        result = None
        try:
            async for item in stream:
                result = item
        finally:
            await stream.aclose()
        return result
