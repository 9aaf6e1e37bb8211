"""Every exit of a chat request gives back what it took (in-flight slot, engine stream, budget reservation),
and a budget of 0 reasoning calls gives 0 reasoning calls under disconnects, bursts, overflow and fallback.

Fake pools (the decision is stubbed: routing has its own tests); budgets and rate limits in a real Redis.
"""

import asyncio
import gc
import time
from dataclasses import dataclass

import pytest

from frontier.config import load_config
from frontier.errors import FrontierError
from frontier.redis_guard import FailOpen
from frontier.redis_writes import Write
from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.budget import ReasoningBudget
from frontier.security.keys import KeyInfo, KeyStore
from frontier.security.ratelimit import RateLimiter
from frontier.serving.access import AccessControl
from frontier.serving.holdings import settled
from frontier.serving.metrics import build_metrics
from frontier.serving.observer import Observer
from frontier.serving.pool_client import PoolResult, PoolSaturated, PoolUnavailable
from frontier.serving.router_service import RETRY_OF_HEADER, RouterService
from tests.support.budget import PREFIX, Counts, counts, redis_client, redis_server  # noqa: F401 - fixtures

CONFIG = load_config()
USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
SPENDER = KeyInfo(name="spender", reasoning_share_budget=1.0, reasoning_tokens_per_day=10**9)  # counted, never refused
NOBUDGET = KeyInfo(name="nobudget", reasoning_share_budget=0.0)


def _chunk(content=None, finish=None, usage=None):
    choices = [] if usage else [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices,
            **({"usage": usage} if usage else {})}  # fmt: skip


class FakeStream:
    """An engine stream: two tokens, a finish_reason chunk, the usage chunk; may wait before a chunk."""

    def __init__(self, gate_at=None, gate=None):
        self.chunks = [_chunk("a"), _chunk("b"), _chunk(finish="stop"), _chunk(usage=USAGE)]
        self.gate_at, self.gate = gate_at, gate
        self.closed = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.chunks:
            raise StopAsyncIteration
        if self.gate is not None and len(self.chunks) == 4 - self.gate_at:
            await self.gate.wait()
        return self.chunks.pop(0)

    async def aclose(self):
        self.closed = True


class FakePool:
    """Answers after ``gate`` (if any) opens, or fails with the scripted errors first; ``alive``: its probe."""

    def __init__(self, *errors, gate=None, stream_gate_at=None, alive=True):
        self.script, self.gate, self.stream_gate_at, self.alive = list(errors), gate, stream_gate_at, alive
        self.requests, self.streams = [], []
        self.entered = asyncio.Event()

    async def chat(self, request):
        self.requests.append(request)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.script:
            raise self.script.pop(0)
        if request.get("stream"):
            self.streams.append(FakeStream(self.stream_gate_at, self.gate if self.stream_gate_at else None))
            return PoolResult(chunks=self.streams[-1])
        message = {"role": "assistant", "content": "hi"}
        return PoolResult(response={"id": "x", "object": "chat.completion", "created": 1, "model": "m", "usage": USAGE,
                                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    async def check_health(self):
        if not self.alive:
            raise RuntimeError("no replica")


@dataclass
class Ctx:
    routed_by_policy: bool = True


class FakeOnline:
    """Decision logging whose round trip may wait at ``gate``; records what it was given."""

    def __init__(self, client, gate=None):
        self.client, self.gate, self.entered, self.logged, self.retries = client, gate, asyncio.Event(), [], []

    def decision_write(self, context, decision, key):
        return "chatcmpl-frtest", Write(self.client, FailOpen("decision logging"), lambda pipe: self._stage(pipe, context))

    def _stage(self, pipe, context):  # runs in the group commit, on the loop: the round trip waits for the gate
        self.entered.set()
        if self.gate is not None:
            execute = pipe.execute

            async def held(*args, **kwargs):
                await self.gate.wait()
                return await execute(*args, **kwargs)

            pipe.execute = held
        self.logged.append(context)
        pipe.ping()

    async def implicit_retry(self, retry_of, key):
        self.retries.append(retry_of)
        return True


class GatedAccess(AccessControl):
    """Access control that can wait inside admission, or just after its budget reservation is made."""

    admission_gate: asyncio.Event | None = None
    reservation_gate: asyncio.Event | None = None
    entered = None

    async def admit_chat(self, request, key):
        await self._wait(self.admission_gate)
        await super().admit_chat(request, key)

    async def reserve(self, decision, key, request, switching=None):
        result = await super().reserve(decision, key, request, switching)
        await self._wait(self.reservation_gate)
        return result

    async def _wait(self, gate):
        if gate is not None:
            self.entered.set()
            await gate.wait()


def _service(client, pool="reasoning", light=None, reasoning=None, online=None, config=CONFIG):
    access = GatedAccess(config, KeyStore([]), RateLimiter(client, prefix=PREFIX), ReasoningBudget(client, prefix=PREFIX))
    access.entered = asyncio.Event()
    pools = {"light": light or FakePool(), "reasoning": reasoning or FakePool()}
    observer = Observer(config.pools, build_metrics(config.observability))
    service = RouterService(config, None, pools, access=access, observer=observer, online=online)

    def decide(request, session=None):
        explicit = {"frontier-light": "light", "frontier-reasoning": "reasoning"}.get(request.model)
        if explicit or request.reasoning_effort == "high":
            return Decision(pool=explicit or "reasoning", reason="explicit" if explicit else "effort",
                            policy_version="t"), None  # fmt: skip
        return Decision(pool=pool, reason="policy", score=0.5, threshold=0.5, policy_version="t"), Ctx()

    service._decide = decide
    return service, pools


def _request(**kw):
    return ChatCompletionRequest.model_validate(
        {"model": "frontier", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20, **kw}
    )


def _budget(service):
    return service.access.budget


def _gauges_at_zero(service) -> bool:
    text = service.observer.metrics.exposition()[0].decode()
    gauges = [line for line in text.splitlines() if line.startswith("frontier_pool_inflight_requests{")]
    return service.inflight == {"light": 0, "reasoning": 0} and all(line.endswith(" 0.0") for line in gauges)


async def _eventually(condition, what, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        gc.collect()
        await asyncio.sleep(0.01)


RESERVED = 20 + 2  # max_tokens + the prompt at ~4 bytes a token ("hello": 5 bytes)


@pytest.mark.parametrize(
    ("stage", "charged"),
    [
        ("admission", Counts(0, 0, 0)),
        ("reservation", Counts(0, 0, 0)),  # the reservation made under the cancelled request is given back
        ("pool call", Counts(1, 1, RESERVED)),  # the engine may have started: the call and its tokens stand
        ("decision log", Counts(1, 1, RESERVED)),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_gone_before_the_answer_leaves_nothing_held(redis_client, stage, charged, stream):
    gate = asyncio.Event()
    reasoning = FakePool(gate=gate if stage == "pool call" else None)
    online = FakeOnline(redis_client, gate=gate if stage == "decision log" else None)
    service, pools = _service(redis_client, reasoning=reasoning, online=online)
    service.access.admission_gate = gate if stage == "admission" else None
    service.access.reservation_gate = gate if stage == "reservation" else None
    entered = {"pool call": reasoning.entered, "decision log": online.entered}.get(stage, service.access.entered)
    task = asyncio.create_task(service.chat(_request(stream=stream), SPENDER))
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()  # whatever was still running under the cancelled request finishes now
    await settled()
    assert _gauges_at_zero(service)
    assert all(s.closed for s in reasoning.streams)  # the engine's stream is closed even if never read
    assert counts(redis_client, _budget(service), "spender") == charged


@pytest.mark.parametrize(
    ("read", "tokens"),
    [
        (1, RESERVED),  # mid-stream
        (3, RESERVED),  # read up to finish_reason, gone before the final chunk: the reservation is charged
        (None, USAGE["total_tokens"]),  # read to the end: charged the engine's usage
    ],
)
async def test_a_stream_releases_however_far_the_client_reads(redis_client, read, tokens):
    service, pools = _service(redis_client)
    outcome = await service.chat(_request(stream=True), SPENDER)
    events = []
    async for event in outcome.stream:
        events.append(event)
        if len(events) == read:
            break
    await outcome.stream.aclose()  # what the server does when the client disconnects
    await settled()
    if read == 3:
        assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert _gauges_at_zero(service) and pools["reasoning"].streams[0].closed
    assert counts(redis_client, _budget(service), "spender") == Counts(1, 1, tokens)


async def test_a_stream_cancelled_while_waiting_for_a_token_or_never_read_releases(redis_client):
    gate = asyncio.Event()
    service, pools = _service(redis_client, reasoning=FakePool(gate=gate, stream_gate_at=2))
    gate.set()
    outcome = await service.chat(_request(stream=True), SPENDER)
    gate.clear()

    async def consume():
        async for _ in outcome.stream:
            pass

    task = asyncio.create_task(consume())
    await _eventually(lambda: service.inflight["reasoning"] == 1 and not task.done() and len(
        pools["reasoning"].streams[0].chunks) == 2, "the stream to wait")  # fmt: skip
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gauges_at_zero(service) and pools["reasoning"].streams[0].closed
    gate.set()
    unread = await service.chat(_request(stream=True), SPENDER)
    assert service.inflight["reasoning"] == 1
    del unread  # the response was never sent: dropping it closes the stream
    await _eventually(lambda: _gauges_at_zero(service) and pools["reasoning"].streams[1].closed, "release")
    await settled()
    assert counts(redis_client, _budget(service), "spender") == Counts(2, 2, 2 * RESERVED)


async def test_errors_give_back_calls_the_engines_never_worked_on(redis_client):
    refused = FrontierError(400, "This model's maximum context length is 512 tokens")
    service, pools = _service(redis_client, reasoning=FakePool(refused))
    with pytest.raises(FrontierError):
        await service.chat(_request(), SPENDER)
    await settled()
    assert counts(redis_client, _budget(service), "spender") == Counts(0, 0, 0)
    service, pools = _service(redis_client, reasoning=FakePool(PoolUnavailable("reasoning", "a"), alive=False))
    with pytest.raises(FrontierError) as err:
        await service.chat(_request(model="frontier-reasoning"), SPENDER)
    await settled()
    assert err.value.status_code == 503 and _gauges_at_zero(service)
    assert counts(redis_client, _budget(service), "spender") == Counts(1, 1, RESERVED)  # a replica failed mid-way


async def test_non_streamed_answer_is_charged_its_usage(redis_client):
    service, _ = _service(redis_client)
    outcome = await service.chat(_request(), SPENDER)
    await settled()
    assert outcome.body["usage"] == USAGE and _gauges_at_zero(service)
    assert counts(redis_client, _budget(service), "spender") == Counts(1, 1, USAGE["total_tokens"])


def _busy_light_config():
    data = CONFIG.model_dump()
    data["pools"]["light"]["overflow_inflight"] = 1
    return type(CONFIG).model_validate(data)


async def test_a_zero_budget_never_reaches_reasoning_through_overflow_or_fallback(redis_client):
    reasoning = FakePool()
    light = FakePool(PoolSaturated("light"), PoolUnavailable("light", "a"), alive=False)
    service, _ = _service(redis_client, pool="light", light=light, reasoning=reasoning, config=_busy_light_config())
    for status in (429, 503):  # saturated: would overflow; unavailable without a live replica: would fall back
        with pytest.raises(FrontierError) as err:
            await service.chat(_request(), NOBUDGET)
        assert err.value.status_code == status
    service.health.healthy["light"] = True
    held = await service.chat(_request(stream=True), NOBUDGET)  # light is now busy (its overflow bound is 1)
    busy = await service.chat(_request(), NOBUDGET)
    assert (busy.decision.pool, busy.decision.reason) == ("light", "budget")
    await held.stream.aclose()
    policy_reasoning = _service(redis_client, reasoning=reasoning)[0]
    assert (await policy_reasoning.chat(_request(), NOBUDGET)).decision.pool == "light"
    for asked in (_request(model="frontier-reasoning"), _request(reasoning_effort="high")):
        with pytest.raises(FrontierError) as err:
            await policy_reasoning.chat(asked, NOBUDGET)
        assert err.value.status_code == 429
    await settled()
    assert reasoning.requests == [] and _gauges_at_zero(service)
    assert counts(redis_client, _budget(service), "nobudget").reasoning == 0


async def test_a_burst_with_disconnects_and_overflow_stays_within_a_token_budget(redis_client):
    key = KeyInfo(name="few", reasoning_tokens_per_day=3 * RESERVED)  # three reasoning calls
    reasoning = FakePool()
    light = FakePool(*[PoolSaturated("light") for _ in range(20)])
    service, _ = _service(redis_client, pool="light", light=light, reasoning=reasoning)

    async def one(i):
        try:
            outcome = await service.chat(_request(stream=True, model="frontier-reasoning" if i % 3 else "frontier"), key)
        except FrontierError as exc:
            return exc.status_code
        async for _ in outcome.stream:
            break  # every client leaves after its first event
        await outcome.stream.aclose()
        return outcome.decision.pool

    results = await asyncio.gather(*(one(i) for i in range(60)))
    await settled()
    assert len(reasoning.requests) == results.count("reasoning") <= 3
    assert set(results) <= {"reasoning", "light", 429} and _gauges_at_zero(service)


async def test_re_asks_spend_the_feedback_rate_and_client_knobs_stay_out_of_the_controller(redis_client):
    online = FakeOnline(redis_client)
    service, _ = _service(redis_client, online=online)
    key = KeyInfo(name="asker", feedback_per_minute=1)  # a burst of one
    headers = {RETRY_OF_HEADER: "chatcmpl-frearlier"}
    for _ in range(3):
        outcome = await service.chat(_request(model="frontier-reasoning"), key, headers=headers)
        assert outcome.decision.pool == "reasoning"  # the request itself is served
    assert online.retries == ["chatcmpl-frearlier"]
    await service.chat(_request(frontier={"price_weight": 2.0}), key)
    await service.chat(_request(), key)
    assert [c.routed_by_policy for c in online.logged] == [False, True]


async def test_readiness_is_cached_no_pool_call_per_caller():
    class Counting(FakePool):
        calls = 0

        async def check_health(self):
            Counting.calls += 1
            await asyncio.sleep(0.01)
            raise RuntimeError("down")

    service = RouterService(CONFIG, None, {"light": FakePool(), "reasoning": Counting()})
    states = await asyncio.gather(*(service.health.current() for _ in range(50)))
    assert all(s == {"light": "ok", "reasoning": "unavailable: RuntimeError"} for s in states)
    assert Counting.calls <= 2  # the probe loop's rounds, not one per caller
