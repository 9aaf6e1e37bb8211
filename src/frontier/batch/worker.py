"""Batch workers: claim lines from the task stream and route each one like an interactive request.

A ``BatchWorker`` runs inside a router replica as a supervised ``Worker`` thread (restarted with backoff
after any Redis fault). The thread does the Redis work (claims, refreshing claims, finalization); each line
runs as a coroutine on the replica's event loop through ``RouterService.chat``, the very path of an
interactive request: the same router decision, budgets, overflow, fallback and decision log (marked as
background, so the cost controller's window ignores it). Interactive traffic comes first: while this replica
has ``batch.pause_inflight`` interactive requests in flight, and for ``batch.resume_quiet_s`` after, the worker
claims nothing; the lines it runs are at most ``batch.concurrency``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from frontier.batch.files import FileStore
from frontier.batch.lines import error_line, output_line, result_field
from frontier.batch.queue import ACTIVE, BatchQueue, Task
from frontier.batch.service import owner_key, spec_of
from frontier.batch.storage import Storage
from frontier.config import BatchConfig
from frontier.errors import FrontierError
from frontier.feedback.worker import Worker
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.keys import KeyInfo
from frontier.security.logs import log_request
from frontier.serving.admission import parse_body
from frontier.serving.router_service import RouterService

logger = logging.getLogger("frontier.batch.worker")

STATS_EVERY_S = 2.0
PAUSED_POLL_S = 0.05  # how often a paused worker looks whether interactive traffic has gone
RETRYABLE = (429, 503, 504)  # a busy or unavailable pool: try the line again later


class BatchWorker:
    """One replica's batch worker; ``worker()`` is its supervised loop."""

    def __init__(
        self,
        queue: BatchQueue,
        files: FileStore,
        storage: Storage,
        router: RouterService,
        loop: asyncio.AbstractEventLoop,
        config: BatchConfig,
    ) -> None:
        self.queue = queue
        self.files = files
        self.storage = storage
        self.router = router
        self.loop = loop
        self.config = config
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.running: dict[str, concurrent.futures.Future[None]] = {}
        self.calls = 0  # lines of this worker inside RouterService.chat now (counted in its in-flight)
        self.paused = False
        self._busy_at = float("-inf")  # when this replica last had interactive traffic at the pause threshold
        self.steps = 0
        self.stats: dict[str, float] = {}  # queue figures for the metrics, read every STATS_EVERY_S
        self.results = {"completed": 0, "failed": 0}
        self._stats_at = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._cursor = "0-0"

    def worker(self) -> Worker:
        return Worker("batch-worker", self.step, setup=self.queue.ensure_group)

    def interactive_inflight(self) -> int:
        """Interactive requests in flight on this replica (all pools), the batch's own calls left out."""
        return sum(self.router.inflight.values()) - self.calls

    def step(self) -> None:
        """Finalize finished batches, keep running claims fresh, and claim lines while there is room."""
        self.steps += 1
        self.queue.finalize_pending(self.files)
        if time.monotonic() - self._stats_at >= STATS_EVERY_S:
            self.stats, self._stats_at = self.queue.stats(), time.monotonic()
        with self._lock:
            running = list(self.running)
        self.queue.touch(self.consumer, running)
        room = self.config.concurrency - len(running)
        if room <= 0 or self._pause():
            self._wait_for_room()
            return
        tasks, self._cursor = self.queue.claim(self.consumer, room, self.config.block_ms, self._cursor)
        for task in tasks:
            with self._lock:
                if task.entry in self.running:
                    continue
                future = asyncio.run_coroutine_threadsafe(self.process(task), self.loop)
                self.running[task.entry] = future
            future.add_done_callback(lambda f, entry=task.entry: self._finished(entry, f))

    def _pause(self) -> bool:
        """Whether interactive traffic is (or was within ``resume_quiet_s``) at the pause threshold."""
        now = time.monotonic()
        if self.interactive_inflight() >= self.config.pause_inflight:
            self._busy_at = now
        self.paused = now - self._busy_at < self.config.resume_quiet_s
        return self.paused

    def _wait_for_room(self) -> None:
        """Up to ``block_ms``: until a line finishes, or a pause ends (looked at every PAUSED_POLL_S)."""
        deadline = time.monotonic() + self.config.block_ms / 1000
        while (left := deadline - time.monotonic()) > 0:
            if self._wake.wait(min(left, PAUSED_POLL_S) if self.paused else left):
                break
            if self.paused and not self._pause():
                break
        self._wake.clear()

    def _finished(self, entry: str, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self.running.pop(entry, None)
        self._wake.set()
        if not future.cancelled() and future.exception() is not None:
            # Its entry stays pending and is reclaimed after batch.claim_idle_s: the line is not lost.
            logger.warning("batch line %s not recorded: %r", entry, future.exception())

    async def process(self, task: Task) -> None:
        """Route one line and write its result (once); a line of a batch no longer running is dropped."""
        state = await asyncio.to_thread(self.queue.state, task.batch_id)
        if state.get("status") not in ACTIVE:
            await asyncio.to_thread(self.queue.discard, task)
            return
        spec = spec_of(state)
        expired = time.time() >= spec["expires_at"]
        if expired:
            line, ok = error_line(task.custom_id, "batch_expired", "the batch expired before this line ran"), False
        else:
            line, ok = await self.route(task, spec)
        written = await asyncio.to_thread(
            self.queue.record, task.batch_id, result_field(task.custom_id, task.index), task.index, line, ok,
            task.entry, expired,
        )  # fmt: skip
        if written:
            self.results["completed" if ok else "failed"] += 1

    async def route(self, task: Task, spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The line's output line (and whether it is a 200), retrying a busy or unavailable pool."""
        try:
            raw = await asyncio.to_thread(self.storage.read_range, spec["input_path"], task.offset, task.length)
        except FileNotFoundError:
            return error_line(task.custom_id, "input_file_missing", "the batch's input file was deleted"), False
        body = json.loads(raw)["body"]
        own = body.get("frontier") or {}
        if spec.get("knob") and own.get("reasoning_share") is None and own.get("price_weight") is None:
            body["frontier"] = {**own, **spec["knob"]}  # the batch's cost knob, unless the line sets its own
        try:
            request = parse_body(ChatCompletionRequest, json.dumps(body).encode())
        except FrontierError as exc:
            return output_line(task.custom_id, exc.status_code, exc.body()), False
        key = owner_key(spec)
        attempt, started = 0, time.perf_counter()
        while True:
            self.calls += 1
            try:
                outcome = await self.router.chat(request, key=key, background=True)
            except FrontierError as exc:
                attempt += 1
                if exc.status_code not in RETRYABLE or attempt >= self.config.max_attempts:
                    self._log(task, exc.status_code, started, key, request)
                    return output_line(task.custom_id, exc.status_code, exc.body()), False
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
                continue
            except Exception as exc:  # noqa: BLE001 - a line that breaks the router is reported, not retried forever
                logger.exception("batch line failed")
                error = FrontierError(500, f"internal error: {type(exc).__name__}", error_type="server_error")
                return output_line(task.custom_id, 500, error.body()), False
            finally:
                self.calls -= 1
            assert outcome.body is not None  # batch lines never stream
            self._log(task, 200, started, key, request, outcome.decision)
            return output_line(task.custom_id, 200, outcome.body), True

    def _log(self, task: Task, status: int, started: float, key: KeyInfo | None, request: ChatCompletionRequest,
             decision: Decision | None = None) -> None:  # fmt: skip
        """One JSON request log line per routed batch line (id ``batch/line``), like an interactive request's."""
        log_request(request_id=f"{task.batch_id}/{task.index}", route="batch", status=status,
                    latency_s=time.perf_counter() - started, key=key, decision=decision, messages=request.messages)  # fmt: skip
