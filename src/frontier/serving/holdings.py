"""What one chat request holds until it ends, given back exactly once whatever ends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from frontier.config import PoolName
from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.budget import Reservation
from frontier.security.keys import KeyInfo
from frontier.serving.access import AccessControl

# Budget settlements run as tasks of their own, so a cancelled request cannot skip them; held here until done.
_SETTLING: set[asyncio.Task] = set()


class Holdings:
    """A pool's in-flight slot, the pool's open stream and the key's budget reservation of one request.

    ``release`` gives all of them back once, on every exit: answer, error, timeout, client gone (at any
    await, including one in the middle of a reservation, which is settled as soon as it is made).
    """

    def __init__(
        self,
        count_inflight: Callable[[PoolName, int], None],
        access: AccessControl | None,
        key: KeyInfo | None,
        request: ChatCompletionRequest,
    ) -> None:
        self._count = count_inflight
        self.access = access
        self.key = key
        self.request = request
        self.slot: PoolName | None = None
        self.chunks: AsyncIterator[dict[str, Any]] | None = None
        self.reservation: Reservation | None = None
        self.sent = False  # the reserved pool got the call and may have worked on it: the call is spent
        self.released = False
        self._pending: asyncio.Future | None = None

    async def reserve(self, decision: Decision, switching: FrontierError | None = None) -> Decision:
        """The decision within the key's budget for its pool (``AccessControl.reserve``); a reservation held
        for the other pool is given back (its tokens stay spent if that pool got the call)."""
        if self.access is None or not self.access.budgeted(self.key):
            return decision
        pending = asyncio.ensure_future(self.access.reserve(decision, self.key, self.request, switching))
        self._pending = pending
        decision, reservation = await asyncio.shield(pending)  # cancelled: ``pending`` stays for release()
        self._pending = None
        previous, self.reservation = self.reservation, reservation
        if previous is not None:
            self._settle(previous, keep_call=False, tokens=None if self.sent else 0)
        self.sent = False
        return decision

    def occupy(self, pool: PoolName) -> None:
        """Count a call to ``pool`` in flight."""
        self._count(pool, 1)
        self.slot = pool

    def vacate(self, error: BaseException) -> None:
        """A call failed before any output: free its slot. A pool that refused it with a 4xx did no work."""
        self._free_slot()
        self.sent = self.sent or not (isinstance(error, FrontierError) and error.status_code < 500)

    def answered(self, chunks: AsyncIterator[dict[str, Any]] | None) -> None:
        """The call produced output (a whole response, or a stream still to read)."""
        self.sent = True
        self.chunks = chunks

    async def release(self, usage: Mapping[str, Any] | None = None) -> None:
        """Give everything back (later calls do nothing); ``usage``: the engine's, when known."""
        if self.released:
            return
        self.released = True
        self._free_slot()
        if self._pending is not None:
            self._spawn(self._settle_late(self._pending))
        if self.reservation is not None:
            spent = (usage or {}).get("total_tokens")
            tokens = (int(spent) if spent is not None else None) if self.sent else 0
            self._settle(self.reservation, keep_call=self.sent, tokens=tokens)
        chunks, self.chunks = self.chunks, None
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()  # stops the generation in the engine

    def _free_slot(self) -> None:
        if self.slot is not None:
            self._count(self.slot, -1)
            self.slot = None

    def _settle(self, reservation: Reservation, keep_call: bool, tokens: int | None) -> None:
        assert self.access is not None
        self._spawn(self.access.settle(reservation, keep_call, tokens))

    async def _settle_late(self, pending: asyncio.Future) -> None:
        """A reservation the request was cancelled in the middle of: given back once it is made."""
        try:
            _, reservation = await pending
        except Exception:  # noqa: BLE001 - refused or failed: nothing was reserved
            return
        if reservation is not None:
            assert self.access is not None
            await self.access.settle(reservation, False, 0)

    @staticmethod
    def _spawn(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        _SETTLING.add(task)
        task.add_done_callback(_SETTLING.discard)


async def settled() -> None:
    """Wait for every budget settlement started so far on this event loop (tests, shutdown)."""
    loop = asyncio.get_running_loop()
    while mine := [task for task in _SETTLING if task.get_loop() is loop]:
        await asyncio.gather(*mine, return_exceptions=True)
