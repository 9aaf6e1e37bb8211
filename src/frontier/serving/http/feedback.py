"""``POST /v1/feedback``: a judgement of a routed completion, queued for the online learner."""

from __future__ import annotations

from fastapi import APIRouter, Request

from frontier.errors import FrontierError
from frontier.schemas import FeedbackAccepted, FeedbackRequest
from frontier.serving.admission import parse_request
from frontier.serving.http.responses import ERROR_RESPONSES, request_body
from frontier.serving.http.state import State, caller

router = APIRouter()


@router.post("/v1/feedback", status_code=202, responses=ERROR_RESPONSES, openapi_extra=request_body(FeedbackRequest))
async def feedback(request: Request, state: State) -> FeedbackAccepted:
    """Judge a routed completion (first feedback per id counts); 202 once it is durably queued."""
    key = caller(request)
    body = await parse_request(FeedbackRequest, await request.body())
    kind = next((k for k in ("score", "rating", "preferred") if getattr(body, k) is not None), "none")
    if state.online is None:
        raise FrontierError(404, "feedback is disabled on this server (feedback.enabled)", code="feedback_disabled")
    try:
        if state.service.access is not None:
            await state.service.access.admit_feedback(key)
        await state.online.submit(body.model_dump(exclude_none=True), key)
    except FrontierError as exc:
        state.metrics.observe_feedback(kind, str(exc.code or exc.status_code))
        raise
    state.metrics.observe_feedback(kind, "accepted")
    return FeedbackAccepted(id=body.id)
