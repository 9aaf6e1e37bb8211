"""Wire schemas: the OpenAI chat request Frontier validates, decisions, and the error shape.

The chat request is an allowlist: only fields the pools (vLLM chat completions) support are accepted, each
capped, numbers finite; OpenAI fields the pools do not use (``user``, ``metadata``, ``store``, ...) are
accepted and not forwarded; any other field is a 400 naming it, as OpenAI does. The whole body is bounded
before its fields are validated: nesting depth, number of JSON values, and no lone UTF-16 surrogates.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from frontier.config import PoolName
from frontier.routing.types import Pool, Reason

ROUTED_MODEL = "frontier"
POOL_MODELS: dict[str, PoolName] = {"frontier-light": Pool.LIGHT, "frontier-reasoning": Pool.REASONING}
PUBLIC_MODELS = (ROUTED_MODEL, *POOL_MODELS)

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]

# Bounds on a whole chat request body, whatever its fields.
MAX_JSON_DEPTH = 32
MAX_JSON_VALUES = 50_000
# Per-field caps: what the pools may be asked to do for one request.
MAX_MESSAGES = 4096  # the configured limits.max_messages (default 256) is checked at admission
MAX_CONTENT_PARTS = 128
MAX_STOP = 16  # vLLM checks every stop string on every generated token
MAX_STOP_CHARS = 256
MAX_STOP_TOKEN_IDS = 64
MAX_TOOLS = 128
MAX_SCHEMA_DEPTH = 16  # of a tool's parameters or a response_format schema, counted from the schema
MAX_SCHEMA_VALUES = 4096
MAX_LOGIT_BIAS = 300
MAX_NAME_CHARS = 256
MAX_TOKENS_CAP = 2**31 - 1
INT64 = 2**63

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_TOKEN_ID_RE = re.compile("[0-9]{1,10}")
_ENGINE_TEMPLATE_ARGS = frozenset(
    {"chat_template", "messages", "conversation", "tools", "documents", "add_generation_prompt",
     "continue_final_message", "tokenize"}
)


def _where(path: tuple[Any, ...]) -> str:
    return ".".join(str(p)[:64] for p in path)[:256] or "body"


def check_json_bounds(value: Any, max_depth: int, max_values: int) -> None:
    """Raise a validation error when ``value`` nests deeper than ``max_depth``, holds more than
    ``max_values`` JSON values, or has a string or key with a lone UTF-16 surrogate (which cannot be
    encoded as UTF-8). Iterative, and stops at the first problem, so its cost is bounded by ``max_values``."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    counted = 1
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_RE.search(item):
                raise PydanticCustomError("lone_surrogate", "{where}: lone UTF-16 surrogate", {"where": _where(path)})
            continue
        if not isinstance(item, (dict, list)) or not item:
            continue
        counted += len(item)
        if counted > max_values:
            raise PydanticCustomError("too_large", "more than {n} JSON values", {"n": max_values})
        if len(path) >= max_depth:
            raise PydanticCustomError(
                "too_deep", "{where}: nested deeper than {n} levels", {"where": _where(path), "n": max_depth}
            )
        if isinstance(item, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(item))
            continue
        for key, child in item.items():
            if _SURROGATE_RE.search(key):
                raise PydanticCustomError(
                    "lone_surrogate", "{where}: lone UTF-16 surrogate in a key", {"where": _where(path)}
                )
            stack.append((child, (*path, key)))


def _bounded_schema(schema: dict[str, Any]) -> dict[str, Any]:
    check_json_bounds(schema, MAX_SCHEMA_DEPTH, MAX_SCHEMA_VALUES)
    return schema


# The content part types the pools accept, and the object each carries its payload in.
_PART_PAYLOADS = {"image_url": "image_url", "input_audio": "input_audio", "video_url": "video_url", "file": "file"}


def _content_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        if not isinstance(part.get(kind), str):
            raise PydanticCustomError("content_part", "a {kind} content part needs a string `{kind}`", {"kind": kind})
    elif kind in _PART_PAYLOADS:
        if not isinstance(part.get(_PART_PAYLOADS[kind]), dict):
            raise PydanticCustomError("content_part", "a {kind} content part needs an object `{kind}`", {"kind": kind})
    else:
        raise PydanticCustomError(
            "content_part", "a content part's `type` must be one of text, refusal, " + ", ".join(_PART_PAYLOADS)
        )
    return part


def _token_ids(bias: dict[str, float]) -> dict[str, float]:
    if not all(_TOKEN_ID_RE.fullmatch(token) for token in bias):
        raise PydanticCustomError("logit_bias", "logit_bias keys must be token ids (up to 10 digits)")
    return bias


Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
FunctionName = Annotated[str, Field(min_length=1, max_length=64)]
Description = Annotated[str, Field(max_length=16384)]
JsonSchema = Annotated[dict[str, Any], AfterValidator(_bounded_schema)]
ContentPart = Annotated[dict[str, Any], AfterValidator(_content_part)]
StopString = Annotated[str, Field(max_length=MAX_STOP_CHARS)]
ShortKey = Annotated[str, Field(max_length=64)]
TemplateSwitch = Annotated[str, Field(pattern="^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
TemplateValue = Name | bool | int | float | None
# Not sent to the pools (OpenAI fields they do not use); accepted so that OpenAI clients keep working.
NOT_FORWARDED: Any = Field(None, exclude=True)


class _Wire(BaseModel):
    """A strict wire object: unknown fields are errors and numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Body(_Wire):
    """A request body: bounded as a whole (depth, size, encodable strings) before its fields are validated."""

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        check_json_bounds(data, MAX_JSON_DEPTH, MAX_JSON_VALUES)
        return data


class ChatMessage(BaseModel):
    """One message; content may be text or a list of OpenAI content parts.

    Response fields that clients echo back with an assistant message (``refusal``, ``annotations``,
    ``audio``, ...) are dropped rather than refused.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    role: Role
    content: str | Annotated[list[ContentPart], Field(min_length=1, max_length=MAX_CONTENT_PARTS)] | None = None
    name: Name | None = None
    tool_calls: Annotated[list[dict[str, Any]], Field(max_length=MAX_TOOLS)] | None = None
    tool_call_id: Name | None = None


class StreamOptions(_Wire):
    """OpenAI ``stream_options``."""

    include_usage: bool = False
    continuous_usage_stats: bool | None = None


class FunctionDefinition(_Wire):
    """A tool's function: name, description and JSON-schema parameters."""

    name: FunctionName
    description: Description | None = None
    parameters: JsonSchema | None = None
    strict: bool | None = None


class Tool(_Wire):
    """One entry of ``tools``."""

    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(_Wire):
    """The function a ``tool_choice`` names."""

    name: FunctionName


class NamedToolChoice(_Wire):
    """``tool_choice`` naming one function."""

    type: Literal["function"] = "function"
    function: NamedFunction


class JsonSchemaFormat(_Wire):
    """``response_format.json_schema``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True, serialize_by_alias=True)

    name: FunctionName
    description: Description | None = None
    schema_: JsonSchema | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    """OpenAI ``response_format``: text, any JSON object, or JSON following a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class RoutingOptions(_Wire):
    """Per-request cost knob, sent as the extra body field ``frontier``; at most one may be set."""

    reasoning_share: float | None = Field(None, ge=0, le=1, description="Target share of reasoning calls.")
    price_weight: float | None = Field(None, ge=0, le=1e6, description="Quality traded per USD of expected cost.")


class ChatCompletionRequest(_Body):
    """The OpenAI chat completion request as Frontier checks it (see the module docstring)."""

    model: Name
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CAP)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_CAP)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=16)
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    stop: StopString | Annotated[list[StopString], Field(max_length=MAX_STOP)] | None = None
    logit_bias: (
        Annotated[
            dict[str, Annotated[float, Field(ge=-100, le=100)]],
            Field(max_length=MAX_LOGIT_BIAS),
            AfterValidator(_token_ids),
        ]
        | None
    ) = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: Annotated[list[Tool], Field(min_length=1, max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    # vLLM extensions.
    top_k: int | None = Field(None, ge=-1, le=1_000_000)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=2)
    min_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS_CAP)
    ignore_eos: bool | None = None
    skip_special_tokens: bool | None = None
    include_stop_str_in_output: bool | None = None
    stop_token_ids: (
        Annotated[list[Annotated[int, Field(ge=0, lt=2**31)]], Field(max_length=MAX_STOP_TOKEN_IDS)] | None
    ) = None
    chat_template_kwargs: Annotated[dict[TemplateSwitch, TemplateValue], Field(max_length=16)] | None = None
    user: Name | None = NOT_FORWARDED
    metadata: Annotated[dict[ShortKey, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None = (
        NOT_FORWARDED
    )
    store: bool | None = NOT_FORWARDED
    service_tier: ShortKey | None = NOT_FORWARDED
    prompt_cache_key: Name | None = NOT_FORWARDED
    safety_identifier: Name | None = NOT_FORWARDED
    frontier: RoutingOptions | None = Field(None, description="Frontier routing options (not sent to the engine).")

    @model_validator(mode="after")
    def _template_switches_only(self) -> ChatCompletionRequest:
        # Switches such as enable_thinking only: not a client-written template (Jinja the engine would render)
        # nor the variables the engine itself passes to the template.
        taken = set(self.chat_template_kwargs or ()) & _ENGINE_TEMPLATE_ARGS
        if taken:
            raise PydanticCustomError(
                "not_allowed", "chat_template_kwargs may not set {keys}", {"keys": ", ".join(sorted(taken))}
            )
        return self

    @functools.cached_property
    def message_dicts(self) -> list[dict[str, Any]]:
        """The messages as plain dicts without unset fields, made once per request (read them, never change them)."""
        return [m.model_dump(exclude_none=True) for m in self.messages]


class Decision(BaseModel):
    """Which pool serves a request and why."""

    model_config = ConfigDict(frozen=True)

    pool: PoolName
    reason: Reason = Field(
        description="Why this pool: policy, explore, explicit, effort, overflow, fallback, budget, session or "
        "session_switch."
    )
    score: float | None = Field(None, description="Policy score: higher means more benefit from reasoning.")
    threshold: float | None = Field(None, description="Score above which the policy picks reasoning.")
    margin: float | None = Field(
        None, description="A follow-up turn: how far past the threshold its score had to be to move its conversation."
    )
    policy_version: str = Field(description="Name and version of the policy that decided.")

    def headers(self) -> dict[str, str]:
        """The ``x-frontier-*`` response headers that show this decision."""
        return {
            "x-frontier-pool": self.pool,
            "x-frontier-reason": self.reason,
            "x-frontier-score": "" if self.score is None else f"{self.score:.6f}",
            "x-frontier-policy-version": self.policy_version,
        }


class FeedbackRequest(_Body):
    """``POST /v1/feedback``: the completion id and exactly one judgement of its answer."""

    id: Name = Field(description="The `id` of a routed chat completion.")
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
