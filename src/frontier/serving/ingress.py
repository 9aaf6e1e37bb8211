"""The HTTP face of the router: an OpenAI-compatible FastAPI app run as a Ray Serve ingress."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontier.errors import FrontierError, validation_error_to_frontier
from frontier.schemas import ChatCompletionRequest, ErrorResponse, ModelList
from frontier.serving.router_service import RouterService

logger = logging.getLogger("frontier.ingress")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 429, 503, 504)
}


def error_response(error: FrontierError) -> JSONResponse:
    """A FrontierError as an HTTP response."""
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error leave in the OpenAI error shape."""

    @app.exception_handler(FrontierError)
    async def _frontier(_: Request, exc: FrontierError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error_to_frontier(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(FrontierError(exc.status_code, str(exc.detail)))

    @app.exception_handler(BackPressureError)
    async def _backpressure(_: Request, exc: BackPressureError) -> JSONResponse:
        return error_response(
            FrontierError(429, "the pool is at capacity; retry later", code="pool_saturated", headers={"Retry-After": "1"})
        )

    @app.exception_handler(DeploymentUnavailableError)
    async def _unavailable(_: Request, exc: DeploymentUnavailableError) -> JSONResponse:
        return error_response(
            FrontierError(503, "the pool is unavailable; retry later", code="pool_unavailable", headers={"Retry-After": "5"})
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(FrontierError(500, f"internal error: {type(exc).__name__}", error_type="server_error"))


app = FastAPI(
    title="Frontier",
    description="OpenAI-compatible router between a light and a reasoning model pool.",
    version="1",
)
install_error_handlers(app)


@serve.deployment(name="router")
@serve.ingress(app)
class RouterIngress:
    """Ray Serve ingress: validates, routes and forwards to the pool deployments."""

    def __init__(self, config: dict[str, Any], light: Any, reasoning: Any) -> None:
        from frontier.config import FrontierConfig
        from frontier.routing.policy import build_policy
        from frontier.serving.pool_client import ServeLLMPoolClient

        frontier_config = FrontierConfig.model_validate(config)
        self.service = RouterService(
            frontier_config,
            build_policy(frontier_config),
            {"light": ServeLLMPoolClient("light", light), "reasoning": ServeLLMPoolClient("reasoning", reasoning)},
        )

    @app.post("/v1/chat/completions", responses=ERROR_RESPONSES)
    async def chat_completions(self, body: ChatCompletionRequest) -> Any:
        """OpenAI chat completions, routed between the pools."""
        outcome = await self.service.chat(body)
        if outcome.stream is not None:
            return StreamingResponse(outcome.stream, media_type="text/event-stream", headers=outcome.headers)
        return JSONResponse(outcome.body, headers=outcome.headers)

    @app.get("/v1/models")
    async def list_models(self) -> ModelList:
        """The routed model and the two explicit pool models."""
        return self.service.models()

    @app.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        """The router process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(self) -> JSONResponse:
        """Both pools can serve (503 naming the ones that cannot)."""
        pools = await self.service.readiness()
        ready = all(state == "ok" for state in pools.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", "pools": pools}, status_code=200 if ready else 503)
