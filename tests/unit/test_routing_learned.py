import dataclasses

import numpy as np
import pytest

from frontier.config import load_config
from frontier.routing.artifact import load_artifact
from frontier.routing.features import extract_features, features_from_prompt
from frontier.routing.policies import build_router, learned_router
from frontier.routing.router import extra_reasoning_cost_usd
from frontier.routing.types import CostKnob, StatsSnapshot
from frontier.routing.scorer import STRUCTURAL_FEATURES, score_prompts
from frontier.routing.training import fit_logistic, train_router_from_csv

from .routing_data import synthetic_rows, write_csv

STATS = StatsSnapshot()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A router trained on synthetic data, and its training (calibration) prompts."""
    tmp = tmp_path_factory.mktemp("learned")
    rows = synthetic_rows(600)
    data = write_csv(tmp / "train.csv", rows)
    embedder = load_artifact().scorer.featurizer.embedder
    summary = train_router_from_csv(data, "light", "reasoning", tmp / "router", embedder, name="synthetic")
    return load_artifact(tmp / "router"), rows, summary


def _router(artifact, threshold=0.5):
    config = load_config()
    return learned_router(config.model_copy(update={"router": config.router.model_copy(update={"threshold": threshold})}),
                          artifact, None)  # fmt: skip


def _decide(router, features, knob, live=STATS):
    return router.decide(features, live, knob).decision


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 2))
    p = 1 / (1 + np.exp(-(x @ np.array([1.5, -2.0]) + 0.5)))
    w, b = fit_logistic(x, (rng.random(20000) < p).astype(float), l2=1e-6)
    assert np.allclose(w, [1.5, -2.0], atol=0.1) and b == pytest.approx(0.5, abs=0.1)


def test_trained_heads_learn_the_signal_and_are_calibrated(trained):
    artifact, rows, summary = trained
    hard = features_from_prompt("Question 1: compute the integral of x^3 * sin(x) from 0 to 7.")
    easy = features_from_prompt("Tell me about the weather today, please.")
    p_light_hard, p_reason_hard = artifact.scorer.probabilities(hard)
    p_light_easy, _ = artifact.scorer.probabilities(easy)
    assert p_light_hard < 0.5 < p_light_easy and p_reason_hard > 0.6
    assert artifact.scorer.score(hard) > artifact.scorer.score(easy)
    # Out-of-fold calibration error on 600 rows, with true probabilities 0.2/0.9 and 0.85/0.92.
    assert summary["ece"]["light"] < 0.08 and summary["ece"]["reasoning"] < 0.08
    # Calibrated means match the base rates of the data.
    probs = artifact.scorer.params.probabilities(
        artifact.scorer.featurizer.featurize_many([features_from_prompt(r[0]) for r in rows])
    )
    assert probs[:, 0].mean() == pytest.approx(np.mean([r[1] for r in rows]), abs=0.03)


def test_priors_set_weights_the_data_cannot_show(trained):
    artifact, _, _ = trained
    params = artifact.scorer.params
    i = params.mean.shape[0] - len(STRUCTURAL_FEATURES) + STRUCTURAL_FEATURES.index("reasoning_intent")
    assert params.weights[0, i] < 0 < params.weights[1, i]
    plain = features_from_prompt("Tell me about a fun weekend plan, please.")
    asked = features_from_prompt("Tell me about a fun weekend plan, please. Think step by step.")
    assert asked.reasoning_intent and artifact.scorer.score(asked) > artifact.scorer.score(plain)


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5, 0.8])
def test_share_knob_lands_within_two_points_on_the_calibration_set(trained, share):
    artifact, rows, _ = trained
    router = _router(artifact)
    decisions = [_decide(router, features_from_prompt(r[0]), CostKnob(reasoning_share=share)) for r in rows]
    realised = np.mean([d.pool == "reasoning" for d in decisions])
    assert abs(realised - share) <= 0.02
    assert all(d.threshold == pytest.approx(artifact.threshold_for_share(share)) for d in decisions)


def test_share_extremes(trained):
    artifact, rows, _ = trained
    router = _router(artifact)
    features = [features_from_prompt(r[0]) for r in rows[:50]]
    assert all(_decide(router, f, CostKnob(reasoning_share=0.0)).pool == "light" for f in features)
    assert all(_decide(router, f, CostKnob(reasoning_share=1.0)).pool == "reasoning" for f in features)


def test_price_weight_maximises_quality_minus_cost(trained):
    artifact, rows, _ = trained
    pools = load_config().pools
    router = _router(artifact)
    for prompt, *_ in rows[:40]:
        f = features_from_prompt(prompt)
        p_light, p_reason = artifact.scorer.probabilities(f)
        for lam in (0.0, 5.0, 20.0, 1e6):
            extra = extra_reasoning_cost_usd(pools, f.prompt_chars)
            expected = "reasoning" if p_reason - lam * extra > p_light else "light"
            decision = _decide(router, f, CostKnob(price_weight=lam))
            assert decision.pool == expected
    # A huge price weight sends everything to light.
    assert _decide(router, features_from_prompt(rows[0][0]), CostKnob(price_weight=1e6)).pool == "light"


def test_no_knob_uses_the_configured_threshold_and_decisions_are_pure(trained):
    artifact, _, _ = trained
    f = features_from_prompt("Question 3: compute the eigenvalues of [[2, 1], [1, 3]].")
    d1 = _decide(_router(artifact, threshold=0.5), f, CostKnob())
    d2 = _decide(_router(artifact, threshold=0.5), f, CostKnob(), StatsSnapshot(version=7))
    assert d1 == d2 and d1.threshold == 0.5 and d1.reason == "policy"
    assert d1.pool == ("reasoning" if d1.score > 0.5 else "light")
    assert _decide(_router(artifact, threshold=1.0), f, CostKnob()).pool == "light"
    assert d1.policy_version == f"learned-{artifact.version}"


def test_packaged_router_is_the_learned_policy_and_decides_offline():
    config = load_config()
    config = config.model_copy(update={"router": config.router.model_copy(update={"policy": "learned"})})
    router = build_router(config)
    chat = extract_features([{"role": "user", "content": "hi! how are you?"}])
    maths = extract_features(
        [{"role": "user", "content": "Think step by step. A train leaves at 3pm at 60 km/h; a second one leaves "
                                     "at 4pm at 90 km/h. When does the second catch up? Show your work."}]
    )
    d_chat = router.decide(chat, STATS, CostKnob(reasoning_share=0.3)).decision
    d_maths = router.decide(maths, STATS, CostKnob(reasoning_share=0.3)).decision
    assert d_maths.score > d_chat.score
    assert d_maths.pool == "reasoning" and d_chat.pool == "light"
    assert 0.0 <= d_chat.score <= 1.0 and d_chat.policy_version.startswith("learned-default-router-")


def test_featurize_is_consistent_and_bounded():
    scorer = load_artifact().scorer
    f = extract_features(
        [{"role": "user", "content": "word " * 5000}, {"role": "assistant", "content": "ok"},
         {"role": "user", "content": "```python\ndef f(x):\n    return x\n```"}],
        tools=[{"type": "function", "function": {"name": "f"}}],
    )
    one = scorer.featurize(f)
    many = scorer.featurizer.featurize_many([f])
    assert one.shape == (scorer.featurizer.dim,) and np.allclose(one, many[0], atol=1e-6)
    structural = dict(zip(STRUCTURAL_FEATURES, one[-len(STRUCTURAL_FEATURES):]))
    assert structural["log_tokens"] == pytest.approx(np.log1p(512))
    assert structural["extra_user_turns"] == pytest.approx(np.log1p(1)) and structural["has_tools"] == 1.0
    assert structural["code_markers"] > 0
    empty = scorer.featurize(features_from_prompt(""))
    assert np.all(np.isfinite(empty)) and np.allclose(empty[: scorer.featurizer.embedder.dim], 0.0)
    assert score_prompts(scorer, ["a", "b"]).shape == (2,)


def test_settings_are_recorded(trained):
    artifact, _, _ = trained
    settings = artifact.metadata["training"]["settings"]
    assert settings["l2_embedding"] > settings["l2_structural"] and settings["folds"] == 5
    assert dataclasses.is_dataclass(artifact.scorer.params)
