"""Replay's tail scores must be exactly the live router's greedy scores (what the tail APGR measures)."""

from types import MappingProxyType

import numpy as np
import pytest

from frontier.config import load_config
from frontier.feedback.replay import tail_metrics
from frontier.routing.feature_map import FeatureMap
from frontier.routing.features import features_from_prompt
from frontier.routing.online import Posterior
from frontier.routing.policies import build_router
from frontier.routing.router import Router, ThresholdRule
from frontier.routing.types import CostKnob, StatsSnapshot


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


class RowHeads:
    def __init__(self, offsets):
        self.offsets = offsets

    def logits(self, x):
        return self.offsets[np.asarray(x[..., -1], dtype=int)]


class RowScorer:
    """Request ``row i`` has the feature vector ``x[i]`` (its last entry is i) and offline logits ``offsets[i]``."""

    def __init__(self, x, offsets):
        self.x, self.params = np.hstack([x, np.arange(len(x))[:, None]]), RowHeads(offsets)

    def featurize(self, features):
        return self.x[int(features.text.split()[1])]


@pytest.mark.parametrize("evidence", [-3.0, 0.0, 4.0])
def test_batch_scores_are_the_decisions_greedy_scores(evidence):
    rng = np.random.default_rng(1)
    x, offsets = rng.standard_normal((30, 12)), rng.standard_normal((30, 2))
    scorer = RowScorer(x, offsets)
    feature_map = FeatureMap.fit_pca(scorer.x, 5)
    rule = ThresholdRule(CostKnob(reasoning_share=0.5), lambda share: 0.5, lambda chars: 0.0)
    router = Router("rows", scorer, feature_map, rule, explore_cap=0.05)
    stats = _snapshot(feature_map, rng, evidence)
    decided = [router.decide(features_from_prompt(f"row {i}"), stats, rule.operator_knob) for i in range(len(x))]
    np.testing.assert_allclose(router.scores(scorer.x, stats), [d.decision.score for d in decided], rtol=0, atol=1e-12)
    assert all(d.decision.policy_version == "rows+online-7" for d in decided)


def test_batch_scores_without_online_statistics_are_the_offline_scores():
    rng = np.random.default_rng(2)
    x, offsets = rng.standard_normal((10, 8)), rng.standard_normal((10, 2))
    scorer = RowScorer(x, offsets)
    router = Router("rows", scorer, FeatureMap.random(9, 3), ThresholdRule(CostKnob(), lambda s: 0.5, lambda c: 0.0))
    expected = (1 + 1 / (1 + np.exp(-offsets[:, 1])) - 1 / (1 + np.exp(-offsets[:, 0]))) / 2
    np.testing.assert_allclose(router.scores(scorer.x, StatsSnapshot()), expected, atol=1e-12)


def test_packaged_router_batch_scores_equal_its_decisions_under_a_live_online_model():
    router = build_router(load_config())
    prompts = ["hi there", "Prove that there are infinitely many primes.", "def f(x): return x * 2", "2 + 2 = ?"]
    features = [features_from_prompt(p) for p in prompts]
    live = _snapshot(router.feature_map, np.random.default_rng(3), 2.0)
    knob = CostKnob(reasoning_share=0.5)
    x = np.stack([router.scorer.featurize(f) for f in features])
    single = [router.decide(f, live, knob).decision.score for f in features]
    np.testing.assert_allclose(router.scores(x, live), single, rtol=0, atol=1e-12)
    # without a live online model: the artifact's own score
    offline = router.scores(x, StatsSnapshot())
    np.testing.assert_allclose(offline, [router.scorer.score(f) for f in features], atol=1e-9)


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
    from frontier.routing.feature_map import online_feature_map
    from frontier.routing.scorer import ScorerParams

    cv = _replay_cv()
    rng = np.random.default_rng(4)
    x_train, x_learn = rng.standard_normal((300, 10)), rng.standard_normal((100, 10)) + 3.0
    params = ScorerParams(x_train.mean(axis=0), x_train.std(axis=0), np.zeros((2, 10)), np.zeros(2))
    learn_map = cv.online_map("learn-pca", x_train, x_learn, params, 4)
    train_map = cv.online_map("train-pca", x_train, x_learn, params, 4)
    np.testing.assert_allclose(learn_map.center, x_learn.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(train_map.center, x_train.mean(axis=0), atol=1e-5)
    served = online_feature_map(None, params.mean, params.scale, 4)
    assert cv.online_map("standardizer", x_train, x_learn, params, 4).fingerprint == served.fingerprint
    assert cv.share_threshold(np.linspace(0.2, 0.8, 11), 0.0) == 1.0 and cv.share_threshold([0.2, 0.8], 1.0) == 0.0
