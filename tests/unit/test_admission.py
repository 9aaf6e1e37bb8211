"""Admission: size checks before any featurising; the routing decision off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest
from frontier.serving import admission
from frontier.serving.admission import admit, parse_body
from frontier.testing.asgi_app import client, pool_contexts, router_app
from frontier.testing.hostile import CHAT_PATH, chat_body, encode

# light: 1,024 tokens (32 KB of prompt at 32 bytes per token); reasoning: 16,384 tokens (512 KB).
CONFIG = pool_contexts(1024, 16_384)
PROMPT_64KB = "x" * 65_536


def _recording_decisions(service):
    """Make ``service`` record the thread of every routing decision it computes."""
    threads = []
    decide = service._decide

    def recorded(request, *rest):
        threads.append(threading.current_thread().name)
        return decide(request, *rest)

    service._decide = recorded
    return threads


@pytest.mark.parametrize(
    "model,fits", [("frontier-light", False), ("frontier-reasoning", True), ("frontier", True)]
)
def test_a_prompt_is_measured_against_the_largest_context_it_could_be_served_with(model, fits):
    request = ChatCompletionRequest.model_validate(chat_body(PROMPT_64KB, model))
    if fits:
        admit(request, CONFIG)
        return
    with pytest.raises(FrontierError) as info:
        admit(request, CONFIG)
    assert info.value.status_code == 400 and info.value.code == "context_length_exceeded"


def test_tool_definitions_count_with_the_prompt():
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": "d" * 16_000}} for i in range(40)]
    request = ChatCompletionRequest.model_validate(chat_body("hi", tools=tools))
    with pytest.raises(FrontierError) as info:
        admit(request, CONFIG)
    assert info.value.param == "tools" and info.value.code == "context_length_exceeded"
    admit(ChatCompletionRequest.model_validate(chat_body("hi", tools=tools[:2])), CONFIG)


def test_more_messages_than_the_configured_limit_are_refused():
    request = ChatCompletionRequest.model_validate(
        {"model": "frontier", "messages": [{"role": "user", "content": "x"}] * (CONFIG.limits.max_messages + 1)})
    with pytest.raises(FrontierError) as info:
        admit(request, CONFIG)
    assert info.value.code == "too_many_messages"


async def test_an_oversized_prompt_is_refused_before_any_featurising():
    app, service = router_app(CONFIG)
    decisions = _recording_decisions(service)
    async with client(app) as http:
        refused = await http.post(CHAT_PATH, content=encode(chat_body(PROMPT_64KB, "frontier-light")))
        served = await http.post(CHAT_PATH, content=encode(chat_body(PROMPT_64KB, "frontier-reasoning")))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    assert served.status_code == 200 and len(decisions) == 1


async def test_a_larger_prompts_decision_runs_off_the_event_loop_which_keeps_answering():
    app, service = router_app(CONFIG)
    decisions = _recording_decisions(service)
    entered, release = threading.Event(), threading.Event()
    decide = service._decide

    def held(request, *rest):
        entered.set()
        release.wait(30)
        return decide(request, *rest)

    service._decide = held
    async with client(app) as http:
        larger = "hello " * (admission.INLINE_DECIDE_BYTES // 6 + 1)
        chat = asyncio.create_task(http.post(CHAT_PATH, content=encode(chat_body(larger))))
        assert await asyncio.to_thread(entered.wait, 30)
        # Were the decision on the loop, nothing could answer until it returned.
        health = await asyncio.wait_for(http.get("/healthz"), timeout=10)
        assert health.status_code == 200 and not chat.done()
        release.set()
        assert (await chat).status_code == 200
    assert decisions and all(name.startswith("frontier-decide") for name in decisions)


async def test_a_small_prompts_decision_runs_on_the_loop_without_a_thread_hop():
    app, service = router_app(CONFIG)
    decisions = _recording_decisions(service)
    async with client(app) as http:
        small = await http.post(CHAT_PATH, content=encode(chat_body("x" * admission.INLINE_DECIDE_BYTES)))
        larger = await http.post(CHAT_PATH, content=encode(chat_body("x" * (admission.INLINE_DECIDE_BYTES + 1))))
    assert small.status_code == larger.status_code == 200
    assert decisions == [threading.current_thread().name, decisions[1]] and decisions[1].startswith("frontier-decide")


def test_parse_errors_are_openai_400s_naming_the_problem():
    with pytest.raises(FrontierError) as info:
        parse_body(ChatCompletionRequest, b'{"model": "frontier", "messages": [{"role": "user", "content": "x"}], "n": 1e309}')
    assert info.value.status_code == 400 and info.value.param == "n"
    with pytest.raises(FrontierError) as info:
        parse_body(ChatCompletionRequest, b"\xff")
    assert info.value.code == "invalid_json"


async def test_small_bodies_are_parsed_on_the_loop_and_large_ones_in_a_thread(monkeypatch):
    threads = []

    def recording(model, raw):
        threads.append(threading.current_thread())
        return real(model, raw)

    real = admission.parse_body
    monkeypatch.setattr(admission, "parse_body", recording)
    small = json.dumps({"model": "frontier", "messages": [{"role": "user", "content": "hi"}]}).encode()
    large = json.dumps({"model": "frontier", "messages": [{"role": "user", "content": "x" * 100_000}]}).encode()
    assert len(small) <= admission.INLINE_PARSE_BYTES < len(large)
    for raw in (small, large):
        parsed = await admission.parse_request(ChatCompletionRequest, raw)
        assert parsed.model == "frontier"
    assert threads[0] is threading.current_thread() and threads[1] is not threading.current_thread()
