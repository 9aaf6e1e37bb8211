"""The HTTP face of the router: an OpenAI-compatible FastAPI app run as a Ray Serve ingress."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontier.batch import batches_api, files_api
from frontier.errors import FrontierError, validation_error_to_frontier
from frontier.schemas import ChatCompletionRequest, ErrorResponse, FeedbackAccepted, FeedbackRequest, ModelList
from frontier.security.keys import KeyStore
from frontier.security.limits import BodySizeLimitMiddleware
from frontier.security.logs import log_request, request_id
from frontier.serving.access import KEY_STATE, AuthMiddleware
from frontier.serving.admission import parse_request
from frontier.serving.metrics import metrics_response
from frontier.serving.router_service import RouterService

logger = logging.getLogger("frontier.ingress")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 429, 503, 504)
}
# Request bodies are parsed off the event loop (admission.parse_request), not by FastAPI; the OpenAPI
# document still describes them (see openapi_with_bodies).
BODY_MODELS: tuple[type[BaseModel], ...] = (ChatCompletionRequest, FeedbackRequest)


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The route's OpenAPI ``requestBody``: JSON following ``model``."""
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


def openapi_with_bodies(target: FastAPI) -> dict[str, Any]:
    """``target``'s OpenAPI document, with the request body schemas its routes refer to."""
    if target.openapi_schema is None:
        document = get_openapi(
            title=target.title, version=target.version, description=target.description, routes=target.routes
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for model in BODY_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[model.__name__] = schema
        target.openapi_schema = document
    return target.openapi_schema


def install_middleware(
    target: FastAPI, keys: KeyStore, max_body_bytes: int, path_limits: dict[str, int] | None = None
) -> None:
    """A key on every route but health, readiness and metrics; bodies over the limit (or, for the paths in
    ``path_limits``, over theirs) refused (413) first."""
    target.add_middleware(AuthMiddleware, keys=keys)
    target.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, path_limits=path_limits)


app = FastAPI(
    title="Frontier",
    description="OpenAI-compatible router between a light and a reasoning model pool.",
    version="1",
)
app.openapi = functools.partial(openapi_with_bodies, app)  # type: ignore[method-assign]
install_error_handlers(app)
app.include_router(files_api.router)
app.include_router(batches_api.router)


@serve.deployment(name="router")
@serve.ingress(app)
class RouterIngress:
    """Ray Serve ingress: authenticates, validates, routes and forwards to the pool deployments."""

    def __init__(self, config: dict[str, Any], light: Any, reasoning: Any) -> None:
        from frontier.batch.runtime import BatchRuntime, upload_limits
        from frontier.config import FrontierConfig
        from frontier.feedback.redis_server import configured_url, connect
        from frontier.routing.policies import build_router
        from frontier.security.logs import configure_logging
        from frontier.serving.access import AccessControl
        from frontier.serving.metrics import build_metrics
        from frontier.serving.online import OnlineRouting
        from frontier.serving.pool_client import ServeLLMPoolClient
        from frontier.serving.sessions import Sessions
        from frontier.serving.tracing import RequestTracer

        frontier_config = FrontierConfig.model_validate(config)
        configure_logging(log_prompts=frontier_config.observability.log_prompts)
        redis_url = configured_url(frontier_config.redis)
        redis_client = connect(redis_url, frontier_config.redis.socket_timeout_s) if redis_url else None
        access = AccessControl.from_config(frontier_config, redis_client)
        if warning := access.keys.startup_warning():
            logger.warning(warning)
        router = build_router(frontier_config)
        self.online = None
        if frontier_config.feedback.enabled and redis_client is not None:
            self.online = OnlineRouting(frontier_config, redis_client, redis_url, router).start()
        metrics = build_metrics(frontier_config.observability)
        if self.online is not None:
            metrics.watch_online(self.online.health)
        # Ray builds the ASGI app after this constructor, so middleware can still be added here.
        install_middleware(app, access.keys, frontier_config.limits.max_body_bytes, upload_limits(frontier_config))
        self.service = RouterService(
            frontier_config,
            router,
            {"light": ServeLLMPoolClient("light", light), "reasoning": ServeLLMPoolClient("reasoning", reasoning)},
            access=access,
            metrics=metrics,
            tracer=RequestTracer.from_config(frontier_config.observability),
            stats=self.online.live if self.online else None,
            online=self.online,
            sessions=Sessions.from_config(frontier_config, redis_client),
        )
        self.batch = None  # batch workers share this replica's RouterService: its decisions and in-flight counts
        if frontier_config.batch.enabled and redis_url:
            self.batch = BatchRuntime(frontier_config, redis_url, self.service, asyncio.get_running_loop()).start()

    def __del__(self) -> None:
        self.service.tracer.shutdown()  # flush spans still waiting for export
        if self.online is not None:
            self.online.stop()
        if self.batch is not None:
            self.batch.stop()

    @app.post("/v1/chat/completions", responses=ERROR_RESPONSES, openapi_extra=request_body(ChatCompletionRequest))
    async def chat_completions(self, request: Request) -> Any:
        """OpenAI chat completions, routed between the pools."""
        started = time.perf_counter()
        rid = request_id(request.headers)
        key = getattr(request.state, KEY_STATE, None)
        body = await parse_request(ChatCompletionRequest, await request.body())
        try:
            outcome = await self.service.chat(body, key=key, headers=request.headers)
        except FrontierError as exc:
            log_request(logger, request_id=rid, route="chat", status=exc.status_code,
                        latency_s=time.perf_counter() - started, key=key, messages=body.messages)
            raise
        log_request(logger, request_id=rid, route="chat", status=200, latency_s=time.perf_counter() - started,
                    key=key, decision=outcome.decision, stream=body.stream, messages=body.messages)
        # Ray Serve (its proxy, or the replica itself under direct ingress) sets the x-request-id response header.
        if outcome.stream is not None:
            return StreamingResponse(outcome.stream, media_type="text/event-stream", headers=outcome.headers)
        return JSONResponse(outcome.body, headers=outcome.headers)

    @app.post("/v1/feedback", status_code=202, responses=ERROR_RESPONSES, openapi_extra=request_body(FeedbackRequest))
    async def feedback(self, request: Request) -> FeedbackAccepted:
        """Judge a routed completion (first feedback per id counts); 202 once it is durably queued."""
        key = getattr(request.state, KEY_STATE, None)
        body = await parse_request(FeedbackRequest, await request.body())
        kind = next((k for k in ("score", "rating", "preferred") if getattr(body, k) is not None), "none")
        if self.online is None:
            raise FrontierError(404, "feedback is disabled on this server (feedback.enabled)", code="feedback_disabled")
        try:
            await self.service.access.admit_feedback(key)
            await self.online.submit(body.model_dump(exclude_none=True), key)
        except FrontierError as exc:
            self.service.metrics.observe_feedback(kind, str(exc.code or exc.status_code))
            raise
        self.service.metrics.observe_feedback(kind, "accepted")
        return FeedbackAccepted(id=body.id)

    @app.get("/v1/models", responses=ERROR_RESPONSES)
    async def list_models(self) -> ModelList:
        """The routed model and the two explicit pool models."""
        return self.service.models()

    @app.get("/metrics", include_in_schema=False)
    async def metrics(self) -> Any:
        """Prometheus metrics of this router replica (scrape each replica)."""
        return metrics_response(self.service.metrics)

    @app.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        """The router process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(self) -> JSONResponse:
        """Both pools can serve (503 naming the ones that cannot), from the last health probe round."""
        pools = await self.service.health.current()  # no pool call per hit: the probe loop keeps it
        ready = all(state == "ok" for state in pools.values())
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "pools": pools}
        if self.online is not None:
            # Routing goes on without Redis (feedback gets 503), so Redis trouble degrades but does not unready.
            online, healthy = self.online.health()  # cached by the background workers: no Redis call here
            body.update(online)
            if ready and not healthy:
                body["status"] = "degraded"
        return JSONResponse(body, status_code=200 if ready else 503)
