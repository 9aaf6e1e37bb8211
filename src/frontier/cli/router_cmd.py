"""``frontier router``: evaluate the online policy off-policy, list its served versions, roll back, reset.

Each command reaches the config's Redis: ``redis.url`` (or ``FRONTIER_REDIS_URL``), else the embedded
server that a running ``frontier serve`` keeps under ``redis.data_dir``, else it starts that embedded
server itself for the command. The last line of output is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("router", help="evaluate, list, roll back or reset the online routing policy")
    sub = parser.add_subparsers(dest="router_command", required=True, metavar="ACTION")
    evaluate = sub.add_parser(
        "evaluate",
        help="estimate (IPS, SNIPS, doubly robust) the served policy and a candidate from the logged feedback",
    )
    evaluate.add_argument(
        "--version",
        type=int,
        help="a recorded version to judge (default: the learner's pending candidate, the next the gate judges)",
    )
    evaluate.add_argument(
        "--all-events",
        action="store_true",
        help="judge on every logged event, including those the candidate learned from (biased in its favour)",
    )
    versions = sub.add_parser("versions", help="list the served versions (newest first) and the gate's last verdict")
    rollback = sub.add_parser("rollback", help="serve a recorded version again and continue learning from it")
    rollback.add_argument("version", type=int, help="a version listed by `frontier router versions`")
    reset = sub.add_parser("reset", help="return the online state to the prior: route on the offline artifact")
    for command, handler in ((evaluate, _evaluate), (versions, _versions), (rollback, _rollback), (reset, _reset)):
        command.add_argument("--config", help="Frontier config (its redis, router and feedback sections are used)")
        command.set_defaults(handler=handler)


def _fail(message: str) -> int:
    print(f"frontier router: {message}", file=sys.stderr)
    return 2


@contextmanager
def _redis(config) -> Iterator[redis.Redis]:
    from frontier.feedback.redis_server import EmbeddedRedis, configured_url, connect, running_url

    url = configured_url(config.redis)
    embedded = None
    if url is None:
        url = running_url(config.redis.data_dir)
        if url is None:
            embedded = EmbeddedRedis(
                config.redis.data_dir, appendfsync=config.redis.appendfsync, maxmemory_mb=config.redis.maxmemory_mb
            )
            url = embedded.start()
    client = connect(url, max(config.redis.socket_timeout_s, 2.0))
    try:
        yield client
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


def _run(args: argparse.Namespace, action) -> int:
    """Load the config, connect, run ``action(config, client, keys)`` (its dict is the JSON line)."""
    from frontier.config import ConfigError, load_config
    from frontier.feedback.keys import Keys
    from frontier.feedback.redis_server import RedisStartError
    from frontier.feedback.versions import VersionError

    try:
        config = load_config(args.config)
        with _redis(config) as client:
            result = action(config, client, Keys(config.redis.key_prefix))
    except (ConfigError, VersionError, RedisStartError, ValueError) as exc:
        return _fail(str(exc))
    except redis.RedisError as exc:
        return _fail(f"Redis is unavailable: {type(exc).__name__}: {exc}")
    print(json.dumps(result))
    return 0


def _router(config):
    from frontier.routing.policies import build_router

    return build_router(config)


def _router_threshold(config) -> float:
    """The router's own threshold at the operator's knob (the gate uses the controller's when published)."""
    from frontier.routing.types import StatsSnapshot

    router = _router(config)
    return router.threshold(router.rule.operator_knob, StatsSnapshot(), 0)


def _evaluate(args: argparse.Namespace) -> int:
    from frontier.feedback.ope_log import read_events
    from frontier.feedback.versions import VersionError, finite, judging_threshold, params, stored_state, version_of
    from frontier.routing.promotion import judge

    def action(config, client, keys) -> dict[str, Any]:
        served = client.hgetall(keys.served)
        if not served:
            raise VersionError("nothing is served yet: no feedback has been applied")
        candidate = stored_state(client, keys, args.version) if args.version is not None else client.hgetall(keys.candidate)
        if not candidate:
            raise VersionError("there is no pending candidate; give --version")
        events = read_events(client, keys, int(served[b"dim"]))
        if not args.all_events:
            events = events.after(version_of(candidate))
        threshold = judging_threshold(client, keys, _router_threshold(config))
        verdict = judge(events, params(candidate), params(served), threshold)
        for name, est in (("served", verdict.served), ("candidate", verdict.candidate)):
            print(f"{name:9s} IPS {est.ips:+.4f}  SNIPS {est.snips:+.4f}  DR {est.dr:+.4f} ± {est.dr_stderr:.4f}"
                  f"  ({est.matched}/{est.n} events match its choice)")  # fmt: skip
        c = verdict.comparison
        print(f"candidate - served (DR, paired): {c.difference:+.4f} ± {c.stderr:.4f} on {c.n} events: "
              f"{'not worse' if verdict.promote else 'worse'}")  # fmt: skip
        return finite({
            "served_version": version_of(served), "candidate_version": version_of(candidate),
            "events": len(events), **verdict.as_dict(),
        })  # fmt: skip

    return _run(args, action)


def _versions(args: argparse.Namespace) -> int:
    from frontier.feedback.versions import status

    def action(config, client, keys) -> dict[str, Any]:
        info = status(client, keys)
        print(f"served {info['served']}, learner {info['learner']}, pending candidate {info['candidate']}, "
              f"{info['logged_events']} logged events")  # fmt: skip
        for entry in info["versions"]:
            diff = (entry.get("estimate") or {}).get("comparison") or {}
            judged = f"  DR diff {diff['difference']:+.4f} on {diff['n']} events" if diff else ""
            mark = "*" if entry["version"] == info["served"] else " "
            print(f"{mark} {entry['version']:>8}  {entry['source']:8s}  at {entry['at']:.0f}{judged}")
        return info

    return _run(args, action)


def _rollback(args: argparse.Namespace) -> int:
    from frontier.feedback.versions import rollback

    def action(config, client, keys) -> dict[str, Any]:
        learner = rollback(client, keys, config.feedback, args.version)
        print(f"serving version {args.version}; learning continues from it as version {learner}")
        return {"served": args.version, "learner": learner}

    return _run(args, action)


def _reset(args: argparse.Namespace) -> int:
    from frontier.feedback.versions import reset

    def action(config, client, keys) -> dict[str, Any]:
        feature_map = _router(config).feature_map
        fm = (feature_map.fingerprint, feature_map.dim) if feature_map is not None else None
        version = reset(client, keys, config.feedback, fm)
        print(f"online state reset to the prior (the offline artifact) as version {version}")
        return {"served": version, "learner": version}

    return _run(args, action)
