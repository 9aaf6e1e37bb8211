"""The online model: a Bayesian logistic residual per pool on top of the offline scorer's logits.

For pool ``k`` and request features ``phi`` (``FeatureMap`` output, leading 1 for a bias):

    P(pool k answers adequately) = sigmoid(offline_logit_k + w_k . phi)

``w = [w_light; w_reasoning]`` has one joint Gaussian posterior. Its prior is ``N(0, v * [[1, r], [r, 1]]
(x) I)``: the two residuals are correlated (``r = prior_correlation``) because what makes a request
harder than the artifact thought usually makes it harder for both pools, so feedback on one pool also
informs the other (bandit feedback reveals only one) and the routing gain ``p_r - p_l`` is not swamped by
each pool's own estimate of shared difficulty. Each event is one online-Laplace (extended Kalman) step
with a rank-1 covariance update. Before each batch the posterior is forgotten toward the prior (precisions
blended ``g*L + (1-g)*L0``), so old evidence fades with the configured half-lives.

Guard against doing worse than the offline artifact: per pool we also keep the prequential log Bayes
factor ``evidence`` of "offline + residual" against "offline alone" (each event scored *before* it is
learned from, forgotten like the rest), and predict with the Bayesian model average
``w * sigmoid(offline + w.phi) + (1 - w) * sigmoid(offline)``, ``w = sigmoid(evidence)``. With no
feedback the residual is 0 and the policy is exactly the offline artifact; the residual takes over only
as far as it has predicted feedback better than the artifact, and stale statistics shrink back to it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

POOLS = ("light", "reasoning")
# Optional file in a router artifact directory: the online feature map fitted on its training features.
ONLINE_MAP_FILE = "online-map.safetensors"


@dataclass(frozen=True)
class FeatureMap:
    """Fixed map from a scorer's feature vector ``x`` (length d) to online features (length k+1)."""

    center: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    basis: np.ndarray  # (k, d), orthonormal rows
    out_scale: np.ndarray  # (k,)
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        for name in ("center", "scale", "basis", "out_scale"):
            arr = np.array(getattr(self, name), dtype=np.float32)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        digest = hashlib.sha256()
        for arr in (self.center, self.scale, self.basis, self.out_scale):
            digest.update(np.ascontiguousarray(arr).tobytes())
        object.__setattr__(self, "fingerprint", digest.hexdigest()[:16])

    @property
    def dim(self) -> int:
        """Length of the online feature vector (bias included)."""
        return self.basis.shape[0] + 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Online features of one vector (1-D) or a batch (2-D, one row each)."""
        x = np.asarray(x, dtype=np.float32)
        z = ((x - self.center) / self.scale) @ self.basis.T / self.out_scale
        ones = np.ones(z.shape[:-1] + (1,), dtype=np.float32)
        return np.concatenate([ones, z], axis=-1)

    @classmethod
    def random(cls, d: int, k: int, seed: int = 0) -> "FeatureMap":
        """A seeded random orthonormal projection (when no data is at hand); unit-norm x gives |z| ~ 1."""
        k = min(k, d)
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, k)))
        return cls(np.zeros(d), np.ones(d), q.T, np.full(k, math.sqrt(k / d)))

    @classmethod
    def from_standardizer(cls, mean: np.ndarray, scale: np.ndarray, k: int, seed: int = 0) -> "FeatureMap":
        """A seeded random orthonormal projection of features standardised by a scorer's own mean/scale."""
        d = len(mean)
        k = min(k, d)
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, k)))
        return cls(mean, scale, q.T, np.full(k, math.sqrt(k)))

    @classmethod
    def fit_pca(cls, x: np.ndarray, k: int) -> "FeatureMap":
        """Standardise, keep the top-k principal directions; each output has variance 1/k."""
        x = np.asarray(x, dtype=np.float64)
        center = x.mean(axis=0)
        scale = np.maximum(x.std(axis=0), 1e-6)
        xs = (x - center) / scale
        _, s, vt = np.linalg.svd(xs, full_matrices=False)
        k = min(k, vt.shape[0])
        comp_std = np.maximum(s[:k] / math.sqrt(max(len(x) - 1, 1)), 1e-6)
        return cls(center, scale, vt[:k], comp_std * math.sqrt(k))

    def save(self, path: str | Path) -> None:
        """Write the map as safetensors (e.g. ``ONLINE_MAP_FILE`` inside a router artifact directory)."""
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in self.to_arrays().items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> "FeatureMap":
        from safetensors.numpy import load_file

        return cls.from_arrays(load_file(str(path)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"center": self.center, "scale": self.scale, "basis": self.basis, "out_scale": self.out_scale}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "FeatureMap":
        return cls(arrays["center"], arrays["scale"], arrays["basis"], arrays["out_scale"])


@dataclass(frozen=True)
class Posterior:
    """Gaussian posterior of one pool's residual weights; arrays are read-only."""

    mean: np.ndarray
    cov: np.ndarray

    def __post_init__(self) -> None:
        for name in ("mean", "cov"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @classmethod
    def prior(cls, dim: int, variance: float, correlation: float = 0.0) -> "Posterior":
        """Joint prior over both pools' residual weights (``dim`` per pool)."""
        block = np.array([[1.0, correlation], [correlation, 1.0]]) * variance
        return cls(np.zeros(2 * dim), np.kron(block, np.eye(dim)))

    @property
    def dim(self) -> int:
        """Online features per pool."""
        return len(self.mean) // 2

    def pool(self, pool: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance block of one pool's residual weights."""
        k, d = POOLS.index(pool), self.dim
        return self.mean[k * d : (k + 1) * d], self.cov[k * d : (k + 1) * d, k * d : (k + 1) * d]

    def cross(self) -> np.ndarray:
        """Covariance block between the light and the reasoning residual weights."""
        d = self.dim
        return self.cov[:d, d:]


def pool_features(phi: np.ndarray, pool: str) -> np.ndarray:
    """Joint-model features of one pool's observation: ``phi`` in that pool's block, zeros elsewhere."""
    out = np.zeros(2 * len(phi))
    k = POOLS.index(pool)
    out[k * len(phi) : (k + 1) * len(phi)] = phi
    return out


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def predict(post: Posterior, phi: np.ndarray, offset: np.ndarray | float, pool: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of one pool's logit for one feature row or a batch of rows."""
    phi = np.asarray(phi, dtype=np.float64)
    mean, cov = post.pool(pool)
    mu = np.asarray(offset, dtype=np.float64) + phi @ mean
    var = np.einsum("...i,ij,...j->...", phi, cov, phi)
    return mu, np.maximum(var, 0.0)


def logit_correlation(post: Posterior, phi: np.ndarray) -> float:
    """Posterior correlation of the two pools' residual logits for one request."""
    _, cov_l = post.pool("light")
    _, cov_r = post.pool("reasoning")
    denom = math.sqrt(max(float(phi @ cov_l @ phi) * float(phi @ cov_r @ phi), 1e-300))
    return float(np.clip(float(phi @ post.cross() @ phi) / denom, -1.0, 1.0))


def moderated_probability(mu: np.ndarray | float, var: np.ndarray | float) -> np.ndarray:
    """Posterior predictive P(adequate) under the probit approximation of the logistic-Gaussian integral."""
    return sigmoid(np.asarray(mu) / np.sqrt(1.0 + math.pi * np.asarray(var) / 8.0))


@dataclass(frozen=True)
class Belief:
    """What the online model believes about one pool for one request."""

    mu: float  # mean logit of the residual model
    var: float  # its variance
    weight: float  # posterior weight of the residual model against the offline one
    p0: float  # the offline artifact's probability

    def probability(self) -> float:
        """Model-averaged P(adequate) at the posterior mean (the greedy prediction)."""
        return self.weight * float(sigmoid(self.mu)) + (1.0 - self.weight) * self.p0

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Model-averaged P(adequate) at residual logits ``mu + sqrt(var) * z`` (Thompson samples)."""
        return self.weight * sigmoid(self.mu + np.sqrt(self.var) * z) + (1.0 - self.weight) * self.p0


def model_weight(evidence: float | np.ndarray) -> np.ndarray:
    """Posterior weight of the residual model from its log Bayes factor against the offline one."""
    return sigmoid(evidence)


def belief(post: Posterior | None, evidence: float, phi: np.ndarray, offset: float, pool: str) -> Belief:
    """The belief about one pool; without a posterior it is the offline artifact's, with no uncertainty."""
    p0 = float(sigmoid(offset))
    if post is None:
        return Belief(float(offset), 0.0, 0.0, p0)
    mu, var = predict(post, phi, offset, pool)
    return Belief(float(mu), float(var), float(model_weight(evidence)), p0)


def predictive_probability(
    post: Posterior, evidence: float, phi: np.ndarray, offsets: np.ndarray, pool: str
) -> np.ndarray:
    """Greedy model-averaged probabilities of one pool for many requests (rows of ``phi``)."""
    mu, _ = predict(post, phi, offsets, pool)
    w = model_weight(evidence)
    return w * sigmoid(mu) + (1.0 - w) * sigmoid(offsets)


def log_bayes_factor(y: float, p_online: float, p_offline: float) -> float:
    """How much better (in nats) the residual model predicted a target ``y`` than the offline one."""
    p1 = min(max(p_online, 1e-6), 1 - 1e-6)
    p0 = min(max(p_offline, 1e-6), 1 - 1e-6)
    return y * math.log(p1 / p0) + (1.0 - y) * math.log((1.0 - p1) / (1.0 - p0))


def laplace_step(
    mean: np.ndarray, cov: np.ndarray, phi: np.ndarray, offset: float, y: float, weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """One online Newton (Laplace) update with a soft target ``y`` in [0, 1]; returns new arrays."""
    a = offset + float(phi @ mean)
    p = 1.0 / (1.0 + math.exp(-a)) if a >= -700 else 0.0
    lam = weight * max(p * (1.0 - p), 1e-6)
    s_phi = cov @ phi
    new_cov = cov - np.outer(s_phi, s_phi) * (lam / (1.0 + lam * float(phi @ s_phi)))
    new_mean = mean + (new_cov @ phi) * (weight * (y - p))
    return new_mean, new_cov


def forget(post: Posterior, prior: Posterior, keep: float) -> Posterior:
    """Blend the posterior's information back toward the (zero-mean) prior: keep a fraction ``keep`` of it."""
    if keep >= 1.0:
        return post
    prec = np.linalg.inv(post.cov)
    prior_prec = np.linalg.inv(prior.cov)
    new_prec = keep * prec + (1.0 - keep) * prior_prec
    new_mean = np.linalg.solve(new_prec, keep * (prec @ post.mean))
    new_cov = np.linalg.inv(new_prec)
    return Posterior(new_mean, 0.5 * (new_cov + new_cov.T))


def keep_fraction(n_events: int, elapsed_s: float, half_life_events: float, half_life_s: float) -> float:
    """Share of evidence kept after ``n_events`` further events and ``elapsed_s`` seconds."""
    return 0.5 ** (n_events / half_life_events + max(elapsed_s, 0.0) / half_life_s)


def feedback_targets(kind: str, value: str, chosen: str) -> dict[str, float]:
    """What one feedback event says about each pool: target P(adequate) per pool it informs.

    ``score``/``rating`` judge the answer the chosen pool gave; ``preferred`` names the pool that should
    have answered (the other one gets 0); ``retry`` (the client re-asked the other pool) says the earlier
    light answer was inadequate.
    """
    if kind == "score":
        return {chosen: float(value)}
    if kind == "rating":
        return {chosen: 1.0 if value == "up" else 0.0}
    if kind == "preferred":
        return {pool: 1.0 if pool == value else 0.0 for pool in POOLS}
    if kind == "retry":
        return {"light": 0.0}
    raise ValueError(f"unknown feedback kind {kind!r}")


@dataclass(frozen=True)
class Event:
    """One decoded feedback event, as the consumer applies it."""

    phi: np.ndarray
    offsets: Mapping[str, float]
    targets: Mapping[str, float]
    feature_map: str


@dataclass(frozen=True)
class OnlineState:
    """The joint posterior, its evidence against the offline artifact, and exact counters; immutable."""

    feature_map: str
    posterior: Posterior
    counts: Mapping[str, int]
    target_sums: Mapping[str, float]
    evidence: float = 0.0
    applied: int = 0
    stale: int = 0
    updated_at: float = 0.0

    @classmethod
    def initial(cls, feature_map: str, prior: Posterior, now: float = 0.0) -> "OnlineState":
        return cls(feature_map, prior, {pool: 0 for pool in POOLS}, {pool: 0.0 for pool in POOLS}, updated_at=now)

    @property
    def dim(self) -> int:
        return self.posterior.dim


def apply_batch(
    state: OnlineState,
    events: Iterable[Event],
    now: float,
    prior: Posterior,
    half_life_events: float,
    half_life_s: float,
) -> OnlineState:
    """The state after forgetting toward ``prior`` and then applying ``events`` in order (pure)."""
    events = list(events)
    usable = [e for e in events if e.feature_map == state.feature_map and len(e.phi) == state.dim]
    keep = keep_fraction(len(usable), now - state.updated_at, half_life_events, half_life_s)
    start = forget(state.posterior, prior, keep)
    mean, cov = np.array(start.mean), np.array(start.cov)
    counts, sums = dict(state.counts), dict(state.target_sums)
    evidence = keep * state.evidence
    for event in usable:
        phi = np.asarray(event.phi, dtype=np.float64)
        for pool, y in event.targets.items():
            psi = pool_features(phi, pool)
            offset = float(event.offsets[pool])
            # Prequential: score the event before learning from it.
            evidence += log_bayes_factor(y, float(sigmoid(offset + psi @ mean)), float(sigmoid(offset)))
            mean, cov = laplace_step(mean, cov, psi, offset, y)
            counts[pool] += 1
            sums[pool] += y
    return OnlineState(
        state.feature_map,
        Posterior(mean, 0.5 * (cov + cov.T)),
        counts,
        sums,
        evidence,
        applied=state.applied + len(usable),
        stale=state.stale + len(events) - len(usable),
        updated_at=max(now, state.updated_at),
    )
