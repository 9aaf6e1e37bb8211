"""Router artifacts: a small versioned directory with safetensors weights and JSON metadata.

Layout: ``router.json`` (format, version, feature version, training data hash, calibration, score
quantiles, SHA-256 of every other file), ``heads.safetensors`` (the scorer's arrays),
``embedding.safetensors`` and ``tokenizer.json`` (the static embedder). Nothing is ever unpickled;
every file is checked against its recorded hash and shape before use.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from frontier.routing.datasets import file_sha256
from frontier.routing.embedding import EMBEDDING_FILE, TOKENIZER_FILE, StaticEmbedder
from frontier.routing.scorer import FEATURE_VERSION, STRUCTURAL_FEATURES, Featurizer, Scorer, ScorerParams

ARTIFACT_FORMAT = "frontier-router"
FORMAT_VERSION = 1
METADATA_FILE = "router.json"
HEADS_FILE = "heads.safetensors"
HASHED_FILES = (HEADS_FILE, EMBEDDING_FILE, TOKENIZER_FILE)
PARAM_NAMES = ("mean", "scale", "weights", "bias", "calibration")
DEFAULT_ARTIFACT = Path(__file__).resolve().parent.parent / "artifacts" / "default-router"


class ArtifactError(ValueError):
    """A router artifact that is missing, corrupt, or made for other code."""


@dataclass(frozen=True)
class RouterArtifact:
    """A loaded router: the scorer plus the metadata that goes with it."""

    scorer: Scorer
    score_quantiles: np.ndarray
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        """The artifact's version string (name and content hash)."""
        return str(self.metadata["version"])

    def threshold_for_share(self, share: float) -> float:
        """Score threshold that sends a ``share`` of calibration traffic to the reasoning pool.

        The ends are exact for any traffic: 0 sends nothing (scores never exceed 1), 1 sends everything.
        """
        if share <= 0.0:
            return 1.0
        if share >= 1.0:
            return 0.0
        quantiles = self.score_quantiles
        return float(np.interp(1.0 - share, np.linspace(0.0, 1.0, quantiles.shape[0]), quantiles))


def save_artifact(
    directory: str | Path,
    embedder: StaticEmbedder,
    params: ScorerParams,
    score_quantiles: np.ndarray,
    training: dict[str, Any],
    name: str = "router",
) -> Path:
    """Write an artifact; its version is ``name`` plus a hash of its weights and embedder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    embedder.save(directory)
    save_file({k: np.ascontiguousarray(getattr(params, k), dtype=np.float64) for k in PARAM_NAMES},
              str(directory / HEADS_FILE))
    hashes = {f: file_sha256(directory / f) for f in HASHED_FILES}
    metadata = {
        "format": ARTIFACT_FORMAT,
        "format_version": FORMAT_VERSION,
        "version": f"{name}-{hashes[HEADS_FILE][:10]}",
        "feature_version": FEATURE_VERSION,
        "structural_features": list(STRUCTURAL_FEATURES),
        "embedding": {"dim": embedder.dim, "vocab_size": int(embedder.vectors.shape[0]),
                      "max_tokens": embedder.max_tokens, "source": "sentence-transformers/all-MiniLM-L6-v2"},
        "feature_dim": int(params.mean.shape[0]),
        "heads": ["light", "reasoning"],
        "calibration": {"method": "platt", "light": list(params.calibration[0]),
                        "reasoning": list(params.calibration[1])},
        "score": "(1 + p_reasoning - p_light) / 2",
        "score_quantiles": [float(q) for q in score_quantiles],
        "training": {"created_unix": int(time.time()), **training},
        "files": hashes,
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    return directory


def _read_metadata(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise ArtifactError(f"router artifact {directory}: not a directory")
    path = directory / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"router artifact {directory}: missing {METADATA_FILE}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"router artifact {directory}: {METADATA_FILE} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"router artifact {directory}: {METADATA_FILE} is not a {ARTIFACT_FORMAT} artifact")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"router artifact {directory}: format version {metadata.get('format_version')!r}, "
            f"this Frontier reads {FORMAT_VERSION}"
        )
    if metadata.get("feature_version") != FEATURE_VERSION:
        raise ArtifactError(
            f"router artifact {directory}: built for features {metadata.get('feature_version')!r}, this Frontier "
            f"computes {FEATURE_VERSION!r}; retrain it with `frontier train`"
        )
    return metadata


def _check_files(directory: Path, metadata: dict[str, Any]) -> None:
    recorded = metadata.get("files")
    if not isinstance(recorded, dict) or set(recorded) != set(HASHED_FILES):
        raise ArtifactError(f"router artifact {directory}: {METADATA_FILE} must list hashes of {list(HASHED_FILES)}")
    for name in HASHED_FILES:
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"router artifact {directory}: missing {name}")
        if file_sha256(path) != recorded[name]:
            raise ArtifactError(f"router artifact {directory}: {name} is corrupt (SHA-256 differs from {METADATA_FILE})")


def load_artifact(directory: str | Path | None = None) -> RouterArtifact:
    """Load and verify an artifact; ``None`` loads the packaged default."""
    directory = Path(directory) if directory is not None else DEFAULT_ARTIFACT
    metadata = _read_metadata(directory)
    _check_files(directory, metadata)
    try:
        embedder = StaticEmbedder.load(directory, max_tokens=int(metadata["embedding"]["max_tokens"]))
        tensors = load_file(str(directory / HEADS_FILE))
        missing = set(PARAM_NAMES) - set(tensors)
        if missing:
            raise ArtifactError(f"router artifact {directory}: {HEADS_FILE} lacks {sorted(missing)}")
        params = ScorerParams(**{k: tensors[k] for k in PARAM_NAMES})
        scorer = Scorer(Featurizer(embedder), params)
        quantiles = np.asarray(metadata["score_quantiles"], dtype=np.float64)
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, SafetensorError, OSError) as exc:
        raise ArtifactError(f"router artifact {directory}: unusable: {exc}") from exc
    if metadata.get("feature_dim") != params.mean.shape[0]:
        raise ArtifactError(
            f"router artifact {directory}: metadata says {metadata.get('feature_dim')} features, heads have "
            f"{params.mean.shape[0]}"
        )
    if quantiles.ndim != 1 or quantiles.shape[0] < 2 or np.any(np.diff(quantiles) < 0):
        raise ArtifactError(f"router artifact {directory}: score_quantiles must be a non-decreasing list")
    return RouterArtifact(scorer=scorer, score_quantiles=quantiles, metadata=metadata)
