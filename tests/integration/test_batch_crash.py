"""A batch survives kill -9 of the whole server (its process group: Ray, Serve, the vLLM engines, the embedded
Redis): after a restart on the same config it completes, and every ``custom_id`` appears exactly once."""

import openai
import pytest

from frontier.config import FrontierConfig
from frontier.testing.batch_client import batch_lines, check_output, submit, wait_for
from frontier.testing.serve_process import ServeProcess
from frontier.testing.stack import test_config

pytestmark = pytest.mark.integration

LINES = 60


def test_a_batch_completes_once_per_line_after_the_server_is_killed_mid_batch(tmp_path):
    data = test_config().model_dump()
    data["batch"].update(storage_uri=str(tmp_path / "files"), claim_idle_s=5)
    server = ServeProcess(FrontierConfig.model_validate(data), tmp_path)
    try:
        client = openai.OpenAI(base_url=f"{server.start()}/v1", api_key="unused", max_retries=0, timeout=60)
        batch = submit(client, batch_lines(LINES, max_tokens=16))
        at_kill = wait_for(client, batch.id, lambda b: b.request_counts.completed >= LINES * 3 // 10, 600, poll_s=0.05)
        server.kill()
        assert at_kill.status == "in_progress" and at_kill.request_counts.completed < LINES, at_kill

        server.start()
        final = wait_for(client, batch.id, lambda b: False, 600)
        check_output(client, final, [f"req-{i}" for i in range(LINES)])
        assert final.request_counts.model_dump() == {"total": LINES, "completed": LINES, "failed": 0}
    except BaseException:
        print(server.log_tail())
        raise
    finally:
        server.kill()
