"""Wire schemas: the OpenAI chat request Frontier validates, decisions, and the error shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from frontier.config import PoolName

ROUTED_MODEL = "frontier"
POOL_MODELS: dict[str, PoolName] = {"frontier-light": "light", "frontier-reasoning": "reasoning"}
PUBLIC_MODELS = (ROUTED_MODEL, *POOL_MODELS)

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]


class ChatMessage(BaseModel):
    """One message; content may be text or a list of OpenAI content parts."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class RoutingOptions(BaseModel):
    """Per-request cost knob, sent as the extra body field ``frontier``; at most one may be set."""

    model_config = ConfigDict(extra="forbid")

    reasoning_share: float | None = Field(None, ge=0, le=1, description="Target share of reasoning calls.")
    price_weight: float | None = Field(None, ge=0, description="Quality traded per USD of expected cost.")


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat completion request as Frontier checks it; unknown fields are kept and passed on."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=16)
    seed: int | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: ReasoningEffort | None = None
    user: str | None = None
    frontier: RoutingOptions | None = Field(None, description="Frontier routing options (not sent to the engine).")


class Decision(BaseModel):
    """Which pool serves a request and why."""

    model_config = ConfigDict(frozen=True)

    pool: PoolName
    reason: str = Field(description="policy | explicit | effort | overflow | fallback | budget | ...")
    score: float | None = Field(None, description="Policy score: higher means more benefit from reasoning.")
    threshold: float | None = Field(None, description="Score above which the policy picks reasoning.")
    policy_version: str = Field(description="Name and version of the policy that decided.")

    def headers(self) -> dict[str, str]:
        """The ``x-frontier-*`` response headers that show this decision."""
        return {
            "x-frontier-pool": self.pool,
            "x-frontier-reason": self.reason,
            "x-frontier-score": "" if self.score is None else f"{self.score:.6f}",
            "x-frontier-policy-version": self.policy_version,
        }


class FeedbackRequest(BaseModel):
    """``POST /v1/feedback``: the completion id and exactly one judgement of its answer."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The `id` of a routed chat completion.")
    score: float | None = Field(None, ge=0, le=1, description="Quality of the answer in [0, 1].")
    rating: Literal["up", "down"] | None = Field(None, description="Thumbs up or down.")
    preferred: Literal["light", "reasoning"] | None = Field(None, description="The pool whose answer was preferred.")


class FeedbackAccepted(BaseModel):
    """The 202 answer: the feedback is durably queued."""

    id: str
    status: Literal["queued"] = "queued"


class ErrorDetail(BaseModel):
    """The body of an OpenAI error."""

    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorResponse(BaseModel):
    """``{"error": {...}}`` as the OpenAI API returns it."""

    error: ErrorDetail


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "frontier"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
