"""The feedback consumer: reads the stream in a consumer group and applies events to the online model.

Each batch is committed in ONE MULTI/EXEC under WATCH of the model hash: new statistics, XACK, XDEL of
the applied entries, the version bump and its pub/sub announcement. A crash before EXEC leaves the
entries pending (reclaimed by XAUTOCLAIM once idle); a racing consumer's commit aborts ours (WATCH),
and since applied entries are deleted in the same transaction, an entry that still exists has not been
applied: every acked event is applied exactly once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import redis

from frontier.config import FeedbackConfig
from frontier.feedback.decision_log import decode_features, decode_offsets
from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.ope_log import append_applied
from frontier.feedback.queue import ensure_group
from frontier.feedback.worker import Worker
from frontier.routing.online import Event, LearningLimits, OnlineState, Posterior, apply_batch, feedback_targets
from frontier.routing.types import POOLS

logger = logging.getLogger("frontier.feedback.consumer")

Entry = tuple[bytes, dict[bytes, bytes] | None]


def encode_state(state: OnlineState, version: int) -> dict[str, bytes | str | int]:
    """The ``P:online`` hash fields of a state."""
    fields: dict[str, bytes | str | int] = {
        "fm": state.feature_map,
        "dim": state.dim,
        "version": version,
        "mean": state.posterior.mean.astype(np.float64).tobytes(),
        "cov": state.posterior.cov.astype(np.float64).tobytes(),
        "evidence": repr(state.evidence),
        "applied": state.applied,
        "stale": state.stale,
        "updated_at": repr(state.updated_at),
        "keys": json.dumps(dict(state.key_weights)),
        "capped": state.capped,
    }
    for pool in POOLS:
        fields[f"{pool}:n"] = state.counts[pool]
        fields[f"{pool}:ysum"] = repr(state.target_sums[pool])
    return fields


def decode_state(raw: dict[bytes, bytes]) -> tuple[OnlineState, int]:
    """State and version from the ``P:online`` hash."""
    size = 2 * int(raw[b"dim"])
    posterior = Posterior(
        np.frombuffer(raw[b"mean"], dtype=np.float64), np.frombuffer(raw[b"cov"], dtype=np.float64).reshape(size, size)
    )
    state = OnlineState(
        raw[b"fm"].decode(),
        posterior,
        {pool: int(raw[f"{pool}:n".encode()]) for pool in POOLS},
        {pool: float(raw[f"{pool}:ysum".encode()]) for pool in POOLS},
        evidence=float(raw[b"evidence"]),
        applied=int(raw[b"applied"]),
        stale=int(raw[b"stale"]),
        updated_at=float(raw[b"updated_at"]),
        key_weights=json.loads(raw.get(b"keys", b"{}")),
        capped=int(raw.get(b"capped", 0)),
    )
    return state, int(raw[b"version"])


def prior(config: FeedbackConfig, dim: int) -> Posterior:
    """The configured prior of the online residuals over ``dim`` features per pool."""
    return Posterior.prior(dim, config.prior_variance, config.prior_correlation, config.prior_bias_variance)


def limits(config: FeedbackConfig) -> LearningLimits:
    """The configured per-key quota and evidence cap of the online statistics."""
    return LearningLimits(config.key_quota_events, config.evidence_cap_events)


UNUSABLE = Event(np.zeros(0), {}, {}, feature_map="")


def decode_event(fields: dict[bytes, bytes]) -> Event:
    """An event from a stream entry; one that cannot be decoded matches no feature map (dropped as stale)."""
    try:
        kind, value, pool = (fields[k].decode() for k in (b"kind", b"value", b"pool"))
        return Event(
            decode_features(fields[b"x"]),
            decode_offsets(fields[b"o"]),
            feedback_targets(kind, value, pool),
            fields[b"fm"].decode(),
            fields.get(b"key", b"").decode(),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return UNUSABLE


def ensure_state(client: redis.Redis, keys: Keys, feature_map: str, dim: int, config: FeedbackConfig) -> int:
    """Create the online model at the prior if absent, or reset it if it was built for another feature map.

    Returns the current version.
    """
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(keys.online)
                raw = pipe.hgetall(keys.online)
                if raw and raw[b"fm"].decode() == feature_map and int(raw[b"dim"]) == dim:
                    return int(raw[b"version"])
                version = int(raw[b"version"]) + 1 if raw else int(pipe.get(keys.version) or 0) + 1
                pipe.multi()
                pipe.delete(keys.online, keys.served, keys.candidate, keys.ope)
                initial = OnlineState.initial(feature_map, prior(config, dim), time.time())
                pipe.hset(keys.online, mapping=encode_state(initial, version))
                pipe.set(keys.version, version)
                pipe.publish(keys.channel, version)
                pipe.execute()
                return version
            except redis.WatchError:
                continue


class FeedbackConsumer:
    """One member of the ``online`` consumer group; connects lazily (on its first read).

    ``feature_map`` (fingerprint, dimension) lets it recreate the online model when the hash is missing
    (a Redis restarted empty, keys deleted); without it a missing model is an error. ``backlog`` and
    ``lag_s`` (events not yet applied, age of the oldest) are measured after each batch. After each batch
    it runs the promotion gate, judging at ``gate_threshold`` (the router's) unless the cost controller
    has published one.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        config: FeedbackConfig,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        feature_map: tuple[str, int] | None = None,
        gate_threshold: float = 0.5,
    ) -> None:
        self.client = client
        self.gate_threshold = gate_threshold
        self.keys = keys
        self.config = config
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.clock = clock
        self.feature_map = feature_map
        self.backlog: int | None = None
        self.lag_s: float | None = None
        self._next_reclaim = 0.0
        self._prepared = False
        self._own_pending = True

    def prepare(self) -> None:
        """Create the consumer group (and the online model, given a feature map) if missing."""
        ensure_group(self.client, self.keys)
        if self.feature_map is not None:
            ensure_state(self.client, self.keys, *self.feature_map, self.config)
        self.serve()
        self._prepared = True

    def serve(self) -> None:
        """Run the promotion gate: what the replicas route on (``P:served``, see ``feedback/versions.py``)."""
        from frontier.feedback.versions import gate  # versions builds on this module's state codec

        verdict = gate(self.client, self.keys, self.config, self.gate_threshold, self.clock)
        if verdict is not None and not verdict.promote:
            logger.info("feedback consumer: a candidate estimated worse than the served state was not promoted: %s",
                        verdict.comparison)  # fmt: skip

    def restart(self) -> None:
        """Start over after a failure: prepare again and first re-read this consumer's own pending entries."""
        self._prepared = False
        self._own_pending = True
        self.prepare()

    def read(self, block_ms: int | None = None) -> list[Entry]:
        """Entries to work on: this consumer's own pending ones after a (re)start, then idle pending ones of
        any consumer (periodically), else new ones. NOGROUP (group or stream gone) recreates the group."""
        if not self._prepared:
            self.prepare()
        try:
            return self._read(block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            logger.warning("feedback consumer: the consumer group is gone (%s); recreating it", exc)
            self.restart()
            return self._read(block_ms)

    def _read(self, block_ms: int | None) -> list[Entry]:
        if self._own_pending:
            reply = self.client.xreadgroup(
                GROUP, self.name, {self.keys.stream: "0"}, count=self.config.consumer_batch
            )
            entries = reply[0][1] if reply else []
            if entries:
                return entries
            self._own_pending = False
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + self.config.reclaim_idle_s / 2
            min_idle_ms = int(self.config.reclaim_idle_s * 1000)
            reply = self.client.xautoclaim(
                self.keys.stream, GROUP, self.name, min_idle_ms, "0-0", count=self.config.consumer_batch
            )
            claimed = reply[1]
            if claimed:
                self._next_reclaim = now  # there may be more
                return claimed
        reply = self.client.xreadgroup(
            GROUP,
            self.name,
            {self.keys.stream: ">"},
            count=self.config.consumer_batch,
            block=self.config.consumer_block_ms if block_ms is None else block_ms,
        )
        return reply[0][1] if reply else []

    def apply(self, entries: Sequence[Entry]) -> int:
        """Apply entries in one transaction; returns how many were applied (0: all already applied)."""
        if not entries:
            return 0
        ids = [entry_id for entry_id, _ in entries]
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.keys.online)
                    raw = pipe.hgetall(self.keys.online)
                    if not raw:
                        pipe.unwatch()
                        self._recreate_state()
                        continue
                    state, version = decode_state(raw)
                    live = self._still_unapplied(entries)
                    new_state = apply_batch(
                        state, [decode_event(fields) for fields in live], self.clock(), prior(self.config, state.dim),
                        self.config.half_life_events, self.config.half_life_s, limits(self.config),
                    )  # fmt: skip
                    self._before_commit(len(live))
                    pipe.multi()
                    if live:
                        pipe.hset(self.keys.online, mapping=encode_state(new_state, version + 1))
                        pipe.set(self.keys.version, version + 1)
                        pipe.publish(self.keys.channel, version + 1)
                        append_applied(
                            pipe, self.keys, live, version + 1, state.feature_map, state.dim, self.config.ope_log_size
                        )
                    pipe.xack(self.keys.stream, GROUP, *ids)
                    pipe.xdel(self.keys.stream, *ids)
                    pipe.execute()
                    if live:
                        self.serve()
                    return len(live)
                except redis.WatchError:
                    continue

    def _recreate_state(self) -> None:
        if self.feature_map is None:
            raise RuntimeError("online model missing and no feature map to recreate it: call ensure_state() first")
        logger.warning("feedback consumer: the online model is gone; recreating it at the prior")
        ensure_state(self.client, self.keys, *self.feature_map, self.config)

    def _still_unapplied(self, entries: Sequence[Entry]) -> list[dict[bytes, bytes]]:
        """Fields of the entries that still exist (i.e. no committed batch has applied them)."""
        pipe = self.client.pipeline(transaction=False)
        for entry_id, fields in entries:
            pipe.xrange(self.keys.stream, entry_id, entry_id, count=1)
        found = pipe.execute()
        return [hit[0][1] for hit, (_, fields) in zip(found, entries) if hit and fields]

    def _before_commit(self, n: int) -> None:
        """Hook between computing a batch and committing it (tests use it to crash there)."""

    def measure(self) -> None:
        """Update ``backlog`` (entries not yet applied) and ``lag_s`` (age of the oldest of them)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.keys.stream)
        pipe.xrange(self.keys.stream, count=1)
        backlog, oldest = pipe.execute()
        self.backlog = int(backlog)
        self.lag_s = max(0.0, self.clock() - int(oldest[0][0].split(b"-")[0]) / 1000) if oldest else 0.0

    def step(self, block_ms: int | None = None) -> int:
        """Read one batch and apply it; returns the number of events applied."""
        return self.apply(self.read(block_ms))

    def supervised_step(self) -> None:
        self.step()
        self.measure()

    def worker(self, **options: Any) -> Worker:
        """This consumer as a supervised worker: restarted (group and state recreated) after any error."""
        return Worker("feedback-consumer", self.supervised_step, setup=self.restart, **options)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, riding out every Redis fault."""
        self.worker().run(stop)


def main(argv: list[str] | None = None) -> int:
    """Run a standalone consumer: ``python -m frontier.feedback.consumer --url redis://...``."""
    from frontier.feedback.redis_server import connect

    parser = argparse.ArgumentParser(description="Frontier feedback consumer")
    parser.add_argument("--url", required=True, help="Redis URL")
    parser.add_argument("--prefix", default="frontier", help="Redis key prefix")
    parser.add_argument("--name", help="consumer name (default host-pid)")
    parser.add_argument("--batch", type=int, default=256, help="events per transaction")
    parser.add_argument("--reclaim-idle-s", type=float, default=30.0, help="reclaim pending events idle this long")
    args = parser.parse_args(argv)
    config = FeedbackConfig(consumer_batch=args.batch, reclaim_idle_s=args.reclaim_idle_s, consumer_block_ms=200)
    consumer = FeedbackConsumer(connect(args.url, 5.0), Keys(args.prefix), config, name=args.name)
    stop = threading.Event()
    try:
        consumer.run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
