"""The router's request path, independent of Ray and HTTP: admit, decide, call a pool (with fallback), account."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from frontier.config import FrontierConfig, PoolName
from frontier.errors import FrontierError
from frontier.redis_writes import GroupCommit
from frontier.routing.features import extract_features, turn_messages
from frontier.routing.policies import default_knob
from frontier.routing.router import Router
from frontier.routing.types import (
    SESSION_REASONS, CostKnob, DecisionContext, Reason, SessionState, StatsSnapshot,
)  # fmt: skip
from frontier.schemas import PUBLIC_MODELS, ROUTED_MODEL, ChatCompletionRequest, Decision, ModelCard, ModelList
from frontier.security.keys import KeyInfo
from frontier.security.limits import prompt_bytes
from frontier.serving.access import AccessControl
from frontier.serving.admission import INLINE_DECIDE_BYTES, admit, off_loop
from frontier.serving.health import PoolHealth
from frontier.serving.holdings import Holdings
from frontier.serving.observer import Observer, RequestObserver
from frontier.serving.online import OnlineRouting
from frontier.serving.pool_client import PoolClient, PoolResult, PoolSaturated, PoolUnavailable
from frontier.serving.pools import engine_model_id
from frontier.serving.sessions import Conversation, Sessions, Turn
from frontier.serving.stream import PUBLIC_POOL_MODEL, client_chunks, decision_body, prepend

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
    """What the HTTP layer sends back: a JSON body, or a stream of chunk dicts (``stream.client_chunks``), plus
    headers. A stream ends with the final chunk, or with an ``{"error": ...}`` event."""

    decision: Decision
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    stream: AsyncGenerator[dict[str, Any], None] | None = None


class RouterService:
    """Routes OpenAI chat requests between the light and the reasoning pool."""

    def __init__(
        self,
        config: FrontierConfig,
        router: Router,
        pools: Mapping[PoolName, PoolClient],
        stats: StatsSource | None = None,
        access: AccessControl | None = None,
        observer: Observer | None = None,
        online: OnlineRouting | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.pools = pools
        self.stats = stats or StaticStats()
        self.access = access
        self.observer = observer or Observer(config.pools)
        self.online = online
        self.sessions = sessions
        self.started_at = int(time.time())
        self.inflight: dict[PoolName, int] = {name: 0 for name in pools}
        self.health = PoolHealth(pools, config.server)
        self.writes = GroupCommit()

    def models(self) -> ModelList:
        """The public models: the routed one and one per pool."""
        return ModelList(data=[ModelCard(id=name, created=self.started_at) for name in PUBLIC_MODELS])

    def decide(self, request: ChatCompletionRequest) -> Decision:
        """The routing decision for a validated request."""
        return self._decide(request)[0]

    def _decide(
        self, request: ChatCompletionRequest, session: SessionState | None = None
    ) -> tuple[Decision, DecisionContext | None]:
        """The router's decision (``session``: a follow-up turn's conversation, scored on the turn's own messages),
        and for a decision it made itself the context its feedback will need."""
        messages = request.message_dicts
        features = extract_features(turn_messages(messages) if session is not None else messages, request.tools)
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
        observer = self.observer.start(request, headers)
        held = Holdings(self._add_inflight, self.access, key, request)
        try:
            return await self._chat(request, key, observer, headers or {}, held, background)
        except BaseException as exc:
            observer.failed(exc)
            await held.release()
            raise

    async def _chat(
        self,
        request: ChatCompletionRequest,
        key: KeyInfo | None,
        observer: RequestObserver,
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
        with observer.routing():
            session = turn.state(conversation) if turn else None
            if prompt_bytes(request) <= INLINE_DECIDE_BYTES:
                decision, context = self._decide(request, session)
            else:
                decision, context = await off_loop(self._decide, request, session)
            observer.decided(decision)
        # The budget applies to the pool that will be called, after overflow (and again on any later switch).
        decision = await held.reserve(self._overflow_if_busy(decision, routed))
        if self.access is not None:
            self.access.check_pool_fit(request, decision.pool)
        engine_request = request.model_dump(exclude_unset=True, exclude={"frontier", "reasoning_effort"})
        engine_request["messages"] = request.message_dicts
        if request.stream:
            # Usage is always asked of the engine so the final chunk can carry the cost.
            engine_request["stream_options"] = {**engine_request.get("stream_options", {}), "include_usage": True}
        result, decision = await self._call_with_fallback(decision, engine_request, routed, observer, held)
        observer.served(decision, routed)
        if context is not None and (background or _client_knob(request)):
            context = dataclasses.replace(context, routed_by_policy=False)  # one client's knob must not steer all
        # An explicit move of a known conversation to reasoning re-asks its previous (light) turn.
        retry_of = headers.get(RETRY_OF_HEADER) or (turn.completion_id if turn else None)
        completion_id = await self._log_decision(decision, context, key, retry_of, conversation)
        if result.response is not None:
            body = result.response
            body["id"] = completion_id or body.get("id")
            body["model"] = PUBLIC_POOL_MODEL[decision.pool]
            body["frontier"] = decision_body(self.config.pools.get(decision.pool), decision, body.get("usage"))
            observer.answered(body)
            observer.ended(decision.pool, "ok")
            await held.release(body.get("usage"))
            return ChatOutcome(decision=decision, headers=decision.headers(), body=body)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        stream = self._relay(held, decision, include_usage, observer, completion_id)
        # Started here, so that even a stream the client never reads is closed (when dropped) and releases.
        first = await anext(stream)
        return ChatOutcome(decision=decision, headers=decision.headers(), stream=prepend(first, stream))

    async def _conversation(
        self, request: ChatCompletionRequest, key: KeyInfo | None, headers: Mapping[str, str], background: bool
    ) -> tuple[Conversation | None, Turn | None]:
        """The request's conversation and the turn it follows (batch lines are not conversations)."""
        if self.sessions is None or background:
            return None, None
        return await self.sessions.find(request, key.name if key is not None else "", headers)

    async def _log_decision(
        self, decision: Decision, context: DecisionContext | None, key: KeyInfo | None, retry_of: str | None,
        conversation: Conversation | None,
    ) -> str | None:  # fmt: skip
        """Log a routed decision for feedback (its completion id, None if not logged) and remember the
        conversation's pool, in one group commit; a re-ask is implicit feedback."""
        if self.online is not None and retry_of and decision.pool == "reasoning" and decision.reason in ("explicit", "effort"):
            if self.access is None or await self.access.admit_implicit_feedback(key):
                await self.online.implicit_retry(retry_of, key)
        writes, completion_id = [], None
        if context is not None and self.online is not None:
            completion_id, write = self.online.decision_write(context, decision, key)
            writes.append(write)
        if conversation is not None and self.sessions is not None:
            writes.append(self.sessions.remember(conversation, decision.pool, completion_id))
        if not writes:
            return None
        done = await self.writes.commit(writes)
        return completion_id if completion_id is not None and done[0] else None

    def _add_inflight(self, pool: PoolName, delta: int) -> None:
        self.inflight[pool] += delta
        self.observer.inflight(pool, self.inflight[pool])

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
        self,
        decision: Decision,
        engine_request: dict[str, Any],
        routed: bool,
        observer: RequestObserver,
        held: Holdings,
    ) -> tuple[PoolResult, Decision]:
        """Call the chosen pool; before any output, retry once on another replica, then (routed only) the other pool.

        A saturated pool (429) is not retried: a routed request overflows to the other pool at once. The
        retry happens only if a replica of the pool still answers a quick probe, so a request never waits for
        a replacement replica. Explicit-pool requests never change pool: they get the 429/503. The key's
        budget is reserved again for the other pool; where it refuses, the pool's error stands.
        """
        try:
            return await self._call(decision.pool, engine_request, observer, held), decision
        except PoolSaturated as exc:
            if not routed:
                raise
            return await self._switch(decision, "overflow", exc, engine_request, observer, held)
        except PoolUnavailable as exc:
            error: FrontierError = exc
            if await self.health.has_live_replica(decision.pool):
                try:
                    return await self._call(decision.pool, engine_request, observer, held), decision
                except (PoolUnavailable, PoolSaturated) as retry_exc:
                    if not routed:
                        raise
                    error = retry_exc
            elif not routed:
                raise
        return await self._switch(decision, "fallback", error, engine_request, observer, held)

    async def _switch(
        self,
        decision: Decision,
        reason: str,
        error: FrontierError,
        engine_request: dict[str, Any],
        observer: RequestObserver,
        held: Holdings,
    ) -> tuple[PoolResult, Decision]:
        moved = decision.model_copy(update={"pool": OTHER_POOL[decision.pool], "reason": reason})
        moved = await held.reserve(moved, switching=error)
        return await self._call(moved.pool, engine_request, observer, held), moved

    async def _call(
        self, pool: PoolName, engine_request: dict[str, Any], observer: RequestObserver, held: Holdings
    ) -> PoolResult:
        """One pool call up to its first output; the request holds the pool's in-flight slot until it ends."""
        request = {**engine_request, "model": engine_model_id(pool)}
        held.occupy(pool)
        observer.calling(pool, request["model"])
        try:
            result = await asyncio.wait_for(self.pools[pool].chat(request), timeout=self.config.server.request_timeout_s)
        except asyncio.TimeoutError:
            error = FrontierError(504, f"the {pool} pool did not answer in time", code="timeout")
            held.vacate(error)
            observer.call_failed(error)
            raise error from None
        except BaseException as exc:
            held.vacate(exc)
            observer.call_failed(exc)
            raise
        held.answered(result.chunks)
        self.health.answered(pool)
        return result

    async def _relay(
        self,
        held: Holdings,
        decision: Decision,
        include_usage: bool,
        observer: RequestObserver,
        completion_id: str | None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The client's stream; however it ends, it ends the observation and releases what the request holds."""
        assert held.chunks is not None
        outcome, error = "cancelled", None  # stays so if the client goes away
        pool_config = self.config.pools.get(decision.pool)
        try:
            events = client_chunks(held.chunks, decision, pool_config, include_usage, observer, completion_id)
            async for event in events:
                if "error" in event:
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
            observer.ended(decision.pool, outcome, error)
            await held.release(observer.usage)  # the engine's usage if it came, even to a client gone before the end


def _client_knob(request: ChatCompletionRequest) -> bool:
    """Whether the request sets its own cost knob (``frontier.reasoning_share`` or ``price_weight``)."""
    knob = request.frontier
    return knob is not None and (knob.reasoning_share is not None or knob.price_weight is not None)

