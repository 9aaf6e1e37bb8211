"""What the Files and Batches routes share: the replica's batch service and the error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from frontier.batch.service import BatchService
from frontier.errors import FrontierError
from frontier.schemas import ErrorResponse
from frontier.serving.http.state import state_of

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 503)}


async def batch_service(request: Request) -> BatchService:
    """The batch service of the app serving this request (a route dependency); 404 when batches are off."""
    service = state_of(request).batch
    if service is None:
        raise FrontierError(404, "the batch API is disabled on this server (batch.enabled, and it needs Redis)",
                            code="batch_disabled")  # fmt: skip
    return service
