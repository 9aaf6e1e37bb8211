"""A key with a reasoning budget of 0 gets 0 reasoning calls on the real stack: under a burst that saturates
the light pool (overflow), with clients that disconnect mid-stream, and with explicit reasoning requests."""

import asyncio

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from frontier.feedback.redis_server import connect

pytestmark = pytest.mark.integration

BURST = 24  # the test stack's light pool takes 4 at once plus 8 queued: the rest is saturated
WANTS_REASONING = {"frontier": {"reasoning_share": 1.0}}  # the policy would pick reasoning for every request


def _reasoning_served(base_url: str) -> float:
    """Requests this router replica has decided and answered (or lost to a disconnect) on the reasoning pool."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("pool") == "reasoning"
        and sample.name in ("frontier_decisions_total", "frontier_request_duration_seconds_count")
    )


async def _one(client: openai.AsyncOpenAI, i: int) -> str:
    """One streamed request; every other client leaves after its first chunk."""
    try:
        async with client.chat.completions.with_streaming_response.create(
            model="frontier", messages=[{"role": "user", "content": f"Prove step by step that {i} + 1 > {i}."}],
            max_tokens=8, stream=True, extra_body=WANTS_REASONING,
        ) as response:  # fmt: skip
            pool = response.headers["x-frontier-pool"]
            async for _ in await response.parse():
                if i % 2:
                    break  # leaving the context closes the connection mid-stream
            return pool
    except openai.APIStatusError as exc:
        return str(exc.status_code)


def test_a_zero_budget_gives_zero_reasoning_calls_under_bursts_disconnects_and_overflow(
    base_url, api_keys, local_stack, stack_config
):
    before = _reasoning_served(base_url)

    async def burst():
        async with openai.AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key=api_keys["nobudget"], max_retries=0, timeout=120
        ) as client:
            return await asyncio.gather(*(_one(client, i) for i in range(BURST)))

    outcomes = asyncio.run(asyncio.wait_for(burst(), timeout=300))
    assert set(outcomes) <= {"light", "429", "503"}, outcomes
    assert "light" in outcomes
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_keys["nobudget"], max_retries=0, timeout=120)
    for extra in ({"model": "frontier-reasoning"}, {"model": "frontier", "reasoning_effort": "high"}):
        with pytest.raises(openai.RateLimitError) as err:
            client.chat.completions.create(messages=[{"role": "user", "content": "hi"}], max_tokens=2, **extra)
        assert err.value.response.json()["error"]["code"] == "reasoning_budget_exceeded"
    assert _reasoning_served(base_url) == before
    redis = connect(local_stack.redis.url, 2.0)
    slices = redis.keys(f"{stack_config.redis.key_prefix}:bud:calls:nobudget:*")
    assert slices and sum(int(redis.hget(s, "r") or 0) for s in slices) == 0
