"""``frontier replay``: learn online from bandit feedback on part of a labelled file, score the rest."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from frontier.cli.outcome_args import add_outcome_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="replay a labelled CSV through the online learner (bandit feedback) and score a held-out tail"
    )
    add_outcome_arguments(parser)
    parser.add_argument("--learn-fraction", type=float, default=0.5, help="share of shuffled rows to learn from")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (exploration uses feedback.explore_seed)")
    parser.add_argument("--scores-out", required=True, help="CSV to write the tail's `row`,`score` to")
    parser.add_argument("--router", help="trained router artifact directory (default: the config's, else the packaged one)")
    parser.add_argument("--config", help="Frontier config (its router, redis and feedback sections are used)")
    parser.add_argument(
        "--learn-share", type=float, default=0.5, help="reasoning share the cost controller holds while learning"
    )
    parser.add_argument(
        "--live", metavar="URL",
        help="drive a running server through its public API instead of simulating (its own knob applies)",
    )  # fmt: skip
    parser.add_argument("--api-key", default=os.environ.get("FRONTIER_API_KEY"),
                        help="API key for --live (default: $FRONTIER_API_KEY)")  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from frontier.config import ConfigError, load_config
    from frontier.feedback.redis_server import EmbeddedRedis, configured_url, connect
    from frontier.feedback.replay import replay
    from frontier.routing.artifact import ArtifactError
    from frontier.routing.datasets import DataError, load_outcomes
    from frontier.routing.features import features_from_prompt
    from frontier.routing.policies import build_router

    if not 0.0 < args.learn_fraction < 1.0 or not 0.0 <= args.learn_share <= 1.0:
        print("frontier replay: --learn-fraction must be in (0, 1) and --learn-share in [0, 1]", file=sys.stderr)
        return 2
    if args.live:
        return run_live(args)
    try:
        config = load_config(args.config)
        # The server's router, with the learning share as the operator's knob (the controller holds it).
        overrides = {"reasoning_share": args.learn_share, "price_weight": None}
        if args.router:
            overrides["artifact"] = args.router
        config = config.model_copy(update={"router": config.router.model_copy(update=overrides)})
        router = build_router(config)
        outcomes = load_outcomes(args.data, args.light_col, args.reasoning_col)
    except (ConfigError, ArtifactError, DataError, ValueError) as exc:
        print(f"frontier replay: {exc}", file=sys.stderr)
        return 2
    if router.feature_map is None:
        print(f"frontier replay: router.policy {config.router.policy!r} does not learn", file=sys.stderr)
        return 2
    requests = [features_from_prompt(p) for p in outcomes.prompts]
    n_learn = int(round(len(requests) * args.learn_fraction))

    url = configured_url(config.redis)
    with tempfile.TemporaryDirectory(prefix="frontier-replay-") as tmp:
        embedded = EmbeddedRedis(Path(tmp) / "redis", appendfsync=config.redis.appendfsync) if url is None else None
        if embedded is not None:
            url = embedded.start()
        try:
            with tqdm(total=n_learn, desc="learning", unit="req") as bar:
                result = replay(
                    connect(url, max(config.redis.socket_timeout_s, 2.0)),
                    config.feedback,
                    router,
                    requests,
                    outcomes.light,
                    outcomes.reasoning,
                    learn_fraction=args.learn_fraction,
                    seed=args.seed,
                    progress=lambda _: bar.update(1),
                )
        finally:
            if embedded is not None:
                embedded.stop()

    scores_out = _write_scores(args.scores_out, result.tail_rows, result.tail_scores)
    png = scores_out.with_name(scores_out.stem + "-learning.png")
    _plot(result, png)
    print(f"wrote {scores_out} and {png}", file=sys.stderr)
    extra = {"router": router.name, "feature_map": router.feature_map.fingerprint, "scores_out": str(scores_out),
             "learning_curve_png": str(png)}  # fmt: skip
    print(json.dumps({**result.metrics, **extra}))
    return 0


def run_live(args: argparse.Namespace) -> int:
    """The same experiment through a running server's API (``frontier.cli.replay_live``)."""
    import httpx
    from tqdm import tqdm

    from frontier.cli.replay_live import LiveReplay, LiveReplayError, replay_live
    from frontier.routing.datasets import DataError, load_outcomes

    try:
        outcomes = load_outcomes(args.data, args.light_col, args.reasoning_col)
    except DataError as exc:
        print(f"frontier replay: {exc}", file=sys.stderr)
        return 2
    client = LiveReplay(args.live, args.api_key)
    n = len(outcomes.prompts)
    # A cold pass over the tail, the learning rows, then the tail again (plus any re-asked rows).
    with tqdm(total=n + (n - int(round(n * args.learn_fraction))), desc="live replay", unit="req") as bar:
        try:
            rows, scores, metrics = replay_live(
                client, outcomes.prompts, outcomes.light, outcomes.reasoning, args.learn_fraction, args.seed,
                progress=lambda: bar.update(1),
            )  # fmt: skip
        except (LiveReplayError, httpx.HTTPError) as exc:
            print(f"frontier replay: {exc}", file=sys.stderr)
            return 1
        finally:
            client.close()
    scores_out = _write_scores(args.scores_out, rows, scores)
    print(f"wrote {scores_out}", file=sys.stderr)
    print(json.dumps({**metrics, "live": args.live, "scores_out": str(scores_out)}))
    return 0


def _write_scores(path: str, rows: np.ndarray, scores: np.ndarray) -> Path:
    """The tail's ``row,score`` CSV in row order (an empty score: the server refused that row)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    order = np.argsort(rows)
    with out.open("w") as fh:
        fh.write("row,score\n")
        for row, score in zip(rows[order], scores[order]):
            fh.write(f"{int(row)},{'' if np.isnan(score) else f'{float(score):.6f}'}\n")
    return out


def _plot(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [c[0] for c in result.curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(events, [c[1] for c in result.curve], marker="o", label="tail APGR (online)")
    offline = float(result.metrics["offline_tail_apgr"])
    ax.axhline(offline, color="gray", linestyle="--", label="tail APGR (offline artifact)")
    ax.set_xlabel("feedback events (learning requests)")
    ax.set_ylabel("APGR on the held-out tail")
    share_ax = ax.twinx()
    shares = [c[2] for c in result.curve]
    share_ax.plot(events, shares, color="tab:red", alpha=0.6, label="reasoning share while learning")
    share_ax.set_ylabel("reasoning share while learning")
    share_ax.set_ylim(0, 1)
    lines = ax.get_legend_handles_labels()[0] + share_ax.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + share_ax.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="lower right")
    ax.set_title("frontier replay: learning from bandit feedback")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
