import asyncio

import pytest

from frontier.config import load_config
from frontier.errors import FrontierError
from frontier.routing.policies import build_router
from frontier.schemas import ChatCompletionRequest
from frontier.serving.pool_client import PoolResult, PoolSaturated, PoolUnavailable, error_from_engine, parse_sse
from frontier.serving.router_service import RouterService

CONFIG = load_config()
HEURISTIC = build_router(CONFIG.model_copy(update={"router": CONFIG.router.model_copy(update={"policy": "heuristic"})}))


def _response(model: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 2000, "total_tokens": 3000},
    }


async def _chunks(model: str, fail_after: int | None = None):
    for i in range(3):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("engine died")
        yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
               "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}]}
    yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
           "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}


class FakePool:
    def __init__(self, fail_after=None, error=None, delay=0.0):
        self.requests = []
        self.fail_after = fail_after
        self.error = error
        self.delay = delay

    async def chat(self, request):
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error:
            raise self.error
        if request.get("stream"):
            return PoolResult(chunks=_chunks(request["model"], self.fail_after))
        return PoolResult(response=_response(request["model"]))

    async def check_health(self):
        if self.error:
            raise self.error


def _service(light=None, reasoning=None, config=CONFIG):
    pools = {"light": light or FakePool(), "reasoning": reasoning or FakePool()}
    return RouterService(config, HEURISTIC, pools), pools


def _request(**kw):
    body = {"model": "frontier", "messages": [{"role": "user", "content": "hello"}], **kw}
    return ChatCompletionRequest.model_validate(body)


async def _collect(stream):
    return [event async for event in stream]


async def test_non_streaming_response_carries_the_decision_and_cost():
    service, pools = _service()
    outcome = await service.chat(_request(max_tokens=5, frontier={"reasoning_share": 1.0}))
    assert outcome.decision.pool == "reasoning"
    assert outcome.headers["x-frontier-pool"] == "reasoning"
    assert outcome.headers["x-frontier-reason"] == "policy"
    assert float(outcome.headers["x-frontier-score"]) == pytest.approx(outcome.decision.score, abs=1e-6)
    body = outcome.body
    assert body["model"] == "frontier-reasoning"
    fr = body["frontier"]
    assert fr["pool"] == "reasoning" and fr["model"] == CONFIG.pools.reasoning.model
    pool = CONFIG.pools.reasoning
    assert fr["estimated_cost_usd"] == pytest.approx(
        (1000 * pool.price_input_per_mtok + 2000 * pool.price_output_per_mtok) / 1e6)
    sent = pools["reasoning"].requests[0]
    assert sent["model"] == "frontier-reasoning-engine" and sent["max_tokens"] == 5
    assert "frontier" not in sent and "reasoning_effort" not in sent
    assert pools["light"].requests == []


async def test_explicit_model_goes_to_its_pool():
    service, pools = _service()
    outcome = await service.chat(_request(model="frontier-light", reasoning_effort="high"))
    assert (outcome.decision.pool, outcome.decision.reason) == ("light", "explicit")
    assert len(pools["light"].requests) == 1


async def test_stream_ends_with_the_frontier_chunk():
    service, _ = _service()
    outcome = await service.chat(_request(stream=True, model="frontier-light"))
    chunks = await _collect(outcome.stream)
    assert [c["choices"][0]["delta"]["content"] for c in chunks[:-1]] == ["t0", "t1", "t2"]
    final = chunks[-1]
    assert final["choices"] == [] and final["frontier"]["pool"] == "light"
    assert "usage" not in final  # the client did not ask for usage
    assert all(c["model"] == "frontier-light" for c in chunks)


async def test_stream_usage_when_asked():
    service, pools = _service()
    outcome = await service.chat(_request(stream=True, model="frontier-light", stream_options={"include_usage": True}))
    final = (await _collect(outcome.stream))[-1]
    assert final["usage"]["completion_tokens"] == 3
    assert pools["light"].requests[0]["stream_options"] == {"include_usage": True}


async def test_failure_after_first_token_ends_with_error_event_not_finish_reason():
    service, _ = _service(light=FakePool(fail_after=2))
    outcome = await service.chat(_request(stream=True, model="frontier-light"))
    events = await _collect(outcome.stream)
    assert "error" in events[-1] and not any("frontier" in e for e in events)  # no final chunk after an error
    assert all(c.get("finish_reason") is None for e in events[:-1] for c in e["choices"])


async def test_pool_error_before_output_propagates():
    err = FrontierError(400, "This model's maximum context length is 512 tokens", param="messages")
    service, _ = _service(light=FakePool(error=err))
    with pytest.raises(FrontierError) as info:
        await service.chat(_request(model="frontier-light"))
    assert info.value.status_code == 400 and "512" in info.value.message


async def test_timeout_is_504():
    config = CONFIG.model_copy(update={"server": CONFIG.server.model_copy(update={"request_timeout_s": 0.05})})
    service, _ = _service(light=FakePool(delay=1.0), config=config)
    with pytest.raises(FrontierError) as info:
        await service.chat(_request(model="frontier-light"))
    assert info.value.status_code == 504


async def test_two_cost_knobs_in_one_request_are_400():
    service, _ = _service()
    with pytest.raises(FrontierError) as info:
        await service.chat(_request(frontier={"reasoning_share": 0.2, "price_weight": 1.0}))
    assert info.value.status_code == 400 and info.value.param == "frontier"


async def test_readiness_names_the_failing_pool():
    service, _ = _service(reasoning=FakePool(error=RuntimeError("down")))
    assert await service.health.readiness() == {"light": "ok", "reasoning": "unavailable: RuntimeError"}


def test_models_lists_the_three_public_models():
    service, _ = _service()
    assert [m.id for m in service.models().data] == ["frontier", "frontier-light", "frontier-reasoning"]


def test_sse_parsing_and_engine_error_mapping():
    assert parse_sse('data: {"a": 1}\n\ndata: [DONE]\n\n') == [{"a": 1}]
    err = error_from_engine({"error": {"message": "too long", "type": "BadRequestError", "code": 400}})
    assert (err.status_code, err.message) == (400, "too long")
    assert error_from_engine({"error": {"message": "x", "type": "E", "code": 7}}).status_code == 500


class ScriptedPool(FakePool):
    """Fails with the given errors, in order, then answers."""

    def __init__(self, *errors):
        super().__init__()
        self.script = list(errors)

    async def chat(self, request):
        self.requests.append(request)
        if self.script:
            raise self.script.pop(0)
        if request.get("stream"):
            return PoolResult(chunks=_chunks(request["model"]))
        return PoolResult(response=_response(request["model"]))


def _light_request(model="frontier", **kw):
    # reasoning_share 0 makes the policy pick light for a routed request.
    extra = {"frontier": {"reasoning_share": 0.0}} if model == "frontier" else {}
    return _request(model=model, **extra, **kw)


async def test_saturated_pool_overflows_routed_requests_at_once():
    light = ScriptedPool(PoolSaturated("light"))
    service, pools = _service(light=light)
    outcome = await service.chat(_light_request())
    assert (outcome.decision.pool, outcome.decision.reason) == ("reasoning", "overflow")
    assert outcome.headers["x-frontier-reason"] == "overflow"
    assert outcome.body["frontier"]["reason"] == "overflow"
    assert len(light.requests) == 1 and len(pools["reasoning"].requests) == 1
    assert pools["reasoning"].requests[0]["model"] == "frontier-reasoning-engine"


async def test_explicit_requests_never_change_pool():
    light = ScriptedPool(PoolSaturated("light"))
    service, pools = _service(light=light)
    with pytest.raises(FrontierError) as info:
        await service.chat(_light_request(model="frontier-light"))
    assert info.value.status_code == 429 and info.value.headers["Retry-After"]
    light = ScriptedPool(PoolUnavailable("light", "x"), PoolUnavailable("light", "x"))
    service, pools = _service(light=light)
    with pytest.raises(FrontierError) as info:
        await service.chat(_light_request(model="frontier-light"))
    assert info.value.status_code == 503 and len(light.requests) == 2
    assert pools["reasoning"].requests == []


async def test_pool_error_is_retried_once_on_the_same_pool():
    light = ScriptedPool(PoolUnavailable("light", "ActorDiedError"))
    service, pools = _service(light=light)
    outcome = await service.chat(_light_request())
    assert (outcome.decision.pool, outcome.decision.reason) == ("light", "policy")
    assert len(light.requests) == 2 and pools["reasoning"].requests == []


async def test_second_failure_falls_back_to_the_other_pool_for_routed_requests():
    light = ScriptedPool(PoolUnavailable("light", "a"), PoolUnavailable("light", "b"))
    service, pools = _service(light=light)
    outcome = await service.chat(_light_request(stream=True))
    assert (outcome.decision.pool, outcome.decision.reason) == ("reasoning", "fallback")
    events = await _collect(outcome.stream)
    assert events[-1]["frontier"]["reason"] == "fallback"
    assert service.inflight == {"light": 0, "reasoning": 0}


async def test_client_errors_are_not_retried():
    light = ScriptedPool(FrontierError(400, "too long"))
    service, pools = _service(light=light)
    with pytest.raises(FrontierError) as info:
        await service.chat(_light_request())
    assert info.value.status_code == 400 and len(light.requests) == 1 and pools["reasoning"].requests == []


async def test_busy_pool_overflows_and_inflight_returns_to_zero():
    data = CONFIG.model_dump()
    data["pools"]["light"]["overflow_inflight"] = 1
    config = type(CONFIG).model_validate(data)
    service, pools = _service(config=config)
    first = await service.chat(_light_request(stream=True))
    assert first.decision.pool == "light" and service.inflight["light"] == 1
    second = await service.chat(_light_request())
    assert (second.decision.pool, second.decision.reason) == ("reasoning", "overflow")
    explicit = await service.chat(_light_request(model="frontier-light"))
    assert explicit.decision.pool == "light"  # explicit requests are never moved
    await _collect(first.stream)
    assert service.inflight == {"light": 0, "reasoning": 0}
    third = await service.chat(_light_request())
    assert third.decision.pool == "light"


async def test_routed_request_is_traced_with_gen_ai_and_decision_attributes():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from frontier.serving.metrics import build_metrics
    from frontier.serving.observer import Observer
    from frontier.serving.tracing import RequestTracer

    exporter = InMemorySpanExporter()
    light = ScriptedPool(PoolUnavailable("light", "a"), PoolUnavailable("light", "b"))
    metrics = build_metrics(CONFIG.observability)
    tracer = RequestTracer.from_config(CONFIG.observability, exporter=exporter)
    service = RouterService(CONFIG, HEURISTIC, {"light": light, "reasoning": FakePool()},
                            observer=Observer(CONFIG.pools, metrics, tracer))
    await service.chat(_light_request(max_tokens=5))
    service.observer.shutdown()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["chat frontier"]
    assert root.attributes["gen_ai.operation.name"] == "chat"
    assert root.attributes["gen_ai.request.model"] == "frontier"
    assert root.attributes["gen_ai.request.max_tokens"] == 5
    assert root.attributes["gen_ai.response.model"] == "frontier-reasoning"
    assert root.attributes["frontier.pool"] == "reasoning" and root.attributes["frontier.reason"] == "fallback"
    assert root.attributes["gen_ai.usage.output_tokens"] == 2000
    route = spans["frontier.route"]
    assert route.parent.span_id == root.context.span_id and route.attributes["frontier.pool"] == "light"
    calls = [s for s in exporter.get_finished_spans() if s.name.startswith("chat frontier-") and s.name.endswith("-engine")]
    assert [c.attributes["frontier.pool"] for c in sorted(calls, key=lambda c: c.start_time)] == ["light", "light", "reasoning"]
    assert all(c.parent.span_id == root.context.span_id for c in calls)
    text = metrics.exposition()[0].decode()
    assert 'frontier_decisions_total{pool="reasoning",reason="fallback"} 1.0' in text


async def test_unhealthy_pool_gets_no_routed_traffic_until_its_probe_succeeds():
    class ProbeFails(FakePool):
        probe_error: Exception | None = RuntimeError("no replica")

        async def check_health(self):
            if self.probe_error:
                raise self.probe_error

    light = ProbeFails()  # requests themselves would work; the probe result decides
    service, pools = _service(light=light)
    states = await service.health.readiness()
    service.health.healthy.update({p: s == "ok" for p, s in states.items()})
    routed = await service.chat(_light_request())
    assert (routed.decision.pool, routed.decision.reason) == ("reasoning", "overflow")
    explicit = await service.chat(_light_request(model="frontier-light"))
    assert explicit.decision.pool == "light"
    light.probe_error = None
    service.health.healthy.update({p: s == "ok" for p, s in (await service.health.readiness()).items()})
    assert (await service.chat(_light_request())).decision.pool == "light"


async def test_no_retry_on_a_pool_without_a_live_replica():
    class DeadPool(ScriptedPool):
        async def check_health(self):
            await asyncio.sleep(10)  # a handle with no replica waits for one

    light = DeadPool(PoolUnavailable("light", "ActorDiedError"))
    service, pools = _service(light=light)
    outcome = await service.chat(_light_request())
    assert (outcome.decision.pool, outcome.decision.reason) == ("reasoning", "fallback")
    assert len(light.requests) == 1 and service.health.healthy["light"] is False
    light.script = [PoolUnavailable("light", "ActorDiedError")]
    with pytest.raises(FrontierError) as info:
        await service.chat(_light_request(model="frontier-light"))
    assert info.value.status_code == 503 and pools["reasoning"].requests[-1]["model"] != "frontier-light-engine"


def test_the_server_and_a_simulator_make_the_same_decisions_on_the_same_requests_and_state():
    """The served decision is Router.decide on the request's features: a replay (features from the prompt)
    against the same live state and seed decides, explores and scores exactly alike."""
    import numpy as np

    from frontier.routing.features import features_from_prompt
    from frontier.routing.online import Posterior
    from frontier.routing.types import StatsSnapshot

    config = CONFIG.model_copy(update={"router": CONFIG.router.model_copy(update={"reasoning_share": 0.4})})
    server_router, simulator = build_router(config), build_router(config)
    dim = server_router.feature_map.dim
    post = Posterior(np.random.default_rng(0).normal(0, 0.3, 2 * dim), np.eye(2 * dim) * 2.0)
    live = StatsSnapshot(version=9, values={"evidence": 3.0, "threshold": 0.52},
                         params={"mean": post.mean, "cov": post.cov},
                         labels={"feature_map": server_router.feature_map.fingerprint})  # fmt: skip

    class Live:
        def snapshot(self):
            return live

    service = RouterService(config, server_router, {"light": FakePool(), "reasoning": FakePool()}, stats=Live())
    prompts = [f"Question {i}: what is {i} * {i + 3}? Think it through." if i % 2 else f"hello number {i}"
               for i in range(300)]  # fmt: skip
    served = [service._decide(_request(messages=[{"role": "user", "content": p}])) for p in prompts]
    replayed = [simulator.decide(features_from_prompt(p), live, simulator.rule.operator_knob) for p in prompts]
    assert [d for d, _ in served] == [r.decision for r in replayed]
    assert [c.propensity for _, c in served] == [r.context.propensity for r in replayed]
    assert {d.reason for d, _ in served} == {"policy", "explore"}  # exploration happened, and agreed
    assert all(d.threshold == 0.52 and d.policy_version.endswith("+online-9") for d, _ in served)
