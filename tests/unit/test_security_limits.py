"""Input limits: the pure request checks and the body-size middleware (413 without reading the body)."""

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from frontier.config import LimitsConfig
from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest
from frontier.security.limits import BodySizeLimitMiddleware, check_request_limits, prompt_bytes, read_body_limited
from frontier.serving.http.responses import install_error_handlers

LIMITS = LimitsConfig(max_body_bytes=1024, max_messages=4, max_tokens=100, max_bytes_per_token=4)


def _request(n_messages=1, text="hi", **fields):
    messages = [{"role": "user", "content": text} for _ in range(n_messages)]
    return ChatCompletionRequest.model_validate({"model": "frontier", "messages": messages, **fields})


def _refused(request, max_model_len=None):
    with pytest.raises(FrontierError) as err:
        check_request_limits(request, LIMITS, max_model_len)
    assert err.value.status_code == 400
    assert set(err.value.body()["error"]) == {"message", "type", "param", "code"}
    return err.value


def test_a_request_within_every_limit_passes():
    check_request_limits(_request(4, max_tokens=100), LIMITS)
    check_request_limits(_request(1, "x" * 40, max_tokens=9), LIMITS, max_model_len=20)


def test_too_many_messages():
    assert _refused(_request(5)).param == "messages"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_too_many_tokens_asked(field):
    err = _refused(_request(**{field: 101}))
    assert (err.param, err.code) == (field, "max_tokens_too_large")
    err = _refused(_request(**{field: 20}), max_model_len=20)
    assert (err.param, err.code) == (field, "context_length_exceeded")


def test_a_prompt_that_cannot_fit_the_pool_context():
    request = _request(2, "é" * 21)  # 2 x 42 bytes > 20 tokens x 4 bytes
    assert prompt_bytes(request) == 84
    assert _refused(request, max_model_len=20).code == "context_length_exceeded"
    check_request_limits(request, LIMITS)  # without a pool limit only the other checks apply
    parts = _request(1, [{"type": "text", "text": "ab"}, {"type": "image_url", "image_url": {"url": "x" * 500}}])
    assert prompt_bytes(parts) == 2


class Echo(BaseModel):
    text: str


def _app(max_bytes=1024):
    app = FastAPI()
    install_error_handlers(app)
    calls = []

    @app.post("/echo")
    async def echo(body: Echo):
        calls.append(body.text)
        return {"n": len(body.text)}

    @app.post("/raw")
    async def raw(request: Request):
        return {"n": len(await read_body_limited(request, 2048))}

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)
    return app, calls


def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _is_413(response):
    assert response.status_code == 413
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"


async def test_bodies_under_the_limit_are_served():
    app, calls = _app()
    async with _client(app) as client:
        response = await client.post("/echo", json={"text": "x" * 900})
    assert response.status_code == 200 and response.json() == {"n": 900}
    assert len(calls) == 1


async def test_a_declared_oversize_body_gets_413_and_the_route_never_runs():
    app, calls = _app()
    async with _client(app) as client:
        _is_413(await client.post("/echo", json={"text": "x" * 2000}))
    assert calls == []


async def test_a_streamed_oversize_body_without_content_length_gets_413():
    app, calls = _app()

    async def chunks():
        yield b'{"text": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}'

    async with _client(app) as client:
        _is_413(await client.post("/echo", content=chunks()))
    assert calls == []


async def test_at_most_the_limit_plus_one_chunk_is_read():
    app, _ = _app(max_bytes=1024)
    pulled, sent = [], []
    total_chunks = 1000

    async def receive():
        pulled.append(512)
        more = len(pulled) < total_chunks
        return {"type": "http.request", "body": b"x" * 512, "more_body": more}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "server": ("test", 80),
        "client": ("c", 1),
    }
    await BodySizeLimitMiddleware(app, 1024)(scope, receive, send)
    assert sum(pulled) <= 1024 + 512
    assert sent[0]["status"] == 413

    pulled.clear()
    sent.clear()
    declared = {**scope, "headers": [(b"content-length", b"1000000000")]}
    await BodySizeLimitMiddleware(app, 1024)(declared, receive, send)
    assert pulled == [] and sent[0]["status"] == 413


async def test_read_body_limited_for_routes_that_read_the_body_themselves():
    app, _ = _app(max_bytes=10_000)
    async with _client(app) as client:
        assert (await client.post("/raw", content=b"y" * 2048)).json() == {"n": 2048}
        _is_413(await client.post("/raw", content=b"y" * 2049))
