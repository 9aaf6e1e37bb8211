"""Load and failure behaviour of the real stack: bursts, overflow, disconnects, a dying replica."""

import asyncio
import threading
import time

import httpx
import pytest
import ray

from frontier.testing.replicas import ongoing_requests, pool_replicas, router_replicas

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"


def _body(model="frontier-light", max_tokens=8, stream=False, **extra):
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], "max_tokens": max_tokens,
            "stream": stream, "ignore_eos": True, **extra}


async def _burst(base_url, headers, bodies):
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=400)) as client:
        return await asyncio.gather(*(client.post(f"{base_url}{CHAT}", json=b, headers=headers) for b in bodies))


def _wait_idle(timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    counts = ongoing_requests()
    while time.monotonic() < deadline and any(counts.values()):
        time.sleep(0.2)
        counts = ongoing_requests()
    return counts


def test_burst_of_ten_times_capacity_gets_only_200_or_429_and_drains(base_url, auth_headers, stack_config):
    light = stack_config.pools.light
    capacity = light.max_ongoing_requests + light.max_queued_requests
    responses = asyncio.run(_burst(base_url, auth_headers, [_body(max_tokens=16)] * (10 * capacity)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= light.max_ongoing_requests and statuses.count(429) > 0
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert _wait_idle(timeout_s=30) == {"light": 0, "reasoning": 0}
    after = httpx.post(f"{base_url}{CHAT}", json=_body(), headers=auth_headers, timeout=60)
    assert after.status_code == 200


def test_saturated_reasoning_pool_overflows_routed_requests_to_light(base_url, auth_headers, stack_config):
    bound = stack_config.pools.reasoning.overflow_inflight
    bodies = [_body(model="frontier", max_tokens=48, frontier={"reasoning_share": 1.0})] * (4 * bound)
    responses = asyncio.run(_burst(base_url, auth_headers, bodies))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    decisions = [(r.headers["x-frontier-pool"], r.headers["x-frontier-reason"]) for r in responses]
    assert ("reasoning", "policy") in decisions
    assert ("light", "overflow") in decisions
    overflowed = [r.json()["frontier"] for r in responses if r.headers["x-frontier-reason"] == "overflow"]
    assert all(d["pool"] == "light" and d["reason"] == "overflow" for d in overflowed)


async def _stream_and_disconnect(client, base_url, headers, started):
    body = _body(model="frontier", max_tokens=400, stream=True, frontier={"reasoning_share": 0.5})
    async with client.stream("POST", f"{base_url}{CHAT}", json=body, headers=headers) as r:
        if r.status_code != 200:
            return r.status_code
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                started.append(1)
                break
        return 200  # leaving the block closes the connection mid-stream


def test_streaming_clients_that_disconnect_free_the_engines(base_url, auth_headers):
    started: list[int] = []

    async def run():
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as client:
            return await asyncio.gather(*(_stream_and_disconnect(client, base_url, auth_headers, started)
                                          for _ in range(100)))

    statuses = asyncio.run(run())
    assert set(statuses) <= {200, 429}
    assert len(started) >= 20, statuses
    assert _wait_idle(timeout_s=5.0) == {"light": 0, "reasoning": 0}


def test_killing_a_pool_replica_under_load_loses_at_most_one_percent(base_url, auth_headers):
    stop = threading.Event()
    results: list[tuple[int, str]] = []

    def worker():
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                r = client.post(f"{base_url}{CHAT}", headers=auth_headers,
                                json=_body(model="frontier", max_tokens=8, frontier={"reasoning_share": 0.0}))
                results.append((r.status_code, r.headers.get("x-frontier-reason", "")))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    victim = pool_replicas()["light"][0]
    ray.kill(victim, no_restart=True)
    time.sleep(12)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    failures = [s for s, _ in results if s != 200]
    assert len(results) >= 20
    assert len(failures) <= 0.01 * len(results), (failures, len(results))
    assert all(s in (429, 503) for s in failures)  # only retryable ones
    # The router steered routed traffic around the dead pool instead of waiting for it.
    assert any(reason in ("fallback", "overflow") for _, reason in results)
    # Serve replaces the replica and explicit light requests work again.
    deadline = time.monotonic() + 240
    status = None
    while time.monotonic() < deadline:
        status = httpx.post(f"{base_url}{CHAT}", json=_body(), headers=auth_headers, timeout=60).status_code
        if status == 200 and pool_replicas().get("light"):
            break
        time.sleep(2)
    assert status == 200


def test_a_killed_router_replica_is_replaced_on_the_same_port(base_url, auth_headers):
    # With direct ingress the router replica itself listens on server.port: its replacement must too, once
    # the dead replica's connections have left TIME_WAIT (so open some first).
    with httpx.Client(timeout=60) as client:
        for _ in range(4):
            assert client.post(f"{base_url}{CHAT}", json=_body(), headers=auth_headers).status_code == 200
        (victim,) = router_replicas()
        ray.kill(victim, no_restart=True)
        time.sleep(1)
    deadline = time.monotonic() + 240
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.post(f"{base_url}{CHAT}", json=_body(), headers=auth_headers, timeout=30).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            break
        time.sleep(1)
    assert status == 200
    assert len(router_replicas()) == 1


def test_redis_restart_under_load_keeps_completions_and_loses_no_accepted_feedback(base_url, api_keys, local_stack,
                                                                                 stack_config):
    from frontier.feedback.keys import Keys
    from frontier.feedback.redis_server import connect

    auth_headers = {"Authorization": f"Bearer {api_keys['steady']}"}  # rate limit and budget live in Redis
    redis_server = local_stack.redis.embedded
    assert redis_server is not None
    keys = Keys(stack_config.redis.key_prefix)
    redis_client = connect(local_stack.redis.url, 2.0)
    applied_before = int(redis_client.hget(keys.online, "applied") or 0)
    stop = threading.Event()
    statuses: list[int] = []
    pending: list[tuple[str, float]] = []  # routed completions (and when they came) still to be judged
    accepted: list[str] = []
    feedback_statuses: list[int] = []

    def worker():
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                r = client.post(f"{base_url}{CHAT}", headers=auth_headers, json=_body(model="frontier", max_tokens=4))
                statuses.append(r.status_code)
                cid = r.json().get("id", "") if r.status_code == 200 else ""
                if cid.startswith("chatcmpl-fr"):
                    pending.append((cid, time.monotonic()))

    def feedback_giver():
        # Like a user who reads the answer for a second before rating it, and retries on 503.
        with httpx.Client(timeout=30) as client:
            while not (stop.is_set() and not pending):
                if not pending or time.monotonic() - pending[0][1] < 1.0:
                    time.sleep(0.05)
                    continue
                cid, _ = pending.pop(0)
                f = client.post(f"{base_url}/v1/feedback", headers=auth_headers, json={"id": cid, "rating": "up"})
                feedback_statuses.append(f.status_code)
                if f.status_code == 202:
                    accepted.append(cid)
                else:
                    assert f.status_code == 503 and f.headers["retry-after"], f.text  # refused, never lost
                    pending.append((cid, time.monotonic()))
                    time.sleep(0.2)

    threads = [threading.Thread(target=worker) for _ in range(3)] + [threading.Thread(target=feedback_giver)]
    for t in threads:
        t.start()
    time.sleep(3)
    redis_server.stop()
    time.sleep(4)
    redis_server.start()  # same port and data directory: the AOF is replayed
    time.sleep(5)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert len(statuses) >= 20
    assert statuses.count(200) >= 0.999 * len(statuses), statuses
    assert accepted and 503 in feedback_statuses and not pending  # some feedback came while Redis was down
    deadline = time.monotonic() + 30
    applied = applied_before
    while time.monotonic() < deadline and applied < applied_before + len(accepted):
        time.sleep(0.5)
        applied = int(redis_client.hget(keys.online, "applied") or 0)
    assert applied == applied_before + len(accepted)  # every accepted event applied exactly once
    assert all(redis_client.hget(keys.decision(cid), "fb") for cid in accepted)
    assert httpx.get(f"{base_url}/readyz", timeout=30).json().get("redis") == "ok"
