"""The request path's Redis calls on the event loop: asyncio twins of the sync clients, and grouped writes.

A ``LoopTwin`` is an asyncio client for a sync client's server (same server and timeouts): the request path
calls Redis from the event loop with it (limits, budgets, conversation lookups), with no thread hop.

A routed request writes its decision log entry and its conversation's pool before it answers. Each write goes
through ``GroupCommit``: while one pipelined round trip is in flight, the writes of other requests wait and go
together in the next one, so under load one round trip serves many requests. Every write keeps its own
fail-open guard: a Redis error (or a guard in its cool-down) makes that write report False, and never raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.connection as aio_connection
from redis import connection as sync_connection
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from frontier.redis_guard import REDIS_ERRORS, FailOpen

# The settings a client's connections carry over to its asyncio twin: plain values, nothing bound to a thread.
TWIN_SETTINGS = frozenset({
    "host", "port", "path", "db", "username", "password", "socket_timeout", "socket_connect_timeout",
    "socket_keepalive", "socket_keepalive_options", "retry_on_timeout", "health_check_interval", "client_name",
    "protocol", "encoding", "encoding_errors", "decode_responses",
})  # fmt: skip
TWIN_MAX_CONNECTIONS = 32  # per twin; one command takes a fraction of a millisecond, so this many rarely all wait
TWIN_CONNECTIONS = {
    sync_connection.Connection: aio_connection.Connection,
    sync_connection.SSLConnection: aio_connection.SSLConnection,
    sync_connection.UnixDomainSocketConnection: aio_connection.UnixDomainSocketConnection,
}


@dataclass(frozen=True)
class Write:
    """One command for ``client``, queued by ``stage`` on a pipeline of its asyncio twin; its errors count
    against ``guard``."""

    client: redis.Redis
    guard: FailOpen
    stage: Callable[[Pipeline], object]


def async_twin(client: redis.Redis) -> redis.asyncio.Redis:
    """An asyncio client for ``client``'s server, with its timeouts (TLS and Unix sockets included).

    It holds at most ``TWIN_MAX_CONNECTIONS`` connections: calls beyond them wait for one (up to the socket
    timeout, then a ``ConnectionError`` that the caller's guard turns into its fallback), so a burst of
    requests never opens a connection each."""
    pool = client.connection_pool
    settings = {k: v for k, v in pool.connection_kwargs.items() if k in TWIN_SETTINGS or k.startswith("ssl_")}
    connection_class = TWIN_CONNECTIONS[pool.connection_class]
    twin_pool = redis.asyncio.BlockingConnectionPool(
        connection_class=connection_class, max_connections=TWIN_MAX_CONNECTIONS,
        timeout=settings.get("socket_timeout"), **settings,
    )  # fmt: skip
    return redis.asyncio.Redis(connection_pool=twin_pool)


class LoopTwin:
    """The asyncio twin of ``client`` for the running event loop, made on first use.

    asyncio connections belong to the loop that opened them: a call from another loop (a test's next
    ``asyncio.run``) gets a twin of its own."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._twin: redis.asyncio.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    def redis(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._twin is None or loop is not self._loop:
            self._loop, self._twin, self._scripts = loop, async_twin(self.client), {}
        return self._twin

    async def run_script(self, source: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The Lua script ``source`` on the server (EVALSHA, loading it once if the server lacks it)."""
        twin = self.redis()
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = twin.register_script(source)
        return await script(keys=keys, args=args)


class GroupCommit:
    """Commits ``Write``s from many requests of one event loop, one pipelined round trip per client at a time."""

    def __init__(self) -> None:
        self._pending: list[tuple[Write, asyncio.Future[bool]]] = []
        self._drain: asyncio.Task | None = None
        self._twins: dict[int, LoopTwin] = {}

    def twin(self, client: redis.Redis) -> redis.asyncio.Redis:
        """The asyncio client the writes for ``client`` go through (made on first use)."""
        known = self._twins.get(id(client))
        if known is None or known.client is not client:
            known = self._twins[id(client)] = LoopTwin(client)
        return known.redis()

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
                    done = await self._execute([write for write, _ in group])
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

    async def _execute(self, writes: Sequence[Write]) -> list[bool]:
        """One pipeline (no transaction) per client; whether each write succeeded."""
        done = [False] * len(writes)
        by_client: dict[int, list[int]] = {}
        for i, write in enumerate(writes):
            by_client.setdefault(id(write.client), []).append(i)
        for indexes in by_client.values():
            pipe = self.twin(writes[indexes[0]].client).pipeline(transaction=False)
            for i in indexes:
                writes[i].stage(pipe)
            try:
                replies = await pipe.execute(raise_on_error=False)
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
