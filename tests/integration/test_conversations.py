"""Conversations on the real stack (Ray Serve, two vLLM CPU engines, Redis) with the official openai client:
follow-up turns stay on their conversation's pool in each identity mode, an explicit model wins, and a
tenant cannot attach to another tenant's conversation. Few requests, a few tokens each."""

import uuid

import pytest
from openai import OpenAI

pytestmark = pytest.mark.integration

FOLLOW_UPS = ("thanks!", "and in one word?")


class Conversation:
    """A stateless client's conversation: it resends the whole history every turn."""

    def __init__(self, client, mode):
        self.client, self.mode, self.name = client, mode, f"conv-{uuid.uuid4().hex}"
        self.messages = [{"role": "system", "content": f"Answer briefly. ({self.name})"}]  # a conversation of its own

    def say(self, text, model="frontier", **kw):
        self.messages.append({"role": "user", "content": text})
        extra_headers = {"x-session-id": self.name} if self.mode == "header" else None
        extra_body = {"prompt_cache_key": self.name} if self.mode == "prompt_cache_key" else None
        raw = self.client.chat.completions.with_raw_response.create(
            model=model, messages=self.messages, max_tokens=4, temperature=0, extra_headers=extra_headers,
            extra_body=extra_body, **kw,
        )  # fmt: skip
        response = raw.parse()
        self.messages.append({"role": "assistant", "content": response.choices[0].message.content or ""})
        decision = response.model_extra["frontier"]
        assert raw.headers["x-frontier-pool"] == decision["pool"]
        assert raw.headers["x-frontier-reason"] == decision["reason"]
        return decision


@pytest.mark.parametrize("mode", ["prompt_cache_key", "header", "history"])
def test_every_follow_up_stays_on_its_pool_and_an_explicit_model_wins(client, mode):
    heavy = Conversation(client, mode)
    assert heavy.say("Prove that there are infinitely many primes.", reasoning_effort="high")["pool"] == "reasoning"
    light = Conversation(client, mode)
    assert light.say("What is the capital of France?", model="frontier-light")["pool"] == "light"
    for text in FOLLOW_UPS:
        for conversation, pool in ((heavy, "reasoning"), (light, "light")):
            turn = conversation.say(text)
            assert (turn["pool"], turn["reason"]) == (pool, "session"), turn
            assert turn["margin"] > 0 and turn["score"] is not None
    # A move after an explicit turn queues no implicit feedback (the feedback tests count applied events).
    moved = Conversation(client, mode)
    assert moved.say("What is the capital of Italy?", model="frontier-light")["pool"] == "light"
    explicit = moved.say("one more, carefully", model="frontier-reasoning")
    assert (explicit["pool"], explicit["reason"]) == ("reasoning", "explicit")
    after = moved.say("ok")
    assert (after["pool"], after["reason"]) == ("reasoning", "session")  # the conversation follows the explicit move


@pytest.mark.parametrize("mode", ["prompt_cache_key", "header", "history"])
def test_a_tenant_cannot_attach_to_another_tenants_conversation(base_url, api_keys, mode):
    def client_of(name):
        return OpenAI(base_url=f"{base_url}/v1", api_key=api_keys[name], max_retries=0, timeout=120)

    owner = Conversation(client_of("steady"), mode)
    assert owner.say("What is the capital of France?", model="frontier-light")["pool"] == "light"
    intruder = Conversation(client_of("main"), mode)
    intruder.name, intruder.messages = owner.name, list(owner.messages)  # the same conversation, word for word
    assert intruder.say(FOLLOW_UPS[0])["reason"] == "policy"
    assert owner.say(FOLLOW_UPS[0])["reason"] == "session"
