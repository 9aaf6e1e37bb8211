"""The load-test workload without Locust: the request mix, SSE reading and the custom statistics.

Kept apart from the Locust users (``frontier.loadtest_scenarios``) because importing Locust
monkey-patches the process with gevent.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHAT_PATH = "/v1/chat/completions"
DIRECT_POOL = "direct"  # pool label when the server sends no x-frontier-pool header (a bare engine)

SHORT_CHAT = [
    "hi there, how are you today?",
    "what is the capital of France?",
    "give me a synonym for happy",
    "list three colours",
    "say hello in Spanish",
    "what day comes after Tuesday?",
]
CODING = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Fix this code: def add(a, b): return a - b",
    "In Python, how do I reverse a list in place?",
    "Write a SQL query that counts the rows of the table users grouped by country.",
    "Explain what this does: print(sorted(set(x % 3 for x in range(10))))",
]
MATH = [
    "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive? Think step by step.",
    "Tom has 17 boxes with 23 apples each. How many apples does he have? Show your reasoning.",
    "If 3 pencils cost 45 cents, how much do 7 pencils cost? Explain step by step.",
    "Prove that the sum of two even numbers is even.",
    "A rectangle is twice as long as it is wide and its perimeter is 36 m. Find its area step by step.",
]
SYSTEM = "You are a helpful assistant. Answer briefly."
TURNS = [
    ("I am planning a small garden behind my house.", "Nice. What would you like to grow?"),
    ("Mostly tomatoes and some herbs like basil.", "Tomatoes need sun and regular water; basil likes the same."),
    ("How often should I water them in summer?", "Usually every morning when it is hot and dry."),
    ("And what about the soil, do I need compost?", "Yes, mixing compost in helps both plants grow well."),
]
FOLLOW_UPS = ["Can you sum up the plan in one line?", "What should I buy first?", "Anything to avoid?"]


@dataclass(frozen=True)
class Scenario:
    """One kind of request in the mix."""

    name: str
    weight: float
    messages: Callable[[random.Random], list[dict[str, Any]]]
    max_tokens: int


def _user(prompts: list[str]) -> Callable[[random.Random], list[dict[str, Any]]]:
    return lambda rng: [{"role": "user", "content": rng.choice(prompts)}]


def long_conversation(rng: random.Random) -> list[dict[str, Any]]:
    """A system message, a few earlier turns and a follow-up question (fits the demo models' 512 tokens)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for question, answer in TURNS[: rng.randint(2, len(TURNS))]:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": rng.choice(FOLLOW_UPS)})
    return messages


SCENARIOS = (
    Scenario("short_chat", 0.35, _user(SHORT_CHAT), 12),
    Scenario("coding", 0.25, _user(CODING), 24),
    Scenario("math", 0.25, _user(MATH), 24),
    Scenario("long_context", 0.15, long_conversation, 16),
)
# Which model / reasoning_effort a request names: mostly routed, some explicit, some with an effort hint.
TARGETS: tuple[tuple[float, str, str | None], ...] = (
    (0.70, "frontier", None),
    (0.08, "frontier-light", None),
    (0.07, "frontier-reasoning", None),
    (0.05, "frontier", "minimal"),
    (0.05, "frontier", "high"),
    (0.05, "frontier", "low"),
)
STREAM_SHARE = 1 / 3
# Delta fields that carry generated tokens (vLLM names the thinking text reasoning_content or reasoning).
TOKEN_FIELDS = ("content", "reasoning_content", "reasoning", "tool_calls")


def build_request(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A scenario name and an OpenAI chat completion body drawn from the mix."""
    scenario = rng.choices(SCENARIOS, weights=[s.weight for s in SCENARIOS])[0]
    _, model, effort = rng.choices(TARGETS, weights=[t[0] for t in TARGETS])[0]
    body: dict[str, Any] = {
        "model": model,
        "messages": scenario.messages(rng),
        "max_tokens": scenario.max_tokens,
        "temperature": round(rng.uniform(0.0, 1.0), 2),
    }
    if effort is not None:
        body["reasoning_effort"] = effort
    if rng.random() < STREAM_SHARE:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return scenario.name, body


@dataclass
class StreamResult:
    """What a streamed answer carried."""

    chunks: int = 0
    ttft_s: float | None = None
    error: str | None = None
    done: bool = False


def read_sse(lines: Any, started: float, clock: Callable[[], float] = time.perf_counter) -> StreamResult:
    """Consume a whole OpenAI SSE stream (an iterable of text lines; read to its end so the connection can be
    reused), noting the first token and the first error event."""
    result = StreamResult()
    for line in lines:
        line = line.strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            result.done = True
            continue
        chunk = json.loads(data)
        if "error" in chunk:
            error = chunk["error"]
            result.error = (
                result.error or f"stream error: {error.get('code') or error.get('type')}: {error.get('message')}"
            )
            continue
        result.chunks += 1
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if result.ttft_s is None and any(delta.get(k) for k in TOKEN_FIELDS):
                result.ttft_s = clock() - started
    return result


def report_answer(
    fire: Callable[..., None],
    pool: str,
    reason: str | None,
    scenario: str | None,
    total_ms: float,
    ttft_ms: float | None,
    length: int,
) -> None:
    """Fire the custom statistics of one answered call (the rows listed in ``frontier.loadtest_scenarios``)."""

    def one(request_type: str, name: str, ms: float) -> None:
        fire(request_type=request_type, name=name, response_time=ms, response_length=length, exception=None, context={})

    one(f"pool:{pool}", "total", total_ms)
    if ttft_ms is not None:
        one(f"pool:{pool}", "ttft", ttft_ms)
    if reason is not None:
        one("decision", f"{pool}/{reason}", total_ms)
    if scenario is not None:
        one("scenario", scenario, total_ms)
