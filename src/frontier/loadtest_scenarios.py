"""Locust users for Frontier (run through ``loadtests/locustfile.py`` or ``frontier loadtest``).

``ChatUser`` sends a realistic mix of OpenAI chat completions (short chat, coding, math word problems,
long multi-turn context; about a third streamed; some explicit-pool and ``reasoning_effort`` requests).
``FixedPromptUser`` sends identical non-streamed requests back to back to one model (``--frontier-model``),
for comparing the router with a pool called directly.

Locust statistics (rows of the CSVs and of ``--json-file``):
  POST      /v1/chat/completions   every chat call, end to end (streams: until the last byte)
  pool:P    total / ttft           answered calls per pool from ``x-frontier-pool`` (ttft: streamed calls only)
  decision  P/REASON               answered calls per pool and ``x-frontier-reason``
  scenario  NAME                   answered calls per workload scenario
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from locust import HttpUser, between, constant, events, task

from frontier.loadtest_workload import CHAT_PATH, DIRECT_POOL, SHORT_CHAT, build_request, read_sse, report_answer


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--frontier-model", default="frontier", help="FixedPromptUser: model to call")
    parser.add_argument("--frontier-max-tokens", type=int, default=16, help="FixedPromptUser: tokens per answer")
    parser.add_argument(
        "--frontier-api-key",
        default=os.environ.get("OPENAI_API_KEY", ""),
        help="Bearer key sent to the server (default: $OPENAI_API_KEY)",
    )


class _ChatClient(HttpUser):
    # HttpUser (requests) rather than FastHttpUser: urllib3 hands over each HTTP chunk as it arrives, which
    # time-to-first-token needs; geventhttpclient's read(n) waits for n bytes.
    abstract = True
    request_timeout = (30.0, 600.0)  # (connect, read) seconds

    def on_start(self) -> None:
        self.rng = random.Random()
        key = self.environment.parsed_options.frontier_api_key if self.environment.parsed_options else ""
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def chat(self, body: dict[str, Any], scenario: str | None) -> None:
        """One chat completion, streamed or not, with its statistics."""
        fire = self.environment.events.request.fire
        started = time.perf_counter()
        stream = bool(body.get("stream"))
        with self.client.post(
            CHAT_PATH,
            json=body,
            headers=self.headers,
            name=CHAT_PATH,
            stream=stream,
            timeout=self.request_timeout,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:160]}")
                return
            ttft_s = None
            if stream:
                result = read_sse(response.iter_lines(chunk_size=4096, decode_unicode=True), started)
                # Streams count until their last byte (Locust would stop the clock at the headers).
                response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
                if result.error or not result.done:
                    response.failure(result.error or "stream ended without [DONE]")
                    return
                ttft_s = result.ttft_s
            total_ms = (time.perf_counter() - started) * 1000
            pool = response.headers.get("x-frontier-pool") or DIRECT_POOL
            report_answer(
                fire,
                pool,
                response.headers.get("x-frontier-reason"),
                scenario,
                total_ms,
                None if ttft_s is None else ttft_s * 1000,
                0 if stream else len(response.content or b""),
            )
            response.success()


class ChatUser(_ChatClient):
    """The realistic mix against a Frontier router."""

    wait_time = between(0.2, 1.0)

    @task
    def mixed_chat(self) -> None:
        scenario, body = build_request(self.rng)
        self.chat(body, scenario)


class FixedPromptUser(_ChatClient):
    """Identical short non-streamed requests, back to back, to ``--frontier-model`` (router or bare engine)."""

    wait_time = constant(0)

    @task
    def fixed_chat(self) -> None:
        options = self.environment.parsed_options
        body = {
            "model": options.frontier_model,
            "messages": [{"role": "user", "content": self.rng.choice(SHORT_CHAT)}],
            "max_tokens": options.frontier_max_tokens,
            "temperature": 0,
            "ignore_eos": True,  # vLLM extension: every answer has exactly max_tokens tokens
        }
        self.chat(body, None)
