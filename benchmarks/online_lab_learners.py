"""Research learners of ``online_learning_lab.py``: feature maps and a configurable bandit learner (numpy only).

``Learner`` is the production model (per-pool Bayesian logistic residuals over the offline logits, correlated
prior, Bayes-factor guard, capped Thompson exploration) with switches for the alternatives the lab compares:
other feature maps, IPS-weighted updates, a doubly-robust gain regression, flat or no exploration, the bias
prior, an evidence cap and full-information learning (a ceiling, not a bandit).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from frontier.routing.scorer import STRUCTURAL_FEATURES
from frontier.routing.training import standardizer

def feature_map(kind: str, dim: int, x_train: np.ndarray, seed: int = 0):
    """Online features ``x -> phi`` (first column a bias, or soft cluster memberships for ``clusters``).

    ``std``: production's seeded random projection of standardised features; ``pca``: top principal
    directions; ``struct+pca``: clipped structural z-scores beside an embedding PCA (each block of total
    variance 1); ``clusters+struct+pca``: the same with soft k-means memberships instead of one bias.
    """
    mean, scale = standardizer(x_train)
    s = len(STRUCTURAL_FEATURES)
    if kind in ("std+struct", "std+len"):
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(mean), dim)))
        cols = list(range(len(mean) - s, len(mean))) if kind == "std+struct" else [len(mean) - s]
        extra = np.eye(len(mean))[cols]  # the structural signals themselves, beside the projection
        basis = np.vstack((q.T, extra))
        out = np.concatenate((np.full(dim, np.sqrt(dim)), np.full(len(cols), np.sqrt(len(cols)))))
        return lambda x: np.hstack((np.ones((len(x), 1)), ((x - mean) / scale) @ basis.T / out))
    if kind in ("std", "pca"):
        if kind == "std":
            q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(mean), dim)))
            basis, out = q.T, np.full(dim, np.sqrt(dim))
        else:
            _, sv, vt = np.linalg.svd((x_train - mean) / scale, full_matrices=False)
            basis, out = vt[:dim], sv[:dim] / np.sqrt(len(x_train)) * np.sqrt(dim)
        return lambda x: np.hstack((np.ones((len(x), 1)), ((x - mean) / scale) @ basis.T / out))
    k = dim - s
    if kind == "struct+rand":
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(mean) - s, k)))
        basis, out = q.T, np.full(k, np.sqrt(k))
    else:
        emb = (x_train[:, :-s] - mean[:-s]) / scale[:-s]
        _, sv, vt = np.linalg.svd(emb, full_matrices=False)
        basis, out = vt[:k], sv[:k] / np.sqrt(len(x_train)) * np.sqrt(k)

    def blocks(x: np.ndarray) -> np.ndarray:
        st = np.clip((x[:, -s:] - mean[-s:]) / scale[-s:], -4, 4) / np.sqrt(s)
        return np.hstack((st, ((x[:, :-s] - mean[:-s]) / scale[:-s]) @ basis.T / out))

    if kind in ("struct+pca", "struct+rand"):
        return lambda x: np.hstack((np.ones((len(x), 1)), blocks(x)))
    centers, temp = kmeans(blocks(x_train), 8, seed)

    def clustered(x: np.ndarray) -> np.ndarray:
        b = blocks(x)
        d2 = ((b[:, None, :] - centers[None]) ** 2).sum(-1)
        m = np.exp(-(d2 - d2.min(1, keepdims=True)) / temp)
        return np.hstack((m / m.sum(1, keepdims=True), b))

    return clustered


def kmeans(z: np.ndarray, k: int, seed: int, iters: int = 20) -> tuple[np.ndarray, float]:
    """Lloyd's k-means centres and a softmax temperature (the median squared distance to the nearest centre)."""
    rng = np.random.default_rng(seed)
    centers = z[rng.choice(len(z), k, replace=False)]
    for _ in range(iters):
        d2 = ((z[:, None, :] - centers[None]) ** 2).sum(-1)
        near = d2.argmin(1)
        centers = np.array([z[near == c].mean(0) if (near == c).any() else centers[c] for c in range(k)])
    return centers, float(np.median(d2.min(1)))


@dataclass(frozen=True)
class Approach:
    """One learner configuration."""

    name: str
    features: str = "std"
    dim: int = 32
    variance: float = 1.0
    correlation: float = 0.8
    ips_clip: float = 0.0  # 0: no IPS; else each event weighs min(1/propensity, clip)
    explore: str = "thompson"  # thompson (min(q, cap)) | flat (cap) | none
    learner: str = "pools"  # pools | gain-dr
    guard: bool = True  # Bayes-factor model average against the offline scorer
    evidence_cap: float = np.inf  # most effective events along any direction of the statistics
    share_rule: str = "controller"  # controller (scores at decision time) | rescore (current model's)
    gain_variance: float = 0.02
    bias_variance: float = 1.0  # prior variance of the bias weight relative to the others (1e-3: no global shift)
    full_info: bool = False  # learn from both pools' labels (a ceiling for this learner, not a bandit)


def sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


_NODES = np.array([NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16)])
_ZL, _ZR = (a.ravel() for a in np.meshgrid(_NODES, _NODES))


class Learner:
    """The online state of one run (joint per-pool posterior, optional DR gain regression)."""

    def __init__(self, a: Approach, dim: int, half_life: float = 20000.0) -> None:
        self.a, self.d, self.half_life = a, dim, half_life
        block = np.array([[1.0, a.correlation], [a.correlation, 1.0]]) * a.variance
        scale = np.ones(dim)
        scale[0] = a.bias_variance if not a.features.startswith("clusters") else 1.0
        self.prior_cov = np.kron(block, np.diag(scale))
        self.prior_prec = np.linalg.inv(self.prior_cov)
        self.mean, self.cov, self.evidence = np.zeros(2 * dim), self.prior_cov.copy(), 0.0
        self.g_mean, self.g_cov = np.zeros(dim), np.eye(dim) * a.gain_variance

    def probs(self, phi: np.ndarray, off: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """Model-averaged P(adequate) (n, 2); with ``z`` (2, m) Thompson draws for one request."""
        d, w = self.d, (sig(self.evidence) if self.a.guard else 1.0)
        out = []
        for k in range(2):
            m, c = self.mean[k * d : (k + 1) * d], self.cov[k * d : (k + 1) * d, k * d : (k + 1) * d]
            mu = off[..., k] + phi @ m
            if z is not None:
                mu = mu + np.sqrt(max(float(phi @ c @ phi), 0.0)) * z[k]
            out.append(w * sig(mu) + (1 - w) * sig(off[..., k]))
        return np.stack(out, -1)

    def score(self, phi: np.ndarray, off: np.ndarray) -> np.ndarray:
        if self.a.learner == "gain-dr":
            return 0.5 + (sig(off[..., 1]) - sig(off[..., 0]) + phi @ self.g_mean) / 2
        p = self.probs(phi, off)
        return (1 + p[..., 1] - p[..., 0]) / 2

    def off_greedy(self, phi: np.ndarray, off: np.ndarray, threshold: float) -> float:
        """Probability that a Thompson draw's choice differs from the greedy one."""
        if self.a.learner == "gain-dr":
            sd = np.sqrt(max(float(phi @ self.g_cov @ phi), 0.0))
            s = float(self.score(phi, off))
            return float(np.mean(((s + sd * _NODES / 2) > threshold) != (s > threshold)))
        d = self.d
        c = self.cov
        vl, vr = float(phi @ c[:d, :d] @ phi), float(phi @ c[d:, d:] @ phi)
        rho = float(np.clip(phi @ c[:d, d:] @ phi / np.sqrt(max(vl * vr, 1e-300)), -1, 1))
        z = np.stack((_ZL, rho * _ZL + np.sqrt(max(1 - rho**2, 0.0)) * _ZR))
        p = self.probs(phi, off, z)
        greedy = float(self.score(phi, off)) > threshold
        return float(np.mean(((1 + p[:, 1] - p[:, 0]) / 2 > threshold) != greedy))

    def choose(self, phi: np.ndarray, off: np.ndarray, threshold: float, cap: float, u: float) -> tuple[int, float]:
        """Pool (0 light, 1 reasoning) and its propensity: greedy, off-greedy with probability e."""
        greedy = int(float(self.score(phi, off)) > threshold)
        e = {"none": 0.0, "flat": cap}.get(self.a.explore)
        if e is None:
            e = min(self.off_greedy(phi, off, threshold), cap)
        return (1 - greedy, e) if u < e else (greedy, 1 - e)

    def apply(self, events: list[tuple]) -> None:
        """Forget toward the prior, then learn from (phi, off, pool, y, propensity, weight) events."""
        keep = 0.5 ** (len(events) / self.half_life)
        prec = np.linalg.inv(self.cov)
        prec = keep * prec + (1 - keep) * self.prior_prec
        self.mean = np.linalg.solve(prec, keep * (np.linalg.inv(self.cov) @ self.mean))
        self.cov, self.evidence = np.linalg.inv(prec), keep * self.evidence
        d = self.d
        for phi, off, pool, y, prop, weight in events:
            if self.a.ips_clip > 0:
                weight *= min(1.0 / prop, self.a.ips_clip)
            if self.a.learner == "gain-dr":
                self._gain_step(phi, off, pool, y, prop, weight)
            psi = np.zeros(2 * d)
            psi[pool * d : (pool + 1) * d] = phi
            a = off[pool] + psi @ self.mean
            p, p0 = float(sig(a)), float(sig(off[pool]))
            p1, p0 = min(max(p, 1e-6), 1 - 1e-6), min(max(p0, 1e-6), 1 - 1e-6)
            self.evidence += y * np.log(p1 / p0) + (1 - y) * np.log((1 - p1) / (1 - p0))
            lam = weight * max(p * (1 - p), 1e-6)
            s = self.cov @ psi
            self.cov = self.cov - np.outer(s, s) * (lam / (1 + lam * psi @ s))
            self.mean = self.mean + self.cov @ psi * (weight * (y - p))
        if np.isfinite(self.a.evidence_cap):
            self._cap()
        self.cov = 0.5 * (self.cov + self.cov.T)

    def _gain_step(self, phi, off, pool, y, prop, weight) -> None:
        """Doubly-robust pseudo-outcome of the gain, regressed on phi (inverse-variance weighted)."""
        p = self.probs(phi, off)
        sign = 1.0 if pool == 1 else -1.0
        target = p[1] - p[0] + sign * (y - p[pool]) / max(prop, 0.05)
        target -= sig(off[1]) - sig(off[0])
        noise = 0.25 / max(prop, 0.05) / weight
        s = self.g_cov @ phi
        self.g_cov = self.g_cov - np.outer(s, s) / (noise + phi @ s)
        self.g_mean = self.g_mean + self.g_cov @ phi * (target - phi @ self.g_mean) / noise

    def _cap(self) -> None:
        """Clip the data's precision to ``evidence_cap`` events (Fisher 1/4 each) in every direction."""
        data = np.linalg.inv(self.cov) - self.prior_prec
        vals, vecs = np.linalg.eigh(0.5 * (data + data.T))
        vals = np.clip(vals, 0.0, 0.25 * self.a.evidence_cap)
        self.cov = np.linalg.inv(self.prior_prec + (vecs * vals) @ vecs.T)
