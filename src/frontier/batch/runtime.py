"""The batch API of one router replica: its request-path service and its supervised worker."""

from __future__ import annotations

import asyncio
import threading

from frontier.batch.files import FileStore
from frontier.batch.metrics import BatchCollector
from frontier.batch.queue import BatchQueue
from frontier.batch.service import BatchService
from frontier.batch.storage import Storage
from frontier.batch.worker import BatchWorker
from frontier.config import FrontierConfig
from frontier.feedback.keys import Keys
from frontier.feedback.redis_server import connect
from frontier.feedback.worker import Worker
from frontier.serving.router_service import RouterService

# Creating a batch writes all its lines in one transaction: longer than a request-path Redis call may take.
API_SOCKET_TIMEOUT_S = 30.0
UPLOAD_OVERHEAD_BYTES = 65_536  # multipart framing and form fields around the uploaded file


def upload_limits(config: FrontierConfig) -> dict[str, int]:
    """Body limits of the upload route (``batch.max_file_bytes``), which the general body limit does not cover."""
    return {"/v1/files": config.batch.max_file_bytes + UPLOAD_OVERHEAD_BYTES} if config.batch.enabled else {}


class BatchRuntime:
    """``service`` answers the routes; ``start()`` runs the worker on ``loop`` (the replica's event loop)."""

    def __init__(self, config: FrontierConfig, redis_url: str, router: RouterService, loop: asyncio.AbstractEventLoop) -> None:
        keys = Keys(config.redis.key_prefix)
        storage = Storage.from_config(config.batch)
        self.service = BatchService(connect(redis_url, API_SOCKET_TIMEOUT_S), keys, storage, config.batch)
        worker_client = connect(redis_url, config.batch.block_ms / 1000 + API_SOCKET_TIMEOUT_S)
        self.batch_worker = BatchWorker(
            BatchQueue(worker_client, keys, config.batch), FileStore(worker_client, keys, storage), storage, router,
            loop, config.batch,
        )  # fmt: skip
        self.worker: Worker = self.batch_worker.worker()
        registry = getattr(router.observer.metrics, "registry", None)  # None with observability.metrics off
        if registry is not None:
            registry.register(BatchCollector(self.batch_worker, self.worker))
        self._stop = threading.Event()

    def start(self) -> "BatchRuntime":
        self.worker.start(self._stop)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.worker.thread is not None:
            self.worker.thread.join(timeout=5)
