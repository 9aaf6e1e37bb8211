"""Batches through the official ``openai`` client, for tests and benchmarks: lines, submit, wait, check."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from frontier.loadtest_workload import build_request

TERMINAL = ("completed", "failed", "expired", "cancelled")


def chat_bodies(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` non-streaming chat bodies of the load-test mix."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        _, body = build_request(rng)
        body.pop("stream", None)
        body.pop("stream_options", None)
        out.append(body)
    return out


def batch_lines(n: int, seed: int = 0, max_tokens: int = 8) -> str:
    """A JSONL batch input of ``n`` routed chat requests (``model: frontier``) of the load-test mix."""
    lines = [
        json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                    "body": {**body, "model": "frontier", "max_tokens": max_tokens}})  # fmt: skip
        for i, body in enumerate(chat_bodies(n, seed))
    ]
    return "\n".join(lines) + "\n"


def submit(client: Any, data: str, **metadata: str) -> Any:
    """Upload ``data`` and create a batch on it."""
    uploaded = client.files.create(file=("batch.jsonl", data.encode()), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                                 metadata=metadata or None)  # fmt: skip


def wait_for(client: Any, batch_id: str, done: Callable[[Any], bool], timeout_s: float, poll_s: float = 0.2) -> Any:
    """Poll the batch until ``done(batch)`` or a terminal status; raises TimeoutError past the deadline.

    Connection errors count as "not yet" (the server may be restarting)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = client.batches.retrieve(batch_id)
        except Exception as exc:  # noqa: BLE001 - a restarting server refuses connections for a while
            last = exc
        else:
            if done(last) or last.status in TERMINAL:
                return last
        time.sleep(poll_s)
    raise TimeoutError(f"batch {batch_id} not done after {timeout_s}s: {last}")


def check_output(client: Any, batch: Any, expected_ids: list[str]) -> list[dict[str, Any]]:
    """The output lines, after checking that every expected ``custom_id`` appears exactly once as a routed 200
    answer carrying its decision, and that no error line exists."""
    assert batch.status == "completed", batch
    out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    ids = [x["custom_id"] for x in out]
    assert sorted(ids) == sorted(expected_ids), (len(ids), len(set(ids)), len(expected_ids))
    for line in out:
        body = line["response"]["body"]
        assert line["response"]["status_code"] == 200 and line["error"] is None, line
        assert body["choices"][0]["message"]["role"] == "assistant", line
        assert body["frontier"]["pool"] in ("light", "reasoning") and body["frontier"]["reason"], line
    assert batch.error_file_id is None or not client.files.content(batch.error_file_id).text.strip()
    return out
