"""Offline training of the learned scorer: MAP logistic heads, Platt calibration, share quantiles.

Probability calibration uses cross-fitting: the heads are fitted on k-1 folds and scored on the held-out
one, and the out-of-fold logits fit each head's Platt scaling. The final heads are then fitted on all
rows, and their scores on those rows (the calibration set) give the quantiles that turn a target
reasoning share into a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from tqdm import tqdm

from frontier.routing.artifact import save_artifact
from frontier.routing.datasets import load_outcomes
from frontier.routing.embedding import StaticEmbedder
from frontier.routing.evaluation import expected_calibration_error
from frontier.routing.scorer import (
    HEADS,
    STRUCTURAL_FEATURES,
    Featurizer,
    ScorerParams,
    featurize_prompts,
    score_from_probabilities,
)

# Prior means (logit units per unit of feature) for signals that RouteLLM-style data rarely shows:
# explicit requests for careful reasoning, long conversations and tool use make a light model less
# likely to be adequate. With data that shows them, the data moves the weights away from the prior.
DEFAULT_PRIORS: Mapping[str, Mapping[str, float]] = {
    "light": {"reasoning_intent": -1.5, "extra_user_turns": -0.3, "has_tools": -0.3},
    "reasoning": {"reasoning_intent": 0.25},
}
NUM_QUANTILES = 1001


@dataclass(frozen=True)
class TrainingSettings:
    """Hyperparameters of ``train_scorer``."""

    # The embedding is strongly regularised: with whole topics held out, its dimensions mostly memorise
    # topics, while the few structural signals generalise (leave-subjects-out CV on MMLU).
    l2_embedding: float = 1.0
    l2_structural: float = 0.001
    folds: int = 5
    seed: int = 0
    priors: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_PRIORS)


@dataclass(frozen=True)
class TrainedScorer:
    """What training produces: head parameters, calibration diagnostics and the score distribution."""

    params: ScorerParams
    score_quantiles: np.ndarray
    ece: dict[str, float]
    rows: int


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float | np.ndarray, prior: np.ndarray | None = None, penalize_bias: bool = False
) -> tuple[np.ndarray, float]:
    """MAP logistic regression: mean cross-entropy (soft labels allowed) + sum(l2/2 * (w - prior)^2).

    ``l2`` is one penalty for every weight or one per weight.
    """
    n, d = x.shape
    prior = np.zeros(d) if prior is None else prior
    x64 = x.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = x64 @ w + b
        # log(1 + e^z) - y z, computed stably.
        nll = np.mean(np.logaddexp(0.0, z) - y * z)
        residual = 1.0 / (1.0 + np.exp(-z)) - y
        grad_w = x64.T @ residual / n + l2 * (w - prior)
        grad_b = residual.mean() + (np.mean(l2) * b if penalize_bias else 0.0)
        value = nll + 0.5 * np.sum(l2 * (w - prior) ** 2) + (0.5 * np.mean(l2) * b * b if penalize_bias else 0.0)
        return value, np.append(grad_w, grad_b)

    start = np.append(prior, 0.0)
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return result.x[:d], float(result.x[d])


def platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept mapping raw logits to calibrated ones."""
    w, b = fit_logistic(logits[:, None], y, l2=1e-6)
    return float(w[0]), b


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale per feature; constant features are left as they are (mean 0, scale 1)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    constant = scale < 1e-6
    mean[constant] = 0.0
    scale[constant] = 1.0
    return mean, scale


def prior_vector(dim: int, head: str, priors: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """Prior weight means for one head; the structural features sit at the end of the vector."""
    prior = np.zeros(dim)
    offset = dim - len(STRUCTURAL_FEATURES)
    for name, value in priors.get(head, {}).items():
        prior[offset + STRUCTURAL_FEATURES.index(name)] = value
    return prior


def fit_heads(x: np.ndarray, labels: np.ndarray, settings: TrainingSettings) -> ScorerParams:
    """Uncalibrated heads on feature vectors ``x`` (n, d) with per-pool labels (n, 2)."""
    mean, scale = standardizer(x)
    z = (x - mean) / scale
    penalty = np.full(x.shape[1], settings.l2_embedding)
    penalty[x.shape[1] - len(STRUCTURAL_FEATURES) :] = settings.l2_structural
    weights, bias = [], []
    for i, head in enumerate(HEADS):
        # Priors are in raw feature units; in standardised units a weight is multiplied by the scale.
        prior = prior_vector(x.shape[1], head, settings.priors) * scale
        w, b = fit_logistic(z, labels[:, i], penalty, prior)
        weights.append(w)
        bias.append(b)
    return ScorerParams(mean=mean, scale=scale, weights=np.array(weights), bias=np.array(bias))


def train_scorer(
    x: np.ndarray, light: np.ndarray, reasoning: np.ndarray, settings: TrainingSettings | None = None
) -> TrainedScorer:
    """Train, calibrate (cross-fitted) and refit the two heads on feature vectors ``x``."""
    settings = settings or TrainingSettings()
    labels = np.stack((light, reasoning), axis=1)
    n = x.shape[0]
    if n < 2 * settings.folds:
        raise ValueError(f"need at least {2 * settings.folds} labelled rows to train and calibrate, got {n}")
    fold = np.random.default_rng(settings.seed).permutation(n) % settings.folds
    oof_logits = np.zeros((n, 2))
    for k in tqdm(range(settings.folds), desc="cross-fitting", unit="fold", leave=False):
        params = fit_heads(x[fold != k], labels[fold != k], settings)
        oof_logits[fold == k] = params.logits(x[fold == k])
    calibration = np.array([platt(oof_logits[:, i], labels[:, i]) for i in range(2)])
    oof_probabilities = 1.0 / (1.0 + np.exp(-(oof_logits * calibration[:, 0] + calibration[:, 1])))
    final = fit_heads(x, labels, settings)
    params = ScorerParams(final.mean, final.scale, final.weights, final.bias, calibration)
    # The share knob's calibration set is the training prompts, scored by the final model.
    quantiles = np.quantile(score_from_probabilities(params.probabilities(x)), np.linspace(0, 1, NUM_QUANTILES))
    ece = {
        head: expected_calibration_error(oof_probabilities[:, i], labels[:, i]) for i, head in enumerate(HEADS)
    }
    return TrainedScorer(params=params, score_quantiles=quantiles, ece=ece, rows=n)


def train_router_from_csv(
    data: str | Path,
    light_col: str,
    reasoning_col: str,
    out: str | Path,
    embedder: StaticEmbedder,
    name: str = "router",
    settings: TrainingSettings | None = None,
) -> dict[str, Any]:
    """Train a router on a RouteLLM-format CSV file and write its artifact; returns a summary."""
    settings = settings or TrainingSettings()
    outcomes = load_outcomes(data, light_col, reasoning_col)
    x = featurize_prompts(Featurizer(embedder), outcomes.prompts)
    trained = train_scorer(x, outcomes.light, outcomes.reasoning, settings)
    training = {
        "data_file": Path(data).name,
        "data_sha256": outcomes.sha256,
        "rows": trained.rows,
        "light_col": light_col,
        "reasoning_col": reasoning_col,
        "ece_out_of_fold": trained.ece,
        "settings": {**vars(settings), "priors": {head: dict(p) for head, p in settings.priors.items()}},
    }
    save_artifact(out, embedder, trained.params, trained.score_quantiles, training, name=name)
    return {"out": str(out), "rows": trained.rows, "ece": trained.ece}
