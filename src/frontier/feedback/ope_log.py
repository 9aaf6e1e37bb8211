"""The off-policy evaluation log ``P:ope``: each applied feedback event's decision, propensity and reward.

The consumer pushes the records in the MULTI/EXEC that applies their events, so the log holds exactly the
applied events (capped, oldest dropped first), each tagged with the learner version that first contains
it: a state frozen at version ``V`` has learned from none of the records tagged above ``V``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import redis

from frontier.feedback.decision_log import decode_features, decode_offsets
from frontier.feedback.keys import Keys
from frontier.routing.online import feedback_targets
from frontier.routing.ope import LoggedDecisions
from frontier.routing.promotion import LoggedEvents
from frontier.routing.types import POOLS, Pool

# version, propensity, reward, pool index; then the offline logits (float32 x 2) and the features (float16).
_HEAD = struct.Struct("<qddB")
_OFFSETS_BYTES = 8


def encode_record(fields: dict[bytes, bytes], version: int) -> bytes | None:
    """The record of one applied stream entry, or None if it cannot be evaluated (no propensity, unknown pool)."""
    try:
        pool = Pool(fields[b"pool"].decode())
        prop = float(fields[b"prop"])
        reward = feedback_targets(fields[b"kind"].decode(), fields[b"value"].decode(), pool).get(pool)
        offsets = fields[b"o"]
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    if reward is None or not 0.0 < prop <= 1.0 or len(offsets) != _OFFSETS_BYTES:
        return None
    return _HEAD.pack(version, prop, float(reward), POOLS.index(pool)) + offsets + fields[b"x"]


def append_applied(
    pipe: redis.client.Pipeline,
    keys: Keys,
    applied: Sequence[dict[bytes, bytes]],
    version: int,
    feature_map: str,
    dim: int,
    cap: int,
) -> None:
    """Queue (inside the consumer's MULTI) the records of the entries a batch applies into ``version``.

    Only entries learned from (this feature map and dimension) are evaluation data."""
    records = [
        record
        for fields in applied
        if fields.get(b"fm", b"").decode(errors="replace") == feature_map
        and len(fields.get(b"x", b"")) == 2 * dim
        and (record := encode_record(fields, version)) is not None
    ]
    if records:
        pipe.rpush(keys.ope, *records)
        pipe.ltrim(keys.ope, -cap, -1)


def decode_records(raw: Sequence[bytes], dim: int | None = None) -> LoggedEvents:
    """Records as arrays; with ``dim``, records of another feature dimension are left out."""
    rows = []
    for record in raw:
        version, prop, reward, pool = _HEAD.unpack_from(record)
        body = record[_HEAD.size :]
        phi = decode_features(body[_OFFSETS_BYTES:])
        if dim is None or len(phi) == dim:
            offsets = decode_offsets(body[:_OFFSETS_BYTES])
            rows.append((version, prop, reward, pool, phi, [offsets[p] for p in POOLS]))
    if not rows:
        empty = np.zeros(0)
        return LoggedEvents(np.zeros((0, dim or 0)), np.zeros((0, 2)), LoggedDecisions(empty.astype(bool), empty, empty), empty.astype(np.int64))
    version, prop, reward, pool, phi, offsets = zip(*rows, strict=True)
    decisions = LoggedDecisions(np.array(pool) == POOLS.index(Pool.REASONING), np.array(prop), np.array(reward))
    return LoggedEvents(np.stack(phi), np.array(offsets, dtype=np.float64), decisions, np.array(version, dtype=np.int64))


def read_events(client: redis.Redis, keys: Keys, dim: int | None = None) -> LoggedEvents:
    """Every logged applied event (oldest first)."""
    return decode_records(client.lrange(keys.ope, 0, -1), dim)
