"""The OpenAI Files endpoints (``/v1/files``): upload a batch input file, read it, read its content, delete it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from frontier.batch.routes import ERRORS, batch_service
from frontier.batch.service import BatchService, owner_of
from frontier.serving.http.state import caller

router = APIRouter(prefix="/v1/files", tags=["files"])
Service = Annotated[BatchService, Depends(batch_service)]


@router.post("", responses=ERRORS)
async def upload_file(
    request: Request, service: Service, file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]
) -> dict[str, Any]:
    """Upload a JSONL file (``purpose=batch``); only the key that uploads it can use it."""
    data = await file.read()
    return await service.upload(data, file.filename or "upload.jsonl", purpose, caller(request))


@router.get("/{file_id}", responses=ERRORS)
async def get_file(file_id: str, request: Request, service: Service) -> dict[str, Any]:
    """The file object."""
    return await service.call(service.files.get, file_id, owner_of(caller(request)))


@router.get("/{file_id}/content", responses=ERRORS)
async def get_file_content(file_id: str, request: Request, service: Service) -> Response:
    """The file's bytes (for a batch's output and error files: one JSON line per request)."""
    data = await service.call(service.files.content, file_id, owner_of(caller(request)))
    return Response(data, media_type="application/octet-stream")


@router.delete("/{file_id}", responses=ERRORS)
async def delete_file(file_id: str, request: Request, service: Service) -> dict[str, Any]:
    """Delete the file and its content."""
    return await service.call(service.files.delete, file_id, owner_of(caller(request)))


