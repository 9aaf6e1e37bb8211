"""The pool's JSON calls: vLLM's own request checks are a client's 400 naming the parameter (never a 500), the
response comes back whole, and the router's client turns bytes and error bodies into answers and errors."""

import asyncio

import orjson
import pytest

from frontier.errors import FrontierError
from frontier.serving.pool_client import PoolUnavailable, ServeLLMPoolClient
from frontier.serving.pool_server import PoolServer, carries_output

REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


class _Response:
    def __init__(self, body):
        self.body = body

    def model_dump_json(self):
        return orjson.dumps(self.body).decode()


class _Serving:
    """vLLM's OpenAIServingChat, reduced to what the pool calls."""

    def __init__(self, raises=None):
        self.requests = []
        self.raises = raises

    async def create_chat_completion(self, request, raw_request=None):
        if self.raises is not None:
            raise self.raises
        self.requests.append(request)
        return _Response({"id": "chatcmpl-1", "choices": [], "usage": {"total_tokens": 3}})

    def create_error_response(self, exc):
        class Error:
            def model_dump(self):
                return {"error": {"message": str(exc), "type": "BadRequestError", "code": 400}}

        return Error()


def _server(serving):
    """PoolServer's JSON wrappers on a stand-in without an engine to start (LLMServer's constructor starts one)."""

    class Server:
        _engine_request = PoolServer._engine_request
        chat_json = PoolServer.chat_json
        chat_stream_json = PoolServer.chat_stream_json
        engine = type("Engine", (), {"_oai_serving_chat": serving})()

        async def _maybe_add_request_id_to_request(self, request):
            return None

        async def _run_request(self, request, engine_method, batch_output_stream):
            assert (engine_method, batch_output_stream) == ("chat", False)
            return _tokens(request)

        def _batch_output_stream(self, generator):
            from ray.llm._internal.serve.utils.batcher import Batcher

            return Batcher(generator, interval_ms=30).stream()

    return Server()


def _sse(delta):
    return "data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta}]}).decode() + "\n\n"


async def _tokens(request):
    yield _sse({"role": "assistant", "content": ""})
    for i in range(request.max_tokens):
        yield _sse({"content": str(i)})
        await asyncio.sleep(0.002)


def test_the_pool_validates_the_json_request_with_vllms_model_and_answers_json_bytes():
    serving = _Serving()
    answer = asyncio.run(_server(serving).chat_json(orjson.dumps(REQUEST)))
    assert orjson.loads(answer)["usage"] == {"total_tokens": 3}
    [request] = serving.requests
    assert type(request).__name__ == "ChatCompletionRequest" and request.max_tokens == 4


def test_an_engine_request_check_failing_is_a_400_naming_the_parameter():
    serving = _Serving()
    # vLLM refuses an empty tool list (Frontier's own schema does too; this is the second line of defence).
    answer = asyncio.run(_server(serving).chat_json(orjson.dumps({**REQUEST, "tools": []})))
    assert answer["error"]["code"] == 400 and answer["error"]["param"] == "tools"
    assert serving.requests == []  # refused before the engine


def test_a_pydantic_type_error_is_a_400_too_and_streams_say_it_first():
    body = orjson.dumps({**REQUEST, "max_tokens": "many", "stream": True})

    async def first():
        return await anext(_server(_Serving()).chat_stream_json(body))

    error = asyncio.run(first())["error"]
    assert error["code"] == 400 and error["param"] == "max_tokens"


def test_an_engine_value_error_is_mapped_by_vllm_and_anything_else_propagates():
    answer = asyncio.run(_server(_Serving(raises=ValueError("prompt too long"))).chat_json(orjson.dumps(REQUEST)))
    assert answer["error"] == {"message": "prompt too long", "type": "BadRequestError", "code": 400}
    with pytest.raises(RuntimeError):
        asyncio.run(_server(_Serving(raises=RuntimeError("engine died"))).chat_json(orjson.dumps(REQUEST)))


class _Method:
    def __init__(self, result):
        self.result = result
        self.bodies = []

    def remote(self, body):
        self.bodies.append(body)

        async def answer():
            return self.result

        return answer()


class _Handle:
    def __init__(self, result):
        self.chat_json = _Method(result)

    def options(self, **_):
        return self


async def test_the_client_sends_json_bytes_and_reads_the_answer():
    handle = _Handle(b'{"id": "chatcmpl-1", "choices": []}')
    result = await ServeLLMPoolClient("light", handle).chat(REQUEST)
    assert result.response == {"id": "chatcmpl-1", "choices": []}
    assert orjson.loads(handle.chat_json.bodies[0]) == REQUEST


async def test_the_client_raises_a_client_error_as_is_and_an_engine_error_as_unavailable():
    refused = _Handle({"error": {"message": "tools: bad", "type": "BadRequestError", "param": "tools", "code": 400}})
    with pytest.raises(FrontierError) as info:
        await ServeLLMPoolClient("light", refused).chat(REQUEST)
    assert info.value.status_code == 400 and info.value.param == "tools"
    broken = _Handle({"error": {"message": "engine dead", "type": "InternalServerError", "code": 500}})
    with pytest.raises(PoolUnavailable):
        await ServeLLMPoolClient("light", broken).chat(REQUEST)


async def test_a_stream_sends_its_first_text_at_once_and_batches_the_rest():
    stream = _server(_Serving()).chat_stream_json(orjson.dumps({**REQUEST, "max_tokens": 6, "stream": True}))
    batches = [batch async for batch in stream]
    # The role chunk and the first text each alone: neither held for the batching interval.
    assert batches[:2] == [[_sse({"role": "assistant", "content": ""})], [_sse({"content": "0"})]]
    assert [item for batch in batches for item in batch][2:] == [_sse({"content": str(i)}) for i in range(1, 6)]
    assert len(batches) < 7  # the rest came batched


def test_what_counts_as_output():
    assert not carries_output(_sse({"role": "assistant", "content": ""}))
    assert carries_output(_sse({"reasoning_content": "hm"})) and carries_output(_sse({"tool_calls": [{"index": 0}]}))
    assert carries_output('data: {"choices": [], "usage": {"total_tokens": 3}}\n\n')  # the end
    assert carries_output({"error": {"code": 500}})


@pytest.mark.parametrize("usage_stats", [False, True])
def test_the_pool_reports_usage_to_rays_telemetry_actor_only_when_usage_stats_are_on(monkeypatch, usage_stats):
    """Ray Serve LLM reports each engine start to a detached actor, a whole idle Ray worker process; with Ray's usage
    stats off (as Frontier runs Ray) the pool starts its engine without it."""
    import ray.llm._internal.serve.core.server.llm_server as llm_server
    from ray._common.usage import usage_lib

    pushed, started = [], []

    class Engine:
        async def start(self):
            started.append(True)

    monkeypatch.setattr(usage_lib, "usage_stats_enabled", lambda: usage_stats)
    monkeypatch.setattr(llm_server, "push_telemetry_report_for_all_models", lambda all_models: pushed.append(all_models))
    monkeypatch.setattr(llm_server, "RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING", False)
    server = object.__new__(PoolServer)  # LLMServer's constructor would start a real engine
    server.engine, server._llm_config = Engine(), "the pool's LLMConfig"
    asyncio.run(server._start_engine())
    assert started == [True]
    assert pushed == ([["the pool's LLMConfig"]] if usage_stats else [])
