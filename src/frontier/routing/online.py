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

Limits (``LearningLimits``): each API key may add at most ``key_quota`` effective events to the shared
statistics (its used weight is forgotten like the evidence, so the quota refills at the forgetting rate):
one key's flood moves the model no further than ``key_quota`` honest events would. Feedback without a key
(authentication off: one tenant) is not limited. No direction of the
posterior holds more than ``evidence_cap`` events' worth of precision (eigenvalues of the data's precision
are clipped after each batch, the mean kept), so the model stays movable by new evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from frontier.routing.types import POOLS, Pool


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
    def prior(cls, dim: int, variance: float, correlation: float = 0.0, bias_variance: float = 1.0) -> "Posterior":
        """Joint prior over both pools' residual weights (``dim`` per pool); the bias weight (feature 0) has
        ``bias_variance`` times the others' variance. A small one keeps feedback from shifting every request:
        a shift is learned along the directions of the requests it came from, not for unrelated prompts."""
        block = np.array([[1.0, correlation], [correlation, 1.0]]) * variance
        scale = np.ones(dim)
        scale[0] = bias_variance
        return cls(np.zeros(2 * dim), np.kron(block, np.diag(scale)))

    @property
    def dim(self) -> int:
        """Online features per pool."""
        return len(self.mean) // 2

    def pool(self, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance block of one pool's residual weights."""
        k, d = POOLS.index(pool), self.dim
        return self.mean[k * d : (k + 1) * d], self.cov[k * d : (k + 1) * d, k * d : (k + 1) * d]

    def cross(self) -> np.ndarray:
        """Covariance block between the light and the reasoning residual weights."""
        d = self.dim
        return self.cov[:d, d:]


def pool_features(phi: np.ndarray, pool: Pool) -> np.ndarray:
    """Joint-model features of one pool's observation: ``phi`` in that pool's block, zeros elsewhere."""
    out = np.zeros(2 * len(phi))
    k = POOLS.index(pool)
    out[k * len(phi) : (k + 1) * len(phi)] = phi
    return out


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def predict(post: Posterior, phi: np.ndarray, offset: np.ndarray | float, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of one pool's logit for one feature row or a batch of rows."""
    phi = np.asarray(phi, dtype=np.float64)
    mean, cov = post.pool(pool)
    mu = np.asarray(offset, dtype=np.float64) + phi @ mean
    var = np.einsum("...i,ij,...j->...", phi, cov, phi)
    return mu, np.maximum(var, 0.0)


def logit_correlation(post: Posterior, phi: np.ndarray) -> float:
    """Posterior correlation of the two pools' residual logits for one request."""
    _, cov_l = post.pool(Pool.LIGHT)
    _, cov_r = post.pool(Pool.REASONING)
    denom = math.sqrt(max(float(phi @ cov_l @ phi) * float(phi @ cov_r @ phi), 1e-300))
    return float(np.clip(float(phi @ post.cross() @ phi) / denom, -1.0, 1.0))


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


def belief(post: Posterior | None, evidence: float, phi: np.ndarray, offset: float, pool: Pool) -> Belief:
    """The belief about one pool; without a posterior it is the offline artifact's, with no uncertainty."""
    p0 = float(sigmoid(offset))
    if post is None:
        return Belief(float(offset), 0.0, 0.0, p0)
    mu, var = predict(post, phi, offset, pool)
    return Belief(float(mu), float(var), float(model_weight(evidence)), p0)


def predictive_probability(
    post: Posterior, evidence: float, phi: np.ndarray, offsets: np.ndarray, pool: Pool
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


def feedback_targets(kind: str, value: str, chosen: str) -> dict[Pool, float]:
    """What one feedback event says about each pool: target P(adequate) per pool it informs.

    ``score``/``rating`` judge the answer the chosen pool gave; ``preferred`` names the pool that should
    have answered (the other one gets 0); ``retry`` (the client re-asked the other pool) says the earlier
    light answer was inadequate.
    """
    if kind == "score":
        return {Pool(chosen): float(value)}
    if kind == "rating":
        return {Pool(chosen): 1.0 if value == "up" else 0.0}
    if kind == "preferred":
        return {pool: 1.0 if pool == value else 0.0 for pool in POOLS}
    if kind == "retry":
        return {Pool.LIGHT: 0.0}
    raise ValueError(f"unknown feedback kind {kind!r}")


@dataclass(frozen=True)
class Event:
    """One decoded feedback event, as the consumer applies it (``key``: the API key's id, "" without auth)."""

    phi: np.ndarray
    offsets: Mapping[str, float]
    targets: Mapping[str, float]
    feature_map: str
    key: str = ""


# Per-key weights below this are dropped from the state (a key that has been quiet for many half-lives).
MIN_KEY_WEIGHT = 1e-3
# Largest Fisher information of one logistic observation per unit of ``|phi|^2``: p(1-p) <= 1/4.
FISHER_PER_EVENT = 0.25


@dataclass(frozen=True)
class LearningLimits:
    """How far feedback may move the shared statistics (``inf``: no limit)."""

    key_quota: float = math.inf  # effective events one key can hold (decayed with the evidence)
    evidence_cap: float = math.inf  # effective events of precision any one direction can hold


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
    key_weights: Mapping[str, float] = field(default_factory=dict)  # decayed effective events per key
    capped: int = 0  # events a key's quota left without effect

    @classmethod
    def initial(cls, feature_map: str, prior: Posterior, now: float = 0.0) -> "OnlineState":
        return cls(feature_map, prior, {pool: 0 for pool in POOLS}, {pool: 0.0 for pool in POOLS}, updated_at=now)

    @property
    def dim(self) -> int:
        return self.posterior.dim


def cap_precision(post: Posterior, prior: Posterior, cap_events: float) -> Posterior:
    """The posterior with the data's precision clipped to ``cap_events`` events in every direction (mean kept)."""
    if not math.isfinite(cap_events):
        return post
    prior_prec = np.linalg.inv(prior.cov)
    data = np.linalg.inv(post.cov) - prior_prec
    vals, vecs = np.linalg.eigh(0.5 * (data + data.T))
    limit = FISHER_PER_EVENT * cap_events
    if vals.max(initial=0.0) <= limit:
        return post
    cov = np.linalg.inv(prior_prec + (vecs * np.clip(vals, 0.0, limit)) @ vecs.T)
    return Posterior(post.mean, 0.5 * (cov + cov.T))


def apply_batch(
    state: OnlineState,
    events: Iterable[Event],
    now: float,
    prior: Posterior,
    half_life_events: float,
    half_life_s: float,
    limits: LearningLimits = LearningLimits(),
) -> OnlineState:
    """The state after forgetting toward ``prior`` and then applying ``events`` in order (pure).

    Each event weighs what its key's quota still allows (at most 1); see ``LearningLimits``.
    """
    events = list(events)
    usable = [e for e in events if e.feature_map == state.feature_map and len(e.phi) == state.dim]
    keep = keep_fraction(len(usable), now - state.updated_at, half_life_events, half_life_s)
    start = forget(state.posterior, prior, keep)
    mean, cov = np.array(start.mean), np.array(start.cov)
    counts, sums = dict(state.counts), dict(state.target_sums)
    used = {key: keep * w for key, w in state.key_weights.items() if keep * w >= MIN_KEY_WEIGHT}
    evidence, capped = keep * state.evidence, state.capped
    for event in usable:
        weight = min(1.0, max(limits.key_quota - used.get(event.key, 0.0), 0.0)) if event.key else 1.0
        if weight <= 0.0:
            capped += 1
            continue
        if event.key:
            used[event.key] = used.get(event.key, 0.0) + weight
        phi = np.asarray(event.phi, dtype=np.float64)
        for pool, y in event.targets.items():
            psi = pool_features(phi, pool)
            offset = float(event.offsets[pool])
            # Prequential: score the event before learning from it.
            evidence += weight * log_bayes_factor(y, float(sigmoid(offset + psi @ mean)), float(sigmoid(offset)))
            mean, cov = laplace_step(mean, cov, psi, offset, y, weight)
            counts[pool] += 1
            sums[pool] += y
    posterior = cap_precision(Posterior(mean, 0.5 * (cov + cov.T)), prior, limits.evidence_cap)
    return replace(
        state,
        posterior=posterior,
        counts=counts,
        target_sums=sums,
        evidence=evidence,
        applied=state.applied + len(usable),
        stale=state.stale + len(events) - len(usable),
        updated_at=max(now, state.updated_at),
        key_weights=used,
        capped=capped,
    )
