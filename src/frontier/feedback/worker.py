"""Supervised background workers: a loop that no Redis fault ends.

A ``Worker`` runs ``setup`` then ``step`` repeatedly in its own thread. Any exception (a lost connection,
OOM, READONLY, NOGROUP, a Redis restarted empty, or a bug) is logged, counted, and followed by a
backoff (exponential, capped) and a fresh ``setup``, which recreates whatever the worker needs (consumer
group, online state, subscription). Its ``status()`` is what ``/readyz`` and the metrics report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

logger = logging.getLogger("frontier.feedback.worker")


class Worker:
    """One supervised loop; ``start(stop)`` runs it in a daemon thread until ``stop`` is set."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Any],
        setup: Callable[[], Any] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        interval_s: float = 0.0,
        backoff_s: tuple[float, float] = (0.1, 5.0),
        stall_after_s: float = 60.0,
    ) -> None:
        self.name = name
        self.step = step
        self.setup = setup
        self.on_error = on_error
        self.interval_s = interval_s
        self.backoff_s = backoff_s
        self.stall_after_s = stall_after_s
        self.healthy = False
        self.last_error: str | None = None
        self.restarts = 0
        self.last_ok: float | None = None
        self.thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> "Worker":
        self.thread = threading.Thread(target=self.run, args=(stop,), name=f"frontier-{self.name}", daemon=True)
        self.thread.start()
        return self

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; never raises."""
        backoff = self.backoff_s[0]
        ready = False
        while not stop.is_set():
            try:
                if not ready and self.setup is not None:
                    self.setup()
                ready = True
                self.step()
                self.healthy, self.last_error, self.last_ok = True, None, time.monotonic()
                backoff = self.backoff_s[0]
                if self.interval_s:
                    stop.wait(self.interval_s)
            except Exception as exc:  # noqa: BLE001 - a worker must outlive any single failure
                ready = False
                self._failed(exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_s[1])

    def _failed(self, exc: Exception, backoff: float) -> None:
        first = self.healthy or self.last_error is None
        self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"
        self.restarts += 1
        if self.on_error is not None:
            self.on_error(exc)
        if not isinstance(exc, redis.RedisError):
            logger.exception("%s failed; restarting in %.1f s", self.name, backoff)
        elif first:  # one line per outage, not one per retry
            logger.warning("%s: Redis failed (%s); restarting with backoff", self.name, self.last_error)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def status(self) -> dict[str, Any]:
        """``state`` is ok, starting (no step done yet), failing, or stalled (no step has finished for
        ``stall_after_s``: a hung thread); ``restarts`` counts failures."""
        state = "ok" if self.healthy else ("failing" if self.last_error else "starting")
        out: dict[str, Any] = {"state": state, "restarts": self.restarts}
        if self.last_error:
            out["error"] = self.last_error
        if self.last_ok is not None:
            ago = time.monotonic() - self.last_ok
            out["last_ok_s_ago"] = round(ago, 3)
            if state == "ok" and (ago > self.stall_after_s or not self.alive):
                out["state"] = "stalled"
        return out
