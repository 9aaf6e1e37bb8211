import random
from types import MappingProxyType

import numpy as np
import pytest

from frontier.routing.exploration import choose, exploration_draw, off_greedy_probability, score
from frontier.routing.feature_map import FeatureMap
from frontier.routing.features import extract_features, features_from_prompt
from frontier.routing.online import Belief, sigmoid
from frontier.routing.router import Router, ThresholdRule
from frontier.routing.types import CostKnob, StatsSnapshot


def B(mu, var, weight=1.0):
    return Belief(mu, var, weight, float(sigmoid(mu)))


def test_no_uncertainty_means_no_exploration():
    assert off_greedy_probability(B(0.0, 0.0), B(1.0, 0.0), 0.55) == 0.0
    c = choose(B(0.0, 0.0), B(1.0, 0.0), threshold=0.55, cap=0.05, u=0.0)
    assert c.pool == c.greedy == "reasoning" and c.propensity == 1.0 and not c.explored


def test_off_greedy_probability_is_about_half_at_the_threshold_and_small_far_from_it():
    assert off_greedy_probability(B(0.0, 1.0), B(0.0, 1.0), 0.5) == pytest.approx(0.5, abs=0.05)
    assert off_greedy_probability(B(-3.0, 0.05), B(3.0, 0.05), 0.5) < 0.01
    # perfectly correlated uncertainty moves both pools together: the choice hardly flips
    assert off_greedy_probability(B(0.0, 1.0), B(0.1, 1.0), 0.5, correlation=1.0) < 0.1
    # a residual model with no weight has no say, so no exploration
    assert off_greedy_probability(B(0.0, 4.0, 0.0), B(0.1, 4.0, 0.0), 0.5) == 0.0


@pytest.mark.parametrize("cap", [0.0, 0.02, 0.05])
def test_exploration_never_exceeds_the_cap_and_propensities_match_frequencies(cap):
    rng = random.Random(0)
    n, explored = 20000, 0
    for _ in range(n):
        c = choose(B(0.0, 2.0), B(0.1, 2.0), threshold=0.5, cap=cap, u=rng.random())
        explored += c.explored
        assert c.propensity == pytest.approx(c.off_greedy_probability if c.explored else 1 - c.off_greedy_probability)
    assert c.off_greedy_probability == pytest.approx(cap)
    assert explored / n == pytest.approx(cap, abs=0.005)
    assert explored / n <= cap + 0.005


def test_score_is_half_plus_half_the_gain_of_model_averaged_probabilities():
    assert score(B(0.0, 0.0), B(0.0, 0.0)) == 0.5
    assert score(B(-2.0, 0.0), B(2.0, 0.0)) == pytest.approx(0.5 + 0.7616 / 2, abs=1e-3)
    # half weight on a residual model: halfway between it and the artifact
    half = Belief(2.0, 0.0, 0.5, float(sigmoid(0.0)))
    assert half.probability() == pytest.approx((float(sigmoid(2.0)) + 0.5) / 2)


class FakeHeads:
    mean, scale = np.zeros(4), np.ones(4)

    def logits(self, x):
        return np.broadcast_to(np.array([0.5, 1.0]), np.shape(x)[:-1] + (2,))


class FakeScorer:
    params = FakeHeads()

    def featurize(self, features):
        return np.array([len(features.text) / 100.0, 1.0, 0.0, 0.5])


def _policy(cap=0.05, operator=CostKnob(reasoning_share=0.3), share_threshold=lambda share: 0.5, seed=0):
    rule = ThresholdRule(operator, share_threshold, lambda chars: 0.0, default=0.5)
    return Router("fake", FakeScorer(), FeatureMap.random(4, 2), rule, explore_cap=cap, seed=seed)


def _stats(policy, light_bias, version=3, threshold=None, fm=None, var=1e-4):
    dim = policy.feature_map.dim
    mean = np.zeros(2 * dim)
    mean[0] = light_bias  # the light pool's residual bias
    values = {"evidence": 20.0}
    if threshold is not None:
        values["threshold"] = threshold
    return StatsSnapshot(
        version=version,
        values=MappingProxyType(values),
        params=MappingProxyType({"mean": mean, "cov": np.eye(2 * dim) * var}),
        labels=MappingProxyType({"feature_map": fm or policy.feature_map.fingerprint}),
    )


def test_policy_without_online_stats_is_the_offline_scorer_and_does_not_explore():
    policy = _policy()
    out = policy.decide(features_from_prompt("hi"), StatsSnapshot(), CostKnob(reasoning_share=0.3), draw=0.0)
    expected = 0.5 + (1 / (1 + np.exp(-1.0)) - 1 / (1 + np.exp(-0.5))) / 2
    assert out.decision.score == pytest.approx(expected)
    assert out.context.propensity == 1.0 and out.decision.policy_version == "fake"


def test_policy_uses_online_residual_and_controller_threshold_for_the_operator_knob():
    policy = _policy(cap=0.0)
    feats = features_from_prompt("hello")
    knob = CostKnob(reasoning_share=0.3)
    # the online model learned the light pool is much better than the scorer thought
    out = policy.decide(feats, _stats(policy, light_bias=3.0, threshold=0.55), knob, draw=0.5)
    assert out.decision.pool == "light" and out.decision.threshold == 0.55
    assert out.decision.policy_version == "fake+online-3" and out.context.stats_version == 3
    # ... or much worse
    out = policy.decide(feats, _stats(policy, light_bias=-3.0, threshold=0.55), knob, draw=0.5)
    assert out.decision.pool == "reasoning" and out.decision.score > 0.75
    # statistics learned over another feature map are ignored
    out = policy.decide(feats, _stats(policy, light_bias=-3.0, fm="other"), knob, draw=0.5)
    assert out.decision.policy_version == "fake"
    # a request's own knob does not use the operator's controller threshold
    out = policy.decide(feats, _stats(policy, 0.0, threshold=0.55), CostKnob(price_weight=0.0), draw=0.5)
    assert out.decision.threshold == 0.5
    # before the controller has run, a share knob uses the calibrated threshold
    policy = _policy(cap=0.0, share_threshold=lambda share: 1.0 - share)
    out = policy.decide(feats, _stats(policy, 0.0), CostKnob(reasoning_share=0.3), draw=0.5)
    assert out.decision.threshold == pytest.approx(0.7)


def test_share_ends_are_exact_even_with_a_controller_threshold():
    # The controller sets the threshold from the scores it has seen; with a target of 0 (or 1) a request
    # scoring above (below) all of them must still stay on light (go to reasoning).
    ends = {0.0: 1.0, 1.0: 0.0}.get
    feats = features_from_prompt("hello")
    policy = _policy(cap=0.0, operator=CostKnob(reasoning_share=0.0), share_threshold=lambda s: ends(s, 0.5))
    out = policy.decide(feats, _stats(policy, light_bias=-3.0, threshold=0.6), CostKnob(reasoning_share=0.0), draw=0.5)
    assert out.decision.score > 0.6 and out.decision.pool == "light" and out.decision.threshold == 1.0
    policy = _policy(cap=0.0, operator=CostKnob(reasoning_share=1.0), share_threshold=lambda s: ends(s, 0.5))
    out = policy.decide(feats, _stats(policy, light_bias=3.0, threshold=0.4), CostKnob(reasoning_share=1.0), draw=0.5)
    assert out.decision.score < 0.4 and out.decision.pool == "reasoning" and out.decision.threshold == 0.0


def test_exploration_draw_is_a_reproducible_uniform_hash_of_seed_request_and_state_version():
    f = features_from_prompt("what is 2 + 2?")
    assert exploration_draw(7, f, 3) == exploration_draw(7, features_from_prompt("what is 2 + 2?"), 3)
    others = {exploration_draw(8, f, 3), exploration_draw(7, f, 4), exploration_draw(7, features_from_prompt("x"), 3),
              exploration_draw(7, extract_features([{"role": "user", "content": "what is 2 + 2?"}], tools=[{}]), 3)}
    assert exploration_draw(7, f, 3) not in others and len(others) == 4
    draws = np.array([exploration_draw(0, features_from_prompt(f"prompt {i}"), 1) for i in range(4000)])
    assert np.all((draws >= 0) & (draws < 1))
    assert abs(draws.mean() - 0.5) < 0.02 and abs(np.mean(draws < 0.05) - 0.05) < 0.01


def test_decisions_are_reproducible_and_explore_at_their_logged_propensity():
    # Uncertain residuals near the threshold: the router explores, by its seeded draw.
    features = [features_from_prompt("q" * (i % 97) + f" {i}") for i in range(3000)]
    a, b, other_seed = _policy(cap=0.05), _policy(cap=0.05), _policy(cap=0.05, seed=1)
    live = _stats(a, light_bias=0.5, var=4.0)
    knob = CostKnob(reasoning_share=0.3)
    runs = [[r.decide(f, live, knob) for f in features] for r in (a, b, other_seed)]
    assert [d.decision for d in runs[0]] == [d.decision for d in runs[1]]
    assert [d.decision for d in runs[0]] != [d.decision for d in runs[2]]
    explored = [d.decision.reason == "explore" for d in runs[0]]
    expected = sum(1.0 - d.context.propensity if d.decision.reason == "policy" else d.context.propensity
                   for d in runs[0])  # fmt: skip
    assert 0 < sum(explored) <= 0.05 * len(features) * 1.3
    assert sum(explored) == pytest.approx(expected, rel=0.15)
