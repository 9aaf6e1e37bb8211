"""The pure parts of the rate limits and their fail-open guard; Redis faults are in test_redis_faults.py and the
Redis behaviour in tests/integration/test_security_redis.py."""

import pytest
import redis

from frontier.security.keys import KeyInfo
from frontier.security.ratelimit import RateDecision, RateLimiter, burst_size


@pytest.mark.parametrize(
    ("rate", "fraction", "burst"), [(60, 0.1, 6), (1, 0.1, 1), (5, 0.1, 1), (600, 0.1, 60), (7, 1.0, 7)]
)
def test_burst_size(rate, fraction, burst):
    assert burst_size(rate, fraction) == burst


@pytest.mark.parametrize(("wait", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_at_least_one(wait, header):
    assert RateDecision(False, wait).retry_after_header == header


def _unreachable(limiter: RateLimiter) -> list:
    """The Redis calls ``limiter`` makes, to a server that is down (nothing listens on port 1)."""
    calls, run = [], limiter.twin.run_script

    async def counted(*args):
        calls.append(args)
        return await run(*args)

    limiter.twin.run_script = counted
    return calls


async def test_limits_fail_open_while_redis_is_down_and_back_off(caplog):
    limiter = RateLimiter(redis.Redis(host="127.0.0.1", port=1), cooldown_s=60)
    calls = _unreachable(limiter)
    key = KeyInfo(name="a", rpm=1)
    for _ in range(5):
        await limiter.check_request(key)
        await limiter.check_feedback(key)
    assert len(calls) == 1  # after the first failure Redis is skipped for the cool-down
    assert sum("Redis unavailable for rate limits" in r.message for r in caplog.records) == 1
    assert "ConnectionError" in limiter.guard.last_error


async def test_keys_without_limits_and_no_authentication_never_touch_redis():
    limiter = RateLimiter(redis.Redis(host="127.0.0.1", port=1))
    calls = _unreachable(limiter)
    for key in (None, KeyInfo(name="free")):
        await limiter.check_request(key)
    await limiter.check_feedback(None)
    assert calls == []


def test_guard_returns_the_fallback_for_any_redis_error_and_the_value_otherwise():
    from frontier.redis_guard import FailOpen

    now = [0.0]
    guard = FailOpen("test", cooldown_s=1.0, clock=lambda: now[0])
    assert guard.call("fallback", lambda: "value") == "value"
    for error in (redis.ResponseError("OOM command not allowed"), redis.ReadOnlyError("READONLY"), redis.TimeoutError()):

        def fail(error=error):
            raise error

        assert guard.call("fallback", fail) == "fallback" and guard.skip()
        assert guard.call("fallback", lambda: "value") == "fallback"  # skipped during the cool-down
        now[0] += 1.0
        assert not guard.skip()
    assert guard.failures == 3 and guard.last_error.startswith("TimeoutError")
    with pytest.raises(ValueError):  # not a Redis error: a bug, never swallowed
        guard.call("fallback", int, "x")


async def test_the_guard_of_a_coroutine_falls_back_and_cools_down_as_the_guard_of_a_call_does():
    from frontier.redis_guard import FailOpen

    now = [0.0]
    guard = FailOpen("test", cooldown_s=1.0, clock=lambda: now[0])

    async def answer(value):
        if isinstance(value, Exception):
            raise value
        return value

    assert await guard.acall("fallback", answer, "value") == "value"
    assert await guard.acall("fallback", answer, redis.ReadOnlyError("READONLY")) == "fallback" and guard.skip()
    assert await guard.acall("fallback", answer, "value") == "fallback"  # skipped during the cool-down
    now[0] += 1.0
    assert await guard.acall("fallback", answer, "value") == "value" and guard.failures == 1
    with pytest.raises(ValueError):
        await guard.acall("fallback", answer, ValueError("a bug"))
