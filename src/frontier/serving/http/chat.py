"""``POST /v1/chat/completions``: a routed chat completion as JSON or as server-sent events."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest
from frontier.security.logs import log_request, request_id
from frontier.serving.admission import parse_request
from frontier.serving.http import sse
from frontier.serving.http.responses import ERROR_RESPONSES, JSONResponse, request_body
from frontier.serving.http.state import State, caller

router = APIRouter()


@router.post("/v1/chat/completions", responses=ERROR_RESPONSES, openapi_extra=request_body(ChatCompletionRequest))
async def chat_completions(request: Request, state: State) -> Any:
    """OpenAI chat completions, routed between the pools."""
    started = time.perf_counter()
    rid = request_id(request.headers)
    key = caller(request)
    body = await parse_request(ChatCompletionRequest, await request.body())
    try:
        outcome = await state.service.chat(body, key=key, headers=request.headers)
    except FrontierError as exc:
        log_request(request_id=rid, route="chat", status=exc.status_code,
                    latency_s=time.perf_counter() - started, key=key, messages=body.messages)
        raise
    log_request(request_id=rid, route="chat", status=200, latency_s=time.perf_counter() - started,
                key=key, decision=outcome.decision, stream=body.stream, messages=body.messages)
    # Ray Serve (its proxy, or the replica itself under direct ingress) sets the x-request-id response header.
    if outcome.stream is not None:
        return StreamingResponse(sse.encode(outcome.stream), media_type="text/event-stream", headers=outcome.headers)
    return JSONResponse(outcome.body, headers=outcome.headers)
