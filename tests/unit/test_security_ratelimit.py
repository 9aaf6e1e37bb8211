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


class _Unreachable(redis.Redis):
    """A client whose every command fails as a down server does."""

    def __init__(self):
        super().__init__(host="127.0.0.1", port=1)
        self.calls = 0

    def execute_command(self, *args, **kwargs):
        self.calls += 1
        raise redis.ConnectionError("down")

    def pipeline(self, transaction=True, shard_hint=None):
        self.calls += 1
        raise redis.ConnectionError("down")


def test_limits_fail_open_while_redis_is_down_and_back_off(caplog):
    client = _Unreachable()
    limiter = RateLimiter(client, cooldown_s=60)
    key = KeyInfo(name="a", rpm=1)
    for _ in range(5):
        limiter.check_request(key)
        limiter.check_feedback(key)
    assert client.calls == 1  # after the first failure Redis is skipped for the cool-down
    assert sum("Redis unavailable for rate limits" in r.message for r in caplog.records) == 1


def test_keys_without_limits_and_no_authentication_never_touch_redis():
    client = _Unreachable()
    limiter = RateLimiter(client)
    for key in (None, KeyInfo(name="free")):
        limiter.check_request(key)
    limiter.check_feedback(None)
    assert client.calls == 0


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
