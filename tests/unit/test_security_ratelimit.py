"""The pure parts of the rate limits and budgets; the Redis behaviour is in tests/integration/test_security_redis.py."""

import pytest
import redis

from frontier.security.budget import ReasoningBudget
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
    key = KeyInfo(name="a", rpm=1, reasoning_tokens_per_day=0)
    for _ in range(5):
        limiter.check_request(key)
        limiter.check_feedback(key)
    assert client.calls == 1  # after the first failure Redis is skipped for the cool-down
    budget = ReasoningBudget(client, cooldown_s=60)
    assert budget.allow_reasoning(key)
    budget.record(key, "reasoning", 100)
    assert client.calls == 2
    assert sum("Redis unavailable" in r.message for r in caplog.records) == 2


def test_keys_without_limits_and_no_authentication_never_touch_redis():
    client = _Unreachable()
    limiter, budget = RateLimiter(client), ReasoningBudget(client)
    for key in (None, KeyInfo(name="free")):
        limiter.check_request(key)
        assert budget.allow_reasoning(key)
        budget.require_reasoning(key)
        budget.record(key, "reasoning", 10)
    limiter.check_feedback(None)
    assert client.calls == 0
