"""Offline training of the learned scorer: MAP logistic heads, Platt calibration, share quantiles.

Training may pool several labelled files (their pools differ: Mixtral vs GPT-4, Gemini Flash vs Pro, ...)
whose base rates differ widely. Each file gets its own intercept while fitting, so the weights learn what
separates prompts *within* a file rather than which file a prompt came from; serving, which does not know
the domain, uses the weighted mean intercept. Files are weighted by ``rows ** dataset_weight_power`` so one
large file does not drown the others. Leave-one-file-out CV (``benchmarks/router_cv.py``) found that only
prompt length ranks prompts the same way in every file, so the heads' gain is tilted towards longer
prompts by a fixed length prior on top of what the data fits.

Probability calibration uses cross-fitting: the heads are fitted on k-1 folds and scored on the held-out
one, and the out-of-fold logits fit each head's Platt scaling. The final heads are then fitted on all
rows, and their scores on those rows (the calibration set, weighted like training) give the quantiles that
turn a target reasoning share into a threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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
LENGTH_FEATURE = "log_chars"
NUM_QUANTILES = 1001
MIN_CALIBRATION_SLOPE = 0.05
# A group's intercept is almost free: it only absorbs the group's base rate.
_GROUP_L2 = 1e-4


@dataclass(frozen=True)
class TrainingSettings:
    """Hyperparameters of ``train_scorer`` (chosen by the mean over ``benchmarks/router_cv.py`` folds)."""

    # The embedding is strongly regularised: with whole topics held out, its dimensions mostly memorise
    # topics, while the few structural signals generalise (leave-subjects-out CV on MMLU).
    l2_embedding: float = 1.0
    l2_structural: float = 0.001
    folds: int = 5
    seed: int = 0
    priors: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_PRIORS)
    # Penalty, in raw feature units, on a weight's distance from its prior: a signal that a few training
    # rows show (a tiny standard deviation) cannot override its prior, one that many rows show can.
    l2_prior: float = 1.0
    # Weight of a training file is proportional to rows ** power (0: files count equally, 1: rows do).
    dataset_weight_power: float = 0.5
    # Added to the reasoning head's and subtracted from the light head's calibrated logit per standard
    # deviation of log length: longer prompts gain more from reasoning. It trades some per-pool
    # calibration for ranking on unseen domains: off for in-domain data, on for the packaged default.
    length_prior: float = 0.0


# The packaged default's settings, for prompts from domains no training file covers. Mean APGR over the
# 16 leave-one-file/subjects/domain-out folds of benchmarks/router_cv.py by length prior: 0 -> 0.588,
# 0.15 -> 0.607, 0.3 -> 0.608, 0.5 -> 0.607, 1.0 -> 0.605; prompt length 0.604.
TRANSFER_SETTINGS = TrainingSettings(length_prior=0.3)


@dataclass(frozen=True)
class TrainedScorer:
    """What training produces: head parameters, calibration diagnostics and the score distribution."""

    params: ScorerParams
    score_quantiles: np.ndarray
    ece: dict[str, float]
    rows: int


@dataclass(frozen=True)
class LabelledFile:
    """One RouteLLM-format CSV and the columns of each pool (several columns are averaged)."""

    path: Path
    light_cols: tuple[str, ...]
    reasoning_cols: tuple[str, ...]


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float | np.ndarray,
    prior: np.ndarray | None = None,
    penalize_bias: bool = False,
    sample_weight: np.ndarray | None = None,
    max_steps: int = 100,
) -> tuple[np.ndarray, float]:
    """MAP logistic regression: weighted mean cross-entropy (soft labels allowed) + sum(l2/2 * (w - prior)^2).

    ``l2`` is one penalty for every weight or one per weight. Damped Newton steps: the objective is
    strictly convex and smooth, and a few dozen steps reach machine precision even when the penalties
    differ by orders of magnitude (which stalls first-order methods).
    """
    n, d = x.shape
    prior = np.zeros(d) if prior is None else np.asarray(prior, dtype=np.float64)
    share = np.full(n, 1.0 / n) if sample_weight is None else sample_weight / sample_weight.sum()
    design = np.hstack((x.astype(np.float64), np.ones((n, 1))))
    penalty = np.append(np.broadcast_to(np.asarray(l2, dtype=np.float64), (d,)),
                        np.mean(l2) if penalize_bias else 0.0)
    centre = np.append(prior, 0.0)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        z = design @ theta
        # log(1 + e^z) - y z, computed stably.
        value = share @ (np.logaddexp(0.0, z) - y * z) + 0.5 * penalty @ (theta - centre) ** 2
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        return value, design.T @ (share * (p - y)) + penalty * (theta - centre), share * p * (1.0 - p)

    theta = centre.copy()
    value, grad, curvature = objective(theta)
    for _ in range(max_steps):
        hessian = design.T @ (design * curvature[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-12 * np.eye(d + 1), grad)
        t = 1.0
        while t > 1e-8:
            candidate = objective(theta - t * step)
            if candidate[0] <= value - 1e-4 * t * (grad @ step):
                break
            t /= 2
        else:
            break
        theta = theta - t * step
        converged = value - candidate[0] < 1e-13
        value, grad, curvature = candidate
        if converged or np.abs(grad).max() < 1e-10:
            break
    return theta[:d], float(theta[d])


def platt(logits: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[float, float]:
    """Slope and intercept mapping raw logits to calibrated ones."""
    w, b = fit_logistic(logits[:, None], y, l2=1e-6, sample_weight=sample_weight)
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


def penalty_vector(scale: np.ndarray, head: str, settings: TrainingSettings) -> np.ndarray:
    """Per-weight L2 penalties in standardised units for one head."""
    dim = scale.shape[0]
    offset = dim - len(STRUCTURAL_FEATURES)
    penalty = np.full(dim, settings.l2_embedding)
    penalty[offset:] = settings.l2_structural
    for name in settings.priors.get(head, {}):
        i = offset + STRUCTURAL_FEATURES.index(name)
        penalty[i] = max(penalty[i], settings.l2_prior / scale[i] ** 2)
    return penalty


def dataset_weights(groups: np.ndarray, power: float) -> np.ndarray:
    """Per-row weights (mean 1) giving each group a total weight proportional to its rows ** ``power``."""
    _, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    weights = counts[index] ** (power - 1.0)
    return weights / weights.mean()


def fit_heads(
    x: np.ndarray,
    labels: np.ndarray,
    settings: TrainingSettings,
    groups: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[ScorerParams, np.ndarray]:
    """Uncalibrated heads on feature vectors ``x`` (n, d) with per-pool labels (n, 2).

    With ``groups`` (one label per row, e.g. its file), each group has its own intercept while fitting;
    the returned bias is their mean under ``sample_weight``, and the offsets (groups in sorted order, 2)
    are each group's intercept minus that bias.
    """
    mean, scale = standardizer(x)
    z = (x - mean) / scale
    dim = x.shape[1]
    weight = np.ones(x.shape[0]) if sample_weight is None else sample_weight
    names, index = np.unique(np.zeros(x.shape[0]) if groups is None else groups, return_inverse=True)
    # The first group is the reference (its intercept is the bias): no column collinear with the bias.
    one_hot = np.eye(len(names))[index][:, 1:]
    group_share = one_hot.T @ weight / weight.sum()
    design = np.hstack((z, one_hot))
    weights, bias, offsets = [], [], []
    for i, head in enumerate(HEADS):
        # Priors are in raw feature units; in standardised units a weight is multiplied by the scale.
        prior = np.append(prior_vector(dim, head, settings.priors) * scale, np.zeros(one_hot.shape[1]))
        penalty = np.append(penalty_vector(scale, head, settings), np.full(one_hot.shape[1], _GROUP_L2))
        w, b = fit_logistic(design, labels[:, i], penalty, prior, sample_weight=weight)
        weights.append(w[:dim])
        bias.append(b + w[dim:] @ group_share)
        offsets.append(np.append(0.0, w[dim:]) - w[dim:] @ group_share)
    params = ScorerParams(mean=mean, scale=scale, weights=np.array(weights), bias=np.array(bias))
    return params, np.array(offsets).T


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of ``values`` under ``weights`` (equal weights: the same as ``np.quantile``)."""
    order = np.argsort(values, kind="stable")
    w = weights[order]
    cdf = np.cumsum(w) - w / 2
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1e-12)
    return np.interp(levels, cdf, values[order])


def train_scorer(
    x: np.ndarray,
    light: np.ndarray,
    reasoning: np.ndarray,
    settings: TrainingSettings | None = None,
    groups: np.ndarray | None = None,
) -> TrainedScorer:
    """Train, calibrate (cross-fitted) and refit the two heads on feature vectors ``x``.

    ``groups`` names each row's source file (training only: never a feature; see the module docstring).
    The reported ECE is out-of-fold with each file's own intercept (serving, which uses the mean one, is
    less well calibrated on a file whose base rate is far from the mean).
    """
    settings = settings or TrainingSettings()
    labels = np.stack((light, reasoning), axis=1)
    n = x.shape[0]
    if n < 2 * settings.folds:
        raise ValueError(f"need at least {2 * settings.folds} labelled rows to train and calibrate, got {n}")
    groups = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    weight = dataset_weights(groups, settings.dataset_weight_power)
    names, group_index = np.unique(groups, return_inverse=True)
    # Folds stratified by file, so that every file with two or more rows is in every training part.
    rng = np.random.default_rng(settings.seed)
    fold = np.zeros(n, dtype=int)
    for g in range(len(names)):
        rows = np.flatnonzero(group_index == g)
        fold[rows] = rng.permutation(rows.size) % settings.folds
    oof_logits = np.zeros((n, 2))
    for k in tqdm(range(settings.folds), desc="cross-fitting", unit="fold", leave=False):
        train = fold != k
        params, offsets = fit_heads(x[train], labels[train], settings, groups[train], weight[train])
        # Calibrated within each file (its own intercept), so the pooled fit does not flatten the slope
        # to cover the files' different base rates; serving then uses the mean intercept.
        offset = np.zeros((len(names), 2))
        offset[np.searchsorted(names, np.unique(groups[train]))] = offsets
        oof_logits[~train] = params.logits(x[~train]) + offset[group_index[~train]]
    calibration = np.array([platt(oof_logits[:, i], labels[:, i], weight) for i in range(2)])
    # A head without signal would get a slope near zero, or below: keep it positive so that the length
    # prior below stays representable in the weights.
    calibration[:, 0] = np.maximum(calibration[:, 0], MIN_CALIBRATION_SLOPE)
    final, _ = fit_heads(x, labels, settings, groups, weight)
    # The length prior acts on calibrated logits, so calibration cannot squash it, nor it the priors.
    length = x.shape[1] - len(STRUCTURAL_FEATURES) + STRUCTURAL_FEATURES.index(LENGTH_FEATURE)
    tilt = np.array([-settings.length_prior, settings.length_prior])
    weights = final.weights.copy()
    weights[:, length] += tilt / calibration[:, 0]
    params = ScorerParams(final.mean, final.scale, weights, final.bias, calibration)
    oof_logits = oof_logits * calibration[:, 0] + calibration[:, 1]
    oof_logits += np.outer((x[:, length] - final.mean[length]) / final.scale[length], tilt)
    oof_probabilities = 1.0 / (1.0 + np.exp(-oof_logits))
    # The share knob's calibration set is the training prompts, scored by the final model.
    scores = score_from_probabilities(params.probabilities(x))
    quantiles = weighted_quantiles(scores, weight, np.linspace(0, 1, NUM_QUANTILES))
    ece = {
        head: expected_calibration_error(oof_probabilities[:, i], labels[:, i]) for i, head in enumerate(HEADS)
    }
    return TrainedScorer(params=params, score_quantiles=quantiles, ece=ece, rows=n)


def train_router(
    files: Sequence[LabelledFile],
    out: str | Path,
    embedder: StaticEmbedder,
    name: str = "router",
    settings: TrainingSettings | None = None,
) -> dict[str, Any]:
    """Train a router on one or more RouteLLM-format CSV files and write its artifact; returns a summary."""
    settings = settings or TrainingSettings()
    if not files:
        raise ValueError("no labelled files to train on")
    featurizer = Featurizer(embedder)
    parts, described = [], []
    for f in files:
        outcomes = load_outcomes(f.path, f.light_cols, f.reasoning_cols)
        parts.append((featurize_prompts(featurizer, outcomes.prompts), outcomes.light, outcomes.reasoning))
        described.append({"data_file": Path(f.path).name, "data_sha256": outcomes.sha256, "rows": len(outcomes.light),
                          "light_cols": list(f.light_cols), "reasoning_cols": list(f.reasoning_cols)})
    groups = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)])
    x, light, reasoning = (np.concatenate(arrays) for arrays in zip(*parts))
    trained = train_scorer(x, light, reasoning, settings, groups)
    combined = described[0]["data_sha256"] if len(files) == 1 else hashlib.sha256(
        "".join(d["data_sha256"] for d in described).encode()).hexdigest()
    training: dict[str, Any] = {
        "data_sha256": combined,
        "rows": trained.rows,
        "datasets": described,
        "ece_out_of_fold": trained.ece,
        "settings": {**vars(settings), "priors": {head: dict(p) for head, p in settings.priors.items()}},
    }
    if len(files) == 1:
        training.update(data_file=described[0]["data_file"], light_col=" + ".join(files[0].light_cols),
                        reasoning_col=" + ".join(files[0].reasoning_cols))
    save_artifact(out, embedder, trained.params, trained.score_quantiles, training, name=name)
    return {"out": str(out), "rows": trained.rows, "ece": trained.ece}


def train_router_from_csv(
    data: str | Path,
    light_col: str,
    reasoning_col: str,
    out: str | Path,
    embedder: StaticEmbedder,
    name: str = "router",
    settings: TrainingSettings | None = None,
) -> dict[str, Any]:
    """Train a router on one RouteLLM-format CSV file (``frontier train``) and write its artifact."""
    return train_router([LabelledFile(Path(data), (light_col,), (reasoning_col,))], out, embedder, name, settings)
