"""What the Files and Batches routes share: the caller, the replica's batch service, the error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from frontier.batch.service import BatchService
from frontier.errors import FrontierError
from frontier.schemas import ErrorResponse
from frontier.security.keys import KeyInfo
from frontier.serving.access import KEY_STATE

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 503)}


def batch_service() -> BatchService:
    """The batch service of the router replica serving this request (a dependency; tests override it)."""
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        runtime = getattr(serve.get_replica_context().servable_object, "batch", None)
    except RayServeException:  # not inside a router replica (an app served without Ray Serve)
        runtime = None
    if runtime is None:
        raise FrontierError(404, "the batch API is disabled on this server (batch.enabled, and it needs Redis)",
                            code="batch_disabled")  # fmt: skip
    return runtime.service


def caller(request: Request) -> KeyInfo | None:
    """The authenticated caller (None without authentication)."""
    return getattr(request.state, KEY_STATE, None)
