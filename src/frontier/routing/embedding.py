"""Static text embeddings distilled from all-MiniLM-L6-v2: a tokenizer plus one vector per token.

Serving needs only ``tokenizers`` and numpy: a prompt's embedding is the normalised mean of its tokens'
vectors, which takes well under a millisecond on one thread. The vectors are distilled offline from the
transformer (see ``benchmarks/build_default_router.py``) and stored int8-quantised in safetensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

EMBEDDING_FILE = "embedding.safetensors"
TOKENIZER_FILE = "tokenizer.json"
# Characters kept from the end of a long conversation before tokenising: bounds the cost of huge prompts
# (about 8 characters per token is generous for English and code).
CHARS_PER_TOKEN_BOUND = 8


@dataclass(frozen=True)
class EmbeddedText:
    """A text's embedding and the number of tokens it was built from (after truncation)."""

    vector: np.ndarray
    num_tokens: int


class StaticEmbedder:
    """Mean of per-token static vectors over the last ``max_tokens`` tokens of a text."""

    def __init__(self, tokenizer: Tokenizer, vectors: np.ndarray, max_tokens: int = 512) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != tokenizer.get_vocab_size():
            raise ValueError(
                f"embedding table {vectors.shape} does not match the tokenizer's vocabulary "
                f"({tokenizer.get_vocab_size()} tokens)"
            )
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.max_tokens = max_tokens

    @property
    def dim(self) -> int:
        """Length of an embedding."""
        return int(self.vectors.shape[1])

    def token_ids(self, text: str) -> list[int]:
        """Token ids of the end of ``text`` (no special tokens), at most ``max_tokens`` of them."""
        clipped = text[-self.max_tokens * CHARS_PER_TOKEN_BOUND :]
        ids = self.tokenizer.encode(clipped, add_special_tokens=False).ids
        return ids[-self.max_tokens :]

    def embed(self, text: str) -> EmbeddedText:
        """The unit-norm embedding of one text (zeros for an empty one)."""
        return self._pool(self.token_ids(text))

    def embed_many(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (n, dim) and token counts (n,) of many texts, tokenised in parallel."""
        clipped = [t[-self.max_tokens * CHARS_PER_TOKEN_BOUND :] for t in texts]
        encodings = self.tokenizer.encode_batch(clipped, add_special_tokens=False)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.int64)
        for i, encoding in enumerate(encodings):
            pooled = self._pool(encoding.ids[-self.max_tokens :])
            out[i] = pooled.vector
            counts[i] = pooled.num_tokens
        return out, counts

    def _pool(self, ids: list[int]) -> EmbeddedText:
        if not ids:
            return EmbeddedText(np.zeros(self.dim, dtype=np.float32), 0)
        # ``mean`` and ``linalg.norm`` compute exactly this, through several Python layers each.
        mean = np.add.reduce(self.vectors.take(ids, axis=0), axis=0) / np.float32(len(ids))
        norm = float(np.sqrt(mean @ mean))
        return EmbeddedText(mean / norm if norm > 0 else mean, len(ids))

    def save(self, directory: Path) -> None:
        """Write the tokenizer and the int8-quantised table (per-row scales) into ``directory``."""
        scales = np.abs(self.vectors).max(axis=1) / 127.0
        scales[scales == 0] = 1.0
        quantised = np.round(self.vectors / scales[:, None]).astype(np.int8)
        save_file(
            {"vectors": quantised, "scales": scales.astype(np.float32)},
            str(directory / EMBEDDING_FILE),
            metadata={"format": "int8-rowscale"},
        )
        (directory / TOKENIZER_FILE).write_text(self.tokenizer.to_str())

    @classmethod
    def load(cls, directory: Path, max_tokens: int = 512) -> StaticEmbedder:
        """Read what ``save`` wrote."""
        tensors = load_file(str(directory / EMBEDDING_FILE))
        if set(tensors) != {"vectors", "scales"} or tensors["vectors"].dtype != np.int8:
            raise ValueError(f"{directory / EMBEDDING_FILE}: expected int8 'vectors' and float32 'scales'")
        vectors = tensors["vectors"].astype(np.float32) * tensors["scales"][:, None]
        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        return cls(tokenizer, vectors, max_tokens=max_tokens)
