"""Served versions of the online policy: the promotion gate, the version history, rollback and reset.

The consumer learns into ``P:online`` (the learner); router replicas route on ``P:served``. Every
``feedback.gate_events`` applied events, the learner's state frozen at the start of the window
(``P:candidate``, version ``V``) is judged against the served state on the events applied after ``V``
(neither learned from them: no in-sample bias), with ``routing.promotion.judge``. Not worse: it is served
and recorded in ``P:versions``. Either way the learner's current state becomes the next candidate.
Rollback serves a recorded version again and restarts learning from it; reset returns all three states
to the prior (the offline artifact). Each is one MULTI/EXEC under WATCH of the learner's hash, so a
consumer batch computed on the old state aborts and is recomputed on the new one.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import redis

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import decode_state, encode_state, prior
from frontier.feedback.keys import Keys
from frontier.feedback.ope_log import read_events
from frontier.routing.online import OnlineState
from frontier.routing.promotion import Verdict, judge
from frontier.routing.router import OnlineParams

Raw = dict[bytes, bytes]


class VersionError(ValueError):
    """A rollback or reset that cannot be done (unknown version, another feature map, no state)."""


def finite(value: Any) -> Any:
    """``value`` with non-finite floats as None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    return value


def params(raw: Raw) -> OnlineParams:
    """The online parameters of a stored state."""
    state, _ = decode_state(raw)
    return OnlineParams(state.posterior, state.evidence)


def version_of(raw: Raw) -> int:
    return int(raw[b"version"])


def _raw(fields: Mapping[str, bytes | str | int]) -> Raw:
    return {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()}


def _with_version(raw: Raw, version: int) -> Raw:
    return {**raw, b"version": str(version).encode()}


def _replace(pipe: redis.client.Pipeline, key: str, raw: Raw) -> None:
    pipe.delete(key)
    pipe.hset(key, mapping=raw)


def _serve(pipe: redis.client.Pipeline, keys: Keys, kept: int, raw: Raw, source: str, now: float, **extra: Any) -> None:
    """Queue: serve ``raw``, record it in the history, and tell the replicas."""
    _replace(pipe, keys.served, raw)
    entry = {"version": version_of(raw), "source": source, "at": now, **extra}
    entry["state"] = {k.decode(): base64.b64encode(v).decode() for k, v in raw.items()}
    pipe.lpush(keys.versions, json.dumps(finite(entry)))
    pipe.ltrim(keys.versions, 0, kept - 1)
    pipe.publish(keys.channel, version_of(raw))


def judging_threshold(client: redis.Redis, keys: Keys, fallback: float) -> float:
    """The cost controller's live threshold, else the router's own."""
    raw = client.hget(keys.ctl, "threshold")
    return float(raw) if raw is not None else fallback


_HEAD = (b"fm", b"version", b"applied")


def _head(pipe: redis.client.Pipeline, key: str) -> dict[bytes, bytes] | None:
    """A state's feature map, version and applied count without its arrays (None: no state)."""
    values = pipe.hmget(key, _HEAD)
    return None if values[0] is None else dict(zip(_HEAD, values, strict=True))


def gate(client: redis.Redis, keys: Keys, config: FeedbackConfig, threshold: float, clock=time.time) -> Verdict | None:
    """Run the promotion gate once (the consumer calls it after each committed batch); returns its verdict
    when it judged a candidate. ``threshold`` is the router's own (the controller's, when published, wins).

    With ``gate_events`` 0, or nothing served yet for the learner's feature map, the learner's state is served."""
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(keys.online, keys.served, keys.candidate)
                online, served, candidate = (_head(pipe, k) for k in (keys.online, keys.served, keys.candidate))
                if online is None:
                    pipe.unwatch()
                    return None
                fresh = served is None or served[b"fm"] != online[b"fm"]
                windowed = config.gate_events > 0 and candidate is not None and candidate[b"fm"] == online[b"fm"]
                if not fresh and windowed and int(online[b"applied"]) - int(candidate[b"applied"]) < config.gate_events:
                    pipe.unwatch()  # the window is not over
                    return None
                learner, now = pipe.hgetall(keys.online), clock()
                serve, source, verdict = None, "promoted", None
                if fresh or not config.gate_events:
                    if fresh or served[b"version"] != online[b"version"]:
                        serve, source = learner, ("initial" if fresh else "promoted")
                elif windowed and candidate[b"version"] != served[b"version"]:
                    frozen = pipe.hgetall(keys.candidate)
                    events = read_events(pipe, keys, int(learner[b"dim"])).after(version_of(frozen))
                    served_params = params(pipe.hgetall(keys.served))
                    verdict = judge(events, params(frozen), served_params, judging_threshold(pipe, keys, threshold))
                    serve = frozen if verdict.promote else None
                # Otherwise a window starts: there was no candidate, or it is the served state itself.
                pipe.multi()
                summary = finite(verdict.as_dict()) if verdict is not None else None
                if serve is not None:
                    _serve(pipe, keys, config.versions_kept, serve, source, now, estimate=summary)
                if verdict is not None:
                    pipe.hset(keys.gate, mapping={
                        "candidate": candidate[b"version"], "served": served[b"version"], "at": repr(now),
                        "promoted": int(verdict.promote), "verdict": json.dumps(summary),
                    })  # fmt: skip
                _replace(pipe, keys.candidate, learner)
                pipe.execute()
                return verdict
            except redis.WatchError:
                continue


def _int(raw: bytes | None) -> int | None:
    return int(raw) if raw is not None else None


def history(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The recorded served versions, newest first, without their states."""
    entries = [json.loads(raw) for raw in client.lrange(keys.versions, 0, -1)]
    return [{k: v for k, v in entry.items() if k != "state"} for entry in entries]


def status(client: redis.Redis, keys: Keys) -> dict[str, Any]:
    """Served and learner versions, the gate's last verdict and the history (``frontier router versions``)."""
    pipe = client.pipeline(transaction=False)
    pipe.hget(keys.served, "version")
    pipe.hget(keys.online, "version")
    pipe.hget(keys.candidate, "version")
    pipe.hgetall(keys.gate)
    pipe.llen(keys.ope)
    served, online, candidate, last_gate, logged = pipe.execute()
    gate_info = {k.decode(): v.decode() for k, v in last_gate.items()}
    if "verdict" in gate_info:
        gate_info["verdict"] = json.loads(gate_info["verdict"])
    return {
        "served": _int(served),
        "learner": _int(online),
        "candidate": _int(candidate),
        "logged_events": int(logged),
        "last_gate": gate_info or None,
        "versions": history(client, keys),
    }


def stored_state(client: redis.Redis, keys: Keys, version: int) -> Raw:
    """The state of a recorded version; VersionError if it is not kept."""
    for raw in client.lrange(keys.versions, 0, -1):
        entry = json.loads(raw)
        if entry["version"] == version:
            return {k.encode(): base64.b64decode(v) for k, v in entry["state"].items()}
    kept = sorted({e["version"] for e in history(client, keys)})
    raise VersionError(f"version {version} is not in the history (kept: {', '.join(map(str, kept)) or 'none'})")


def _install(client: redis.Redis, keys: Keys, config: FeedbackConfig, served: Raw, source: str, clock) -> int:
    """Serve ``served`` and restart learning from it under a new learner version; returns that version."""
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(keys.online)
                online = pipe.hgetall(keys.online)
                if online and online[b"fm"] != served[b"fm"]:
                    raise VersionError(
                        f"that state was learned over feature map {served[b'fm'].decode()}, the router's is "
                        f"{online[b'fm'].decode()}; use `frontier router reset`"
                    )
                learner_version = max(int(pipe.get(keys.version) or 0), int(online.get(b"version", 0))) + 1
                learner = _with_version(served, learner_version)
                pipe.multi()
                _replace(pipe, keys.online, learner)
                pipe.set(keys.version, learner_version)
                # The candidate is the served state itself: the gate skips it and starts a fresh window.
                _replace(pipe, keys.candidate, served)
                _serve(pipe, keys, config.versions_kept, served, source, clock())
                pipe.execute()
                return learner_version
            except redis.WatchError:
                continue


def rollback(client: redis.Redis, keys: Keys, config: FeedbackConfig, version: int, clock=time.time) -> int:
    """Serve recorded ``version`` again and continue learning from it; returns the new learner version."""
    return _install(client, keys, config, stored_state(client, keys, version), "rollback", clock)


def reset(
    client: redis.Redis, keys: Keys, config: FeedbackConfig, feature_map: tuple[str, int] | None = None, clock=time.time
) -> int:
    """Return the learner and the served state to the prior (the offline artifact); returns the new version.

    ``feature_map`` (fingerprint, dimension) is the router's; without it the learner's current one is kept."""
    online = client.hgetall(keys.online)
    if feature_map is None:
        if not online:
            raise VersionError("there is no online state to reset and no feature map to create one")
        feature_map = (online[b"fm"].decode(), int(online[b"dim"]))
    fm, dim = feature_map
    if online and online[b"fm"].decode() != fm:
        client.delete(keys.online)  # another artifact's state: the router would ignore it anyway
    version = max(int(client.get(keys.version) or 0), int(online.get(b"version", 0))) + 1
    initial = _raw(encode_state(OnlineState.initial(fm, prior(config, dim), clock()), version))
    return _install(client, keys, config, initial, "reset", clock)
