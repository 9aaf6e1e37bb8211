"""The real stack (Ray Serve, two vLLM CPU engines, the router) driven with the official openai client."""

import json
import time
from pathlib import Path

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration

HARD = "Think step by step and prove that the sum 1 + 2 + ... + n equals n(n+1)/2."
EASY = "hi"


def _create(client, **kw):
    raw = client.chat.completions.with_raw_response.create(**kw)
    return raw, raw.parse()


def test_models_endpoint_lists_the_three_models(client):
    assert sorted(m.id for m in client.models.list().data) == ["frontier", "frontier-light", "frontier-reasoning"]


def test_health_and_readiness(base_url):
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["pools"] == {"light": "ok", "reasoning": "ok"}


@pytest.mark.parametrize("prompt", [EASY, HARD])
def test_routed_request_shows_the_trained_policy_decision(client, stack_config, trained_router, prompt):
    raw, resp = _create(client, model="frontier", messages=[{"role": "user", "content": prompt}], max_tokens=8)
    pool = raw.headers["x-frontier-pool"]
    assert raw.headers["x-frontier-reason"] == "policy"
    assert trained_router["version"] in raw.headers["x-frontier-policy-version"]
    score = float(raw.headers["x-frontier-score"])
    decision = resp.model_extra["frontier"]
    assert decision["pool"] == pool and decision["reason"] == "policy"
    assert decision["score"] == pytest.approx(score, abs=1e-5)
    assert decision["threshold"] == stack_config.router.threshold
    assert (score > decision["threshold"]) == (pool == "reasoning")
    assert resp.model == f"frontier-{pool}"
    assert resp.usage.completion_tokens >= 1 and resp.usage.prompt_tokens >= 1
    pool_config = stack_config.pools.get(pool)
    assert decision["estimated_cost_usd"] == pytest.approx(
        pool_config.estimated_cost_usd(resp.usage.prompt_tokens, resp.usage.completion_tokens))


def test_each_request_is_one_json_line_in_the_replicas_request_log(client, stack_config):
    secret = "the prompt itself stays out of the log"
    raw, _ = _create(client, model="frontier", messages=[{"role": "user", "content": secret}], max_tokens=4,
                     extra_headers={"x-request-id": "log-test-7f3a"})
    log_dir = Path(stack_config.observability.request_log_dir)

    def logged():
        lines = (line for f in log_dir.glob("requests-*.jsonl") for line in f.read_text().splitlines())
        return [json.loads(line) for line in lines if "log-test-7f3a" in line]

    deadline = time.monotonic() + 30
    while not (found := logged()):
        assert time.monotonic() < deadline, "no request log line"
        time.sleep(0.1)
    [record] = found
    assert (record["route"], record["status"], record["pool"], record["reason"]) == (
        "chat", 200, raw.headers["x-frontier-pool"], raw.headers["x-frontier-reason"])
    assert record["score"] == pytest.approx(float(raw.headers["x-frontier-score"]), abs=1e-5)
    assert record["key_name"] and record["latency_ms"] > 0 and secret not in json.dumps(record)


@pytest.mark.parametrize("share,pool", [(0.0, "light"), (1.0, "reasoning")])
def test_per_request_cost_knob_moves_the_threshold(client, share, pool):
    raw, resp = _create(client, model="frontier", messages=[{"role": "user", "content": HARD}], max_tokens=4,
                        extra_body={"frontier": {"reasoning_share": share}})
    assert (raw.headers["x-frontier-pool"], raw.headers["x-frontier-reason"]) == (pool, "policy")
    assert resp.model_extra["frontier"]["threshold"] is not None


@pytest.mark.parametrize("model,pool", [("frontier-light", "light"), ("frontier-reasoning", "reasoning")])
def test_explicit_models_always_use_their_pool(client, model, pool):
    for prompt in (EASY, HARD):
        raw, resp = _create(client, model=model, messages=[{"role": "user", "content": prompt}], max_tokens=4)
        assert raw.headers["x-frontier-pool"] == pool and raw.headers["x-frontier-reason"] == "explicit"


@pytest.mark.parametrize("effort,pool,reason", [("minimal", "light", "effort"), ("high", "reasoning", "effort"),
                                                ("low", "light", "policy"), ("medium", "light", "policy")])
def test_reasoning_effort(client, effort, pool, reason):
    # reasoning_share 0 makes the policy's own choice light, so only an effort override can pick reasoning.
    raw, _ = _create(client, model="frontier", messages=[{"role": "user", "content": HARD}], max_tokens=4,
                     reasoning_effort=effort, extra_body={"frontier": {"reasoning_share": 0.0}})
    assert (raw.headers["x-frontier-pool"], raw.headers["x-frontier-reason"]) == (pool, reason)


def test_sampling_parameters_reach_the_engine(client):
    _, resp = _create(client, model="frontier-light", messages=[{"role": "user", "content": EASY}],
                      max_tokens=6, n=2, temperature=0.8, top_p=0.9, seed=7)
    assert len(resp.choices) == 2
    assert resp.usage.completion_tokens <= 12
    _, again = _create(client, model="frontier-light", messages=[{"role": "user", "content": EASY}],
                       max_tokens=6, n=2, temperature=0.8, top_p=0.9, seed=7)
    assert [c.message.content for c in again.choices] == [c.message.content for c in resp.choices]
    _, short = _create(client, model="frontier-light", messages=[{"role": "user", "content": EASY}],
                       max_completion_tokens=3, temperature=0)
    assert short.usage.completion_tokens <= 3 and short.choices[0].finish_reason in ("length", "stop")


def test_tools_are_passed_to_the_engine(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                "parameters": {"type": "object", "properties": {}}}}]
    _, without = _create(client, model="frontier-light", messages=[{"role": "user", "content": EASY}], max_tokens=2)
    _, with_tools = _create(client, model="frontier-light", messages=[{"role": "user", "content": EASY}],
                            max_tokens=2, tools=tools)
    # The demo chat template renders tool definitions into the prompt.
    assert with_tools.usage.prompt_tokens > without.usage.prompt_tokens


@pytest.mark.parametrize("include_usage", [True, False])
def test_streaming_carries_the_decision_in_the_final_chunk(client, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(model="frontier", messages=[{"role": "user", "content": HARD}],
                                            max_tokens=8, stream=True, reasoning_effort="high", **kwargs)
    chunks = list(stream)
    text_chunks = [c for c in chunks if c.choices]
    assert text_chunks and sum(len(c.choices[0].delta.content or "") for c in text_chunks) > 0
    assert text_chunks[-1].choices[0].finish_reason in ("length", "stop")
    final = chunks[-1]
    assert final.choices == []
    assert final.model_extra["frontier"]["pool"] == "reasoning"  # forced by reasoning_effort
    assert final.model_extra["frontier"]["estimated_cost_usd"] > 0
    assert (final.usage is not None) == include_usage
    assert all(c.model == "frontier-reasoning" for c in chunks)


def test_streaming_response_headers(base_url, auth_headers):
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", timeout=60, headers=auth_headers, json={
        "model": "frontier-light", "stream": True, "max_tokens": 4,
        "messages": [{"role": "user", "content": EASY}]}) as r:
        body = "".join(r.iter_text())
    assert r.status_code == 200 and r.headers["x-frontier-pool"] == "light"
    assert body.rstrip().endswith("data: [DONE]")


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": "frontier", "messages": []}, "messages"),
        ({"model": "frontier", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "frontier", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "frontier", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"model": "frontier", "messages": "hello"}, "messages"),
    ],
)
def test_client_mistakes_are_400(base_url, auth_headers, body, param):
    _assert_openai_error(httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=30, headers=auth_headers),
                         400, param)


def test_malformed_json_is_400(base_url, auth_headers):
    r = httpx.post(f"{base_url}/v1/chat/completions", content=b'{"model": "frontier", "messages": [',
                   headers={"content-type": "application/json", **auth_headers}, timeout=30)
    _assert_openai_error(r, 400)


def test_unknown_model_is_404(client, base_url, auth_headers):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": EASY}])
    assert info.value.body["param"] == "model"
    _assert_openai_error(httpx.post(f"{base_url}/v1/chat/completions", timeout=30, headers=auth_headers,
                                    json={"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}), 404)


def test_prompt_longer_than_the_pool_limit_is_400_naming_it(client, stack_config):
    limit = stack_config.pools.light.max_model_len
    long_prompt = "hello world " * (limit * 2)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="frontier-light", messages=[{"role": "user", "content": long_prompt}],
                                       max_tokens=4)
    assert str(limit) in info.value.message
    # The same prompt fits neither pool when routed; the answer is still a clean 400.
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="frontier", messages=[{"role": "user", "content": long_prompt * 2}],
                                       max_tokens=4)


def test_unknown_route_is_404_in_openai_shape(base_url, auth_headers):
    _assert_openai_error(httpx.get(f"{base_url}/v1/nothing-here", timeout=30, headers=auth_headers), 404)


def test_metrics_are_public_and_count_decisions(client, base_url):
    _create(client, model="frontier-light", messages=[{"role": "user", "content": EASY}], max_tokens=2)
    r = httpx.get(f"{base_url}/metrics", timeout=30)
    assert r.status_code == 200
    assert 'frontier_decisions_total{pool="light",reason="explicit"}' in r.text
    assert "frontier_request_duration_seconds_bucket" in r.text and "frontier_pool_inflight_requests" in r.text


def test_routed_requests_are_traced_over_otlp(client, span_receiver, trained_router):
    raw, resp = _create(client, model="frontier", messages=[{"role": "user", "content": "trace me"}], max_tokens=3)
    request_id = resp.id

    def complete(spans):
        return any(s.name == "chat frontier" and s.attributes.get("gen_ai.response.id") == request_id for s in spans)

    spans = span_receiver.wait_for(complete, timeout_s=30)
    root = next(s for s in spans if s.name == "chat frontier" and s.attributes.get("gen_ai.response.id") == request_id)
    assert root.attributes["gen_ai.operation.name"] == "chat"
    assert root.attributes["gen_ai.request.model"] == "frontier"
    assert root.attributes["gen_ai.request.max_tokens"] == 3
    assert root.attributes["frontier.pool"] == raw.headers["x-frontier-pool"]
    assert root.attributes["frontier.reason"] == "policy"
    assert trained_router["version"] in root.attributes["frontier.policy_version"]
    assert root.attributes["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens
    children = [s for s in spans if s.parent_span_id == root.span_id]
    assert {"frontier.route", f"chat frontier-{raw.headers['x-frontier-pool']}-engine"} <= {s.name for s in children}
    assert "gen_ai.input.messages" not in root.attributes and "trace me" not in str(root.attributes)  # no prompt text
