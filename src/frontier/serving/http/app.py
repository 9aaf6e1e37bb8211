"""``build_app``: one router replica's FastAPI app, its dependencies injected, its middleware in place.

Ray Serve calls it through ``RouterIngress.__serve_build_asgi_app__`` once the replica's constructor has built
those dependencies; tests and benchmarks call it with fake pools (``frontier.testing.asgi_app``).
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from frontier.batch import batches_api, files_api
from frontier.schemas import ChatCompletionRequest, FeedbackRequest
from frontier.security.limits import BodySizeLimitMiddleware
from frontier.serving.access import AuthMiddleware
from frontier.serving.http import chat, feedback, health, models
from frontier.serving.http.responses import install_error_handlers
from frontier.serving.http.state import RouterState

# Request bodies are parsed off the event loop (admission.parse_request), not by FastAPI; the OpenAPI
# document still describes them (see openapi_with_bodies).
BODY_MODELS: tuple[type[BaseModel], ...] = (ChatCompletionRequest, FeedbackRequest)


def build_app(state: RouterState) -> FastAPI:
    """The app serving ``state``: chat, feedback, models, health, files and batches.

    Every route but health, readiness and metrics needs a key; bodies over the limit (or, for the paths in
    ``state.path_limits``, over theirs) are refused (413) before anything else.
    """
    app = FastAPI(
        title="Frontier",
        description="OpenAI-compatible router between a light and a reasoning model pool.",
        version="1",
    )
    app.state.frontier = state
    app.openapi = functools.partial(openapi_with_bodies, app)  # type: ignore[method-assign]
    install_error_handlers(app)
    for group in (files_api, batches_api, chat, feedback, models, health):
        app.include_router(group.router)
    app.add_middleware(AuthMiddleware, keys=state.keys)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=state.max_body_bytes, path_limits=state.path_limits)
    return app


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
