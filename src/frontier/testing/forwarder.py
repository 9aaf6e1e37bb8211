"""A router that forwards without deciding: the baseline Frontier's own routing work is measured against.

It runs on the same Serve stack as Frontier (both pools, the same pool client and JSON call), but its ingress
does nothing else: no key, no limits, no decision, no decision log, no conversation state, no metrics or
tracing. ``benchmarks/overhead.py --peers forward,frontier`` puts the two side by side; their difference is
what deciding, logging and limits cost.
"""

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from ray import serve

from frontier import jsonbytes
from frontier.serving.http import sse
from frontier.serving.pool_client import PoolClient, ServeLLMPoolClient
from frontier.serving.pools import engine_model_id

MODEL = "frontier-light"  # the name clients send: every request goes to the light pool


@serve.deployment(name="forwarder")
@serve.ingress()
class Forwarder:
    """Ray Serve ingress that sends every chat completion to the light pool as it came."""

    def __init__(self, light: Any, reasoning: Any) -> None:
        self.light = ServeLLMPoolClient("light", light)
        self.reasoning = reasoning  # bound so that the stack is Frontier's, never called

    def __serve_build_asgi_app__(self) -> FastAPI:
        return forwarding_app(self.light)


def forwarding_app(light: PoolClient) -> FastAPI:
    """The forwarder's app: each chat completion's body, its model set to the light pool's, sent to ``light``."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        body["model"] = engine_model_id("light")
        result = await light.chat(body)
        if result.response is not None:
            return Response(jsonbytes.dumps(result.response), media_type="application/json")
        return StreamingResponse(sse.encode(result.chunks), media_type="text/event-stream")

    return app
