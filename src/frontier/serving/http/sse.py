"""Server-sent events of a chat stream: one ``data:`` line per chunk dict, then ``data: [DONE]`` unless an
``{"error": ...}`` event ended the stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from frontier import jsonbytes

DONE = b"data: [DONE]\n\n"


def event(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return b"data: " + jsonbytes.dumps(payload) + b"\n\n"


async def encode(events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    """``events`` as server-sent events; closing this closes ``events`` (which releases the request)."""
    failed = False
    try:
        async for payload in events:
            failed = "error" in payload
            yield event(payload)
        if not failed:
            yield DONE
    finally:
        await events.aclose()
