"""The offline learner: weighted MAP logistic fits, per-file intercepts, priors and the length prior."""

import json

import numpy as np
import pytest

from frontier.routing.artifact import load_artifact
from frontier.routing.scorer import STRUCTURAL_FEATURES
from frontier.routing.training import (
    LabelledFile,
    TrainingSettings,
    dataset_weights,
    fit_heads,
    fit_logistic,
    train_router,
    train_scorer,
    weighted_quantiles,
)

from .routing_data import synthetic_rows, write_csv

STRUCT = len(STRUCTURAL_FEATURES)


def _bernoulli(rng, logit):
    return (rng.random(logit.shape) < 1 / (1 + np.exp(-logit))).astype(float)


def test_sample_weights_act_like_repeated_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    y = _bernoulli(rng, x @ np.array([1.0, -1.0, 0.5]))
    weight = rng.integers(1, 4, size=400)
    repeated = fit_logistic(np.repeat(x, weight, axis=0), np.repeat(y, weight), l2=0.01)
    weighted = fit_logistic(x, y, l2=0.01, sample_weight=weight.astype(float))
    assert np.allclose(repeated[0], weighted[0], atol=1e-6) and repeated[1] == pytest.approx(weighted[1], abs=1e-6)


def test_soft_labels_and_per_weight_penalties():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5000, 2))
    soft = 1 / (1 + np.exp(-(2.0 * x[:, 0] + 1.0 * x[:, 1])))
    w, _ = fit_logistic(x, soft, l2=np.array([1e-8, 1e6]), prior=np.array([0.0, 0.3]))
    assert w[0] == pytest.approx(2.0, abs=0.3) and w[1] == pytest.approx(0.3, abs=1e-3)


def test_dataset_weights_give_each_file_rows_to_the_power():
    groups = np.array([0] * 900 + [1] * 100)
    for power, ratio in ((0.0, 1.0), (0.5, 3.0), (1.0, 9.0)):
        w = dataset_weights(groups, power)
        assert w.mean() == pytest.approx(1.0) and w[:900].sum() / w[900:].sum() == pytest.approx(ratio)


def test_weighted_quantiles_match_numpy_with_equal_weights_and_follow_weights():
    values = np.random.default_rng(3).normal(size=501)
    levels = np.linspace(0, 1, 11)
    assert np.allclose(weighted_quantiles(values, np.ones(501), levels), np.quantile(values, levels))
    two = np.array([0.0] * 100 + [1.0] * 100)
    assert weighted_quantiles(two, np.array([3.0] * 100 + [1.0] * 100), np.array([0.7]))[0] == 0.0


def _features(signal, confound, length, n):
    x = np.zeros((n, 4 + STRUCT))
    x[:, 0], x[:, 1] = signal, confound
    x[:, -STRUCT + STRUCTURAL_FEATURES.index("log_chars")] = length
    return x


def test_file_intercepts_keep_base_rates_out_of_the_weights():
    """Two files whose base rates differ and whose prompts differ in a confound without effect inside a file."""
    rng = np.random.default_rng(4)
    n = 3000
    group = np.repeat([0, 1], n // 2)
    signal = rng.normal(size=n)
    confound = group + 0.3 * rng.normal(size=n)
    x = _features(signal, confound, rng.normal(size=n), n)
    light = _bernoulli(rng, 1.5 * signal + np.where(group == 1, -2.5, 1.5))
    reasoning = _bernoulli(rng, np.full(n, 2.0))
    labels = np.stack((light, reasoning), axis=1)
    settings = TrainingSettings(l2_embedding=1e-3, length_prior=0.0)
    pooled, _ = fit_heads(x, labels, settings)
    per_file, offsets = fit_heads(x, labels, settings, groups=group)
    assert abs(pooled.weights[0, 1]) > 0.5  # without intercepts the confound stands in for the file
    assert abs(per_file.weights[0, 1]) < 0.15 and per_file.weights[0, 0] > 1.0
    # Serving does not know the file: the bias is the mean of the files' intercepts (1.5 and -2.5).
    assert per_file.bias[0] == pytest.approx(-0.5, abs=0.25)
    assert offsets[:, 0] == pytest.approx([2.0, -2.0], abs=0.3) and offsets[:, 1] == pytest.approx([0.0, 0.0], abs=0.3)


def test_length_prior_tilts_the_gain_towards_longer_prompts_and_priors_resist_a_few_rows():
    rng = np.random.default_rng(5)
    n = 2000
    x = _features(rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), n)
    intent = -STRUCT + STRUCTURAL_FEATURES.index("reasoning_intent")
    x[:4, intent] = 1.0  # four rows show the signal, against its prior
    labels = np.stack((np.ones(n), np.zeros(n)), axis=1)
    labels[4:] = rng.random((n - 4, 2)) < 0.7
    params = train_scorer(x, labels[:, 0], labels[:, 1], TrainingSettings(length_prior=0.3)).params
    length = -STRUCT + STRUCTURAL_FEATURES.index("log_chars")
    # On calibrated logits: +0.3 per standard deviation of log length for reasoning, -0.3 for light.
    tilt = params.weights[:, length] * params.calibration[:, 0]
    assert tilt == pytest.approx([-0.3, 0.3], abs=0.1)
    untilted, _ = fit_heads(x, labels, TrainingSettings(length_prior=0.3))
    raw = untilted.weights[:, intent] / untilted.scale[intent]
    assert raw[0] < -1.0 and raw[1] > 0.0  # the priors (-1.5, +0.25) hold


def test_train_router_pools_files_and_records_each(tmp_path):
    a = write_csv(tmp_path / "a.csv", synthetic_rows(200, seed=1))
    b = write_csv(tmp_path / "b.csv", synthetic_rows(120, seed=2))
    embedder = load_artifact().scorer.featurizer.embedder
    files = [LabelledFile(a, ("light",), ("reasoning",)), LabelledFile(b, ("light", "reasoning"), ("reasoning",))]
    summary = train_router(files, tmp_path / "router", embedder, name="pooled")
    assert summary["rows"] == 320
    meta = json.loads((tmp_path / "router" / "router.json").read_text())
    datasets = meta["training"]["datasets"]
    assert [d["data_file"] for d in datasets] == ["a.csv", "b.csv"] and datasets[1]["light_cols"] == ["light", "reasoning"]
    assert len(meta["training"]["data_sha256"]) == 64 and meta["training"]["data_sha256"] != datasets[0]["data_sha256"]
    assert meta["training"]["settings"]["length_prior"] == TrainingSettings().length_prior
    artifact = load_artifact(tmp_path / "router")
    assert np.all(np.diff(artifact.score_quantiles) >= 0)
    with pytest.raises(ValueError, match="no labelled files"):
        train_router([], tmp_path / "none", embedder)
