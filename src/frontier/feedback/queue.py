"""Feedback intake: validate, atomically check-and-claim the decision, and enqueue to a Redis Stream.

One Lua script does the whole intake, so a reply of "queued" means the event is in the stream (and in
the append-only file) and the decision is marked as having its feedback: concurrent repeats cannot
both win.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from frontier.feedback.decision_log import COMPLETION_ID_RE
from frontier.feedback.errors import (
    FeedbackBacklogFull,
    FeedbackConflict,
    FeedbackForbidden,
    FeedbackInvalid,
    FeedbackNotFound,
)
from frontier.feedback.keys import GROUP, Keys

FEEDBACK_KINDS = ("score", "rating", "preferred")

# KEYS: decision hash, stream. ARGV: cid, kind, value, key id, now, only-if-light ("1"/"0"), max backlog.
# The stream holds only unapplied events (the consumer deletes what it applies), so its length is the
# backlog: a full one refuses new feedback instead of trimming accepted feedback.
_INTAKE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'notfound' end
local d = redis.call('HMGET', KEYS[1], 'key', 'pool', 'x', 'o', 'fm', 'prop')
if d[1] and d[1] ~= '' and d[1] ~= ARGV[4] then return 'forbidden' end
if ARGV[6] == '1' and d[2] ~= 'light' then return 'skipped' end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[7]) then return 'full' end
if redis.call('HSETNX', KEYS[1], 'fb', ARGV[2]) == 0 then return 'conflict' end
return redis.call('XADD', KEYS[2], '*', 'cid', ARGV[1], 'kind', ARGV[2], 'value', ARGV[3],
                  'pool', d[2], 'prop', d[6] or '', 'x', d[3], 'o', d[4], 'fm', d[5], 'ts', ARGV[5], 'key', d[1] or '')
"""


@dataclass(frozen=True)
class FeedbackBody:
    """A validated feedback body: ``kind`` is score | rating | preferred, ``value`` its canonical text."""

    cid: str
    kind: str
    value: str


def parse_feedback(body: Any) -> FeedbackBody:
    """Validate a ``POST /v1/feedback`` body; raises FeedbackInvalid (400) naming the problem."""
    if not isinstance(body, Mapping):
        raise FeedbackInvalid("the body must be a JSON object")
    unknown = sorted(set(body) - {"id", *FEEDBACK_KINDS})
    if unknown:
        raise FeedbackInvalid(f"unknown field(s): {', '.join(map(str, unknown))}", param=str(unknown[0]))
    cid = body.get("id")
    if not isinstance(cid, str) or not COMPLETION_ID_RE.match(cid):
        raise FeedbackInvalid("'id' must be the id of a routed completion", param="id")
    given = [k for k in FEEDBACK_KINDS if k in body]
    if len(given) != 1:
        raise FeedbackInvalid("give exactly one of 'score', 'rating' or 'preferred'", param=given[1] if given else None)
    kind = given[0]
    value = body[kind]
    if kind == "score":
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not 0 <= value <= 1:
            raise FeedbackInvalid("'score' must be a number in [0, 1]", param="score")
        return FeedbackBody(cid, kind, repr(float(value)))
    allowed = ("up", "down") if kind == "rating" else ("light", "reasoning")
    if value not in allowed:
        raise FeedbackInvalid(f"'{kind}' must be one of {', '.join(allowed)}", param=kind)
    return FeedbackBody(cid, kind, value)


def ensure_group(client: redis.Redis, keys: Keys) -> None:
    """Create the stream and its consumer group if missing.

    The group starts at the beginning of the stream: every entry still in it is unapplied, so a group
    recreated after NOGROUP (stream deleted, Redis restarted empty) loses nothing that was queued."""
    try:
        client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class FeedbackQueue:
    """Claims a decision's single feedback slot and enqueues the event, atomically."""

    def __init__(
        self, client: redis.Redis, keys: Keys, clock=time.time, max_backlog: int = 100_000, retry_after_s: int = 5
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.max_backlog = max_backlog
        self.retry_after_s = retry_after_s
        self._intake = client.register_script(_INTAKE_LUA)

    def _run(self, cid: str, kind: str, value: str, key_id: str | None, only_if_light: bool) -> str:
        result = self._intake(
            keys=[self.keys.decision(cid), self.keys.stream],
            args=[cid, kind, value, key_id or "", repr(self.clock()), "1" if only_if_light else "0", self.max_backlog],
        )
        return result.decode() if isinstance(result, bytes) else str(result)

    def submit(self, body: Any, key_id: str | None = None) -> str:
        """Enqueue explicit feedback; returns the stream entry id. Raises FeedbackInvalid/NotFound/Conflict/BacklogFull."""
        fb = parse_feedback(body)
        result = self._run(fb.cid, fb.kind, fb.value, key_id, only_if_light=False)
        if result == "notfound":
            raise FeedbackNotFound(fb.cid)
        if result == "forbidden":
            raise FeedbackForbidden(fb.cid)
        if result == "conflict":
            raise FeedbackConflict(fb.cid)
        if result == "full":
            raise FeedbackBacklogFull(self.retry_after_s)
        return result

    def retry(self, retry_of: str, key_id: str | None = None) -> str | None:
        """Implicit negative feedback on an earlier *light* decision the client re-asked elsewhere.

        Returns the entry id, or None when it does not apply (unknown id, not light, already judged).
        """
        if not COMPLETION_ID_RE.match(retry_of):
            return None
        result = self._run(retry_of, "retry", "", key_id, only_if_light=True)
        return None if result in ("notfound", "forbidden", "skipped", "conflict", "full") else result
