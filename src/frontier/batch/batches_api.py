"""The OpenAI Batches endpoints (``/v1/batches``): create, read, list and cancel a key's batches."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from frontier.batch.routes import ERRORS, batch_service
from frontier.batch.service import BatchService, owner_of
from frontier.serving.http.state import caller

router = APIRouter(prefix="/v1/batches", tags=["batches"])
Service = Annotated[BatchService, Depends(batch_service)]


class BatchCreate(BaseModel):
    """The body of ``POST /v1/batches`` (its values are checked by the service, with OpenAI's messages)."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None = None


@router.post("", responses=ERRORS)
async def create_batch(body: BatchCreate, request: Request, service: Service) -> dict[str, Any]:
    """Queue every valid line of an uploaded ``batch`` file; invalid lines go to the batch's error file.
    ``metadata.frontier_reasoning_share`` or ``metadata.frontier_price_weight`` set the batch's cost knob."""
    return await service.create_batch(body.model_dump(), caller(request))


@router.get("", responses=ERRORS)
async def list_batches(
    request: Request,
    service: Service,
    after: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The caller's batches, newest first, ``limit`` at a time after the batch ``after``."""
    return await service.call(service.queue.list, owner_of(caller(request)), after, limit)


@router.get("/{batch_id}", responses=ERRORS)
async def get_batch(batch_id: str, request: Request, service: Service) -> dict[str, Any]:
    """The batch object: status, request_counts, output and error file ids."""
    return await service.call(service.queue.get, batch_id, owner_of(caller(request)))


@router.post("/{batch_id}/cancel", responses=ERRORS)
async def cancel_batch(batch_id: str, request: Request, service: Service) -> dict[str, Any]:
    """Stop the batch: lines not yet run are dropped, and what has run is written to its files."""
    return await service.call(service.queue.cancel, batch_id, owner_of(caller(request)))
