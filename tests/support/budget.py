"""A real Redis server for budget unit tests, and a reader of a key's budget counters."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from frontier.feedback.redis_server import EmbeddedRedis, connect
from frontier.security.budget import BUCKETS, ReasoningBudget, _utc_day

PREFIX = "budtest"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_client(redis_server) -> Iterator[redis.Redis]:
    client = connect(redis_server.url, 2.0)
    client.flushdb()
    yield client
    client.close()


@dataclass(frozen=True)
class Counts:
    """A key's counters: calls and reasoning calls in the share window, reasoning tokens of the day."""

    calls: int
    reasoning: int
    tokens: int


def counts(client: redis.Redis, budget: ReasoningBudget, name: str) -> Counts:
    now = budget.clock()
    current = int(now // budget.bucket_s)
    slices = [client.hmget(budget.keys.calls(name, b), "t", "r") for b in range(current - BUCKETS + 1, current + 1)]
    tokens = client.get(budget.keys.tokens(name, _utc_day(now)))
    return Counts(sum(int(t or 0) for t, _ in slices), sum(int(r or 0) for _, r in slices), int(tokens or 0))
