"""The HTTP app factory: an app built from a replica's dependencies (fake pools here) serves every endpoint
group, keeps its state to itself, and writes JSON and server-sent events with orjson."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ray.serve._private.http_util import ASGIAppReplicaWrapper

from frontier import jsonbytes
from frontier.config import ApiKeyEntry, load_config
from frontier.routing.policies import build_router
from frontier.security.keys import KeyStore, hash_key
from frontier.serving.access import AccessControl
from frontier.serving.http import sse
from frontier.serving.http.app import build_app
from frontier.serving.http.state import RouterState
from frontier.serving.metrics import RouterMetrics
from frontier.serving.observer import Observer
from frontier.serving.router_service import RouterService
from frontier.testing.asgi_app import InstantPool, client

CONFIG = load_config()
KEY = "fk-httpapp-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"model": "frontier-light", "messages": [{"role": "user", "content": "héllo ✓"}]}


class FakeOnline:
    """The online layer as the feedback and readiness routes use it."""

    def __init__(self, healthy=True):
        self.submitted, self.healthy = [], healthy

    async def submit(self, body, key):
        self.submitted.append((body, key.name))

    def health(self):
        return {"redis": "ok" if self.healthy else "unavailable: down", "workers": {}}, self.healthy


class SickPool(InstantPool):
    async def check_health(self):
        raise RuntimeError("no replica")


def _keys(key=KEY, name="tester"):
    return KeyStore([ApiKeyEntry(name=name, sha256=hash_key(key))])


def _app(online=None, light=None, keys=None):
    keys = keys or _keys()
    metrics = RouterMetrics(process=False)
    pools = {"light": light or InstantPool(), "reasoning": InstantPool()}
    service = RouterService(CONFIG, build_router(CONFIG), pools, access=AccessControl(CONFIG, keys),
                            observer=Observer(CONFIG.pools, metrics))  # fmt: skip
    state = RouterState(service, keys, CONFIG.limits.max_body_bytes, online=online)
    return build_app(state), metrics, pools


async def test_chat_answers_json_with_the_decision_and_counts_it():
    app, metrics, pools = _app()
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["x-frontier-pool"] == "light"
    body = response.json()
    assert body["model"] == "frontier-light" and body["frontier"]["reason"] == "explicit"
    assert pools["light"].requests[0]["messages"][0]["content"] == "héllo ✓"
    assert metrics.registry.get_sample_value("frontier_decisions_total", {"pool": "light", "reason": "explicit"}) == 1


async def test_chat_streams_server_sent_events_ending_with_done():
    app, metrics, _ = _app()
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] == "ok" and chunks[-1]["frontier"]["pool"] == "light"
    ok = {"pool": "light", "outcome": "ok"}
    assert metrics.registry.get_sample_value("frontier_request_duration_seconds_count", ok) == 1
    assert metrics.registry.get_sample_value("frontier_pool_inflight_requests", {"pool": "light"}) == 0


async def test_feedback_is_queued_for_the_caller_and_counted_or_404_without_the_online_layer():
    online = FakeOnline()
    app, metrics, _ = _app(online=online)
    async with client(app) as http:
        accepted = await http.post("/v1/feedback", json={"id": "chatcmpl-1", "rating": "up"}, headers=AUTH)
        invalid = await http.post("/v1/feedback", json={"id": "chatcmpl-1", "rating": "meh"}, headers=AUTH)
    assert accepted.status_code == 202 and accepted.json() == {"id": "chatcmpl-1", "status": "queued"}
    assert online.submitted == [({"id": "chatcmpl-1", "rating": "up"}, "tester")]
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "rating"
    assert metrics.registry.get_sample_value("frontier_feedback_events_total", {"kind": "rating", "outcome": "accepted"}) == 1
    app, _, _ = _app(online=None)
    async with client(app) as http:
        disabled = await http.post("/v1/feedback", json={"id": "chatcmpl-1", "score": 1}, headers=AUTH)
    assert disabled.status_code == 404 and disabled.json()["error"]["code"] == "feedback_disabled"


async def test_models_need_a_key_and_list_the_public_models():
    app, _, _ = _app()
    async with client(app) as http:
        anonymous = await http.get("/v1/models")
        listed = await http.get("/v1/models", headers=AUTH)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "missing_api_key"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert [m["id"] for m in listed.json()["data"]] == ["frontier", "frontier-light", "frontier-reasoning"]


async def test_health_readiness_and_metrics_answer_without_a_key():
    app, _, _ = _app(online=FakeOnline())
    async with client(app) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        scraped = await http.get("/metrics")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "pools": {"light": "ok", "reasoning": "ok"}, "redis": "ok", "workers": {}}
    families = {f.name for f in text_string_to_metric_families(scraped.text)}
    assert scraped.status_code == 200 and "frontier_decisions" in families


@pytest.mark.parametrize(("light", "online", "status", "state"), [
    (SickPool(), None, 503, "unavailable"),  # a pool that cannot serve unreadies the replica
    (None, FakeOnline(healthy=False), 200, "degraded"),  # Redis trouble only degrades it
])  # fmt: skip
async def test_readiness_names_what_is_wrong(light, online, status, state):
    app, _, _ = _app(online=online, light=light)
    async with client(app) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == status and ready.json()["status"] == state
    if light is not None:
        assert ready.json()["pools"]["light"] == "unavailable: RuntimeError"


async def test_each_app_serves_its_own_state():
    first, _, _ = _app(keys=_keys("fk-first-key-0123456789"))
    second, _, _ = _app(keys=_keys("fk-second-key-0123456789"))
    async with client(first) as one, client(second) as two:
        mine = await one.get("/v1/models", headers={"Authorization": "Bearer fk-first-key-0123456789"})
        theirs = await two.get("/v1/models", headers={"Authorization": "Bearer fk-first-key-0123456789"})
    assert mine.status_code == 200 and theirs.status_code == 401


async def test_body_limit_is_checked_before_auth():
    app, _, _ = _app()
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", content=b"x" * (CONFIG.limits.max_body_bytes + 1))
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


async def test_the_router_deployment_builds_its_app_from_the_state_its_constructor_made():
    from frontier.serving.ingress import RouterIngress

    wrapper = RouterIngress.func_or_class  # Ray Serve's ingress class around RouterIngress
    assert issubclass(wrapper, ASGIAppReplicaWrapper)
    replica = SimpleNamespace(state=_app()[0].state.frontier)  # what the constructor leaves
    app = wrapper.__serve_build_asgi_app__(replica)  # what the replica calls after the constructor
    assert app.state.frontier is replica.state
    async with client(app) as http:
        assert (await http.get("/v1/models", headers=AUTH)).status_code == 200


async def _events(*events):
    for event in events:
        yield event


async def test_sse_ends_with_done_unless_an_error_event_ended_the_stream():
    done = [line async for line in sse.encode(_events({"a": "é"}, {"b": 1}))]
    assert done == ['data: {"a":"é"}\n\n'.encode(), b'data: {"b":1}\n\n', b"data: [DONE]\n\n"]
    failed = [line async for line in sse.encode(_events({"a": 1}, {"error": {"message": "x"}}))]
    assert failed == [b'data: {"a":1}\n\n', b'data: {"error":{"message":"x"}}\n\n']


async def test_closing_the_sse_stream_closes_the_events():
    closed = []

    async def events():
        try:
            yield {"a": 1}
            yield {"a": 2}
        finally:
            closed.append(True)

    stream = sse.encode(events())
    assert await anext(stream) == b'data: {"a":1}\n\n'
    await stream.aclose()
    assert closed == [True]


def test_json_bodies_orjson_refuses_are_still_written():
    assert jsonbytes.dumps({"ok": [1, "é"]}) == '{"ok":[1,"é"]}'.encode()
    for value in ({"n": 2**70}, {"s": "lone \udfff"}, {1: "int key"}):
        assert json.loads(jsonbytes.dumps(value)) == json.loads(json.dumps(value))
    # Sorted keys either way: by orjson, and by json where orjson refuses the value.
    assert jsonbytes.dumps({"b": 1, "a": {"d": 2, "c": 3}}, sort_keys=True) == b'{"a":{"c":3,"d":2},"b":1}'
    assert jsonbytes.dumps({"b": 2**70, "a": 1}, sort_keys=True) == b'{"a":1,"b":1180591620717411303424}'
