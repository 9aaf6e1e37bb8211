"""The overhead benchmark's baseline forwards every chat completion to the light pool as it came."""

import httpx

from frontier.serving.pool_client import PoolResult
from frontier.testing import forwarder


class _Light:
    def __init__(self, stream=False):
        self.bodies = []
        self.stream = stream

    async def chat(self, body):
        self.bodies.append(body)
        if not self.stream:
            return PoolResult(response={"id": "chatcmpl-1", "choices": []})

        async def chunks():
            yield {"id": "chatcmpl-1", "choices": [{"delta": {"content": "hi"}}]}

        return PoolResult(chunks=chunks())


def _client(light):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=forwarder.forwarding_app(light)), base_url="http://t")


async def test_a_request_goes_to_the_light_engine_and_its_answer_comes_back():
    light = _Light()
    async with _client(light) as client:
        r = await client.post("/v1/chat/completions", json={"model": forwarder.MODEL, "messages": [], "seed": 3})
    assert r.status_code == 200 and r.json() == {"id": "chatcmpl-1", "choices": []}
    assert light.bodies == [{"model": "frontier-light-engine", "messages": [], "seed": 3}]


async def test_a_stream_comes_back_as_server_sent_events():
    async with _client(_Light(stream=True)) as client:
        r = await client.post("/v1/chat/completions", json={"model": forwarder.MODEL, "messages": [], "stream": True})
    assert r.text == 'data: {"id":"chatcmpl-1","choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
