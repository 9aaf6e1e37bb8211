"""The Redis fault matrix on the real stack: chat keeps being served, feedback is 202 or 503 (never 500),
and every feedback answered 202 is applied once Redis is back. (Redis down when a replica starts is a unit
cell, tests/unit/test_redis_faults.py: restarting the only router replica here costs its port quarantine.)"""

import shutil
import time
from collections.abc import Callable

import httpx
import pytest

from frontier.feedback.keys import GROUP, Keys
from frontier.feedback.redis_server import connect

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"


def _chat(base_url: str, headers: dict) -> httpx.Response:
    body = {"model": "frontier", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}
    return httpx.post(f"{base_url}{CHAT}", json=body, headers=headers, timeout=120)


def _routed_ids(base_url: str, headers: dict, n: int) -> list[str]:
    """n routed completions whose decisions were logged (ids that can take feedback); right after a Redis
    fault the decision log may still be in its fail-open cool-down, so a few answers may carry none."""
    ids: list[str] = []
    for _ in range(n + 20):
        r = _chat(base_url, headers)
        assert r.status_code == 200, r.text
        if r.json()["id"].startswith("chatcmpl-fr"):
            ids.append(r.json()["id"])
        if len(ids) == n:
            return ids
        time.sleep(0.2)
    raise AssertionError(f"only {len(ids)} of {n} decisions were logged")


def _feedback(base_url: str, headers: dict, cid: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/feedback", json={"id": cid, "rating": "up"}, headers=headers, timeout=30)


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture
def steady(api_keys):
    return {"Authorization": f"Bearer {api_keys['steady']}"}  # its rate limit and budget live in Redis


@pytest.fixture
def admin(local_stack):
    client = connect(local_stack.redis.url, 2.0)
    yield client
    client.close()


def _oom(admin):
    original = admin.config_get("maxmemory")["maxmemory"]
    admin.config_set("maxmemory", "1")  # noeviction: every write is refused
    return lambda: admin.config_set("maxmemory", original)


def _readonly(admin):
    admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # a replica of nothing: writes get READONLY
    return lambda: admin.execute_command("REPLICAOF", "NO", "ONE")


@pytest.mark.parametrize("fault", ["oom", "readonly"])
def test_refused_writes_keep_chat_and_lose_no_accepted_feedback(base_url, steady, admin, stack_config, fault):
    keys = Keys(stack_config.redis.key_prefix)
    _wait(lambda: admin.xlen(keys.stream) == 0, "earlier feedback to be applied")
    applied_before = int(admin.hget(keys.online, "applied") or 0)
    *judged, spare = _routed_ids(base_url, steady, 4)
    assert all(_feedback(base_url, steady, cid).status_code == 202 for cid in judged)
    clear = {"oom": _oom, "readonly": _readonly}[fault](admin)
    try:
        for _ in range(3):
            assert _chat(base_url, steady).status_code == 200  # limits and decision logging fail open
        r = _feedback(base_url, steady, spare)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
        ready = httpx.get(f"{base_url}/readyz", timeout=30)
        assert ready.status_code == 200 and {"redis", "workers"} <= set(ready.json())
    finally:
        clear()
    _wait(lambda: _feedback(base_url, steady, spare).status_code == 202, "feedback to be accepted again")
    _wait(lambda: int(admin.hget(keys.online, "applied") or 0) == applied_before + 4, "accepted feedback applied")
    _consumer_ok(base_url)


def test_keys_deleted_under_the_consumer_lose_nothing_queued(base_url, steady, admin, stack_config):
    keys = Keys(stack_config.redis.key_prefix)
    ids = _routed_ids(base_url, steady, 6)
    assert all(_feedback(base_url, steady, cid).status_code == 202 for cid in ids[:3])
    with admin.pipeline(transaction=True) as pipe:  # whatever is still queued must survive the deletion
        pipe.xlen(keys.stream)
        pipe.xgroup_destroy(keys.stream, GROUP)
        pipe.delete(keys.online, keys.version, keys.ctl)
        queued = pipe.execute()[0]
    assert all(_feedback(base_url, steady, cid).status_code == 202 for cid in ids[3:])
    assert _chat(base_url, steady).status_code == 200
    _wait(lambda: int(admin.hget(keys.online, "applied") or 0) == queued + 3, "queued feedback applied")
    _consumer_ok(base_url)


def _consumer_ok(base_url: str) -> None:
    _wait(lambda: httpx.get(f"{base_url}/readyz", timeout=30).json()["workers"]["feedback-consumer"]["state"] == "ok",
          "the consumer to report ok")


def test_redis_restarted_empty_keeps_chat_and_applies_new_feedback(base_url, steady, admin, local_stack, stack_config):
    keys = Keys(stack_config.redis.key_prefix)
    server = local_stack.redis.embedded
    assert server is not None
    _wait(lambda: admin.xlen(keys.stream) == 0, "earlier feedback to be applied")
    server.kill()
    for path in server.data_dir.glob("*.aof*"):
        path.unlink()
    shutil.rmtree(server.data_dir / "appendonlydir", ignore_errors=True)
    assert _chat(base_url, steady).status_code == 200  # Redis down: served, limits fail open
    server.start()
    _wait(lambda: httpx.get(f"{base_url}/readyz", timeout=30).json()["redis"] == "ok", "readiness to see Redis")
    assert admin.hget(keys.online, "applied") in (None, b"0")  # empty: the consumer recreated the state
    ids = _routed_ids(base_url, steady, 3)
    assert all(_feedback(base_url, steady, cid).status_code == 202 for cid in ids)
    _wait(lambda: int(admin.hget(keys.online, "applied") or 0) == 3, "feedback after the restart to be applied")
    _consumer_ok(base_url)
