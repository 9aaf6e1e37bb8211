"""The router's request path, independent of Ray and HTTP: decide, call a pool, annotate."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from frontier.config import FrontierConfig, PoolName
from frontier.errors import FrontierError
from frontier.routing.features import extract_features
from frontier.routing.policies import default_knob
from frontier.routing.router import Router
from frontier.routing.types import (
    SESSION_REASONS, CostKnob, DecisionContext, Reason, SessionState, StatsSnapshot,
)  # fmt: skip
from frontier.schemas import POOL_MODELS, PUBLIC_MODELS, ROUTED_MODEL, ChatCompletionRequest, Decision, ModelCard, ModelList
from frontier.security.keys import KeyInfo
from frontier.serving.access import AccessControl
from frontier.serving.admission import admit, off_loop
from frontier.serving.health import PoolHealth
from frontier.serving.holdings import Holdings
from frontier.serving.metrics import Metrics, NullMetrics
from frontier.serving.online import OnlineRouting
from frontier.serving.pool_client import PoolClient, PoolResult, PoolSaturated, PoolUnavailable
from frontier.serving.tracing import RequestTrace, RequestTracer
from frontier.serving.pools import engine_model_id
from frontier.serving.sessions import Conversation, Sessions, Turn

PUBLIC_POOL_MODEL: dict[PoolName, str] = {pool: model for model, pool in POOL_MODELS.items()}
OTHER_POOL: dict[PoolName, PoolName] = {"light": "reasoning", "reasoning": "light"}
RETRY_OF_HEADER = "x-frontier-retry-of"
OVERFLOWS = SESSION_REASONS | {Reason.POLICY}  # router choices that give way to a busy pool


class StatsSource(Protocol):
    """Where the router reads the current routing statistics from."""

    def snapshot(self) -> StatsSnapshot:
        """The latest statistics; must not block."""


class StaticStats:
    """No online statistics: the policy runs on its offline parameters alone."""

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot()


@dataclass
class ChatOutcome:
    """What the HTTP layer sends back: a JSON body, or a stream of SSE strings, plus headers."""

    decision: Decision
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncIterator[str] | None = None


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


class RouterService:
    """Routes OpenAI chat requests between the light and the reasoning pool."""

    def __init__(
        self,
        config: FrontierConfig,
        router: Router,
        pools: Mapping[PoolName, PoolClient],
        stats: StatsSource | None = None,
        access: AccessControl | None = None,
        metrics: Metrics | None = None,
        tracer: RequestTracer | None = None,
        online: OnlineRouting | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.pools = pools
        self.stats = stats or StaticStats()
        self.access = access
        self.metrics: Metrics = metrics or NullMetrics()
        self.tracer = tracer or RequestTracer()
        self.online = online
        self.sessions = sessions
        self.started_at = int(time.time())
        self.inflight: dict[PoolName, int] = {name: 0 for name in pools}
        self.health = PoolHealth(pools, config.server)

    def models(self) -> ModelList:
        """The public models: the routed one and one per pool."""
        return ModelList(data=[ModelCard(id=name, created=self.started_at) for name in PUBLIC_MODELS])

    def decide(self, request: ChatCompletionRequest) -> Decision:
        """The routing decision for a validated request."""
        return self._decide(request)[0]

    def _decide(
        self, request: ChatCompletionRequest, session: SessionState | None = None
    ) -> tuple[Decision, DecisionContext | None]:
        """The router's decision (``session``: a follow-up turn's conversation), and for a decision it made itself
        the context its feedback will need."""
        messages = [m.model_dump(exclude_none=True) for m in request.messages]
        features = extract_features(messages, request.tools)
        knob = default_knob(self.config)
        if request.frontier is not None and (
            request.frontier.reasoning_share is not None or request.frontier.price_weight is not None
        ):
            knob = CostKnob(request.frontier.reasoning_share, request.frontier.price_weight)
        routed = self.router.decide(
            features, self.stats.snapshot(), knob, model=request.model, reasoning_effort=request.reasoning_effort,
            session=session,
        )  # fmt: skip
        return routed.decision, routed.context

    async def chat(
        self,
        request: ChatCompletionRequest,
        key: KeyInfo | None = None,
        headers: Mapping[str, str] | None = None,
        background: bool = False,
    ) -> ChatOutcome:
        """Serve one chat completion for caller ``key``; client errors raise FrontierError before any output.

        ``headers`` may carry a W3C ``traceparent`` (parent of the request span) and ``x-frontier-retry-of``
        (an earlier completion this request re-asks, implicit feedback on it). ``background`` marks a batch
        line: its decision is logged but stays out of the cost controller's window.
        """
        self.health.ensure_probing()
        trace = self.tracer.start(request, headers)
        held = Holdings(self._add_inflight, self.access, key, request)
        try:
            return await self._chat(request, key, trace, headers or {}, held, background)
        except BaseException as exc:
            trace.end(error=exc, status_code=exc.status_code if isinstance(exc, FrontierError) else 500)
            await held.release()
            raise

    async def _chat(
        self,
        request: ChatCompletionRequest,
        key: KeyInfo | None,
        trace: RequestTrace,
        headers: Mapping[str, str],
        held: Holdings,
        background: bool = False,
    ) -> ChatOutcome:
        """The request's work; what it takes goes into ``held``, released by ``chat`` on an error, here once a
        whole response is built, and by the stream relay (which owns it from its first event) otherwise."""
        admit(request, self.config)
        if request.frontier is not None and None not in (request.frontier.reasoning_share, request.frontier.price_weight):
            raise FrontierError(400, "set at most one of frontier.reasoning_share and frontier.price_weight", param="frontier")
        if self.access is not None:
            await self.access.admit_chat(request, key)
        routed = request.model == ROUTED_MODEL
        conversation, turn = await self._conversation(request, key, headers, background)
        with trace.routing():
            decision, context = await off_loop(self._decide, request, turn.state(conversation) if turn else None)
            trace.set_decision(decision, pool_model=self.config.pools.get(decision.pool).model)
        # The budget applies to the pool that will be called, after overflow (and again on any later switch).
        decision = await held.reserve(self._overflow_if_busy(decision, routed))
        if self.access is not None:
            self.access.check_pool_fit(request, decision.pool)
        engine_request = request.model_dump(exclude_unset=True, exclude={"frontier", "reasoning_effort"})
        engine_request["messages"] = [m.model_dump(exclude_none=True) for m in request.messages]
        if request.stream:
            # Usage is always asked of the engine so the final chunk can carry the cost.
            engine_request["stream_options"] = {**engine_request.get("stream_options", {}), "include_usage": True}
        result, decision = await self._call_with_fallback(decision, engine_request, routed, trace, held)
        trace.set_decision(decision, pool_model=self.config.pools.get(decision.pool).model)
        self.metrics.observe_decision(decision, routed=routed)
        if context is not None and (background or _client_knob(request)):
            context = dataclasses.replace(context, routed_by_policy=False)  # one client's knob must not steer all
        # An explicit move of a known conversation to reasoning re-asks its previous (light) turn.
        retry_of = headers.get(RETRY_OF_HEADER) or (turn.completion_id if turn else None)
        completion_id = await self._log_decision(decision, context, key, retry_of)
        if conversation is not None and self.sessions is not None:
            await self.sessions.remember_async(conversation, decision.pool, completion_id)
        if result.response is not None:
            body = result.response
            body["id"] = completion_id or body.get("id")
            body["model"] = PUBLIC_POOL_MODEL[decision.pool]
            body["frontier"] = self._decision_body(decision, body.get("usage"))
            trace.observe_response(body)
            trace.end(status_code=200)
            self._observe_response(decision, trace, body.get("usage"), "ok")
            await held.release(body.get("usage"))
            return ChatOutcome(decision=decision, headers=decision.headers(), body=body)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        stream = self._relay(held, decision, include_usage, trace, completion_id)
        # Started here, so that even a stream the client never reads is closed (when dropped) and releases.
        first = await anext(stream)
        return ChatOutcome(decision=decision, headers=decision.headers(), stream=_prepend(first, stream))

    async def _conversation(
        self, request: ChatCompletionRequest, key: KeyInfo | None, headers: Mapping[str, str], background: bool
    ) -> tuple[Conversation | None, Turn | None]:
        """The request's conversation and the turn it follows (batch lines are not conversations)."""
        if self.sessions is None or background:
            return None, None
        return await self.sessions.find_async(request, key.name if key is not None else "", headers)

    async def _log_decision(
        self, decision: Decision, context: DecisionContext | None, key: KeyInfo | None, retry_of: str | None
    ) -> str | None:
        """Log a routed decision for feedback (its completion id), and a re-ask as implicit feedback."""
        if self.online is None:
            return None
        if retry_of and decision.pool == "reasoning" and decision.reason in ("explicit", "effort"):
            if self.access is None or await self.access.admit_implicit_feedback(key):
                await self.online.implicit_retry(retry_of, key)
        return await self.online.record(context, decision, key) if context is not None else None

    def _observe_response(self, decision: Decision, trace: RequestTrace, usage: dict[str, Any] | None, outcome: str) -> None:
        usage = usage or {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        cost = self.config.pools.get(decision.pool).estimated_cost_usd(prompt_tokens, completion_tokens)
        self.metrics.observe_response(
            decision.pool, trace.latency_s, trace.ttft_s, cost, prompt_tokens, completion_tokens, outcome=outcome
        )

    def _add_inflight(self, pool: PoolName, delta: int) -> None:
        self.inflight[pool] += delta
        self.metrics.set_inflight(pool, self.inflight[pool])

    def _overflow_if_busy(self, decision: Decision, routed: bool) -> Decision:
        """Move a policy decision to the other pool when its pool is busy or unhealthy."""
        other = OTHER_POOL[decision.pool]
        if routed and decision.reason in OVERFLOWS and self._busy(decision.pool) and not self._busy(other):
            return decision.model_copy(update={"pool": other, "reason": "overflow"})
        return decision

    def _busy(self, pool: PoolName) -> bool:
        """Too many requests in flight from this router, or the pool is unhealthy."""
        bound = self.config.pools.get(pool).overflow_inflight
        return not self.health.healthy[pool] or (bound is not None and self.inflight[pool] >= bound)

    async def _call_with_fallback(
        self, decision: Decision, engine_request: dict[str, Any], routed: bool, trace: RequestTrace, held: Holdings
    ) -> tuple[PoolResult, Decision]:
        """Call the chosen pool; before any output, retry once on another replica, then (routed only) the other pool.

        A saturated pool (429) is not retried: a routed request overflows to the other pool at once. The
        retry happens only if a replica of the pool still answers a quick probe, so a request never waits for
        a replacement replica. Explicit-pool requests never change pool: they get the 429/503. The key's
        budget is reserved again for the other pool; where it refuses, the pool's error stands.
        """
        try:
            return await self._call(decision.pool, engine_request, trace, held), decision
        except PoolSaturated as exc:
            if not routed:
                raise
            return await self._switch(decision, "overflow", exc, engine_request, trace, held)
        except PoolUnavailable as exc:
            error: FrontierError = exc
            if await self.health.has_live_replica(decision.pool):
                try:
                    return await self._call(decision.pool, engine_request, trace, held), decision
                except (PoolUnavailable, PoolSaturated) as retry_exc:
                    if not routed:
                        raise
                    error = retry_exc
            elif not routed:
                raise
        return await self._switch(decision, "fallback", error, engine_request, trace, held)

    async def _switch(
        self,
        decision: Decision,
        reason: str,
        error: FrontierError,
        engine_request: dict[str, Any],
        trace: RequestTrace,
        held: Holdings,
    ) -> tuple[PoolResult, Decision]:
        moved = decision.model_copy(update={"pool": OTHER_POOL[decision.pool], "reason": reason})
        moved = await held.reserve(moved, switching=error)
        return await self._call(moved.pool, engine_request, trace, held), moved

    async def _call(
        self, pool: PoolName, engine_request: dict[str, Any], trace: RequestTrace, held: Holdings
    ) -> PoolResult:
        """One pool call up to its first output; the request holds the pool's in-flight slot until it ends."""
        request = {**engine_request, "model": engine_model_id(pool)}
        held.occupy(pool)
        trace.start_pool_call(pool, request["model"])
        try:
            result = await asyncio.wait_for(self.pools[pool].chat(request), timeout=self.config.server.request_timeout_s)
        except asyncio.TimeoutError:
            error = FrontierError(504, f"the {pool} pool did not answer in time", code="timeout")
            held.vacate(error)
            trace.end_pool_call(error)
            raise error from None
        except BaseException as exc:
            held.vacate(exc)
            trace.end_pool_call(exc)
            raise
        held.answered(result.chunks)
        self.health.answered(pool)
        return result

    def _decision_body(self, decision: Decision, usage: dict[str, Any] | None) -> dict[str, Any]:
        pool_config = self.config.pools.get(decision.pool)
        prompt_tokens = (usage or {}).get("prompt_tokens") or 0
        completion_tokens = (usage or {}).get("completion_tokens") or 0
        return {
            "pool": decision.pool,
            "model": pool_config.model,
            "reason": decision.reason,
            "score": decision.score,
            "threshold": decision.threshold,
            **({"margin": decision.margin} if decision.margin is not None else {}),
            "policy_version": decision.policy_version,
            "estimated_cost_usd": pool_config.estimated_cost_usd(prompt_tokens, completion_tokens),
        }

    async def _relay(
        self, held: Holdings, decision: Decision, include_usage: bool, trace: RequestTrace, completion_id: str | None
    ) -> AsyncIterator[str]:
        """The client's stream; however it ends, it ends the trace and releases what the request holds."""
        assert held.chunks is not None
        outcome, error = "cancelled", None  # stays so if the client goes away
        try:
            async for event in self._stream_events(held.chunks, decision, include_usage, trace, completion_id):
                if event.startswith('data: {"error"'):
                    outcome = "error"
                yield event
            if outcome != "error":
                outcome = "ok"
        except (GeneratorExit, asyncio.CancelledError):
            raise  # the client went away: "cancelled"
        except BaseException as exc:
            outcome, error = "error", exc
            raise
        finally:
            trace.end(error=error, status_code=200)
            self._observe_response(decision, trace, trace.usage, outcome)
            await held.release(trace.usage)  # the engine's usage if it came, even to a client gone before the end

    async def _stream_events(
        self,
        chunks: AsyncIterator[dict[str, Any]],
        decision: Decision,
        include_usage: bool,
        trace: RequestTrace,
        completion_id: str | None,
    ) -> AsyncIterator[str]:
        public_model = PUBLIC_POOL_MODEL[decision.pool]
        last: dict[str, Any] | None = None
        usage: dict[str, Any] | None = None
        try:
            async for chunk in chunks:
                if "error" in chunk:
                    yield sse({"error": chunk["error"]})
                    return
                trace.observe_chunk(chunk)
                chunk["model"] = public_model
                if completion_id:
                    chunk["id"] = completion_id
                last = chunk
                if chunk.get("usage") and not chunk.get("choices"):
                    usage = chunk["usage"]
                    continue  # the usage-only chunk becomes the final chunk below
                chunk.pop("usage", None)
                yield sse(chunk)
        except FrontierError as exc:
            yield sse(exc.body())
            return
        except Exception as exc:  # noqa: BLE001 - a failure after the first token ends the stream with an error event
            yield sse(FrontierError(502, f"the {decision.pool} pool failed mid-stream: {type(exc).__name__}").body())
            return
        final = {
            "id": (last or {}).get("id", ""),
            "object": "chat.completion.chunk",
            "created": (last or {}).get("created", int(time.time())),
            "model": public_model,
            "choices": [],
        }
        if include_usage and usage is not None:
            final["usage"] = usage
        final["frontier"] = self._decision_body(decision, usage)
        yield sse(final)
        yield sse("[DONE]")

    @property
    def healthy(self) -> dict[PoolName, bool]:
        """Whether each pool gets routed traffic (kept by the health probe)."""
        return self.health.healthy

    async def readiness(self, timeout_s: float = 5.0) -> dict[PoolName, str]:
        """Probe every pool now: ``ok`` or an error string per pool."""
        return await self.health.readiness(timeout_s)


def _client_knob(request: ChatCompletionRequest) -> bool:
    """Whether the request sets its own cost knob (``frontier.reasoning_share`` or ``price_weight``)."""
    knob = request.frontier
    return knob is not None and (knob.reasoning_share is not None or knob.price_weight is not None)


async def _prepend(first: str, rest: AsyncGenerator[str, None]) -> AsyncIterator[str]:
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        await rest.aclose()
