"""A feedback consumer that announces, then stalls, right before committing its Nth batch (to be kill -9ed)."""

import sys
import threading
import time
from pathlib import Path

from frontier.config import FeedbackConfig
from frontier.feedback.consumer import FeedbackConsumer
from frontier.feedback.keys import Keys
from frontier.feedback.redis_server import connect


class StallingConsumer(FeedbackConsumer):
    def __init__(self, *args, stall_at: int, marker: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = 0
        self.stall_at = stall_at
        self.marker = marker

    def _before_commit(self, n: int) -> None:
        self.batches += 1
        if self.batches == self.stall_at:
            self.marker.write_text(str(n))
            time.sleep(600)


if __name__ == "__main__":
    url, prefix, marker = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    config = FeedbackConfig(consumer_batch=50, consumer_block_ms=100, reclaim_idle_s=60)
    consumer = StallingConsumer(connect(url, 5.0), Keys(prefix), config, name="doomed", stall_at=3, marker=marker)
    consumer.run(threading.Event())
