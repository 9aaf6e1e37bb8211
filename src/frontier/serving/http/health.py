"""``/metrics``, ``/healthz`` and ``/readyz``: the routes that need no API key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from frontier.serving.health import readiness_report
from frontier.serving.http.responses import JSONResponse
from frontier.serving.http.state import State
from frontier.serving.metrics import metrics_response

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Any:
    """Prometheus metrics of this router replica (scrape each replica)."""
    return metrics_response(state.metrics)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The router process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    """Both pools can serve (503 naming the ones that cannot), from the last health probe round."""
    online = state.online.health if state.online is not None else None  # cached by its workers: no Redis call
    body, ready = await readiness_report(state.service.health, online)
    return JSONResponse(body, status_code=200 if ready else 503)
