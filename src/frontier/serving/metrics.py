"""Prometheus metrics of one router replica, and the ``GET /metrics`` exposition.

Each Ray Serve router replica is its own process with its own registry, served on that replica's
``/metrics`` route. Through the Serve HTTP proxy a scrape reaches one replica, so with several router
replicas scrape each replica directly (or run one router replica per scraped pod, as the Helm chart's
router group does); counters then add up across replicas with ``sum(rate(...))``. The realised
reasoning share and the in-flight gauges are per replica.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from frontier.config import ObservabilityConfig
from frontier.errors import FrontierError
from frontier.routing.types import CALLER_REASONS
from frontier.schemas import Decision

LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics(Protocol):
    """What the request path records; ``RouterMetrics`` or ``NullMetrics``."""

    enabled: bool

    def observe_decision(self, decision: Decision, routed: bool | None = None) -> None: ...

    def observe_response(
        self,
        pool: str,
        latency_s: float,
        ttft_s: float | None = None,
        cost_usd: float = 0.0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        outcome: str = "ok",
    ) -> None: ...

    def set_inflight(self, pool: str, n: int) -> None: ...

    def observe_feedback(self, kind: str, outcome: str) -> None: ...

    def set_policy_version(self, version: str) -> None: ...

    def watch_online(self, health: HealthSource) -> None: ...


HealthSource = Callable[[], tuple[dict[str, Any], bool]]


class OnlineHealthCollector(Collector):
    """Redis, background-worker and feedback-backlog gauges, read from the online layer's cached health at
    scrape time (``OnlineRouting.health``)."""

    def __init__(self, health: HealthSource) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        body, _ = self.health()
        yield GaugeMetricFamily(
            "frontier_redis_up", "1 while this replica's last Redis poll succeeded.", value=float(body["redis"] == "ok")
        )
        up = GaugeMetricFamily("frontier_worker_up", "1 while the background worker's last step succeeded.", labels=["worker"])
        restarts = CounterMetricFamily(
            "frontier_worker_restarts", "Failures after which the background worker was restarted.", labels=["worker"]
        )
        for name, status in body["workers"].items():
            up.add_metric([name], float(status["state"] == "ok"))
            restarts.add_metric([name], float(status["restarts"]))
        yield up
        yield restarts
        if "cost-controller" in body["workers"]:
            yield GaugeMetricFamily(
                "frontier_controller_leader", "1 while this replica holds the cost controller's lease.",
                value=float(body["workers"]["cost-controller"].get("leader", False)),
            )  # fmt: skip
        feedback = body.get("feedback") or {}
        if feedback.get("backlog") is not None:
            yield GaugeMetricFamily(
                "frontier_feedback_backlog", "Accepted feedback events not yet applied.", value=feedback["backlog"]
            )
            yield GaugeMetricFamily(
                "frontier_feedback_lag_seconds", "Age of the oldest feedback event not yet applied.", value=feedback["lag_s"]
            )


class RouterMetrics:
    """The router's Prometheus metrics in a registry of their own."""

    enabled = True

    def __init__(
        self, share_window: int = 1000, registry: CollectorRegistry | None = None, process: bool = True
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if process:
            ProcessCollector(registry=self.registry)
        r = self.registry
        self.decisions = Counter(
            "frontier_decisions", "Routing decisions by pool and reason.", ["pool", "reason"], registry=r
        )
        self.reasoning_share = Gauge(
            "frontier_reasoning_share",
            "Share of the last routed decisions (model 'frontier', reason not explicit/effort) that chose reasoning.",
            registry=r,
        )
        self.cost = Counter(
            "frontier_estimated_cost_usd", "Estimated USD cost of answered requests.", ["pool"], registry=r
        )
        self.tokens = Counter("frontier_tokens", "Tokens of answered requests.", ["pool", "kind"], registry=r)
        self.inflight = Gauge(
            "frontier_pool_inflight_requests",
            "Requests this router replica has sent to the pool and not finished (running plus queued).",
            ["pool"],
            registry=r,
        )
        self.latency = Histogram(
            "frontier_request_duration_seconds",
            "End-to-end request latency (last byte) by pool and outcome.",
            ["pool", "outcome"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ttft = Histogram(
            "frontier_time_to_first_token_seconds",
            "Time to the first streamed token by pool.",
            ["pool"],
            buckets=TTFT_BUCKETS_S,
            registry=r,
        )
        self.feedback = Counter(
            "frontier_feedback_events", "Feedback events by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.policy_version = Gauge(
            "frontier_policy_version_info", "The policy version in use (value 1 on its label).", ["version"], registry=r
        )
        self.policy_changes = Counter(
            "frontier_policy_version_changes", "Times this replica switched to another policy version.", registry=r
        )
        self._window: deque[bool] = deque(maxlen=share_window)
        self._reasoning_in_window = 0
        self._version: str | None = None
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (prometheus_client's lookup takes a lock and
        builds its key on every call; a request records half a dozen)."""
        key = (id(metric), *labels)
        if (child := self._children.get(key)) is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_decision(self, decision: Decision, routed: bool | None = None) -> None:
        """Count a decision; routed ones (by default: reason not explicit/effort) feed the share window."""
        self._child(self.decisions, decision.pool, decision.reason).inc()
        if routed is None:
            routed = decision.reason not in CALLER_REASONS
        if routed:
            if len(self._window) == self._window.maxlen:
                self._reasoning_in_window -= self._window[0]
            self._window.append(decision.pool == "reasoning")
            self._reasoning_in_window += self._window[-1]
            self.reasoning_share.set(self._reasoning_in_window / len(self._window))
        self.set_policy_version(decision.policy_version)

    def observe_response(
        self,
        pool: str,
        latency_s: float,
        ttft_s: float | None = None,
        cost_usd: float = 0.0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        outcome: str = "ok",
    ) -> None:
        """Record one finished request; ``outcome`` is a small fixed set such as ok, error, timeout, cancelled."""
        self._child(self.latency, pool, outcome).observe(latency_s)
        if ttft_s is not None:
            self._child(self.ttft, pool).observe(ttft_s)
        if cost_usd:
            self._child(self.cost, pool).inc(cost_usd)
        if prompt_tokens:
            self._child(self.tokens, pool, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self._child(self.tokens, pool, "completion").inc(completion_tokens)

    def set_inflight(self, pool: str, n: int) -> None:
        """The number of requests in flight to ``pool`` from this replica."""
        self._child(self.inflight, pool).set(n)

    @contextmanager
    def track_inflight(self, pool: str) -> Iterator[None]:
        """Count a request as in flight to ``pool`` for the duration of the block."""
        gauge = self._child(self.inflight, pool)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def observe_feedback(self, kind: str, outcome: str) -> None:
        """Count a feedback event (e.g. kind 'rating', outcome 'accepted' / 'unknown_decision' / 'unavailable')."""
        self._child(self.feedback, kind, outcome).inc()

    def set_policy_version(self, version: str) -> None:
        """Show ``version`` as the policy in use; a change moves the label and counts a switch."""
        if version == self._version:
            return
        if self._version is not None:
            self.policy_version.remove(self._version)
            self.policy_changes.inc()
        self.policy_version.labels(version).set(1)
        self._version = version

    def watch_online(self, health: HealthSource) -> None:
        """Export the online layer's health (Redis, workers, feedback lag) on every scrape."""
        self.registry.register(OnlineHealthCollector(health))

    def exposition(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class NullMetrics:
    """Metrics switched off (``observability.metrics: false``): every call does nothing."""

    enabled = False

    def observe_decision(self, decision: Decision, routed: bool | None = None) -> None:
        pass

    def observe_response(
        self,
        pool: str,
        latency_s: float,
        ttft_s: float | None = None,
        cost_usd: float = 0.0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        outcome: str = "ok",
    ) -> None:
        pass

    def set_inflight(self, pool: str, n: int) -> None:
        pass

    @contextmanager
    def track_inflight(self, pool: str) -> Iterator[None]:
        yield

    def observe_feedback(self, kind: str, outcome: str) -> None:
        pass

    def set_policy_version(self, version: str) -> None:
        pass

    def watch_online(self, health: HealthSource) -> None:
        pass


def build_metrics(config: ObservabilityConfig) -> RouterMetrics | NullMetrics:
    """The metrics the config asks for."""
    return RouterMetrics(share_window=config.share_window) if config.metrics else NullMetrics()


def metrics_response(metrics: RouterMetrics | NullMetrics) -> Response:
    """The ``GET /metrics`` answer; 404 in the OpenAI error shape when metrics are off."""
    if not isinstance(metrics, RouterMetrics):
        raise FrontierError(404, "metrics are disabled (observability.metrics: false)", code="not_found")
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)
