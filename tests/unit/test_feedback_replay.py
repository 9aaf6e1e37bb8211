"""Replay's offline scoring must be exactly the live policy's greedy score (what the tail APGR measures)."""

from types import MappingProxyType

import numpy as np
import pytest

from frontier.feedback.online_model import POOLS, FeatureMap, Posterior
from frontier.feedback.online_policy import online_choice, online_params
from frontier.feedback.replay import batch_scores, tail_metrics
from frontier.routing.policy import StatsSnapshot


def _snapshot(feature_map, rng, evidence):
    dim = feature_map.dim
    a = rng.standard_normal((2 * dim, 2 * dim)) * 0.1
    post = Posterior(rng.standard_normal(2 * dim) * 0.5, a @ a.T + 1e-3 * np.eye(2 * dim))
    return StatsSnapshot(
        version=7,
        values=MappingProxyType({"evidence": evidence}),
        params=MappingProxyType({"mean": post.mean, "cov": post.cov}),
        labels=MappingProxyType({"feature_map": feature_map.fingerprint}),
    )


@pytest.mark.parametrize("evidence", [-3.0, 0.0, 4.0])
def test_batch_scores_are_the_live_policys_greedy_scores(evidence):
    rng = np.random.default_rng(1)
    feature_map = FeatureMap.fit_pca(rng.standard_normal((200, 12)), 5)
    x = rng.standard_normal((30, 12))
    offsets = rng.standard_normal((30, 2))
    stats = _snapshot(feature_map, rng, evidence)
    phi = feature_map(x)
    batch = batch_scores(phi, offsets, stats, feature_map)
    params = online_params(stats, feature_map)
    single = [
        online_choice(phi[i], dict(zip(POOLS, map(float, offsets[i]))), params, 0.5, 0.0, 0.5).score
        for i in range(len(x))
    ]
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-9)


def test_batch_scores_without_online_statistics_are_the_offline_scores():
    rng = np.random.default_rng(2)
    feature_map = FeatureMap.random(8, 3)
    offsets = rng.standard_normal((10, 2))
    scores = batch_scores(feature_map(rng.standard_normal((10, 8))), offsets, StatsSnapshot(), feature_map)
    expected = (1 + 1 / (1 + np.exp(-offsets[:, 1])) - 1 / (1 + np.exp(-offsets[:, 0]))) / 2
    np.testing.assert_allclose(scores, expected, atol=1e-12)


def test_tail_metrics_rank_the_gain():
    rng = np.random.default_rng(3)
    light = (rng.random(400) < 0.6).astype(float)
    reasoning = np.maximum(light, (rng.random(400) < 0.5).astype(float))
    gain = reasoning - light
    best, worst = tail_metrics(gain, light, reasoning), tail_metrics(-gain, light, reasoning)
    constant = tail_metrics(np.zeros(400), light, reasoning)
    assert best["apgr"] > 0.85 and worst["apgr"] < 0.15
    assert constant["apgr"] == pytest.approx(0.5) and constant["cpt50"] == pytest.approx(0.5)
    assert best["cpt50"] < constant["cpt50"] < worst["cpt50"]


def _replay_cv():
    import importlib
    import sys
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parents[2] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    return importlib.import_module("replay_cv")


def test_replay_cv_threshold_and_config_overrides():
    from pydantic import ValidationError

    from frontier.config import FeedbackConfig

    cv = _replay_cv()
    quantiles = np.linspace(0.2, 0.8, 1001)
    assert cv.share_threshold(quantiles, 0.5) == pytest.approx(0.5)
    assert cv.share_threshold(quantiles, 0.25) == pytest.approx(0.65)
    config = cv.feedback_config(FeedbackConfig(), ["prior_variance=0.3", "online_dim=16"])
    assert config.prior_variance == 0.3 and config.online_dim == 16
    with pytest.raises(ValidationError):
        cv.feedback_config(FeedbackConfig(), ["prior_varianse=0.3"])


def test_replay_cv_online_maps_use_only_what_each_kind_may_see():
    cv = _replay_cv()
    rng = np.random.default_rng(4)
    x_train, x_learn = rng.standard_normal((300, 10)), rng.standard_normal((100, 10)) + 3.0
    learn_map = cv.online_map("learn-pca", x_train, x_learn, 4)
    train_map = cv.online_map("train-pca", x_train, x_learn, 4)
    np.testing.assert_allclose(learn_map.center, x_learn.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(train_map.center, x_train.mean(axis=0), atol=1e-5)
    assert cv.online_map("standardizer", x_train, x_learn, 4).dim == 5
