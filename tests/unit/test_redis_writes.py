"""The request path's group commit against a real Redis: writes of concurrent requests share round trips, each
write keeps its own fail-open guard, and a cancelled request's writes still land."""

import asyncio
import time

import pytest
import redis

from frontier.feedback.redis_server import connect, free_port
from frontier.redis_guard import FailOpen
from frontier.redis_writes import TWIN_MAX_CONNECTIONS, GroupCommit, LoopTwin, Write, async_twin
from tests.support.budget import redis_client, redis_server  # noqa: F401 - fixtures


class CountingPipelines:
    """Counts the pipelines the group commit executes for a client (round trips) and can hold each one at
    ``gate`` (an ``asyncio.Event``)."""

    def __init__(self, commits, client, monkeypatch, gate=None):
        self.executed, self.gate = 0, gate
        twin = commits.twin(client)
        pipeline = twin.pipeline

        def counted(*args, **kwargs):
            pipe = pipeline(*args, **kwargs)
            execute = pipe.execute

            async def run(*a, **kw):
                self.executed += 1
                if self.gate is not None:
                    await asyncio.wait_for(self.gate.wait(), 10)
                return await execute(*a, **kw)

            pipe.execute = run
            return pipe

        monkeypatch.setattr(twin, "pipeline", counted)


def _set(client, guard, key, value="1"):
    return Write(client, guard, lambda pipe: pipe.set(key, value))


async def test_concurrent_requests_share_round_trips_and_every_write_lands(redis_client, monkeypatch):  # noqa: F811
    commits, guard = GroupCommit(), FailOpen("test")
    pipelines = CountingPipelines(commits, redis_client, monkeypatch)
    results = await asyncio.gather(*(commits.commit([_set(redis_client, guard, f"k{i}"), _set(redis_client, guard, f"c{i}")])
                                     for i in range(50)))  # fmt: skip
    assert results == [[True, True]] * 50
    assert redis_client.mget([f"k{i}" for i in range(50)] + [f"c{i}" for i in range(50)]) == [b"1"] * 100
    # All 50 requests queued their writes before the first round trip started: one pipeline carries them.
    assert pipelines.executed == 1


async def _until(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


async def _first_commit_held(client, monkeypatch, key):
    """A group commit whose first write (``key``) is in its round trip, held there until ``gate`` is set."""
    gate = asyncio.Event()
    commits, guard = GroupCommit(), FailOpen("test")
    pipelines = CountingPipelines(commits, client, monkeypatch, gate=gate)
    first = asyncio.create_task(commits.commit([_set(client, guard, key)]))
    await _until(lambda: pipelines.executed > 0)
    return gate, pipelines, commits, guard, first


async def test_writes_arriving_during_a_round_trip_go_together_in_the_next(redis_client, monkeypatch):  # noqa: F811
    gate, pipelines, commits, guard, first = await _first_commit_held(redis_client, monkeypatch, "first")
    later = [asyncio.create_task(commits.commit([_set(redis_client, guard, f"k{i}")])) for i in range(10)]
    await _until(lambda: len(commits._pending) == 10)
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, *later), 10) == [[True]] * 11
    assert pipelines.executed == 2


async def test_a_lone_request_pays_one_round_trip(redis_client, monkeypatch):  # noqa: F811
    commits, guard = GroupCommit(), FailOpen("test")
    pipelines = CountingPipelines(commits, redis_client, monkeypatch)
    for i in range(3):
        assert await commits.commit([_set(redis_client, guard, "a"), _set(redis_client, guard, "b")]) == [True, True]
    assert pipelines.executed == 3


async def test_a_failed_command_fails_only_its_write_and_trips_only_its_guard(redis_client):  # noqa: F811
    redis_client.rpush("a-list", "x")
    log, sessions = FailOpen("decision logging"), FailOpen("conversations")
    commits = GroupCommit()
    wrong_type = Write(redis_client, sessions, lambda pipe: pipe.incr("a-list"))
    assert await commits.commit([_set(redis_client, log, "fine"), wrong_type]) == [True, False]
    assert redis_client.get("fine") == b"1"
    assert sessions.skip() and "WRONGTYPE" in sessions.last_error and not log.skip()
    # While its guard cools down, a write is not even sent.
    assert await commits.commit([Write(redis_client, sessions, lambda pipe: pipe.set("skipped", 1))]) == [False]
    assert redis_client.get("skipped") is None


async def test_redis_down_fails_open_at_once():
    client = connect(f"redis://127.0.0.1:{free_port()}/0", 0.5)
    guard = FailOpen("decision logging")
    commits = GroupCommit()
    results = await asyncio.wait_for(asyncio.gather(*(commits.commit([_set(client, guard, f"k{i}")]) for i in range(5))), 10)
    assert results == [[False]] * 5 and guard.failures >= 1 and guard.skip()


async def test_a_cancelled_request_still_commits_and_the_next_group_goes_on(redis_client, monkeypatch):  # noqa: F811
    gate, _, commits, guard, first = await _first_commit_held(redis_client, monkeypatch, "cancelled")
    first.cancel()
    later = asyncio.create_task(commits.commit([_set(redis_client, guard, "later")]))
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(later, 10) == [True]
    assert redis_client.mget(["cancelled", "later"]) == [b"1", b"1"]


async def test_a_bug_in_a_stage_reaches_its_requests_and_not_the_next_group(redis_client):  # noqa: F811
    guard = FailOpen("test")
    commits = GroupCommit()

    def broken(pipe):
        raise ValueError("unknown pool 'medium'")

    with pytest.raises(ValueError, match="medium"):
        await commits.commit([Write(redis_client, guard, broken)])
    assert await commits.commit([_set(redis_client, guard, "after")]) == [True] and not guard.skip()


async def test_every_reply_is_matched_to_its_write(redis_client):  # noqa: F811
    other = redis.Redis(connection_pool=redis_client.connection_pool)  # a second client object: its own pipeline
    guard = FailOpen("test")
    writes = [_set(redis_client, guard, "x", "1"), Write(other, guard, lambda p: p.incr("x")), _set(redis_client, guard, "y")]
    assert await GroupCommit().commit(writes) == [True, True, True]
    assert redis_client.mget(["x", "y"]) == [b"2", b"1"]


@pytest.mark.parametrize(
    ("url", "connection"),
    [("redis://:secret@127.0.0.1:6390/3", "Connection"), ("rediss://127.0.0.1:6390/0", "SSLConnection"),
     ("unix:///tmp/frontier-test.sock?db=2", "UnixDomainSocketConnection")],
)
def test_the_asyncio_twin_reaches_the_same_server_with_the_same_timeouts(url, connection):
    settings = async_twin(connect(url, 0.3)).connection_pool.connection_kwargs
    assert type(async_twin(connect(url, 0.3)).connection_pool).__module__ == "redis.asyncio.connection"
    assert async_twin(connect(url, 0.3)).connection_pool.connection_class.__name__ == connection
    assert settings["socket_timeout"] == settings["socket_connect_timeout"] == 0.3
    expected = {"Connection": {"host": "127.0.0.1", "port": 6390, "db": 3, "password": "secret"},
                "SSLConnection": {"host": "127.0.0.1", "port": 6390, "db": 0},
                "UnixDomainSocketConnection": {"path": "/tmp/frontier-test.sock", "db": 2}}[connection]
    assert {k: settings.get(k) for k in expected} == expected


async def test_a_group_commit_goes_through_the_twin_of_each_client(redis_client):  # noqa: F811
    commits = GroupCommit()
    assert commits.twin(redis_client) is commits.twin(redis_client)
    other = redis.Redis(connection_pool=redis_client.connection_pool)
    assert commits.twin(other) is not commits.twin(redis_client)
    assert await commits.commit([_set(other, FailOpen("test"), "via-twin")]) == [True]
    assert redis_client.get("via-twin") == b"1"


def test_a_loop_twin_is_one_client_per_event_loop_and_runs_scripts(redis_client):  # noqa: F811
    twin = LoopTwin(redis_client)
    script = "return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])"

    async def on_one_loop():
        assert twin.redis() is twin.redis()
        return twin.redis(), [await twin.run_script(script, ["n"], [10]) for _ in range(2)]

    first, answers = asyncio.run(on_one_loop())
    second, more = asyncio.run(on_one_loop())  # a connection of the first loop would fail on this one
    assert first is not second and answers + more == [11, 12, 13, 14]
    redis_client.script_flush()  # a server that lost its scripts (restarted) gets them again
    assert asyncio.run(twin.run_script(script, ["n"], [0])) == 5


async def test_a_burst_of_calls_shares_the_twins_few_connections(redis_client):  # noqa: F811
    twin, opened = LoopTwin(redis_client).redis(), len(redis_client.client_list())
    assert sorted(await asyncio.gather(*(twin.incr("burst") for _ in range(300)))) == list(range(1, 301))
    assert len(redis_client.client_list()) - opened <= TWIN_MAX_CONNECTIONS
