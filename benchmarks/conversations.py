"""Conversations: time to first token and prefill tokens per turn of multi-turn conversations, routed turn by turn
against sticky conversations (``router.session``), on the real stack (CPU demo pools, embedded Redis).

Each arm starts its own stack in a child process (the same config but for the arm's settings) and replays the same
scripted conversations one after the other: an opener, then ordinary and harder follow-ups, the client resending
the whole history each turn (no identity: the history hash recognises it), streamed. Per turn it reads the pool,
the time to the first event, the prompt tokens and the prompt tokens the engine served from its prefix cache
(``usage.prompt_tokens_details.cached_tokens``); prefill tokens = prompt - cached. Arms:

- ``per_turn``: router.session.enabled false (every turn routed on its own, as before conversations);
- ``sticky``: the defaults;
- with ``--affinity``: ``sticky_2light`` and ``sticky_2light_affinity``, two light replicas without and with
  Ray Serve LLM's prefix-cache-aware replica choice (every conversation is then forced onto light).

The last line is a JSON object with every figure and the sticky/per-turn ratios of follow-up turns.

    .venv/bin/python benchmarks/conversations.py [--conversations 6] [--turns 10] [--max-tokens 8] [--affinity
        [--affinity-only]]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


from frontier.testing.stack import running_stack, test_config  # noqa: E402

OPENERS = [
    "What is the capital of France?",
    "Think step by step: prove that the square root of 2 is irrational.",
    "Write a haiku about rain.",
    "Solve for x step by step: 3x + 7 = 22.",
    "hi! what can you do?",
    "Explain recursion with a short Python example.",
]
FOLLOW_UPS = [
    "thanks!",
    "and in one word?",
    "Think step by step: why is that true?",
    "ok, another example?",
    "Prove it briefly.",
    "why?",
    "Solve 17 * 23 step by step.",
    "go on",
    "summarise that",
]


def conversation_script(index: int, turns: int) -> list[str]:
    """The user turns of conversation ``index``: an opener, then follow-ups (a rotation, so they differ)."""
    follow = [FOLLOW_UPS[(index + t) % len(FOLLOW_UPS)] for t in range(turns - 1)]
    return [OPENERS[index % len(OPENERS)], *follow]


def stream_turn(http: httpx.Client, url: str, messages: list[dict], max_tokens: int, model: str) -> dict:
    """One streamed turn: its reply, decision, time to first event (ms) and usage."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    start, ttft, text, final = time.perf_counter(), None, [], {}
    with http.stream("POST", url, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
            chunk = json.loads(line[6:])
            assert "error" not in chunk, chunk
            for choice in chunk.get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
            if "frontier" in chunk:
                final = chunk
    usage = final.get("usage") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    decision = final["frontier"]
    return {"reply": "".join(text), "pool": decision["pool"], "reason": decision["reason"],
            "score": decision.get("score"), "threshold": decision.get("threshold"), "margin": decision.get("margin"),
            "ttft_ms": ttft, "prompt_tokens": usage.get("prompt_tokens", 0), "cached_tokens": cached}  # fmt: skip


def run_arm(arm: str, conversations: int, turns: int, max_tokens: int) -> dict:
    """Start this arm's stack and replay every conversation; the per-turn records."""
    config = test_config()
    data = config.model_dump()
    data["router"]["session"]["enabled"] = arm != "per_turn"
    if arm.startswith("sticky_2light"):
        data["pools"]["light"]["autoscaling"].update(min_replicas=2, max_replicas=2)
        data["pools"]["light"]["prefix_affinity"]["enabled"] = arm.endswith("affinity")
        data["server"]["ray_num_cpus"] = 16  # logical CPUs: three pool replicas and their placement groups fit
    config = type(config).model_validate(data)
    model = "frontier-light" if arm.startswith("sticky_2light") else "frontier"
    records, truncated = [], 0
    with running_stack(config) as base, httpx.Client(timeout=300) as http:
        url = f"{base}/v1/chat/completions"
        stream_turn(http, url, [{"role": "user", "content": "warm up"}], max_tokens, model)
        for c in range(conversations):
            messages = [{"role": "system", "content": f"Answer briefly. Conversation {c}."}]
            for t, text in enumerate(conversation_script(c, turns)):
                messages.append({"role": "user", "content": text})
                try:
                    turn = stream_turn(http, url, messages, max_tokens, model)
                except httpx.HTTPStatusError as exc:  # the history outgrew the pool's context: the conversation ends
                    if exc.response.status_code != 400:
                        raise
                    truncated += 1
                    break
                messages.append({"role": "assistant", "content": turn.pop("reply")})
                records.append({"conversation": c, "turn": t, **turn})
    return {"arm": arm, "turns": records, "truncated_conversations": truncated}


def summarise(records: list[dict]) -> dict:
    """Means over follow-up turns (turn > 0), pool switches and reasons."""
    follow = [r for r in records if r["turn"] > 0]
    switches = sum(
        1 for a, b in zip(records, records[1:], strict=False) if b["turn"] > 0 and a["pool"] != b["pool"]
    )
    reasons: dict[str, int] = {}
    for r in follow:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {
        "follow_up_turns": len(follow),
        "prefill_tokens_per_follow_up": statistics.fmean(r["prompt_tokens"] - r["cached_tokens"] for r in follow),
        "prompt_tokens_per_follow_up": statistics.fmean(r["prompt_tokens"] for r in follow),
        "ttft_ms_follow_up_mean": statistics.fmean(r["ttft_ms"] for r in follow),
        "ttft_ms_follow_up_p50": statistics.median(r["ttft_ms"] for r in follow),
        "pool_switches": switches,
        "switch_decisions": [{k: r[k] for k in ("conversation", "turn", "pool", "score", "threshold", "margin")}
                             for r in follow if r["reason"] == "session_switch"],
        "follow_up_reasons": reasons,
        "reasoning_share": sum(r["pool"] == "reasoning" for r in records) / len(records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--affinity", action="store_true", help="also compare two light replicas with/without affinity")
    parser.add_argument("--affinity-only", action="store_true", help="with --affinity: only the two-replica arms")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # a child process: run one arm, write --out
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        Path(args.out).write_text(json.dumps(run_arm(args.arm, args.conversations, args.turns, args.max_tokens)))
        return
    arms = ["per_turn", "sticky"] * (not args.affinity_only) + (["sticky_2light", "sticky_2light_affinity"] if args.affinity else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in arms:  # one stack at a time, each in its own process (its own Ray driver)
            out = Path(tmp) / f"{arm}.json"
            subprocess.run([sys.executable, __file__, "--arm", arm, "--out", str(out), "--conversations",
                            str(args.conversations), "--turns", str(args.turns), "--max-tokens", str(args.max_tokens)],
                           check=True)  # fmt: skip
            run = json.loads(out.read_text())
            results[arm] = {**summarise(run["turns"]), "truncated_conversations": run["truncated_conversations"]}
            print(arm, json.dumps(results[arm]), flush=True)
    summary = {"conversations": args.conversations, "turns": args.turns, "arms": results}
    if not args.affinity_only:
        base, sticky = results["per_turn"], results["sticky"]
        summary["prefill_ratio_sticky_vs_per_turn"] = sticky["prefill_tokens_per_follow_up"] / max(
            base["prefill_tokens_per_follow_up"], 1e-9
        )
        summary["ttft_ratio_sticky_vs_per_turn"] = sticky["ttft_ms_follow_up_mean"] / base["ttft_ms_follow_up_mean"]
    if args.affinity:
        plain, affinity = results["sticky_2light"], results["sticky_2light_affinity"]
        summary["prefill_ratio_affinity_vs_plain"] = affinity["prefill_tokens_per_follow_up"] / max(
            plain["prefill_tokens_per_follow_up"], 1e-9
        )
        summary["ttft_ratio_affinity_vs_plain"] = affinity["ttft_ms_follow_up_mean"] / plain["ttft_ms_follow_up_mean"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
