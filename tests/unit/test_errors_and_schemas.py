import json

import pytest
from pydantic import ValidationError

from frontier.errors import FrontierError, validation_error_to_frontier
from frontier.schemas import ChatCompletionRequest, Decision


def _nest(depth):
    schema = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def test_error_body_has_the_openai_shape():
    body = FrontierError(404, "no such model", param="model", code="model_not_found").body()
    assert body == {"error": {"message": "no such model", "type": "not_found_error", "param": "model",
                              "code": "model_not_found"}}


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": "frontier", "messages": []}, "messages"),
        ({"model": "frontier", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "frontier", "messages": "hello"}, "messages"),
        ({"model": "frontier", "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        # Bodies the engines themselves would fail on (found by the live hostile-input run).
        ({"model": "frontier", "messages": [{"role": "user", "content": "x"}], "tools": []}, "tools"),
        ({"model": "frontier", "messages": [{"role": "user", "content": []}]}, "messages.0.content.str"),
        ({"model": "frontier", "messages": [{"role": "user", "content": [{"type": "image_url", "text": -5.0}]}]},
         "messages.0.content.str"),
        ({"model": "frontier", "messages": [{"role": "user", "content": [{"type": 7, "text": "x"}]}]},
         "messages.0.content.str"),
    ],
)
def test_bad_requests_become_400_naming_the_parameter(body, param):
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(body)
    error = validation_error_to_frontier(info.value.errors())
    assert error.status_code == 400 and error.param == param
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_invalid_json_error():
    error = validation_error_to_frontier([{"loc": ("body", 1), "msg": "JSON decode error", "type": "json_invalid"}])
    assert error.status_code == 400 and error.code == "invalid_json"


def _body(**fields):
    return {"model": "frontier", "messages": [{"role": "user", "content": "x"}], **fields}


def test_openai_fields_the_pools_do_not_use_are_accepted_and_not_forwarded():
    req = ChatCompletionRequest.model_validate(
        _body(user="u-1", metadata={"team": "a"}, store=False, service_tier="auto", logit_bias={"50256": -100},
              messages=[{"role": "assistant", "content": "hi", "refusal": None, "annotations": []},
                        {"role": "user", "content": "x"}]))
    forwarded = req.model_dump(exclude_unset=True)
    assert req.user == "u-1" and req.metadata == {"team": "a"}
    assert not {"user", "metadata", "store", "service_tier"} & set(forwarded)
    assert forwarded["logit_bias"] == {"50256": -100}
    assert forwarded["messages"][0] == {"role": "assistant", "content": "hi"}  # echoed response fields dropped


def test_chat_template_kwargs_carry_switches_not_templates():
    request = ChatCompletionRequest.model_validate(_body(chat_template_kwargs={"enable_thinking": False}))
    assert request.model_dump(exclude_unset=True)["chat_template_kwargs"] == {"enable_thinking": False}
    for taken in ("chat_template", "tools", "add_generation_prompt"):
        with pytest.raises(ValidationError, match=f"may not set {taken}"):
            ChatCompletionRequest.model_validate(_body(chat_template_kwargs={taken: "{{ 7 * 7 }}"}))


def test_response_format_schema_is_forwarded_under_its_wire_name():
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True}}
    forwarded = ChatCompletionRequest.model_validate(_body(response_format=fmt)).model_dump(exclude_unset=True)
    assert forwarded["response_format"] == fmt


@pytest.mark.parametrize(
    "fields,param",
    [
        ({"some_new_field": 1}, "some_new_field"),
        ({"chat_template": "{{ 7 * 7 }}"}, "chat_template"),
        ({"chat_template_kwargs": {"x y": True}}, "chat_template_kwargs"),
        ({"frontier": {"price_weight": float("inf")}}, "frontier.price_weight"),
        ({"frontier": {"reasoning_share": float("nan")}}, "frontier.reasoning_share"),
        ({"temperature": float("inf")}, "temperature"),
        ({"stop": ["s"] * 17}, "stop"),
        ({"stop": "x" * 257}, "stop"),
        ({"logit_bias": {"1": 101}}, "logit_bias.1"),
        ({"logit_bias": {str(i): 1 for i in range(301)}}, "logit_bias"),
        ({"n": 17}, "n"),
        ({"max_tokens": 2**31}, "max_tokens"),
        ({"seed": 2**63}, "seed"),
        ({"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]}, "tools"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * 129}]}, "messages.0.content"),
    ],
)
def test_allowlist_caps_each_field(fields, param):
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(_body(**fields))
    error = validation_error_to_frontier(info.value.errors())
    assert error.status_code == 400 and error.param is not None and error.param.startswith(param)


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages.0.content: lone UTF-16 surrogate"),
        ({"metadata": {"\udfff": "x"}}, "metadata: lone UTF-16 surrogate in a key"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": _nest(20)}}]}, "nested deeper"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": _nest(20)}}},
         "nested deeper"),
        ({"messages": [{"role": "user", "content": "x"}] * 20_000}, "more than 50000 JSON values"),
    ],
)
def test_unencodable_strings_deep_nesting_and_huge_bodies_are_refused(fields, message):
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(_body(**fields))
    error = validation_error_to_frontier(info.value.errors())
    assert error.status_code == 400 and message in error.message


def test_error_text_is_always_encodable_and_bounded():
    error = FrontierError(400, "bad \ud800 " + "x" * 5000, param="k\udc00")
    body = json.dumps(error.body(), ensure_ascii=False).encode("utf-8")  # would raise on a lone surrogate
    assert len(body) < 2000 and error.param == "k\\udc00"


def test_decision_headers():
    d = Decision(pool="light", reason="explicit", score=None, threshold=None, policy_version="heuristic-1")
    assert d.headers() == {"x-frontier-pool": "light", "x-frontier-reason": "explicit", "x-frontier-score": "",
                           "x-frontier-policy-version": "heuristic-1"}
