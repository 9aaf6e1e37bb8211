"""Input limits checked before any engine work: body size (413), messages, tokens asked, prompt size (400).

``check_request_limits`` is pure. ``BodySizeLimitMiddleware`` is a plain ASGI middleware that refuses a
declared ``Content-Length`` over the limit without reading the body, and stops reading a streamed
(chunked) body as soon as it passes the limit, so at most the limit plus one received chunk is read.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontier import jsonbytes
from frontier.config import LimitsConfig
from frontier.errors import FrontierError
from frontier.routing.features import message_text
from frontier.schemas import ChatCompletionRequest


def body_too_large(max_bytes: int) -> FrontierError:
    """The 413 for a body over ``max_bytes``."""
    return FrontierError(413, f"request body is larger than {max_bytes} bytes", code="request_too_large")


def prompt_bytes(request: ChatCompletionRequest) -> int:
    """UTF-8 size of the prompt text (every message's text content)."""
    return sum(len(message_text(m.content).encode("utf-8")) for m in request.messages)


def check_request_limits(
    request: ChatCompletionRequest, limits: LimitsConfig, max_model_len: int | None = None
) -> None:
    """Raise FrontierError 400 when a request breaks an input limit.

    ``max_model_len`` is the serving pool's context length; with it, a request whose ``max_tokens``
    leaves no room for a prompt, or whose prompt cannot fit at ``limits.max_bytes_per_token``, is refused.
    """
    if len(request.messages) > limits.max_messages:
        raise FrontierError(
            400,
            f"messages: at most {limits.max_messages} messages are accepted, got {len(request.messages)}",
            param="messages",
            code="too_many_messages",
        )
    for param in ("max_tokens", "max_completion_tokens"):
        asked = getattr(request, param)
        if asked is None:
            continue
        if asked > limits.max_tokens:
            raise FrontierError(
                400,
                f"{param}: at most {limits.max_tokens} tokens may be asked for, got {asked}",
                param=param,
                code="max_tokens_too_large",
            )
        if max_model_len is not None and asked >= max_model_len:
            raise FrontierError(
                400,
                f"{param}: {asked} tokens leave no room for the prompt in the model's context of {max_model_len} tokens",
                param=param,
                code="context_length_exceeded",
            )
    if max_model_len is not None:
        size = prompt_bytes(request)
        if size > max_model_len * limits.max_bytes_per_token:
            raise FrontierError(
                400,
                f"messages: the prompt ({size} bytes) cannot fit the model's context of {max_model_len} tokens",
                param="messages",
                code="context_length_exceeded",
            )


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """ASGI middleware: HTTP requests with a body over ``max_bytes`` get 413 in the OpenAI error shape."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}  # routes with their own limit (file uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope.get("path", "").rstrip("/"), self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            await send_error(send, body_too_large(max_bytes))
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app answers to the cut-off body is replaced by the 413 below
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await send_error(send, body_too_large(max_bytes))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_error(send: Send, error: FrontierError) -> None:
    """Answer an ASGI request with ``error`` in the OpenAI shape."""
    body = jsonbytes.dumps(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body_limited(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (413) one that declares or streams more than ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise body_too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise body_too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_body(body: bytes) -> Any:
    """Parse a JSON body; invalid JSON is a 400 in the OpenAI shape."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FrontierError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
