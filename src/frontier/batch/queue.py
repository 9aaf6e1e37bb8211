"""Batches in Redis: creation, the task stream and its consumer group, results written once, finalization.

A batch's valid lines are entries of one Redis Stream read by the consumer group ``batch``. A line's result
is written by one Lua script that stores it only if the line has none yet (HSETNX), counts it (HINCRBY) only
then, acknowledges and deletes the entry, and queues the batch for finalization when its last line is done:
a line processed twice (a reclaimed entry whose first worker was only slow) still has one result. Entries
of a worker that died are reclaimed by others with XAUTOCLAIM after ``batch.claim_idle_s``; live workers
keep their claims fresh. Finalization seals a batch's results as it reads them: a line that ends after that
(one running when its batch was cancelled) is dropped, so the files and the counts agree.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from frontier.batch.files import FileStore
from frontier.batch.lines import ParsedInput, error_line, result_field
from frontier.config import BatchConfig
from frontier.errors import FrontierError
from frontier.feedback.keys import BATCH_GROUP, Keys

TIMES = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at")
ACTIVE = ("validating", "in_progress")

RECORD = """
local new = 0
local status = redis.call('HGET', KEYS[1], 'status')
-- Once finalization has read a batch's results (sealed), they are what its files hold: a late line is dropped.
if (status == 'in_progress' or status == 'finalizing' or status == 'cancelling')
    and redis.call('HEXISTS', KEYS[1], 'sealed') == 0 then
  new = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
end
if new == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
  if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'expired', '1') end
end
if ARGV[4] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[8], ARGV[4])
  redis.call('XDEL', KEYS[3], ARGV[4])
end
if new == 1 then
  local v = redis.call('HMGET', KEYS[1], 'status', 'total', 'completed', 'failed')
  if v[1] == 'in_progress' and tonumber(v[3]) + tonumber(v[4]) >= tonumber(v[2]) then
    redis.call('HSET', KEYS[1], 'status', 'finalizing', 'finalizing_at', ARGV[6])
    redis.call('SADD', KEYS[4], ARGV[5])
  end
end
return new
"""

SEAL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'finalizing' and status ~= 'cancelling' then return false end
redis.call('HSET', KEYS[1], 'sealed', '1')
return redis.call('HVALS', KEYS[2])
"""

CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'in_progress' or status == 'validating' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelling_at', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[1])
  return 'cancelling'
end
return status
"""


@dataclass(frozen=True)
class Task:
    """One claimed line: its stream entry, batch, line number, custom_id and place in the input file."""

    entry: str
    batch_id: str
    index: int
    custom_id: str
    offset: int
    length: int

    @classmethod
    def from_entry(cls, entry: str, fields: dict[bytes, bytes]) -> "Task":
        f = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(entry, f["b"], int(f["i"]), f["c"], int(f["o"]), int(f["n"]))


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def batch_object(batch_id: str, state: dict[str, str]) -> dict[str, Any]:
    """The OpenAI ``batch`` object of a stored batch."""
    spec = json.loads(state["spec"])
    body: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": spec["endpoint"],
        "errors": None,
        "input_file_id": spec["input_file_id"],
        "completion_window": spec["completion_window"],
        "status": state.get("status", "in_progress"),
        "output_file_id": state.get("output_file_id"),
        "error_file_id": state.get("error_file_id"),
        "created_at": spec["created_at"],
        "expires_at": spec["expires_at"],
        "request_counts": {
            "total": int(state.get("total", 0)),
            "completed": int(state.get("completed", 0)),
            "failed": int(state.get("failed", 0)),
        },
        "metadata": spec.get("metadata"),
    }
    body.update({name: int(state[name]) if name in state else None for name in TIMES})
    return body


class BatchQueue:
    """The batches of all keys and the task stream, on one Redis."""

    def __init__(self, client: redis.Redis, keys: Keys, config: BatchConfig) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self._record = client.register_script(RECORD)
        self._cancel = client.register_script(CANCEL)
        self._seal = client.register_script(SEAL)

    # -- creation and reading (request path) --------------------------------------------------------------

    def create(self, spec: dict[str, Any], parsed: ParsedInput, owner: str) -> dict[str, Any]:
        """Store a batch and queue its valid lines, all in one transaction; invalid lines are its first results."""
        batch_id = f"batch_{secrets.token_hex(12)}"
        now = int(time.time())
        state = {"spec": json.dumps(spec), "status": "in_progress", "in_progress_at": str(now),
                 "total": str(parsed.total), "completed": "0", "failed": str(len(parsed.errors))}  # fmt: skip
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.batch(batch_id), mapping=state)
        for e in parsed.errors:
            line = json.dumps(error_line(e.custom_id, e.code, f"line {e.index + 1}: {e.message}"))
            pipe.hset(self.keys.batch_results(batch_id), result_field(e.custom_id, e.index), f"e|{e.index}|{line}")
        pipe.zadd(self.keys.batches_of(owner), {batch_id: time.time()})
        for t in parsed.tasks:
            pipe.xadd(self.keys.batch_tasks, {"b": batch_id, "i": t.index, "c": t.custom_id, "o": t.offset, "n": t.length})
        pipe.execute()
        return batch_object(batch_id, state)

    def state(self, batch_id: str) -> dict[str, str]:
        """The stored fields of a batch ({} if there is none)."""
        return _text(self.client.hgetall(self.keys.batch(batch_id)))

    def owned(self, batch_id: str, owner: str) -> dict[str, str]:
        """The state of ``owner``'s batch; 404 for a missing batch or another key's."""
        state = self.state(batch_id) if batch_id.startswith("batch_") else {}
        if "spec" not in state or json.loads(state["spec"])["owner"]["name"] != owner:
            raise FrontierError(404, f"no such batch: {batch_id}", param="batch_id", code="batch_not_found")
        return state

    def get(self, batch_id: str, owner: str) -> dict[str, Any]:
        return batch_object(batch_id, self.owned(batch_id, owner))

    def list(self, owner: str, after: str | None, limit: int) -> dict[str, Any]:
        """``owner``'s batches, newest first, ``limit`` of them after the batch ``after``."""
        index = self.keys.batches_of(owner)
        start = 0
        if after is not None:
            rank = self.client.zrevrank(index, after)
            if rank is None:
                raise FrontierError(404, f"no such batch: {after}", param="after", code="batch_not_found")
            start = rank + 1
        ids = [i.decode() for i in self.client.zrevrange(index, start, start + limit)]
        data = [batch_object(i, s) for i in ids[:limit] if (s := self.state(i))]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": len(ids) > limit}  # fmt: skip

    def cancel(self, batch_id: str, owner: str) -> dict[str, Any]:
        """Stop a batch: ``cancelling`` until its files are written, then ``cancelled``; 409 once it has ended."""
        self.owned(batch_id, owner)
        status = self._cancel(keys=[self.keys.batch(batch_id), self.keys.batch_finalize], args=[batch_id, int(time.time())])
        if status.decode() not in ("cancelling", "cancelled"):
            raise FrontierError(409, f"batch {batch_id} is {status.decode()} and cannot be cancelled", code="batch_not_active")
        return self.get(batch_id, owner)

    # -- the task stream (workers) -----------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (and stream) if missing, from the start: lines queued before it count."""
        try:
            self.client.xgroup_create(self.keys.batch_tasks, BATCH_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def claim(self, consumer: str, count: int, block_ms: int, cursor: str = "0-0") -> tuple[list[Task], str]:
        """Up to ``count`` lines: reclaimed stale ones first, then new ones; and the next reclaim cursor."""
        cursor, entries, *_ = self.client.xautoclaim(
            self.keys.batch_tasks, BATCH_GROUP, consumer, int(self.config.claim_idle_s * 1000), cursor, count=count
        )
        tasks = [Task.from_entry(e.decode(), f) for e, f in entries if f]
        if len(tasks) < count:
            fresh = self.client.xreadgroup(
                BATCH_GROUP, consumer, {self.keys.batch_tasks: ">"}, count=count - len(tasks), block=block_ms
            )
            for _, stream_entries in fresh or []:
                tasks.extend(Task.from_entry(e.decode(), f) for e, f in stream_entries if f)
        return tasks, cursor.decode() if isinstance(cursor, bytes) else cursor

    def touch(self, consumer: str, entries: list[str]) -> None:
        """Keep the claims of lines still in progress fresh, so they are not reclaimed."""
        if entries:
            self.client.xclaim(self.keys.batch_tasks, BATCH_GROUP, consumer, 0, entries, justid=True)

    def discard(self, task: Task) -> None:
        """Drop a line of a batch that no longer runs (cancelled)."""
        self.client.xack(self.keys.batch_tasks, BATCH_GROUP, task.entry)
        self.client.xdel(self.keys.batch_tasks, task.entry)

    def record(self, batch_id: str, field: str, index: int, line: dict[str, Any], ok: bool,
               entry: str = "", expired: bool = False) -> bool:  # fmt: skip
        """Write a line's result once (False if it had one) and acknowledge its entry; atomic."""
        written = self._record(
            keys=[self.keys.batch(batch_id), self.keys.batch_results(batch_id), self.keys.batch_tasks, self.keys.batch_finalize],
            args=[field, f"{'o' if ok else 'e'}|{index}|{json.dumps(line)}", "completed" if ok else "failed", entry,
                  batch_id, int(time.time()), "1" if expired else "", BATCH_GROUP],
        )  # fmt: skip
        return bool(written)

    def backlog(self) -> int:
        """Lines queued or in progress, over all batches."""
        return int(self.client.xlen(self.keys.batch_tasks))

    def stats(self) -> dict[str, float]:
        """Lines waiting for a worker and claimed by one (all replicas), and the age of the oldest unfinished line."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.keys.batch_tasks)
        pipe.xpending(self.keys.batch_tasks, BATCH_GROUP)
        pipe.xrange(self.keys.batch_tasks, count=1)
        length, pending, oldest = pipe.execute()
        claimed = int(pending["pending"])
        lag = time.time() - int(oldest[0][0].split(b"-")[0]) / 1000 if oldest else 0.0
        return {"queued": length - claimed, "claimed": claimed, "lag_s": max(0.0, lag)}

    # -- finalization --------------------------------------------------------------------------------------

    def finalize_pending(self, files: FileStore) -> list[str]:
        """Write the files of every batch waiting for them; the batches finalized."""
        done = []
        for raw in self.client.smembers(self.keys.batch_finalize):
            batch_id = raw.decode()
            self.finalize(batch_id, files)
            done.append(batch_id)
        return done

    def finalize(self, batch_id: str, files: FileStore) -> None:
        """Write a batch's output and error files (ordered by line) and end it. Idempotent: the file ids are
        the batch's, so a finalization cut short and redone writes the same files."""
        results = self._seal(keys=[self.keys.batch(batch_id), self.keys.batch_results(batch_id)])
        if results is None:
            self.client.srem(self.keys.batch_finalize, batch_id)
            return
        state = self.state(batch_id)
        status = state["status"]
        owner = json.loads(state["spec"])["owner"]["name"]
        lines: dict[str, list[tuple[int, bytes]]] = {"o": [], "e": []}
        for value in results:
            kind, index, line = value.split(b"|", 2)
            lines[kind.decode()].append((int(index), line))
        update: dict[str, str] = {}
        for kind, name, field in (("o", "output", "output_file_id"), ("e", "errors", "error_file_id")):
            if lines[kind]:
                data = b"".join(line + b"\n" for _, line in sorted(lines[kind]))
                file_id = f"file-{batch_id.removeprefix('batch_')}-{name}"
                files.create(data, f"{batch_id}_{name}.jsonl", "batch_output", owner, file_id=file_id)
                update[field] = file_id
        final = "cancelled" if status == "cancelling" else "expired" if state.get("expired") else "completed"
        update.update({"status": final, f"{final}_at": str(int(time.time()))})
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.batch(batch_id), mapping=update)
        pipe.srem(self.keys.batch_finalize, batch_id)
        pipe.delete(self.keys.batch_results(batch_id))  # in the files now; Redis keeps only running batches' results
        pipe.execute()
