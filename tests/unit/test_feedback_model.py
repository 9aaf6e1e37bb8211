import numpy as np
import pytest

from frontier.routing.feature_map import FeatureMap
from frontier.routing.online import (
    Event,
    OnlineState,
    Posterior,
    apply_batch,
    belief,
    feedback_targets,
    forget,
    keep_fraction,
    laplace_step,
    logit_correlation,
    predict,
    predictive_probability,
    sigmoid,
)

FM = "fm1"
NEVER = (1e9, 1e12)  # half-lives that forget nothing


def _events(rng, n, w_true, offsets, pool="light", fm=FM, dim=5):
    events = []
    for _ in range(n):
        phi = np.concatenate([[1.0], rng.standard_normal(dim - 1) / np.sqrt(dim - 1)])
        y = float(rng.random() < sigmoid(offsets[pool] + phi @ w_true))
        events.append(Event(phi, offsets, {pool: y}, fm))
    return events


def _state(variance=1.0, correlation=0.0, dim=5):
    prior = Posterior.prior(dim, variance, correlation)
    return OnlineState.initial(FM, prior), prior


def test_prior_reproduces_the_offline_scorer_exactly():
    state, _ = _state(0.5)
    phi = np.array([1.0, 0.3, -0.2, 0.1, 0.0])
    mu, var = predict(state.posterior, phi, 1.25, "reasoning")
    assert mu == pytest.approx(1.25) and var == pytest.approx(0.5 * phi @ phi)
    b = belief(state.posterior, 0.0, phi, 1.25, "light")
    assert b.probability() == pytest.approx(float(sigmoid(1.25)))


def test_laplace_updates_recover_a_residual_the_offline_scorer_misses():
    rng = np.random.default_rng(0)
    w_true = np.array([-1.5, 2.0, 0.0, -1.0, 0.5])
    offsets = {"light": 0.5, "reasoning": 0.0}
    state, prior = _state(4.0)
    state = apply_batch(state, _events(rng, 6000, w_true, offsets), 0.0, prior, *NEVER)
    mean_l, _ = state.posterior.pool("light")
    mean_r, _ = state.posterior.pool("reasoning")
    assert np.abs(mean_l - w_true).max() < 0.35
    assert np.allclose(mean_r, 0.0)  # uncorrelated prior: the reasoning residual learned nothing
    assert state.counts == {"light": 6000, "reasoning": 0}
    assert state.evidence > 50  # the residual predicted the feedback far better than the artifact


def test_correlated_prior_transfers_shared_difficulty_to_the_unobserved_pool():
    rng = np.random.default_rng(1)
    offsets = {"light": 0.0, "reasoning": 0.0}
    shift = np.array([-1.5, 0, 0, 0, 0])  # the requests are harder than the artifact thought
    state, prior = _state(1.0, correlation=0.8)
    state = apply_batch(state, _events(rng, 1000, shift, offsets), 0.0, prior, *NEVER)
    assert state.posterior.pool("light")[0][0] < -1.0
    assert state.posterior.pool("reasoning")[0][0] < -0.6  # never observed, inferred through the prior
    phi = np.array([1.0, 0, 0, 0, 0])
    assert logit_correlation(state.posterior, phi) > 0


def test_online_model_beats_offline_logloss_on_held_out_and_covariance_shrinks():
    rng = np.random.default_rng(1)
    w_true = np.array([1.0, -1.0, 1.0, 0.0, 0.0])
    offsets = {"light": -0.5, "reasoning": 0.0}
    state, prior = _state(1.0)
    state = apply_batch(state, _events(rng, 2000, w_true, offsets), 0.0, prior, *NEVER)
    test = _events(rng, 2000, w_true, offsets)
    phis = np.stack([e.phi for e in test])
    ys = np.array([e.targets["light"] for e in test])
    p_online = predictive_probability(state.posterior, state.evidence, phis, np.full(len(ys), -0.5), "light")
    p_offline = sigmoid(np.full(len(ys), -0.5))

    def logloss(p):
        return -np.mean(ys * np.log(p) + (1 - ys) * np.log(1 - p))

    assert logloss(p_online) < logloss(p_offline) - 0.05
    assert np.trace(state.posterior.pool("light")[1]) < 0.2 * 5


def test_a_useless_residual_gets_little_weight_and_the_artifact_is_kept():
    rng = np.random.default_rng(4)
    offsets = {"light": 0.3, "reasoning": 0.0}
    state, prior = _state(1.0)
    # the artifact is exactly right: the residual can only fit noise
    state = apply_batch(state, _events(rng, 300, np.zeros(5), offsets), 0.0, prior, *NEVER)
    assert state.evidence < 0
    phis = rng.standard_normal((200, 5))
    p = predictive_probability(state.posterior, state.evidence, phis, np.full(200, 0.3), "light")
    assert np.abs(p - sigmoid(0.3)).max() < 0.05


def test_forgetting_returns_to_the_prior_and_never_overshoots_it():
    prior = Posterior(np.zeros(2), np.eye(2))
    post = Posterior(np.array([2.0, -1.0]), np.array([[0.1, 0.02], [0.02, 0.05]]))
    assert forget(post, prior, 1.0) is post
    gone = forget(post, prior, 0.0)
    assert np.allclose(gone.mean, 0.0) and np.allclose(gone.cov, np.eye(2))
    half = forget(post, prior, 0.5)
    assert np.all(np.abs(half.mean) < np.abs(post.mean))
    assert np.all(np.diag(half.cov) > np.diag(post.cov)) and np.all(np.diag(half.cov) < 1.0)


def test_keep_fraction_halves_per_half_life():
    assert keep_fraction(100, 0.0, 100, 1e9) == pytest.approx(0.5)
    assert keep_fraction(0, 3600.0, 1e9, 3600.0) == pytest.approx(0.5, rel=1e-6)
    assert keep_fraction(100, 3600.0, 100, 3600.0) == pytest.approx(0.25, rel=1e-6)


def test_stale_data_is_forgotten_by_later_batches():
    rng = np.random.default_rng(2)
    offsets = {"light": 0.0, "reasoning": 0.0}
    state, prior = _state(1.0)
    state = apply_batch(state, _events(rng, 1000, np.array([2.0, 0, 0, 0, 0]), offsets), 0.0, prior, 500, 1e12)
    learned_bias = state.posterior.pool("light")[0][0]
    # a day later, an empty batch with a one-hour half-life: back to (almost) the offline prior
    later = apply_batch(state, [], 86400.0, prior, 500, 3600.0)
    assert learned_bias > 1.0
    assert abs(later.posterior.pool("light")[0][0]) < 1e-3 and abs(later.evidence) < 1e-3


def test_events_for_another_feature_map_are_counted_stale_not_applied():
    rng = np.random.default_rng(3)
    offsets = {"light": 0.0, "reasoning": 0.0}
    events = _events(rng, 10, np.zeros(5), offsets) + _events(rng, 4, np.zeros(5), offsets, fm="other")
    state, prior = _state(1.0)
    state = apply_batch(state, events, 0.0, prior, *NEVER)
    assert state.applied == 10 and state.stale == 4 and state.counts["light"] == 10


def test_single_step_moves_toward_the_target():
    mean, cov = np.zeros(3), np.eye(3)
    phi = np.array([1.0, 0.5, 0.0])
    up, _ = laplace_step(mean, cov, phi, 0.0, 1.0)
    down, _ = laplace_step(mean, cov, phi, 0.0, 0.0)
    assert phi @ up > 0 > phi @ down
    assert up[2] == 0.0


def test_feedback_targets():
    assert feedback_targets("score", "0.25", "reasoning") == {"reasoning": 0.25}
    assert feedback_targets("rating", "up", "light") == {"light": 1.0}
    assert feedback_targets("rating", "down", "light") == {"light": 0.0}
    assert feedback_targets("preferred", "reasoning", "light") == {"light": 0.0, "reasoning": 1.0}
    assert feedback_targets("retry", "", "light") == {"light": 0.0}
    with pytest.raises(ValueError):
        feedback_targets("stars", "5", "light")


def test_feature_map_fingerprint_shapes_and_pca_scaling():
    a, b = FeatureMap.random(20, 4, seed=0), FeatureMap.random(20, 4, seed=1)
    assert a.fingerprint == FeatureMap.random(20, 4, seed=0).fingerprint != b.fingerprint
    assert a(np.ones(20)).shape == (5,) and a(np.ones((3, 20))).shape == (3, 5)
    with pytest.raises(ValueError):
        a.basis[0, 0] = 1.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20)) * np.arange(1, 21)
    pca = FeatureMap.fit_pca(x, 4)
    z = pca(x)
    assert np.allclose(z[:, 0], 1.0)
    assert np.allclose(z[:, 1:].var(axis=0, ddof=1), 0.25, rtol=1e-3)
    assert FeatureMap.from_arrays(pca.to_arrays()).fingerprint == pca.fingerprint


def test_feature_map_save_load_round_trip(tmp_path):
    fm = FeatureMap.fit_pca(np.random.default_rng(0).standard_normal((50, 6)), 3)
    fm.save(tmp_path / "m.safetensors")
    back = FeatureMap.load(tmp_path / "m.safetensors")
    assert back.fingerprint == fm.fingerprint and np.array_equal(back(np.ones(6)), fm(np.ones(6)))
