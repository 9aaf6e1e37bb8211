"""Hostile chat request bodies: adversarial prompts at the body limit, and generated malformed bodies.

Shared by the unit tests (``tests/unit/test_hostile_*.py``) and ``benchmarks/hostile_inputs.py``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

CHAT_PATH = "/v1/chat/completions"
ERROR_FIELDS = {"message", "type", "param", "code"}

# Prompts that made features, tokenisers or regexes slow: long digit runs, operator runs, floods of code
# and math markers, multibyte text (4 bytes per character at most).
ADVERSARIAL_PROMPTS: dict[str, Callable[[int], str]] = {
    "digits": lambda n: "7" * n,
    "operators": lambda n: "1+" * (n // 2),
    "code_markers": lambda n: ("```\ndef f(x):\n    return x; {\nimport os\n#include <a>\nSELECT 1;\n" * n)[:n],
    "math_markers": lambda n: ("12*34=408 \\frac{1}{2} $5 % solve the equation, how many? " * n)[:n],
    "multibyte": lambda n: ("数学证明∑∫😀🧮" * n)[: n // 3],
}

FIELDS = [
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "n", "seed", "stop", "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "response_format",
    "reasoning_effort", "frontier", "user", "metadata", "chat_template_kwargs", "top_k", "min_p", "ignore_eos",
    "stop_token_ids", "chat_template", "guided_json", "\ud800", "",
]


def chat_body(prompt: str, model: str = "frontier", **fields: Any) -> dict[str, Any]:
    """A minimal chat request around one user prompt."""
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **fields}


def encode(body: Any, ensure_ascii: bool = False) -> bytes:
    """JSON bytes of ``body`` as a careless client would send them: NaN and Infinity as literals, lone
    surrogates either escaped or written as (invalid) UTF-8."""
    return json.dumps(body, allow_nan=True, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def adversarial_body(kind: str, body_bytes: int, model: str = "frontier") -> bytes:
    """A chat request of at most ``body_bytes`` bytes whose prompt is the ``kind`` adversarial text."""
    prompt = ADVERSARIAL_PROMPTS[kind](body_bytes)
    raw = encode(chat_body(prompt, model))
    while len(raw) > body_bytes:
        prompt = prompt[: int(len(prompt) * body_bytes / len(raw)) - 64]
        raw = encode(chat_body(prompt, model))
    return raw


def _value(rng: random.Random, depth: int = 0) -> Any:
    """One hostile JSON value."""
    kind = rng.randrange(14 if depth < 3 else 10)
    if kind == 0:
        return rng.choice([None, True, False, "", 0, -1])
    if kind == 1:
        return rng.choice([2**64, -(2**63) - 1, 10**300, 2**31])
    if kind == 2:
        return rng.choice([float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 5e-324])
    if kind == 3:
        return "\ud800" if rng.random() < 0.5 else "ok\udfff" + "x" * rng.randrange(10)
    if kind == 4:
        return rng.choice("7+=`{;") * rng.choice([1, 300, 20_000])
    if kind == 5:
        return "数😀" * rng.randrange(1, 2000)
    if kind == 6:
        return rng.uniform(-1e6, 1e6)
    if kind == 7:
        return rng.choice(["user", "system", "tool", "wizard", "frontier", "frontier-reasoning", "auto", "high"])
    if kind == 8:
        nested: Any = rng.choice([[], {}, "x"])
        for _ in range(rng.choice([10, 33, 100, 900])):
            nested = [nested] if rng.random() < 0.5 else {"a": nested}
        return nested
    if kind == 9:
        return [rng.choice(["a", 1, None])] * rng.choice([17, 301, 5000])
    if kind == 10:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 11:
        return {rng.choice(FIELDS + ["type", "text", "role", "content", "name"]): _value(rng, depth + 1)
                for _ in range(rng.randrange(4))}
    if kind == 12:
        return [{"role": rng.choice(["user", "assistant", "bogus"]), "content": _value(rng, depth + 1)}]
    return [{"type": rng.choice(["text", "image_url", "", 7]), "text": _value(rng, depth + 1)}] * rng.randrange(1, 200)


def _raw(rng: random.Random) -> bytes:
    """Bytes that are not a well-formed JSON object."""
    valid = encode(chat_body("hi"))
    return rng.choice([
        b"", b"null", b"[]", b'"x"', b"{", valid[: rng.randrange(len(valid))],
        bytes(rng.randrange(256) for _ in range(64)),
        b'{"model":"frontier","messages":[{"role":"user","content":"\\ud800"}]}',
        b'{"model":"frontier","messages":[{"role":"user","content":"a"}],"temperature":NaN}',
        b'{"model":"frontier","messages":[{"role":"user","content":"a"}],"seed":' + b"9" * 5000 + b"}",
        b'{"model":"frontier","messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"model":"frontier","messages":[{"role":"user","content":"\xff\xfe"}]}',
    ])


def hostile_body(rng: random.Random) -> bytes:
    """One generated hostile request body (a valid request with hostile fields, or something worse)."""
    shape = rng.randrange(4)
    if shape == 0:
        return _raw(rng)
    if shape == 1:
        return encode(_value(rng), ensure_ascii=rng.random() < 0.5)
    body: dict[str, Any] = chat_body("hello", max_tokens=4)
    for _ in range(rng.randrange(1, 4)):
        body[rng.choice(FIELDS)] = _value(rng)
    if shape == 3:
        body["messages"] = [{"role": "user", "content": _value(rng)}]
    return encode(body, ensure_ascii=rng.random() < 0.5)


def hostile_bodies(seed: int, count: int) -> Iterator[bytes]:
    """``count`` hostile bodies, the same for the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        yield hostile_body(rng)


def response_problem(status: int, content_type: str, content: bytes) -> str | None:
    """Why a router answer to a hostile body is wrong (a 5xx, or an error not in the OpenAI shape); None if fine."""
    if status >= 500:
        return f"status {status}: {content[:300]!r}"
    if status >= 400:
        try:
            payload = json.loads(content)
        except ValueError:
            return f"status {status} with a body that is not JSON: {content[:300]!r}"
        error = payload.get("error") if isinstance(payload, dict) and set(payload) == {"error"} else None
        if not isinstance(error, dict) or set(error) != ERROR_FIELDS or not error["message"]:
            return f"status {status} not in the OpenAI error shape: {content[:300]!r}"
        return None
    if status != 200:
        return f"unexpected status {status}"
    if content_type.startswith("text/event-stream"):
        return None if content.rstrip().endswith(b"data: [DONE]") else f"stream without [DONE]: {content[-300:]!r}"
    payload = json.loads(content)
    return None if "frontier" in payload else f"200 without the decision: {content[:300]!r}"
