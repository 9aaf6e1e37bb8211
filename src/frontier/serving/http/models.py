"""``GET /v1/models``: the routed model and the two explicit pool models."""

from __future__ import annotations

from fastapi import APIRouter

from frontier.schemas import ModelList
from frontier.serving.http.responses import ERROR_RESPONSES
from frontier.serving.http.state import State

router = APIRouter()


@router.get("/v1/models", responses=ERROR_RESPONSES)
async def list_models(state: State) -> ModelList:
    """The routed model and the two explicit pool models."""
    return state.service.models()
