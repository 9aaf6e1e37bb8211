"""JSON responses (written by orjson) and the error handlers that give every error the OpenAI shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as FastAPIJSONResponse
from pydantic import BaseModel
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontier import jsonbytes
from frontier.errors import FrontierError, validation_error_to_frontier
from frontier.schemas import ErrorResponse

logger = logging.getLogger("frontier.ingress")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 429, 503, 504)
}


class JSONResponse(FastAPIJSONResponse):
    """A JSON response written by orjson."""

    def render(self, content: Any) -> bytes:
        return jsonbytes.dumps(content)


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """A route's OpenAPI ``requestBody``: JSON following ``model`` (bodies are parsed by the routes, off the loop)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


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
