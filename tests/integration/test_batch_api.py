"""The OpenAI Batch API on the real stack (Ray Serve, vLLM CPU pools, Redis) through the official client: upload,
create, wait, read the output and error files; another key is denied."""

import json
import time

import openai
import pytest

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
