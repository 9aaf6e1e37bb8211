"""The OpenAI Batch API on the real stack (Ray Serve, vLLM CPU pools, Redis) through the official client: upload,
create, wait, read the output and error files; another key is denied; cancel; expiry."""

import json
import time

import openai
import pytest

from frontier.feedback.keys import Keys
from frontier.testing.batch_client import batch_lines, submit, wait_for

pytestmark = pytest.mark.integration

TERMINAL = ("completed", "failed", "expired", "cancelled")
PROMPTS = {"easy": "What is 2 + 2?", "hard": "Think step by step: prove that the square root of 2 is irrational.",
           "light": "Say hi.", "reasoning": "Think step by step: 17 * 23?"}  # fmt: skip
MODELS = {"light": "frontier-light", "reasoning": "frontier-reasoning"}


def _line(custom_id):
    body = {"model": MODELS.get(custom_id, "frontier"), "messages": [{"role": "user", "content": PROMPTS[custom_id]}],
            "max_tokens": 4}  # fmt: skip
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def test_a_batch_through_the_official_client_with_a_bad_line_and_another_key_denied(client, base_url, api_keys):
    data = "\n".join([*(_line(c) for c in PROMPTS), '{"custom_id": "broken", "method": "POST"}']) + "\n"
    uploaded = client.files.create(file=("batch.jsonl", data.encode()), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                                  metadata={"suite": "integration"})  # fmt: skip
    deadline = time.monotonic() + 300
    while batch.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 4, "failed": 1}

    out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in out) == sorted(PROMPTS)
    for x in out:
        body = x["response"]["body"]
        assert x["response"]["status_code"] == 200 and x["error"] is None
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["frontier"]["pool"] in ("light", "reasoning") and body["frontier"]["policy_version"]
    by_id = {x["custom_id"]: x["response"]["body"] for x in out}
    assert by_id["light"]["frontier"]["pool"] == "light" and by_id["reasoning"]["frontier"]["pool"] == "reasoning"
    assert by_id["light"]["model"] == "frontier-light"
    errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("broken", "invalid_url")]

    other = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_keys["steady"], max_retries=0, timeout=60)
    for call in (lambda: other.batches.retrieve(batch.id), lambda: other.batches.cancel(batch.id),
                 lambda: other.files.content(batch.output_file_id), lambda: other.files.retrieve(uploaded.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    assert batch.id not in [b.id for b in other.batches.list(limit=100).data]
    assert batch.id in [b.id for b in client.batches.list(limit=100).data]


def _ids(client, file_id):
    return [json.loads(x)["custom_id"] for x in client.files.content(file_id).text.splitlines()] if file_id else []


def test_cancel_ends_a_running_batch_and_keeps_what_ran(client):
    lines = 200
    batch = submit(client, batch_lines(lines, seed=5))
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_for(client, batch.id, lambda b: False, 300)
    assert done.status == "cancelled" and done.cancelled_at, done
    ran = _ids(client, done.output_file_id) + _ids(client, done.error_file_id)
    assert len(ran) == len(set(ran)) == done.request_counts.completed + done.request_counts.failed < lines


def test_a_batch_past_its_window_expires_and_reports_every_line_once(client, local_stack, stack_config):
    lines = 200
    batch = submit(client, batch_lines(lines, seed=6))
    redis, key = local_stack.redis.client(), Keys(stack_config.redis.key_prefix).batch(batch.id)
    spec = json.loads(redis.hget(key, "spec"))  # the window runs out now rather than in 24 hours
    redis.hset(key, "spec", json.dumps({**spec, "expires_at": int(time.time()) - 1}))
    done = wait_for(client, batch.id, lambda b: False, 300)
    assert done.status == "expired" and done.expired_at, done
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert errors and {e["error"]["code"] for e in errors} == {"batch_expired"}
    reported = _ids(client, done.output_file_id) + [e["custom_id"] for e in errors]
    assert sorted(reported) == sorted(f"req-{i}" for i in range(lines))
