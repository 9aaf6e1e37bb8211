"""The request path's Redis writes, committed in groups.

A routed request writes its decision log entry and its conversation's pool before it answers. Each write goes
through ``GroupCommit``: while one pipelined round trip is in flight, the writes of other requests wait and go
together in the next one. A lone request pays one round trip and one thread hop, as before; under load a replica
pays them once for many requests. Every write keeps its own fail-open guard: a Redis error (or a guard in its
cool-down) makes that write report False, and never raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from frontier.redis_guard import REDIS_ERRORS, FailOpen


@dataclass(frozen=True)
class Write:
    """One command for ``client``, queued on its pipeline by ``stage``; its errors count against ``guard``."""

    client: redis.Redis
    guard: FailOpen
    stage: Callable[[Pipeline], object]


class GroupCommit:
    """Commits ``Write``s from many requests of one event loop, one pipelined round trip per client at a time."""

    def __init__(self) -> None:
        self._pending: list[tuple[Write, asyncio.Future[bool]]] = []
        self._drain: asyncio.Task | None = None

    async def commit(self, writes: Sequence[Write]) -> list[bool]:
        """Whether each write reached Redis (False: a Redis error, or its guard is cooling down)."""
        loop = asyncio.get_running_loop()
        results: list[asyncio.Future[bool] | bool] = []
        for write in writes:
            if write.guard.skip():
                results.append(False)
                continue
            future = loop.create_future()
            self._pending.append((write, future))
            results.append(future)
        if self._pending and self._drain is None:
            self._drain = loop.create_task(self._drain_pending())
        # Shielded: a cancelled request still has its writes committed, and the next group is not held up.
        return [r if isinstance(r, bool) else await asyncio.shield(r) for r in results]

    async def _drain_pending(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    done = await asyncio.to_thread(execute, [write for write, _ in group])
                except BaseException as exc:  # not a Redis error: a bug in a stage; its requests see it
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), ok in zip(group, done, strict=True):
                    if not future.done():
                        future.set_result(ok)
        finally:
            self._drain = None


def execute(writes: Sequence[Write]) -> list[bool]:
    """Blocking: one pipeline (no transaction) per client; whether each write succeeded."""
    done = [False] * len(writes)
    by_client: dict[int, list[int]] = {}
    for i, write in enumerate(writes):
        by_client.setdefault(id(write.client), []).append(i)
    for indexes in by_client.values():
        pipe = writes[indexes[0]].client.pipeline(transaction=False)
        for i in indexes:
            writes[i].stage(pipe)
        try:
            replies = pipe.execute(raise_on_error=False)
        except REDIS_ERRORS as exc:
            for i in indexes:
                writes[i].guard.failed(exc)
            continue
        for i, reply in zip(indexes, replies, strict=True):
            if isinstance(reply, Exception):
                writes[i].guard.failed(reply)
            else:
                done[i] = True
    return done
