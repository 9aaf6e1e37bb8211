"""Prometheus metrics of the batch queue, from the worker's cached figures (no Redis call at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from frontier.batch.worker import BatchWorker
from frontier.feedback.worker import Worker


class BatchCollector(Collector):
    """Queue depth and lag (all replicas, as this replica's worker last read them) and this replica's lines."""

    def __init__(self, worker: BatchWorker, supervised: Worker | None = None) -> None:
        self.worker = worker
        self.supervised = supervised

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        if self.supervised is not None:
            yield GaugeMetricFamily("frontier_batch_worker_up", "1 while the batch worker's last step succeeded.",
                                    value=float(self.supervised.status()["state"] == "ok"))  # fmt: skip
        yield GaugeMetricFamily("frontier_batch_lines_queued", "Batch lines waiting for a worker (all replicas).",
                                value=w.stats.get("queued", 0))  # fmt: skip
        yield GaugeMetricFamily("frontier_batch_lines_claimed", "Batch lines claimed by a worker and not done (all replicas).",
                                value=w.stats.get("claimed", 0))  # fmt: skip
        yield GaugeMetricFamily("frontier_batch_queue_lag_seconds", "Age of the oldest batch line not done yet.",
                                value=w.stats.get("lag_s", 0.0))  # fmt: skip
        yield GaugeMetricFamily("frontier_batch_lines_running", "Batch lines this replica is routing now.", value=len(w.running))
        yield GaugeMetricFamily("frontier_batch_paused", "1 while this replica's batch worker waits for interactive traffic.",
                                value=float(w.paused))  # fmt: skip
        done = CounterMetricFamily("frontier_batch_lines", "Batch line results this replica wrote, by outcome.", labels=["outcome"])
        for outcome, n in w.results.items():
            done.add_metric([outcome], n)
        yield done
