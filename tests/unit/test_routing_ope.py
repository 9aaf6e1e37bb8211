"""Off-policy evaluation: IPS/SNIPS/DR recover a candidate's true value from another policy's log."""

import numpy as np
import pytest

from frontier.routing.ope import LoggedDecisions, compare, estimate, reasoning_price


def _world(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    p_light = np.where(hard, 0.3, 0.9)
    p_reason = np.where(hard, 0.9, 0.92)
    return rng, hard, np.stack([p_light, p_reason], axis=1)


def _log(rng, probs, p_reasoning):
    reasoning = rng.random(len(probs)) < p_reasoning
    propensity = np.where(reasoning, p_reasoning, 1 - p_reasoning)
    reward = (rng.random(len(probs)) < np.where(reasoning, probs[:, 1], probs[:, 0])).astype(float)
    return LoggedDecisions(reasoning, propensity, reward)


def _true_value(candidate, probs, price):
    return float(np.mean(np.where(candidate, probs[:, 1] - price, probs[:, 0])))


@pytest.mark.parametrize("candidate_kind", ["hard-to-reasoning", "all-light", "all-reasoning"])
def test_estimates_recover_the_true_value_of_a_policy_never_served(candidate_kind):
    rng, hard, probs = _world()
    logged = _log(rng, probs, p_reasoning=np.where(hard, 0.7, 0.2))
    candidate = {"hard-to-reasoning": hard, "all-light": np.zeros_like(hard), "all-reasoning": np.ones_like(hard)}[
        candidate_kind
    ]
    price = reasoning_price(0.55)
    truth = _true_value(candidate, probs, price)
    # A deliberately wrong outcome model: DR must still be unbiased through the IPS correction.
    wrong_model = np.full_like(probs, 0.5)
    est = estimate(logged, candidate, wrong_model, price)
    assert abs(est.ips - truth) < 0.03
    assert abs(est.snips - truth) < 0.03
    assert abs(est.dr - truth) < 4 * est.dr_stderr + 0.01


def test_the_better_router_is_promoted_and_the_worse_is_not():
    rng, hard, probs = _world(seed=1)
    logged = _log(rng, probs, p_reasoning=np.full(len(hard), 0.5))
    price = reasoning_price(0.55)
    good = estimate(logged, hard, probs, price)
    inverted = estimate(logged, ~hard, probs, price)
    assert good.dr > inverted.dr + 0.1
    assert compare(logged, hard, ~hard, probs, price).not_worse()
    assert not compare(logged, ~hard, hard, probs, price).not_worse()
    # The same policy is never "worse" than itself.
    assert compare(logged, hard, hard, probs, price).not_worse()


def test_a_greedy_log_that_never_tried_the_candidates_choice_leaves_ips_with_no_support():
    rng, hard, probs = _world(n=1000, seed=2)
    logged = _log(rng, probs, p_reasoning=np.zeros(len(hard)) + 1e-9)
    est = estimate(logged, np.ones(len(hard), dtype=bool), probs, 0.0)
    assert est.matched < 5
    # DR falls back on the outcome model where the log has no support.
    assert abs(est.dr - probs[:, 1].mean()) < 0.05


def test_bad_logs_are_refused_and_empty_logs_promote_nothing():
    with pytest.raises(ValueError):
        LoggedDecisions(np.array([True]), np.array([0.0]), np.array([1.0]))
    empty = LoggedDecisions(np.zeros(0, bool), np.zeros(0), np.zeros(0))
    assert estimate(empty, np.zeros(0, bool), np.zeros((0, 2)), 0.1).n == 0
    assert not compare(empty, np.zeros(0, bool), np.zeros(0, bool), np.zeros((0, 2)), 0.1).not_worse()
