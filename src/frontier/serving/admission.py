"""Bounded work before a chat request is admitted: parse off the event loop, cheap size checks, then decide.

Every step before a request reaches a pool costs time bounded by the body limit, and nothing that can
take more than about a millisecond runs on the replica's event loop (which also answers ``/healthz``):

1. ``parse_request`` turns the raw body into a ``ChatCompletionRequest`` (JSON parsing, the allowlist
   and its caps) or a ``FeedbackRequest``, in a worker thread unless the body is small;
2. ``admit`` checks the request's shape and size against the largest context it could be served with,
   before any featurising: a prompt that cannot fit any pool it may go to is refused at once;
3. the routing decision (features, embedding, policy) of a small prompt runs on the loop, where it costs less
   than a hop to a thread; a larger one runs in one dedicated thread (``off_loop``), so that long decisions
   never run concurrently with each other and never on the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from frontier.config import FrontierConfig
from frontier.errors import FrontierError, validation_error_to_frontier
from frontier.schemas import POOL_MODELS, ChatCompletionRequest
from frontier.security.limits import check_request_limits, prompt_bytes

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_DECISIONS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frontier-decide")


def parse_body(model: type[M], raw: bytes) -> M:
    """The ``model`` in ``raw`` (UTF-8 JSON); FrontierError 400 for anything else."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error_to_frontier(exc.errors(include_input=False)) from None


INLINE_PARSE_BYTES = 16_384  # parsed in well under a millisecond: cheaper than the hop to a thread


async def parse_request(model: type[M], raw: bytes) -> M:
    """``parse_body``, on the loop for a small body, else in a worker thread (a 1 MB body of small JSON values
    takes tens of milliseconds)."""
    if len(raw) <= INLINE_PARSE_BYTES:
        return parse_body(model, raw)
    return await asyncio.to_thread(parse_body, model, raw)


def admit(request: ChatCompletionRequest, config: FrontierConfig) -> None:
    """Refuse (400) a request that no pool it may be routed to could take, before any featurising.

    The bound is the largest context among those pools (the exact check against the chosen pool follows
    the decision): the configured message and token limits, the prompt's size against that context, and
    the tool definitions (the engine renders them into the prompt) counted with the prompt.
    """
    pool = POOL_MODELS.get(request.model)
    max_model_len = max(config.pools.get(p).max_model_len for p in ((pool,) if pool else ("light", "reasoning")))
    check_request_limits(request, config.limits, max_model_len=max_model_len)
    if request.tools:
        tools = json.dumps([t.model_dump(exclude_none=True) for t in request.tools])
        size = prompt_bytes(request) + len(tools.encode("utf-8"))
        if size > max_model_len * config.limits.max_bytes_per_token:
            raise FrontierError(
                400,
                f"tools: the prompt with its tool definitions ({size} bytes) cannot fit the model's context of "
                f"{max_model_len} tokens",
                param="tools",
                code="context_length_exceeded",
            )


INLINE_DECIDE_BYTES = 512  # the decision on a prompt this small takes a fraction of a millisecond


async def off_loop(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in the decision thread, with the caller's context (tracing spans) carried over."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_DECISIONS, call)
