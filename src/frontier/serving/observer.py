"""Tracing and metrics of the request path behind one hook: ``RouterService`` tells a chat request's
``RequestObserver`` where the request is (started, routed, calling a pool, chunk, served, ended), and the
observer turns that into spans (``tracing``) and Prometheus samples (``metrics``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from frontier.config import PoolName, PoolsConfig
from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.serving.metrics import Metrics, NullMetrics
from frontier.serving.tracing import RequestTrace, RequestTracer


class RequestObserver:
    """One chat request as tracing and metrics see it."""

    def __init__(self, trace: RequestTrace, metrics: Metrics, pools: PoolsConfig) -> None:
        self.trace = trace
        self._metrics = metrics
        self._pools = pools

    @contextmanager
    def routing(self) -> Iterator[None]:
        """Around the routing decision (its span); call ``decided`` inside."""
        with self.trace.routing():
            yield

    def decided(self, decision: Decision) -> None:
        """The router's decision, or the one finally served after overflow or fallback."""
        self.trace.set_decision(decision, pool_model=self._pools.get(decision.pool).model)

    def calling(self, pool: PoolName, engine_model: str) -> None:
        """A call to ``pool`` starts."""
        self.trace.start_pool_call(pool, engine_model)

    def call_failed(self, error: BaseException) -> None:
        """The pool call failed before any output."""
        self.trace.end_pool_call(error)

    def served(self, decision: Decision, routed: bool) -> None:
        """The pool that answers (``routed``: the client asked for the routed model)."""
        self.decided(decision)
        self._metrics.observe_decision(decision, routed=routed)

    def chunk(self, chunk: Mapping[str, Any]) -> None:
        """One streamed chunk from the engine."""
        self.trace.observe_chunk(chunk)

    def answered(self, body: Mapping[str, Any]) -> None:
        """A whole (non-streamed) answer."""
        self.trace.observe_response(body)

    @property
    def usage(self) -> dict[str, Any] | None:
        """The engine's usage, once seen."""
        return self.trace.usage

    def ended(self, pool: PoolName, outcome: str, error: BaseException | None = None) -> None:
        """The answer from ``pool`` is over (``outcome``: ok, error or cancelled): the span, latency, cost, tokens."""
        self.trace.end(error=error, status_code=200)
        usage = self.trace.usage or {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        cost = self._pools.get(pool).estimated_cost_usd(prompt_tokens, completion_tokens)
        self._metrics.observe_response(
            pool, self.trace.latency_s, self.trace.ttft_s, cost, prompt_tokens, completion_tokens, outcome=outcome
        )

    def failed(self, error: BaseException) -> None:
        """The request failed before any answer."""
        self.trace.end(error=error, status_code=error.status_code if isinstance(error, FrontierError) else 500)


class Observer:
    """This replica's tracer and metrics: ``start`` observes one chat request."""

    def __init__(self, pools: PoolsConfig, metrics: Metrics | None = None, tracer: RequestTracer | None = None) -> None:
        self.pools = pools
        self.metrics: Metrics = metrics or NullMetrics()
        self.tracer = tracer or RequestTracer()

    def start(self, request: ChatCompletionRequest, headers: Mapping[str, str] | None = None) -> RequestObserver:
        """A request arrives (``headers`` may carry the caller's W3C ``traceparent``)."""
        return RequestObserver(self.tracer.start(request, headers), self.metrics, self.pools)

    def inflight(self, pool: PoolName, n: int) -> None:
        """Requests this replica has in flight to ``pool``."""
        self.metrics.set_inflight(pool, n)

    def shutdown(self) -> None:
        """Flush spans still waiting for export."""
        self.tracer.shutdown()
