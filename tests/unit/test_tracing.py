"""Request tracing: span names, parent/child structure and gen_ai / frontier attributes."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from frontier.config import ObservabilityConfig
from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.serving.tracing import ROUTE_SPAN, RequestTracer, build_tracer_provider


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def make_tracer(exporter: InMemorySpanExporter, **config) -> RequestTracer:
    return RequestTracer.from_config(ObservabilityConfig(service_name="frontier-test", **config), exporter=exporter)


def chat_request(**fields) -> ChatCompletionRequest:
    body = {
        "model": "frontier",
        "messages": [{"role": "user", "content": "Think step by step: 17 * 23?"}],
        "max_tokens": 32,
        "temperature": 0.2,
        "top_p": 0.9,
        **fields,
    }
    return ChatCompletionRequest.model_validate(body)


DECISION = Decision(pool="reasoning", reason="policy", score=0.81, threshold=0.5, policy_version="heuristic-1")
BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "frontier-reasoning",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "391"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def spans_by_name(exporter: InMemorySpanExporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def run_request(tracer: RequestTracer, request: ChatCompletionRequest) -> None:
    trace = tracer.start(request)
    with trace.routing():
        trace.set_decision(DECISION, pool_model="demo://reasoning")
    trace.start_pool_call("reasoning", "frontier-reasoning-engine")
    trace.observe_response(BODY)
    trace.end(status_code=200)


def test_routed_request_has_request_route_and_pool_call_spans(exporter):
    run_request(make_tracer(exporter), chat_request())
    spans = spans_by_name(exporter)
    assert set(spans) == {"chat frontier", ROUTE_SPAN, "chat frontier-reasoning-engine"}
    root, route, call = spans["chat frontier"], spans[ROUTE_SPAN], spans["chat frontier-reasoning-engine"]
    assert root.parent is None and root.kind is SpanKind.SERVER
    assert route.parent.span_id == root.context.span_id and route.kind is SpanKind.INTERNAL
    assert call.parent.span_id == root.context.span_id and call.kind is SpanKind.CLIENT
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}
    assert root.resource.attributes["service.name"] == "frontier-test"


def test_request_span_carries_gen_ai_and_frontier_attributes(exporter):
    run_request(make_tracer(exporter), chat_request(seed=7, stop=["\n\n"]))
    a = spans_by_name(exporter)["chat frontier"].attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "frontier"
    assert a["gen_ai.response.model"] == "frontier-reasoning"
    assert a["gen_ai.request.max_tokens"] == 32
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.seed"] == 7
    assert tuple(a["gen_ai.request.stop_sequences"]) == ("\n\n",)
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.response.id"] == "chatcmpl-1"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["frontier.pool"] == "reasoning" and a["frontier.reason"] == "policy"
    assert a["frontier.score"] == 0.81 and a["frontier.threshold"] == 0.5
    assert a["frontier.policy_version"] == "heuristic-1"
    assert a["frontier.pool_model"] == "demo://reasoning"
    assert a["http.response.status_code"] == 200
    # Prompts and completions stay off spans unless log_prompts is set.
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a


def test_route_and_pool_call_span_attributes(exporter):
    run_request(make_tracer(exporter), chat_request())
    spans = spans_by_name(exporter)
    route = spans[ROUTE_SPAN].attributes
    assert (route["frontier.pool"], route["frontier.reason"], route["frontier.score"]) == ("reasoning", "policy", 0.81)
    call = spans["chat frontier-reasoning-engine"].attributes
    assert call["gen_ai.operation.name"] == "chat"
    assert call["gen_ai.request.model"] == "frontier-reasoning-engine"
    assert call["frontier.pool"] == "reasoning" and call["frontier.attempt"] == 1
    assert call["gen_ai.usage.output_tokens"] == 3


def test_streamed_request_records_first_token_usage_and_finish(exporter):
    tracer = make_tracer(exporter)
    trace = tracer.start(chat_request(stream=True))
    with trace.routing():
        trace.set_decision(DECISION)
    trace.start_pool_call("reasoning", "frontier-reasoning-engine")
    chunks = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "39"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "1"}, "finish_reason": "stop"}]},
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}},
    ]
    trace.observe_chunk(chunks[0])
    assert trace.ttft_s is None  # a role-only chunk is not a token
    for chunk in chunks[1:]:
        trace.observe_chunk(chunk)
    assert trace.ttft_s is not None and trace.ttft_s <= trace.latency_s
    trace.end(status_code=200)
    spans = spans_by_name(exporter)
    root, call = spans["chat frontier"], spans["chat frontier-reasoning-engine"]
    assert root.attributes["gen_ai.request.stream"] is True
    assert root.attributes["gen_ai.usage.output_tokens"] == 2
    assert root.attributes["gen_ai.response.id"] == "c1"
    assert tuple(root.attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert root.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(trace.ttft_s)
    assert [e.name for e in root.events] == ["gen_ai.first_token"]
    assert [e.name for e in call.events] == ["gen_ai.first_token"]
    assert root.end_time >= call.end_time


def test_fallback_makes_two_pool_calls_the_failed_one_marked(exporter):
    trace = make_tracer(exporter).start(chat_request())
    with trace.routing():
        trace.set_decision(DECISION)
    trace.start_pool_call("reasoning", "frontier-reasoning-engine")
    trace.end_pool_call(ConnectionError("replica died"))
    fallback = DECISION.model_copy(update={"pool": "light", "reason": "fallback"})
    trace.set_decision(fallback)
    trace.start_pool_call("light", "frontier-light-engine")
    trace.observe_response({**BODY, "model": "frontier-light"})
    trace.end(status_code=200)
    spans = spans_by_name(exporter)
    failed, served = spans["chat frontier-reasoning-engine"], spans["chat frontier-light-engine"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "ConnectionError"
    assert [e.name for e in failed.events] == ["exception"]
    assert served.attributes["frontier.attempt"] == 2 and served.status.status_code is StatusCode.UNSET
    root = spans["chat frontier"]
    # The request span shows the final decision; the routing span keeps the policy's.
    assert root.attributes["frontier.reason"] == "fallback" and root.attributes["frontier.pool"] == "light"
    assert root.attributes["gen_ai.response.model"] == "frontier-light"
    assert spans[ROUTE_SPAN].attributes["frontier.reason"] == "policy"


def test_client_error_is_not_a_span_error_but_server_error_is(exporter):
    tracer = make_tracer(exporter)
    bad = tracer.start(chat_request(model="gpt-nope"))
    error = FrontierError(404, "no such model", code="model_not_found")
    with pytest.raises(FrontierError), bad.routing():
        raise error
    bad.end(error=error, status_code=404)
    timeout = tracer.start(chat_request())
    timeout.start_pool_call("light", "frontier-light-engine")
    timeout.end(error=FrontierError(504, "the pool did not answer in time", code="timeout"), status_code=504)
    spans = exporter.get_finished_spans()
    by = {(s.name, s.attributes.get("error.type")): s for s in spans}
    assert by[("chat gpt-nope", "model_not_found")].status.status_code is StatusCode.UNSET
    assert by[(ROUTE_SPAN, "model_not_found")].status.status_code is StatusCode.UNSET
    assert by[("chat frontier", "timeout")].status.status_code is StatusCode.ERROR
    assert by[("chat frontier-light-engine", "timeout")].status.status_code is StatusCode.ERROR


def test_end_is_idempotent(exporter):
    trace = make_tracer(exporter).start(chat_request())
    trace.end()
    trace.end(error=RuntimeError("late"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET


def test_log_prompts_puts_messages_on_the_request_span(exporter):
    tracer = make_tracer(exporter, log_prompts=True)
    run_request(tracer, chat_request())
    stream = tracer.start(chat_request(stream=True))
    for text in ("3", "91"):
        stream.observe_chunk({"id": "s", "choices": [{"index": 0, "delta": {"content": text}}]})
    stream.observe_chunk({"id": "s", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    stream.end()
    first, second = [s for s in exporter.get_finished_spans() if s.name == "chat frontier"]
    assert json.loads(first.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Think step by step: 17 * 23?"}]}
    ]
    assert json.loads(first.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "391"}], "finish_reason": "stop"}
    ]
    assert json.loads(second.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == "391"


def test_caller_traceparent_becomes_the_parent(exporter):
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    trace = make_tracer(exporter).start(chat_request(), headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    trace.end()
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == int(trace_id, 16)
    assert span.parent.span_id == int(parent_id, 16) and span.parent.is_remote


def test_without_endpoint_or_exporter_nothing_is_recorded():
    config = ObservabilityConfig()
    assert build_tracer_provider(config) is None
    tracer = RequestTracer.from_config(config)
    assert not tracer.enabled
    trace = tracer.start(chat_request())
    with trace.routing():
        trace.set_decision(DECISION)
    trace.start_pool_call("reasoning", "frontier-reasoning-engine")
    trace.observe_chunk({"id": "x", "choices": [{"delta": {"content": "a"}}]})
    trace.end()
    assert not trace.span.is_recording()
    assert trace.ttft_s is not None  # timings are measured even when no spans are exported


@pytest.mark.parametrize("protocol, module", [("http/protobuf", "proto.http"), ("grpc", "proto.grpc")])
def test_otlp_endpoint_installs_a_batched_otlp_exporter(protocol, module):
    config = ObservabilityConfig(otlp_endpoint="http://127.0.0.1:1/v1/traces", otlp_protocol=protocol)
    provider = build_tracer_provider(config)
    processors = provider._active_span_processor._span_processors
    (processor,) = processors
    assert type(processor).__name__ == "BatchSpanProcessor"
    assert module in type(processor.span_exporter).__module__
    provider.shutdown()


def test_spans_reach_an_otlp_http_collector():
    from frontier.testing.otlp_receiver import otlp_receiver

    with otlp_receiver() as receiver:
        tracer = RequestTracer.from_config(ObservabilityConfig(otlp_endpoint=receiver.endpoint, service_name="fr-otlp"))
        run_request(tracer, chat_request())
        tracer.shutdown()  # flushes the batch processor
        spans = receiver.wait_for(lambda s: len(s) == 3, timeout_s=10)
    by = {s.name: s for s in spans}
    root = by["chat frontier"]
    assert root.parent_span_id == "" and root.resource["service.name"] == "fr-otlp"
    assert by[ROUTE_SPAN].parent_span_id == root.span_id
    assert by["chat frontier-reasoning-engine"].parent_span_id == root.span_id
    assert root.attributes["gen_ai.usage.input_tokens"] == 12 and root.attributes["frontier.score"] == 0.81
