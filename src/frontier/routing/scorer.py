"""The learned scorer: request features -> feature vector -> calibrated per-pool success probabilities.

Two logistic heads over one feature vector (a static MiniLM embedding plus structural signals) estimate
the probability that the light and the reasoning pool answer adequately. The routing score is the
expected quality gain of the reasoning pool mapped to [0, 1]: ``(1 + p_reasoning - p_light) / 2``, so
0.5 means "no expected gain". The parameters are plain arrays so an online learner can update them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from frontier.routing.embedding import StaticEmbedder
from frontier.routing.features import RequestFeatures, features_from_prompt, first_chars

FEATURE_VERSION = "minilm-static-mean/struct-v3"
STRUCTURAL_FEATURES = (
    "log_tokens",
    "extra_user_turns",
    "has_tools",
    "code_markers",
    "math_markers",
    "digit_share",
    "reasoning_intent",
    "tokens_per_word",
    "negation_rate",
    "symbol_share",
    "mean_word_length",
    "log_chars",
)
HEADS = ("light", "reasoning")
_DIGIT_RE = re.compile(r"\d")
_WORD_RE = re.compile(r"\w+")
_SYMBOL_RE = re.compile(r"[^\w\s]")
NEGATION_PATTERN = r"\b(?:not|except|false|incorrect|least|never|cannot|no)\b"
_NEGATION_RE = re.compile(first_chars("nefilc", NEGATION_PATTERN), re.IGNORECASE)
# Text statistics look at the end of long conversations only, like the embedding.
STATS_CHARS = 4096


def structural_vector(features: RequestFeatures, num_tokens: int) -> np.ndarray:
    """Cheap, bounded structural signals of a request, in the order of ``STRUCTURAL_FEATURES``.

    Besides the conversation's shape, generic text-complexity statistics: subword fragmentation (rare
    and technical words split into more tokens), negations, symbols and word length. ``log_chars`` is the
    whole conversation's length, uncapped (``log_tokens`` stops at the embedder's window): the one signal
    that transfers across every labelled domain, so training gives it a length prior.
    """
    text = features.text[-STATS_CHARS:]
    words = _WORD_RE.findall(text)
    num_words = max(len(words), 1)
    chars = max(len(text), 1)
    return np.array(
        [
            math.log1p(num_tokens),
            math.log1p(max(features.num_user_turns - 1, 0)),
            float(features.has_tools),
            math.sqrt(min(features.code_markers, 16)) / 4,
            math.sqrt(min(features.math_markers, 16)) / 4,
            len(_DIGIT_RE.findall(text)) / chars,
            float(features.reasoning_intent),
            num_tokens / num_words if words else 0.0,
            10.0 * len(_NEGATION_RE.findall(text)) / num_words,
            len(_SYMBOL_RE.findall(text)) / chars,
            sum(map(len, words)) / num_words,
            math.log1p(features.prompt_chars),
        ],
        dtype=np.float32,
    )


class Featurizer:
    """Turns request features into the scorer's input vector: [embedding, structural signals]."""

    def __init__(self, embedder: StaticEmbedder) -> None:
        self.embedder = embedder

    @property
    def dim(self) -> int:
        """Length of a feature vector."""
        return self.embedder.dim + len(STRUCTURAL_FEATURES)

    @property
    def names(self) -> list[str]:
        """Name of each feature vector entry."""
        return [f"emb_{i}" for i in range(self.embedder.dim)] + list(STRUCTURAL_FEATURES)

    def featurize(self, features: RequestFeatures) -> np.ndarray:
        """The feature vector of one request."""
        embedded = self.embedder.embed(features.text)
        return np.concatenate((embedded.vector, structural_vector(features, embedded.num_tokens)))

    def featurize_many(self, features: list[RequestFeatures]) -> np.ndarray:
        """Feature vectors (n, dim) of many requests."""
        vectors, counts = self.embedder.embed_many([f.text for f in features])
        structural = np.zeros((len(features), len(STRUCTURAL_FEATURES)), dtype=np.float32)
        for i, (f, n) in enumerate(zip(features, counts)):
            structural[i] = structural_vector(f, int(n))
        return np.hstack((vectors, structural))


@dataclass(frozen=True)
class ScorerParams:
    """Parameters of the two heads; row 0 is the light pool, row 1 the reasoning pool.

    ``logit = calibration[:, 0] * (weights @ ((x - mean) / scale) + bias) + calibration[:, 1]``
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    calibration: np.ndarray = field(default_factory=lambda: np.array([[1.0, 0.0], [1.0, 0.0]]))

    def __post_init__(self) -> None:
        dim = self.mean.shape[0]
        expected = {"scale": (dim,), "weights": (2, dim), "bias": (2,), "calibration": (2, 2)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"scorer parameter {name!r} has shape {getattr(self, name).shape}, expected {shape}")

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Calibrated logits (..., 2) of feature vectors (..., dim)."""
        raw = ((x - self.mean) / self.scale) @ self.weights.T + self.bias
        return raw * self.calibration[:, 0] + self.calibration[:, 1]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated success probabilities (..., 2): light, reasoning."""
        return 1.0 / (1.0 + np.exp(-self.logits(x)))


def score_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Routing score in [0, 1] from (..., 2) probabilities: 0.5 + expected gain of reasoning / 2."""
    return (1.0 + probabilities[..., 1] - probabilities[..., 0]) / 2.0


class Scorer:
    """Featurizer plus heads: the whole learned part of the router."""

    def __init__(self, featurizer: Featurizer, params: ScorerParams) -> None:
        if params.mean.shape[0] != featurizer.dim:
            raise ValueError(f"scorer expects {params.mean.shape[0]} features, the featurizer makes {featurizer.dim}")
        self.featurizer = featurizer
        self.params = params

    def featurize(self, features: RequestFeatures) -> np.ndarray:
        """The feature vector of one request (what the online learner sees)."""
        return self.featurizer.featurize(features)

    def probabilities(self, features: RequestFeatures) -> tuple[float, float]:
        """Calibrated probabilities that the light and the reasoning pool answer adequately."""
        p = self.params.probabilities(self.featurize(features))
        return float(p[0]), float(p[1])

    def score(self, features: RequestFeatures) -> float:
        """Routing score in [0, 1] of one request."""
        return float(score_from_probabilities(self.params.probabilities(self.featurize(features))))

    def score_many(self, features: list[RequestFeatures]) -> np.ndarray:
        """Routing scores of many requests."""
        return score_from_probabilities(self.params.probabilities(self.featurizer.featurize_many(features)))


def featurize_prompts(featurizer: Featurizer, prompts: list[str], chunk: int = 1024) -> np.ndarray:
    """Feature vectors of single-turn prompts, with a progress bar."""
    parts = [np.zeros((0, featurizer.dim), dtype=np.float32)]
    for start in tqdm(range(0, len(prompts), chunk), desc="featurizing", unit="chunk", leave=False):
        parts.append(featurizer.featurize_many([features_from_prompt(p) for p in prompts[start : start + chunk]]))
    return np.concatenate(parts)


def score_prompts(scorer: Scorer, prompts: list[str]) -> np.ndarray:
    """Routing scores of single-turn prompts, with a progress bar."""
    return score_from_probabilities(scorer.params.probabilities(featurize_prompts(scorer.featurizer, prompts)))
