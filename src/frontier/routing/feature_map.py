"""The online feature map: a fixed projection of the scorer's feature vector that the online model learns over.

Server and simulator get it from one function, ``online_feature_map``: the map an artifact ships
(``ONLINE_MAP_FILE``), else a seeded projection derived from the scorer's own standardiser. Both are fixed
by the artifact alone, so every replica and every replay of one artifact learns over the same features
(the fingerprint in the online state says which map a posterior belongs to).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
        # Applied in float64: one request and a batch then agree to rounding (decide vs scores).
        object.__setattr__(self, "_projection", (self.basis.T / self.out_scale).astype(np.float64))

    @property
    def dim(self) -> int:
        """Length of the online feature vector (bias included)."""
        return self.basis.shape[0] + 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Online features of one vector (1-D) or a batch (2-D, one row each)."""
        x = np.asarray(x, dtype=np.float64)
        z = ((x - self.center) / self.scale) @ self._projection
        return np.concatenate([np.ones(z.shape[:-1] + (1,)), z], axis=-1)

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



def online_feature_map(artifact_dir: str | Path | None, mean: np.ndarray, scale: np.ndarray, dim: int) -> FeatureMap:
    """THE online feature map of an artifact: the one it ships, else one derived from its standardiser
    (``mean``/``scale`` of the scorer's features) with ``dim`` outputs."""
    if artifact_dir is not None and (Path(artifact_dir) / ONLINE_MAP_FILE).is_file():
        return FeatureMap.load(Path(artifact_dir) / ONLINE_MAP_FILE)
    return FeatureMap.from_standardizer(mean, scale, dim)
