"""Conversations: identity (prompt_cache_key, x-session-id, history hash), stickiness as a decision with a cost,
explicit overrides, budgets, tenant isolation, expiry and Redis faults.

The router service is real, with a router whose score a prompt scripts ("score=0.9 ..."), fake pools, and
conversation state and budgets in a real Redis server.
"""

import re
import time

import numpy as np
import pytest

from frontier.config import PoolConfig, SessionConfig, load_config
from frontier.feedback.keys import Keys
from frontier.feedback.redis_server import connect, free_port
from frontier.redis_guard import FailOpen
from frontier.redis_writes import GroupCommit, Write
from frontier.routing.feature_map import FeatureMap
from frontier.routing.router import Router, SwitchRule, ThresholdRule, follow_up
from frontier.routing.types import CostKnob, Pool, Reason, SessionState
from frontier.schemas import ChatCompletionRequest
from frontier.security.budget import ReasoningBudget
from frontier.security.keys import KeyInfo, KeyStore
from frontier.serving.access import AccessControl
from frontier.serving.holdings import settled
from frontier.serving.pools import PREFIX_ROUTER, llm_config_dict
from frontier.serving.router_service import RouterService
from frontier.serving.sessions import SESSION_HEADER, Sessions, Turn, identify
from frontier.testing.asgi_app import InstantPool
from tests.support.budget import PREFIX, redis_client, redis_server  # noqa: F401 - fixtures

CONFIG = load_config()
PRICES = {Pool.LIGHT: 0.1, Pool.REASONING: 1.0}  # USD per million input tokens
RULE = SwitchRule(penalty=0.35, cache_weight=100.0, input_price_per_mtok=PRICES)
TENANT = KeyInfo(name="tenant-a")
KEYS = Keys(PREFIX)


class ScriptedHeads:
    """Logits whose router score is the feature itself: P(light ok) = 1 - s, P(reasoning ok) = s."""

    mean, scale = np.zeros(1), np.ones(1)

    def logits(self, x):
        s = np.clip(np.asarray(x, dtype=np.float64)[..., 0], 1e-6, 1 - 1e-6)
        return np.stack([np.log((1 - s) / s), np.log(s / (1 - s))], axis=-1)


class ScriptedScorer:
    """The score of a request is the ``score=`` its last user message states (0.5 without one)."""

    params = ScriptedHeads()

    def featurize(self, features):
        found = re.search(r"score=([0-9.]+)", features.last_user_text)
        return np.array([float(found.group(1)) if found else 0.5])


def _router(rule=RULE):
    threshold = ThresholdRule(CostKnob(), lambda share: 0.5, lambda chars: 0.0, default=0.5, switch=rule)
    return Router("scripted", ScriptedScorer(), FeatureMap.random(1, 1), threshold, explore_cap=0.05)


class FakeOnline:
    """Decision logging: a new completion id per routed decision; implicit re-asks recorded."""

    def __init__(self, client):
        self.client, self.logged, self.retries = client, [], []

    def decision_write(self, context, decision, key):
        self.logged.append(decision)
        return f"chatcmpl-fr{len(self.logged)}", Write(self.client, FailOpen("decision logging"), lambda pipe: pipe.ping())

    async def implicit_retry(self, retry_of, key):
        self.retries.append(retry_of)
        return True


def _service(client, session_config=SessionConfig(), access=None, online=None):
    pools = {"light": InstantPool(), "reasoning": InstantPool()}
    sessions = Sessions(client, KEYS, session_config)
    return RouterService(CONFIG, _router(), pools, access=access, online=online or FakeOnline(client), sessions=sessions)


def _request(messages, model="frontier", **kw):
    return ChatCompletionRequest.model_validate({"model": model, "messages": messages, "max_tokens": 8, **kw})


class Chat:
    """One client's conversation: resends the whole history each turn (as stateless OpenAI clients do)."""

    def __init__(self, service, key=TENANT, mode="history", name="conv-1"):
        self.service, self.key, self.mode, self.name = service, key, mode, name
        self.messages = [{"role": "system", "content": "You are terse."}]

    async def say(self, text, model="frontier", **kw):
        self.messages.append({"role": "user", "content": text})
        if self.mode == "prompt_cache_key":
            kw["prompt_cache_key"] = self.name
        headers = {SESSION_HEADER: self.name} if self.mode == "header" else {}
        outcome = await self.service.chat(_request(self.messages, model, **kw), self.key, headers)
        # The client echoes the answer back in its own way; only the messages up to a user turn identify it.
        self.messages.append({"role": "assistant", "content": f"answer {len(self.messages)}", "refusal": None})
        return outcome.body["frontier"]


@pytest.mark.parametrize("mode", ["prompt_cache_key", "header", "history"])
async def test_every_follow_up_stays_on_the_pool_of_its_conversation_in_each_identity_mode(redis_client, mode):
    service = _service(redis_client)
    chat = Chat(service, mode=mode)
    first = await chat.say("score=0.9 prove it")
    assert (first["pool"], first["reason"]) == ("reasoning", "policy")
    for text in ("score=0.2 thanks!", "score=0.35 and in one word?", "score=0.45 next"):
        turn = await chat.say(text)
        assert (turn["pool"], turn["reason"]) == ("reasoning", "session")
        assert turn["score"] < turn["threshold"] and turn["margin"] >= RULE.penalty
    light = Chat(service, mode=mode, name="conv-2")
    assert (await light.say("score=0.1 hi"))["pool"] == "light"
    turn = await light.say("score=0.7 a harder question")
    assert (turn["pool"], turn["reason"]) == ("light", "session")
    # The same follow-up text outside any conversation is routed on its own.
    alone = await service.chat(_request([{"role": "user", "content": "score=0.2 thanks!"}]), TENANT)
    assert (alone.decision.pool, alone.decision.reason) == ("light", "policy")


async def test_a_turn_far_enough_past_the_threshold_switches_and_says_so(redis_client):
    service = _service(redis_client)
    chat = Chat(service)
    assert (await chat.say("score=0.1 hi"))["pool"] == "light"
    moved = await chat.say("score=0.99 now prove the Riemann hypothesis")
    assert (moved["pool"], moved["reason"]) == ("reasoning", "session_switch")
    conversation = identify(_request(chat.messages[:-1]), TENANT.name, {}, KEYS, True)
    assert moved["margin"] == RULE.margin(Pool.REASONING, conversation.history_tokens) > RULE.penalty
    assert moved["score"] > moved["threshold"] + moved["margin"]
    stays = await chat.say("score=0.2 thanks")
    assert (stays["pool"], stays["reason"]) == ("reasoning", "session")


def test_the_switching_margin_grows_with_the_prefix_cache_a_switch_throws_away():
    rule = SwitchRule(penalty=0.2, cache_weight=100.0, input_price_per_mtok=PRICES)
    light = SessionState(Pool.LIGHT, history_tokens=0)
    assert follow_up(light, 0.69, 0.5, rule) == (Pool.LIGHT, Reason.SESSION, 0.2)
    assert follow_up(light, 0.71, 0.5, rule) == (Pool.REASONING, Reason.SESSION_SWITCH, 0.2)
    long = SessionState(Pool.LIGHT, history_tokens=2000)  # 2000 tokens at 1 USD/Mtok x 100 points/USD = 0.2
    assert follow_up(long, 0.89, 0.5, rule)[:2] == (Pool.LIGHT, Reason.SESSION)
    assert follow_up(long, 0.91, 0.5, rule)[:2] == (Pool.REASONING, Reason.SESSION_SWITCH)
    # Leaving reasoning for light prefills the history at light's (lower) price.
    heavy = SessionState(Pool.REASONING, history_tokens=2000)
    assert follow_up(heavy, 0.27, 0.5, rule) == (Pool.LIGHT, Reason.SESSION_SWITCH, pytest.approx(0.22))
    assert follow_up(heavy, 0.29, 0.5, rule)[:2] == (Pool.REASONING, Reason.SESSION)
    assert follow_up(heavy, 0.29, 0.5, SwitchRule(penalty=1.0))[:2] == (Pool.REASONING, Reason.SESSION)


async def test_explicit_models_and_effort_win_and_the_conversation_follows_them(redis_client):
    online = FakeOnline(redis_client)
    service = _service(redis_client, online=online)
    chat = Chat(service, mode="header")
    assert (await chat.say("score=0.1 hi"))["pool"] == "light"
    explicit = await chat.say("score=0.1 again, carefully", model="frontier-reasoning")
    assert (explicit["pool"], explicit["reason"]) == ("reasoning", "explicit")
    assert online.retries == ["chatcmpl-fr1"]  # moving the conversation re-asks its previous (light) turn
    follow = await chat.say("score=0.2 ok")
    assert (follow["pool"], follow["reason"]) == ("reasoning", "session")
    effort = await chat.say("score=0.9 quick one", reasoning_effort="minimal")
    assert (effort["pool"], effort["reason"]) == ("light", "effort")
    assert (await chat.say("score=0.8 and?"))["reason"] == "session"
    assert online.retries == ["chatcmpl-fr1"]  # only a move to reasoning is a signal on a light turn


async def test_a_streamed_turn_is_remembered_once_it_answers(redis_client):
    service = _service(redis_client)
    opener = [{"role": "user", "content": "score=0.9 prove it"}]
    first = await service.chat(_request(opener, stream=True), TENANT)
    assert first.decision.pool == "reasoning" and "frontier" in [e async for e in first.stream][-1]
    thanks = [*opener, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "score=0.2 thanks"}]
    follow = await service.chat(_request(thanks, stream=True), TENANT)
    assert (follow.decision.pool, follow.decision.reason) == ("reasoning", "session")
    assert [e async for e in follow.stream][-1]["frontier"]["reason"] == "session"  # the final chunk's decision


async def test_a_budget_that_forbids_reasoning_moves_the_conversation_to_light(redis_client):
    access = AccessControl(CONFIG, KeyStore([]), budget=ReasoningBudget(redis_client, prefix=PREFIX))
    service = _service(redis_client, access=access)
    chat = Chat(service, key=KeyInfo(name="nobudget", reasoning_share_budget=0.0))
    first = await chat.say("score=0.9 prove it")
    assert (first["pool"], first["reason"]) == ("light", "budget")
    follow = await chat.say("score=0.6 and then?")
    assert (follow["pool"], follow["reason"]) == ("light", "session")  # the stored pool is the one that answered
    switch = await chat.say("score=0.99 prove more")
    assert (switch["pool"], switch["reason"]) == ("light", "budget")
    await settled()


async def test_a_tenant_cannot_attach_to_another_tenants_conversation(redis_client):
    service = _service(redis_client)
    for mode in ("prompt_cache_key", "header", "history"):
        owner = Chat(service, key=KeyInfo(name="owner"), mode=mode, name="shared")
        assert (await owner.say("score=0.9 prove it"))["pool"] == "reasoning"
        intruder = Chat(service, key=KeyInfo(name="intruder"), mode=mode, name="shared")
        intruder.messages = list(owner.messages)  # the same conversation, word for word
        turn = await intruder.say("score=0.2 thanks")
        assert (turn["pool"], turn["reason"]) == ("light", "policy")


async def test_a_conversation_expires_after_its_ttl(redis_client):
    service = _service(redis_client, SessionConfig(ttl_s=1))
    chat = Chat(service, mode="prompt_cache_key")
    await chat.say("score=0.9 prove it")
    conversation = identify(_request(chat.messages[:2], prompt_cache_key="conv-1"), TENANT.name, {}, KEYS, True)
    assert 0 < redis_client.ttl(conversation.key) <= 1
    deadline = time.monotonic() + 10
    while redis_client.exists(conversation.key):
        assert time.monotonic() < deadline, "the conversation did not expire"
        time.sleep(0.05)
    turn = await chat.say("score=0.2 thanks")
    assert (turn["pool"], turn["reason"]) == ("light", "policy")


async def test_redis_down_routes_as_if_there_were_no_conversation():
    down = connect(f"redis://127.0.0.1:{free_port()}", 0.2)
    service = _service(down)
    chat = Chat(service, mode="header")
    assert (await chat.say("score=0.9 prove it"))["pool"] == "reasoning"
    turn = await chat.say("score=0.2 thanks")  # Redis is down: no session, and never an error
    assert (turn["pool"], turn["reason"]) == ("light", "policy")
    assert service.sessions.guard.failures >= 1


def _identity(messages):
    return identify(_request(messages), "k", None, KEYS, True)


def test_the_history_hash_finds_the_previous_turn_and_a_first_turn_follows_none():
    system = {"role": "system", "content": "be brief"}
    u1, u2 = {"role": "user", "content": "one"}, {"role": "user", "content": "two"}
    first = _identity([system, u1])
    assert first.follows is None and first.history_tokens > 0
    second = _identity([system, u1, {"role": "assistant", "content": "an echo"}, u2])
    assert second.follows == first.key and second.key != first.key
    # Tool results after the last user turn continue that turn.
    function = {"name": "f", "arguments": "{}"}
    call = {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": function}]}
    tool = _identity([system, u1, call, {"role": "tool", "tool_call_id": "t", "content": "42"}])
    assert tool.follows == tool.key == first.key
    # Another tenant, or another conversation, is another key.
    assert identify(_request([system, u1]), "other", None, KEYS, True).key != first.key
    assert _identity([{"role": "system", "content": "be long"}, u1]).key != first.key
    assert identify(_request([system, u1, u2]), "k", None, KEYS, hash_history=False) is None


def test_an_ascii_conversation_keeps_its_key_across_the_orjson_upgrade():
    # Before, each message was hashed as json.dumps(sort_keys=True, separators=(",", ":")): for ASCII text orjson
    # writes the same bytes, so the replicas of a rolling upgrade still find each other's conversations.
    import hashlib
    import json

    messages = [{"role": "system", "content": "be brief\n\t\"ok\""}, {"role": "user", "content": "one"},
                {"role": "assistant", "content": "a"}, {"role": "user", "content": "two"}]
    digest = hashlib.blake2b(digest_size=16)
    for part in (b"k", b"history"):
        digest.update(len(part).to_bytes(8, "little") + part)
    for message in messages:
        digest.update(json.dumps(message, sort_keys=True, separators=(",", ":")).encode())
    assert _identity(messages).key == KEYS.conversation(digest.hexdigest())


def test_a_history_orjson_cannot_write_still_has_a_conversation():
    function = {"name": "f", "arguments": "{}", "big": 2**70}  # orjson refuses integers past 64 bits
    call = {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": function}]}
    messages = [{"role": "user", "content": "one"}, call, {"role": "user", "content": "two"}]
    assert _identity(messages).key == _identity(messages).key
    assert _identity(messages).follows == _identity(messages[:1]).key


def test_message_dicts_are_the_messages_without_unset_fields_made_once():
    request = _request([{"role": "user", "content": "one", "name": None}, {"role": "assistant", "content": "a"}])
    assert request.message_dicts == [m.model_dump(exclude_none=True) for m in request.messages]
    assert request.message_dicts is request.message_dicts and "name" not in request.message_dicts[0]


def test_a_named_conversation_prefers_prompt_cache_key_to_the_header():
    msgs = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
    by_key = identify(_request(msgs, prompt_cache_key="c"), "k", {SESSION_HEADER: "h"}, KEYS, True)
    assert by_key.key == by_key.follows == identify(_request(msgs, prompt_cache_key="c"), "k", None, KEYS, True).key
    by_header = identify(_request(msgs), "k", {SESSION_HEADER: "h"}, KEYS, True)
    assert by_header.key != by_key.key and by_header.follows == by_header.key
    assert identify(_request(msgs[:1], prompt_cache_key="c"), "k", None, KEYS, True).follows is None


@pytest.mark.parametrize(
    ("enabled", "max_replicas", "routed"), [(None, 1, False), (None, 2, True), (False, 4, False), (True, 1, True)]
)
def test_pools_with_several_replicas_route_by_prefix_cache_affinity(enabled, max_replicas, routed):
    pool = PoolConfig.model_validate(
        {"model": "m", "autoscaling": {"max_replicas": max_replicas}, "prefix_affinity": {"enabled": enabled}}
    )
    deployment = llm_config_dict("light", pool, "m")["deployment_config"]
    if not routed:
        assert "request_router_config" not in deployment
        return
    router = deployment["request_router_config"]
    assert router["request_router_class"] == PREFIX_ROUTER
    assert router["request_router_kwargs"]["eviction_threshold_chars"] == pool.prefix_affinity.max_tree_chars


class HistoryScorer(ScriptedScorer):
    """Scores by how many user turns the request's messages hold: a long history looks hard."""

    def featurize(self, features):
        return np.array([0.99 if features.num_user_turns > 1 else 0.1])


async def test_a_follow_up_is_scored_on_its_own_turn_not_on_the_history_it_resends(redis_client):
    threshold = ThresholdRule(CostKnob(), lambda share: 0.5, lambda chars: 0.0, default=0.5, switch=RULE)
    router = Router("history", HistoryScorer(), FeatureMap.random(1, 1), threshold, explore_cap=0.0)
    pools = {"light": InstantPool(), "reasoning": InstantPool()}
    service = RouterService(CONFIG, router, pools, online=FakeOnline(redis_client), sessions=Sessions(redis_client, KEYS, SessionConfig()))
    chat = Chat(service)
    assert (await chat.say("hi"))["pool"] == "light"
    for text in ("thanks!", "go on", "and then?"):
        turn = await chat.say(text)
        assert (turn["pool"], turn["reason"], turn["score"]) == ("light", "session", pytest.approx(0.1))
    # A history the router has not seen is no conversation of its: scored whole.
    unknown = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    alone = await service.chat(_request(unknown), TENANT, {})
    assert (alone.decision.pool, alone.decision.score) == ("reasoning", pytest.approx(0.99))


async def test_a_small_first_turn_asks_redis_nothing_and_a_follow_up_one_get(redis_client, monkeypatch):
    sessions = Sessions(redis_client, KEYS, SessionConfig())
    calls, twin = [], sessions.twin.redis()
    get = twin.get
    monkeypatch.setattr(twin, "get", lambda *a, **kw: calls.append(a) or get(*a, **kw))
    first = _request([{"role": "user", "content": "hi"}])
    conversation, turn = await sessions.find(first, TENANT.name, {})
    assert turn is None and conversation.follows is None and calls == []
    assert await GroupCommit().commit([sessions.remember(conversation, Pool.REASONING, "chatcmpl-1")]) == [True]
    follow = _request([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                       {"role": "user", "content": "thanks"}])  # fmt: skip
    conversation, turn = await sessions.find(follow, TENANT.name, {})
    assert turn == Turn(Pool.REASONING, "chatcmpl-1") and len(calls) == 1
    big = _request([{"role": "user", "content": "x" * 20_000}, {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": "thanks"}])  # fmt: skip
    assert (await sessions.find(big, TENANT.name, {}))[1] is None and len(calls) == 2
