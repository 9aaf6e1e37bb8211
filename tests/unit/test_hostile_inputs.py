"""Hostile bodies against the router's real FastAPI app (fake pools): never a 5xx, always an OpenAI-shaped 4xx.

Adversarial prompts at the 1 MB body limit are refused at admission (a pool context they cannot fit) or,
where a pool could take them, featurised (bounded work) and routed.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from frontier.testing.asgi_app import pool_contexts, router_app
from frontier.testing.hostile import (
    ADVERSARIAL_PROMPTS,
    CHAT_PATH,
    FIELDS,
    adversarial_body,
    chat_body,
    encode,
    hostile_bodies,
    response_problem,
)

BODY_LIMIT = 1_048_576
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client():
    app, _ = router_app()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def large_context_client():
    app, service = router_app(pool_contexts(65_536))  # 65,536 tokens x 32 bytes per token: 2 MB
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, service.pools


def _post(client: TestClient, raw: bytes):
    response = client.post(CHAT_PATH, content=raw, headers=JSON)
    problem = response_problem(response.status_code, response.headers.get("content-type", ""), response.content)
    assert problem is None, problem
    return response


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL_PROMPTS))
def test_a_1mb_adversarial_prompt_that_fits_no_pool_is_refused_at_admission(client, kind):
    raw = adversarial_body(kind, BODY_LIMIT)
    assert len(raw) > BODY_LIMIT - 4096
    response = _post(client, raw)
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL_PROMPTS))
def test_a_1mb_adversarial_prompt_a_pool_could_hold_is_featurised_and_routed(large_context_client, kind):
    client, pools = large_context_client
    sent = sum(len(p.requests) for p in pools.values())
    response = _post(client, adversarial_body(kind, BODY_LIMIT))
    assert response.status_code == 200 and response.json()["frontier"]["reason"] == "policy"
    assert sum(len(p.requests) for p in pools.values()) == sent + 1


def test_a_body_over_the_limit_gets_413(client):
    response = _post(client, adversarial_body("digits", 2 * BODY_LIMIT))
    assert response.status_code == 413


@pytest.mark.parametrize(
    "raw,message",
    [
        (b'{"model":"frontier","messages":[{"role":"user","content":"\\ud800"}]}', "not valid JSON"),
        (encode(chat_body("x", frontier={"price_weight": 1e309})), "finite number"),
        (encode(chat_body("x", frontier={"reasoning_share": float("nan")})), "finite number"),
        (b'{"model":"frontier","messages":' + b"[" * 50_000 + b"]" * 50_000 + b"}", "not valid JSON"),
        (encode(chat_body("x", tools=json.loads("[" * 40 + "]" * 40))), "tools"),
        (encode(chat_body("x", stop=["s"] * 1000)), "stop"),
        (encode(chat_body("x", chat_template="{{ 7 * 7 }}")), "chat_template"),
    ],
)
def test_known_500s_are_now_400s(client, raw, message):
    response = _post(client, raw)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "\\ud800", "rating": "up"}',
        b'{"id": "x", "score": NaN}',
        b'{"id": "x", "rating": "up", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        encode({"id": "x", "rating": "up", "junk": [0] * 200_000}),
        b"\xff",
    ],
)
def test_hostile_feedback_bodies_get_400(client, raw):
    response = client.post("/v1/feedback", content=raw, headers=JSON)
    assert response_problem(response.status_code, "", response.content) is None
    assert response.status_code == 400
    # A valid body gets past parsing (this app has feedback off).
    assert client.post("/v1/feedback", json={"id": "x", "rating": "up"}).status_code == 404


def test_generated_hostile_bodies_never_get_a_5xx(client):
    problems = []
    for raw in hostile_bodies(seed=12, count=400):
        response = client.post(CHAT_PATH, content=raw, headers=JSON)
        problem = response_problem(response.status_code, response.headers.get("content-type", ""), response.content)
        if problem:
            problems.append(problem)
    assert not problems, problems[:5]


def _json_values() -> st.SearchStrategy:
    text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
        ["\ud800", "1+" * 5000, "7" * 9000, "数😀" * 500])
    numbers = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([2**64, 10**400])
    scalars = st.none() | st.booleans() | numbers | text
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(text | st.sampled_from(FIELDS), children,
                                                                          max_size=5),
        max_leaves=30,
    )


VALUES = _json_values()
BODIES = st.one_of(
    VALUES.map(encode),
    st.binary(max_size=200),
    st.builds(
        lambda extra, content, ascii_only: encode(chat_body(content, **{"max_tokens": 4, **extra}), ascii_only),
        st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4),
        VALUES,
        st.booleans(),
    ),
    st.builds(
        lambda model, messages, stream: encode({"model": model, "messages": messages, "stream": stream}),
        st.sampled_from(["frontier", "frontier-light", "frontier-reasoning", "gpt-4", ""]) | VALUES,
        st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool", "x"]) | VALUES,
                                        "content": VALUES}), max_size=4),
        st.booleans(),
    ),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=BODIES)
def test_property_any_body_gets_an_openai_shaped_4xx_or_a_routed_answer(client, raw):
    _post(client, raw)
