"""OpenTelemetry traces of the router: one span per chat request, with children for the routing
decision and each pool call, carrying the gen_ai semantic-convention attributes plus ``frontier.*``.

The tracer provider is built per router replica (never installed as the global provider); without an
OTLP endpoint nothing is recorded and every span is a no-op.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from frontier.config import ObservabilityConfig
from frontier.errors import FrontierError
from frontier.schemas import POOL_MODELS, ChatCompletionRequest, Decision

TRACER_NAME = "frontier.router"
ROUTE_SPAN = "frontier.route"
PUBLIC_POOL_MODEL = {pool: model for model, pool in POOL_MODELS.items()}
# Delta fields of a streamed chunk that carry generated tokens (thinking text included).
TOKEN_FIELDS = ("content", "reasoning_content", "reasoning", "tool_calls")

# OpenAI request fields -> gen_ai.request.* attributes.
_REQUEST_ATTRIBUTES = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}


def otlp_exporter(config: ObservabilityConfig) -> SpanExporter:
    """The OTLP span exporter for ``config.otlp_endpoint`` over the configured protocol."""
    if config.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=config.otlp_endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=config.otlp_endpoint)


def build_tracer_provider(config: ObservabilityConfig, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """A provider exporting over OTLP (batched) when an endpoint is set, and to ``exporter`` (synchronously,
    for tests and debugging) when given; None when there is nowhere to send spans."""
    if config.otlp_endpoint is None and exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
    if config.otlp_endpoint is not None:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(config)))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def otel_messages(messages: list[dict[str, Any]]) -> str:
    """OpenAI chat messages in the gen_ai.input.messages / gen_ai.output.messages JSON shape."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "content": content}]
        elif isinstance(content, list):
            parts = [
                {"type": "text", "content": p.get("text", "")} if p.get("type") == "text" else {"type": p.get("type")}
                for p in content
            ]
        else:
            parts = []
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name")})
        entry: dict[str, Any] = {"role": message.get("role"), "parts": parts}
        if "finish_reason" in message:
            entry["finish_reason"] = message["finish_reason"]
        out.append(entry)
    return json.dumps(out, separators=(",", ":"))


def request_attributes(request: ChatCompletionRequest, log_prompts: bool) -> dict[str, Any]:
    """gen_ai.* attributes of an incoming request."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "frontier",
        "gen_ai.request.model": request.model,
        "gen_ai.request.stream": request.stream,
        "frontier.messages": len(request.messages),
    }
    for field, name in _REQUEST_ATTRIBUTES.items():
        value = getattr(request, field, None)
        if value is None and request.model_extra:
            value = request.model_extra.get(field)
        if value is not None:
            attributes[name] = value
    if request.stop is not None:
        attributes["gen_ai.request.stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.reasoning_effort is not None:
        attributes["frontier.reasoning_effort"] = request.reasoning_effort
    if log_prompts:
        attributes["gen_ai.input.messages"] = otel_messages(request.message_dicts)
    return attributes


def decision_attributes(decision: Decision) -> dict[str, Any]:
    """frontier.* attributes of a routing decision (None values left out)."""
    attributes: dict[str, Any] = {
        "frontier.pool": decision.pool,
        "frontier.reason": decision.reason,
        "frontier.policy_version": decision.policy_version,
    }
    if decision.score is not None:
        attributes["frontier.score"] = decision.score
    if decision.threshold is not None:
        attributes["frontier.threshold"] = decision.threshold
    return attributes


def _mark_error(span: Span, error: BaseException) -> None:
    status = error.status_code if isinstance(error, FrontierError) else None
    span.set_attribute(
        "error.type", (error.code or str(status)) if isinstance(error, FrontierError) else type(error).__name__
    )
    if status is None or status >= 500:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)))


class RequestTrace:
    """The spans of one chat request; also measures its latency and time to first token."""

    def __init__(self, tracer: trace.Tracer, request: ChatCompletionRequest, parent: Any, log_prompts: bool) -> None:
        self._tracer = tracer
        self._log_prompts = log_prompts
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self.usage: dict[str, Any] | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self._output: list[str] = []
        self.span = tracer.start_span(
            f"chat {request.model}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=request_attributes(request, log_prompts),
        )
        self._context = trace.set_span_in_context(self.span)
        self._route: Span | None = None
        self._call: Span | None = None
        self._attempts = 0

    @property
    def ttft_s(self) -> float | None:
        """Seconds from the request to its first streamed token (None before it or without streaming)."""
        return None if self.first_token_at is None else self.first_token_at - self.started

    @property
    def latency_s(self) -> float:
        """Seconds from the request to its end (or to now while it runs)."""
        return (self.ended_at or time.perf_counter()) - self.started

    @contextmanager
    def routing(self) -> Iterator[Span]:
        """A child span around the routing decision; call ``set_decision`` inside it."""
        span = self._tracer.start_span(ROUTE_SPAN, context=self._context, kind=SpanKind.INTERNAL)
        self._route = span
        try:
            yield span
        except BaseException as exc:
            _mark_error(span, exc)
            raise
        finally:
            self._route = None
            span.end()

    def set_decision(self, decision: Decision, pool_model: str | None = None) -> None:
        """Record a decision on the request span (and on the routing span while it is open); a later call
        (overflow, fallback) overwrites the request span's attributes with the final decision."""
        attributes = decision_attributes(decision)
        if pool_model is not None:
            attributes["frontier.pool_model"] = pool_model
        if self._route is not None:
            self._route.set_attributes(attributes)
        self.span.set_attributes(attributes)
        self.span.set_attribute("gen_ai.response.model", PUBLIC_POOL_MODEL[decision.pool])

    def start_pool_call(self, pool: str, engine_model: str) -> None:
        """Open a child span for a call to ``pool``; a still open previous call is ended as superseded."""
        if self._call is not None:
            self.end_pool_call(RuntimeError("superseded by another pool call"))
        self._attempts += 1
        self._call = self._tracer.start_span(
            f"chat {engine_model}",
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": engine_model,
                "frontier.pool": pool,
                "frontier.attempt": self._attempts,
            },
        )

    def end_pool_call(self, error: BaseException | None = None) -> None:
        """Close the open pool-call span, marking ``error`` when the call failed."""
        call, self._call = self._call, None
        if call is None:
            return
        if error is not None:
            _mark_error(call, error)
        self._set_usage(call)
        call.end()

    def observe_chunk(self, chunk: Mapping[str, Any]) -> None:
        """Note one streamed chunk (an OpenAI chat.completion.chunk dict): first token, id, usage, finish."""
        self.response_id = self.response_id or chunk.get("id")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if self.first_token_at is None and any(delta.get(k) for k in TOKEN_FIELDS):
                self.first_token_at = time.perf_counter()
                self.span.add_event("gen_ai.first_token")
                if self._call is not None:
                    self._call.add_event("gen_ai.first_token")
            if self._log_prompts and delta.get("content"):
                self._output.append(delta["content"])
            if choice.get("finish_reason"):
                self.finish_reasons.append(choice["finish_reason"])

    def observe_response(self, body: Mapping[str, Any]) -> None:
        """Note a whole (non-streamed) chat.completion body."""
        self.response_id = body.get("id")
        self.usage = body.get("usage")
        choices = body.get("choices") or []
        self.finish_reasons = [c["finish_reason"] for c in choices if c.get("finish_reason")]
        if self._log_prompts:
            messages = [{**(c.get("message") or {}), "finish_reason": c.get("finish_reason")} for c in choices]
            self.span.set_attribute("gen_ai.output.messages", otel_messages(messages))

    def end(self, error: BaseException | None = None, status_code: int | None = None) -> None:
        """Close the pool-call span (if open) and the request span; later calls do nothing."""
        if self.ended_at is not None:
            return
        self.ended_at = time.perf_counter()
        self.end_pool_call(error)
        span = self.span
        if self.response_id:
            span.set_attribute("gen_ai.response.id", self.response_id)
        if self.finish_reasons:
            span.set_attribute("gen_ai.response.finish_reasons", self.finish_reasons)
        if self.ttft_s is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", self.ttft_s)
        if self._log_prompts and self._output:
            message = {
                "role": "assistant",
                "content": "".join(self._output),
                "finish_reason": (self.finish_reasons or [None])[0],
            }
            span.set_attribute("gen_ai.output.messages", otel_messages([message]))
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
        self._set_usage(span)
        if error is not None:
            _mark_error(span, error)
        span.end()

    def _set_usage(self, span: Span) -> None:
        if not self.usage:
            return
        if self.usage.get("prompt_tokens") is not None:
            span.set_attribute("gen_ai.usage.input_tokens", self.usage["prompt_tokens"])
        if self.usage.get("completion_tokens") is not None:
            span.set_attribute("gen_ai.usage.output_tokens", self.usage["completion_tokens"])


class RequestTracer:
    """Starts a ``RequestTrace`` per request on this replica's tracer provider (no-op without one)."""

    def __init__(self, provider: TracerProvider | None = None, log_prompts: bool = False) -> None:
        self.provider = provider
        self.log_prompts = log_prompts
        self._tracer = provider.get_tracer(TRACER_NAME) if provider is not None else trace.NoOpTracer()
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_config(cls, config: ObservabilityConfig, exporter: SpanExporter | None = None) -> "RequestTracer":
        """The tracer the config asks for (``exporter``: an extra one, e.g. in-memory in tests)."""
        return cls(build_tracer_provider(config, exporter), log_prompts=config.log_prompts)

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded and exported."""
        return self.provider is not None

    def start(self, request: ChatCompletionRequest, headers: Mapping[str, str] | None = None) -> RequestTrace:
        """Open the request span, as a child of the caller's W3C ``traceparent`` when ``headers`` carry one."""
        parent = self._propagator.extract(carrier=dict(headers)) if headers else None
        return RequestTrace(self._tracer, request, parent, self.log_prompts)

    def shutdown(self) -> None:
        """Flush and stop the exporters."""
        if self.provider is not None:
            self.provider.shutdown()
