"""Feedback through the real stack: decision log, intake, consumer, live policy version, protection."""

import time

import httpx
import pytest

from frontier.feedback.decision_log import new_completion_id
from frontier.feedback.keys import Keys
from frontier.feedback.redis_server import connect

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
FEEDBACK = "/v1/feedback"


def _headers(api_keys, name="main"):
    return {"Authorization": f"Bearer {api_keys[name]}"}


def _routed(base_url, headers, **extra):
    body = {"model": "frontier", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 2, **extra}
    r = httpx.post(f"{base_url}{CHAT}", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r


def _online_state(local_stack, stack_config):
    client = connect(local_stack.redis.url, 2.0)
    try:
        return client.hgetall(Keys(stack_config.redis.key_prefix).online)
    finally:
        client.close()


def test_routed_completions_get_unguessable_ids_and_feedback_is_applied_once(base_url, api_keys, local_stack,
                                                                             stack_config):
    headers = _headers(api_keys)
    first = _routed(base_url, headers)
    cid = first.json()["id"]
    assert cid.startswith("chatcmpl-fr") and len(cid) >= 30
    version_before = first.headers["x-frontier-policy-version"]
    applied_before = int(_online_state(local_stack, stack_config).get(b"applied", b"0"))

    accepted = httpx.post(f"{base_url}{FEEDBACK}", json={"id": cid, "rating": "down"}, headers=headers, timeout=30)
    assert accepted.status_code == 202 and accepted.json() == {"id": cid, "status": "queued"}
    repeat = httpx.post(f"{base_url}{FEEDBACK}", json={"id": cid, "score": 1.0}, headers=headers, timeout=30)
    assert repeat.status_code == 409 and repeat.json()["error"]["code"] == "feedback_exists"

    # The consumer applies it and every router replica moves to the new policy version.
    deadline = time.monotonic() + 15
    version = version_before
    while time.monotonic() < deadline and version == version_before:
        time.sleep(0.5)
        version = _routed(base_url, headers).headers["x-frontier-policy-version"]
    assert version != version_before
    assert int(_online_state(local_stack, stack_config)[b"applied"]) == applied_before + 1


def test_stream_chunks_carry_the_completion_id(base_url, api_keys):
    with httpx.stream("POST", f"{base_url}{CHAT}", headers=_headers(api_keys), timeout=60, json={
            "model": "frontier", "stream": True, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    ids = {__import__("json").loads(line[6:])["id"] for line in lines}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-fr")


@pytest.mark.parametrize("body,param", [
    ({"id": "chatcmpl-frxxxxxxxxxxxxxxxxxxxxxxxxxxx"}, None),
    ({"id": "x", "rating": "sideways"}, "rating"),
    ({"id": "x", "score": 1.5}, "score"),
    ({"rating": "up"}, "id"),
])
def test_malformed_feedback_is_400(base_url, api_keys, body, param):
    r = httpx.post(f"{base_url}{FEEDBACK}", json=body, headers=_headers(api_keys), timeout=30)
    assert r.status_code == 400, r.text
    if param:
        assert r.json()["error"]["param"] == param


def test_unknown_id_is_404_and_other_keys_get_403(base_url, api_keys):
    r = httpx.post(f"{base_url}{FEEDBACK}", json={"id": new_completion_id(), "rating": "up"},
                   headers=_headers(api_keys), timeout=30)
    assert r.status_code == 404
    cid = _routed(base_url, _headers(api_keys)).json()["id"]
    r = httpx.post(f"{base_url}{FEEDBACK}", json={"id": cid, "rating": "up"}, headers=_headers(api_keys, "steady"),
                   timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_completion"
    assert httpx.post(f"{base_url}{FEEDBACK}", json={"id": cid, "rating": "up"}, timeout=30).status_code == 401


def test_forged_replayed_and_cross_key_feedback_changes_nothing(base_url, api_keys, local_stack, stack_config):
    own = _routed(base_url, _headers(api_keys)).json()["id"]
    judged = _routed(base_url, _headers(api_keys)).json()["id"]
    assert httpx.post(f"{base_url}{FEEDBACK}", json={"id": judged, "rating": "up"}, headers=_headers(api_keys),
                      timeout=30).status_code == 202
    time.sleep(3)  # let the consumer apply that one
    before = _online_state(local_stack, stack_config)
    statuses = []
    with httpx.Client(timeout=30) as client:
        for i in range(1000):
            kind = i % 3
            if kind == 0:  # forged id
                body, headers = {"id": new_completion_id(), "rating": "up"}, _headers(api_keys)
            elif kind == 1:  # replay of an already judged completion
                body, headers = {"id": judged, "rating": "down"}, _headers(api_keys)
            else:  # another key's completion
                body, headers = {"id": own, "preferred": "reasoning"}, _headers(api_keys, "steady")
            statuses.append(client.post(f"{base_url}{FEEDBACK}", json=body, headers=headers).status_code)
    assert 202 not in statuses and set(statuses) <= {403, 404, 409, 429}
    time.sleep(3)
    assert _online_state(local_stack, stack_config) == before


def test_retry_of_a_light_answer_on_reasoning_counts_as_negative_feedback(base_url, api_keys):
    headers = _headers(api_keys)
    light = _routed(base_url, headers, frontier={"reasoning_share": 0.0})
    assert light.headers["x-frontier-pool"] == "light"
    cid = light.json()["id"]
    retry = httpx.post(f"{base_url}{CHAT}", timeout=60, headers={**headers, "x-frontier-retry-of": cid}, json={
        "model": "frontier-reasoning", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 2})
    assert retry.status_code == 200
    # The implicit signal used the completion's single feedback slot.
    r = httpx.post(f"{base_url}{FEEDBACK}", json={"id": cid, "rating": "up"}, headers=headers, timeout=30)
    assert r.status_code == 409
