"""Cross-validation of the packaged router's recipe across domains: leave-one-file-out and leave-subjects-out.

Folds, over the labelled files the packaged default is trained on (``build_default_router.TRAINING_FILES``):
- ``file:<name>``: train on every other file, test on this one (a new domain and a new pair of models);
- ``subjects:<name>:<k>``: a file with five or more domains (MMLU subjects) is split into ``--folds``
  groups of whole subjects; train on the other files plus the other subjects, test on the held-out ones;
- ``domain:<name>:<d>``: a file with two to four domains holds each one out the same way.

The ``domain`` column is used only for these splits. Each fold reports APGR and CPT(50%) of the router,
prompt length, random (mean over ``--random-seeds`` shuffles) and the oracle. The three held-out sets the
router is judged on have proxies here: ``domain:zeroeval_math_crux:math`` (GSM8K), ``file:arena_chat``
(MT-Bench) and the mean of the ``subjects:mmlu_dev`` folds (unseen MMLU subjects). ``--within-file`` uses
random rows of each file instead: the same learner on domains it has seen, its in-domain ceiling.

Usage: .venv/bin/python benchmarks/router_cv.py [--folds 5] [--length-prior X] [--within-file] [--out F]
(run from any directory; the last line of output is the JSON report)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from build_default_router import TRAINING_FILES

from frontier.routing.artifact import load_artifact
from frontier.routing.datasets import load_groups, load_outcomes
from frontier.routing.evaluation import quality_curve
from frontier.routing.scorer import featurize_prompts, score_from_probabilities
from frontier.routing.training import TRANSFER_SETTINGS, train_scorer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "routellm" / "mmlu_dev.csv"
SUBJECT_FOLDS_FROM = 5  # domains in a file from which whole-subject folds replace one fold per domain
PROXIES = {"gsm8k": "domain:zeroeval_math_crux:math", "mt_bench": "file:arena_chat", "mmlu_unseen": "subjects:mmlu_dev"}


def group_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per row: groups shuffled with ``seed`` and dealt round-robin to folds."""
    names = sorted(set(groups))
    np.random.default_rng(seed).shuffle(names)
    fold_of = {name: i % folds for i, name in enumerate(names)}
    return np.array([fold_of[g] for g in groups])


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The labelled file, its outcome and grouping columns, and the number of leave-groups-out folds."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--light-col", default="mistralai/Mixtral-8x7B-Instruct-v0.1")
    parser.add_argument("--reasoning-col", default="gpt-4-1106-preview")
    parser.add_argument("--group-col", default="domain")
    parser.add_argument("--folds", type=int, default=5)


def subject_folds(groups: np.ndarray, light: np.ndarray, reasoning: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``group_folds`` with the first seed from ``seed`` whose every fold has a reasoning pool better than the
    light one (APGR is undefined otherwise; MMLU-Pro's Gemini Pro is worse than Flash on math and chemistry)."""
    for s in range(seed, seed + 1000):
        fold = group_folds(groups, folds, s)
        if all(reasoning[fold == k].mean() > light[fold == k].mean() for k in range(folds)):
            return fold
    raise ValueError("no subject split gives every fold a better reasoning pool")


def splits(names: list[str], groups: list[np.ndarray], labels: list[tuple[np.ndarray, np.ndarray]],
           folds: int, seed: int, within: bool = False) -> Iterator[tuple[str, list[np.ndarray]]]:
    """(fold name, per-file test masks); a fold trains on every row of every file outside its test mask.

    ``within``: random rows of each file instead (its domains are seen in training): the in-domain ceiling.
    """
    sizes = [len(g) for g in groups]
    for i, name in enumerate(names):
        if within:
            fold = np.random.default_rng(seed).permutation(sizes[i]) % folds
            for k in range(folds):
                yield f"rows:{name}:{k}", [fold == k if j == i else np.zeros(n, bool) for j, n in enumerate(sizes)]
            continue
        yield f"file:{name}", [np.full(n, j == i) for j, n in enumerate(sizes)]
        domains = sorted(set(groups[i]))
        if len(domains) >= SUBJECT_FOLDS_FROM:
            fold = subject_folds(groups[i], *labels[i], folds, seed)
            held = [(f"subjects:{name}:{k}", fold == k) for k in range(folds)]
        elif len(domains) > 1:
            held = [(f"domain:{name}:{d}", groups[i] == d) for d in domains]
        else:
            held = []
        for fold_name, mask in held:
            yield fold_name, [mask if j == i else np.zeros(n, bool) for j, n in enumerate(sizes)]


def metrics(scores: np.ndarray, light: np.ndarray, reasoning: np.ndarray) -> dict[str, float]:
    curve = quality_curve(scores, light, reasoning)
    return {"apgr": curve.apgr(), "cpt_50": curve.cpt(0.5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5, help="whole-subject folds per file with many subjects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-seeds", type=int, default=5)
    parser.add_argument("--router", default=None, help="artifact whose embedder to use (default: packaged)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as JSON here")
    parser.add_argument("--length-prior", type=float, default=TRANSFER_SETTINGS.length_prior,
                        help="length prior to cross-validate (default: the packaged default's)")
    parser.add_argument("--within-file", action="store_true",
                        help="random-row folds inside each file instead (seen domains: the in-domain ceiling)")
    args = parser.parse_args()

    featurizer = load_artifact(args.router).scorer.featurizer
    names, xs, labels, groups, lengths = [], [], [], [], []
    for name, f in TRAINING_FILES.items():
        outcomes = load_outcomes(f.path, f.light_cols, f.reasoning_cols)
        names.append(name)
        xs.append(featurize_prompts(featurizer, outcomes.prompts))
        labels.append((outcomes.light, outcomes.reasoning))
        groups.append(load_groups(f.path, "domain"))
        lengths.append(np.array([len(p) for p in outcomes.prompts], dtype=np.float64))
    source = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    x = np.concatenate(xs)
    light, reasoning = (np.concatenate(a) for a in zip(*labels))
    settings = dataclasses.replace(TRANSFER_SETTINGS, length_prior=args.length_prior)
    rows = []
    for fold_name, masks in splits(names, groups, labels, args.folds, args.seed, args.within_file):
        test = np.concatenate(masks)
        trained = train_scorer(x[~test], light[~test], reasoning[~test], settings, source[~test])
        lt, rt = light[test], reasoning[test]
        rng = np.random.default_rng(args.seed)
        randoms = [metrics(rng.permutation(lt.size).astype(float), lt, rt) for _ in range(args.random_seeds)]
        row = {
            "fold": fold_name,
            "rows": int(test.sum()),
            "router": metrics(score_from_probabilities(trained.params.probabilities(x[test])), lt, rt),
            "prompt_length": metrics(np.concatenate(lengths)[test], lt, rt),
            "random": {m: float(np.mean([r[m] for r in randoms])) for m in ("apgr", "cpt_50")},
            "oracle": metrics(rt - lt, lt, rt),
        }
        row["router_at_least_baselines"] = row["router"]["apgr"] >= max(row["prompt_length"]["apgr"],
                                                                          row["random"]["apgr"])
        rows.append(row)
        print(f"{fold_name:45s} {row['rows']:6d} rows | APGR router {row['router']['apgr']:.3f} length "
              f"{row['prompt_length']['apgr']:.3f} random {row['random']['apgr']:.3f} oracle "
              f"{row['oracle']['apgr']:.3f} | CPT(50%) router {row['router']['cpt_50']:.3f}", flush=True)
    mean = {name: {m: float(np.mean([r[name][m] for r in rows])) for m in ("apgr", "cpt_50")}
            for name in ("router", "prompt_length", "random", "oracle")}
    proxies = {}
    for proxy, prefix in PROXIES.items():
        chosen = [r for r in rows if r["fold"] == prefix or r["fold"].startswith(prefix + ":")]
        if chosen:
            proxies[proxy] = {name: float(np.mean([r[name]["apgr"] for r in chosen]))
                              for name in ("router", "prompt_length", "random")}
    report = {
        "mean_apgr": {name: m["apgr"] for name, m in mean.items()},
        "mean_cpt_50": {name: m["cpt_50"] for name, m in mean.items()},
        "proxies_apgr": proxies,
        "folds_below_a_baseline": [r["fold"] for r in rows if not r["router_at_least_baselines"]],
        "settings": {k: v for k, v in vars(settings).items() if k != "priors"},
        "per_fold": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
