"""Online learning limits and share holding: per-key quota, evidence cap, no global drift, window rescoring."""

import numpy as np
import pytest

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer, decode_state, encode_state, ensure_state
from frontier.feedback.controller import ControllerState, CostController, Window, control_step
from frontier.feedback.decision_log import decode_request, encode_request
from frontier.feedback.keys import Keys
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.routing.online import (
    FISHER_PER_EVENT,
    Event,
    LearningLimits,
    OnlineState,
    Posterior,
    apply_batch,
    predictive_probability,
)
from frontier.routing.types import DecisionContext, Pool
from tests.support.budget import redis_client, redis_server  # noqa: F401 - fixtures

FM = "fm1"
DIM = 5
NEVER = (1e9, 1e12)  # half-lives that forget nothing
OFFSETS = {Pool.LIGHT: 0.0, Pool.REASONING: 0.0}


def _phi(rng, n, direction=None):
    z = rng.standard_normal((n, DIM - 1)) * 0.3
    if direction is not None:
        z += direction
    return np.hstack([np.ones((n, 1)), z])


def _flood(rng, n, key, direction=None):
    """Feedback that says the light pool fails on these requests (what one kind of prompt taught)."""
    return [Event(phi, OFFSETS, {Pool.LIGHT: 0.0}, FM, key) for phi in _phi(rng, n, direction)]


def _state(correlation=0.8, bias_variance=1.0):
    prior = Posterior.prior(DIM, 1.0, correlation, bias_variance)
    return OnlineState.initial(FM, prior), prior


def test_one_keys_flood_moves_the_statistics_exactly_as_far_as_its_quota():
    rng = np.random.default_rng(0)
    state, prior = _state()
    flood = _flood(rng, 3000, "mallory")
    capped = apply_batch(state, flood, 0.0, prior, *NEVER, LearningLimits(key_quota=50))
    honest = apply_batch(state, flood[:50], 0.0, prior, *NEVER)
    np.testing.assert_allclose(capped.posterior.mean, honest.posterior.mean, atol=1e-12)
    np.testing.assert_allclose(capped.posterior.cov, honest.posterior.cov, atol=1e-12)
    assert capped.capped == 2950 and capped.key_weights == {"mallory": 50.0}
    # Another key still moves the model.
    after = apply_batch(capped, _flood(rng, 1, "alice"), 0.0, prior, *NEVER, LearningLimits(key_quota=50))
    assert not np.allclose(after.posterior.mean, capped.posterior.mean)
    assert after.key_weights == pytest.approx({"mallory": 50.0, "alice": 1.0})


def test_a_quota_refills_at_the_forgetting_rate():
    rng = np.random.default_rng(1)
    state, prior = _state()
    limits = LearningLimits(key_quota=50)
    state = apply_batch(state, _flood(rng, 50, "mallory"), 0.0, prior, 100, 1e12, limits)
    state = apply_batch(state, _flood(rng, 200, "alice"), 0.0, prior, 100, 1e12, limits)
    assert state.key_weights["mallory"] == pytest.approx(50 * 0.25)  # two half-lives of other traffic
    before = state.capped
    state = apply_batch(state, _flood(rng, 100, "mallory"), 0.0, prior, 100, 1e12, limits)
    # 12.5 decays to 6.25 over this batch's 100 events, so 43.75 more fit: 43 whole events and one 0.75.
    assert state.key_weights["mallory"] == pytest.approx(50.0)
    assert state.capped - before == 56


def test_feedback_without_a_key_is_one_tenant_and_not_limited():
    rng = np.random.default_rng(2)
    state, prior = _state()
    out = apply_batch(state, _flood(rng, 500, ""), 0.0, prior, *NEVER, LearningLimits(key_quota=10))
    assert out.capped == 0 and out.key_weights == {}


def test_evidence_cap_bounds_the_precision_of_every_direction_and_keeps_the_model_movable():
    rng = np.random.default_rng(3)
    state, prior = _state(correlation=0.0)
    events = [Event(phi, OFFSETS, {Pool.LIGHT: float(rng.random() < 0.5)}, FM) for phi in _phi(rng, 4000)]
    limits = LearningLimits(evidence_cap=200)
    capped = apply_batch(state, events, 0.0, prior, *NEVER, limits)
    free = apply_batch(state, events, 0.0, prior, *NEVER)
    data = np.linalg.inv(capped.posterior.cov) - np.linalg.inv(prior.cov)
    assert np.linalg.eigvalsh(data).max() <= FISHER_PER_EVENT * 200 * (1 + 1e-9)
    assert np.linalg.eigvalsh(np.linalg.inv(free.posterior.cov) - np.linalg.inv(prior.cov)).max() > 400
    np.testing.assert_allclose(capped.posterior.mean, free.posterior.mean)  # the cap keeps the estimate
    # The light pool recovers: 100 successes move a capped model further than an uncapped one.
    back = [Event(e.phi, OFFSETS, {Pool.LIGHT: 1.0}, FM) for e in _flood(rng, 100, "")]
    moved_capped = apply_batch(capped, back, 0.0, prior, *NEVER, limits).posterior.mean[0] - capped.posterior.mean[0]
    moved_free = apply_batch(free, back, 0.0, prior, *NEVER).posterior.mean[0] - free.posterior.mean[0]
    assert moved_capped > 2 * moved_free > 0


def _reasoning_share_shift(bias_variance):
    """How far feedback from one kind of prompt moves P(light ok) of an unrelated prompt."""
    rng = np.random.default_rng(4)
    state, prior = _state(bias_variance=bias_variance)
    math_like = np.array([2.0, 0.0, 0.0, 0.0])
    state = apply_batch(state, _flood(rng, 1900, "", math_like), 0.0, prior, *NEVER)
    chitchat = np.array([[1.0, 0.0, 0.0, 2.0, 0.0]])
    p = predictive_probability(state.posterior, 50.0, chitchat, np.zeros(1), Pool.LIGHT)
    return 0.5 - float(p[0])


def test_feedback_from_one_kind_of_prompt_does_not_shift_unrelated_prompts():
    # The failure seen live: a global bias learned from math feedback sent "hi there" to reasoning.
    assert _reasoning_share_shift(1.0) > 0.2
    assert abs(_reasoning_share_shift(FeedbackConfig().prior_bias_variance)) < 0.05


def test_window_requests_round_trip_and_refuse_another_feature_map():
    phi = np.array([1.0, 0.25, -0.5])
    token = encode_request(phi, {Pool.LIGHT: 0.5, Pool.REASONING: -1.25}).encode()
    back, offsets = decode_request(token)
    np.testing.assert_allclose(back, phi)
    assert offsets == {Pool.LIGHT: 0.5, Pool.REASONING: -1.25}
    raw = [b"0.4 reasoning " + token, b"0.3 light " + token]
    window = Window(10, 3)
    window.push(raw)
    rows = window.requests()
    assert rows[0].shape == (2, 3) and rows[1].tolist() == [[0.5, -1.25]] * 2
    other_map, no_request = Window(10, 4), Window(10, 3)
    other_map.push(raw)
    no_request.push([*raw, b"0.4 reasoning"])
    assert other_map.requests() is None and no_request.requests() is None


def _context(phi, score, key=None):
    return DecisionContext(Pool.LIGHT, phi, dict(OFFSETS), FM, 1.0, "v", 0, key_id=key, score=score)


def test_the_controller_thresholds_the_current_models_scores_of_the_window(redis_client):  # noqa: F811
    config = FeedbackConfig()
    keys = Keys("test-online-learning")
    service = FeedbackService(redis_client, config, keys)
    rng = np.random.default_rng(5)
    phis = _phi(rng, 400)
    for phi in phis:  # every request was routed when all scores were 0.2
        service.log.record(new_completion_id(), _context(phi, 0.2))
    seen = []

    def rescore(phi, offsets):
        seen.append(phi.shape)
        return 0.5 + phi[:, 1]  # the model has since learned to rank by the first feature

    controller = CostController(redis_client, keys, config.controller, 0.3, rescore=(DIM, rescore))
    state = controller.step()
    assert seen == [(400, DIM)]
    level = 0.3 + state.integral + config.controller.proportional_gain * (0.3 - state.share)
    expected = np.quantile(0.5 + phis[:, 1].astype(np.float16), 1 - level)
    assert state.threshold == pytest.approx(expected, abs=1e-3)
    stale = CostController(redis_client, keys, config.controller, 0.3)  # without rescoring: the logged scores
    assert stale.step().threshold == pytest.approx(0.2)


def test_the_controller_decodes_each_window_entry_once_while_it_stays(redis_client, monkeypatch):  # noqa: F811
    from frontier.feedback import controller as controller_module

    config = FeedbackConfig()
    keys = Keys("test-online-decode-once")
    service = FeedbackService(redis_client, config, keys)
    rng = np.random.default_rng(7)
    for phi in _phi(rng, 50):
        service.log.record(new_completion_id(), _context(phi, 0.2))
    decoded = []
    original = controller_module.decode_request
    monkeypatch.setattr(controller_module, "decode_request", lambda token: decoded.append(token) or original(token))
    windows = []
    controller = CostController(redis_client, keys, config.controller, 0.3,
                                rescore=(DIM, lambda phi, offsets: windows.append(phi.copy()) or phi[:, 1]))
    controller.step()
    controller.step()
    assert len(decoded) == 50  # the second step reused every entry
    np.testing.assert_array_equal(windows[0], windows[1])
    for phi in _phi(rng, 5):
        service.log.record(new_completion_id(), _context(phi, 0.2))
    controller.step()
    assert len(decoded) == 55 and windows[-1].shape == (55, DIM)  # only the new entries were decoded


def test_the_controllers_window_follows_the_list_through_lost_keys(redis_client):  # noqa: F811
    config = FeedbackConfig()
    keys = Keys("test-online-window-lost")
    service = FeedbackService(redis_client, config, keys)
    rng = np.random.default_rng(8)

    def log(n, score):
        for phi in _phi(rng, n):
            service.log.record(new_completion_id(), _context(phi, score))

    log(20, 0.2)
    controller = CostController(redis_client, keys, config.controller, 0.3)
    controller.step()
    assert controller.window.count == 20
    redis_client.delete(keys.ctl_recent, keys.ctl_seq)  # both lost (a flush, a restart without persistence)
    log(3, 0.7)
    controller.step()
    assert controller.window.decisions()[0].tolist() == [0.7] * 3
    redis_client.delete(keys.ctl_seq)  # the count alone lost: it restarts below what the copy has read
    log(2, 0.6)
    controller.step()
    assert sorted(controller.window.decisions()[0].tolist()) == [0.6, 0.6, 0.7, 0.7, 0.7]
    redis_client.ltrim(keys.ctl_recent, 0, 0)  # the list changed without a push: the copy disagrees with its length
    controller.step()
    assert controller.window.decisions()[0].tolist() == [0.6]


def test_feedback_carries_its_key_to_the_quota_through_redis(redis_client):  # noqa: F811
    config = FeedbackConfig(key_quota_events=3)
    keys = Keys("test-online-quota")
    ensure_state(redis_client, keys, FM, DIM, config)
    service = FeedbackService(redis_client, config, keys)
    rng = np.random.default_rng(6)
    for phi in _phi(rng, 10):
        cid = new_completion_id()
        service.log.record(cid, _context(phi, 0.4, key="mallory"))
        service.submit({"id": cid, "score": 0.0}, "mallory")
    consumer = FeedbackConsumer(redis_client, keys, config, name="t", feature_map=(FM, DIM))
    assert consumer.step(block_ms=1) == 10
    state, version = decode_state(redis_client.hgetall(keys.online))
    assert state.key_weights == pytest.approx({"mallory": 3.0}) and state.capped == 7
    raw = {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in encode_state(state, 9).items()}
    again, _ = decode_state(raw)
    assert (again.key_weights, again.capped, again.applied) == (state.key_weights, 7, 10)


def _cumulative_share(proportional, seed):
    """Share of 352 decisions when the first 16 went out before the controller had a window (none to reasoning)."""
    rng = np.random.default_rng(seed)
    state, scores, flags = ControllerState(threshold=1.0), [], []
    for _ in range(22):
        s = rng.beta(2, 5, 16)
        scores.extend(s)
        flags.extend(s > state.threshold)
        state = control_step(np.array(scores), np.array(flags), 0.5, state, 0.05, proportional)
    return float(np.mean(flags))


def test_the_controller_repays_an_early_deficit_without_overshooting():
    errors = {p: max(abs(_cumulative_share(p, seed) - 0.5) for seed in range(5)) for p in (0.0, 2.0)}
    assert errors[2.0] < 0.02 < errors[0.0]
