import pytest
from pydantic import ValidationError

from frontier.errors import FrontierError, validation_error_to_frontier
from frontier.schemas import ChatCompletionRequest, Decision


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


def test_unknown_fields_are_kept_not_fatal():
    req = ChatCompletionRequest.model_validate(
        {"model": "frontier", "messages": [{"role": "user", "content": "x"}], "logit_bias": {}, "some_new_field": 1})
    assert req.model_extra["some_new_field"] == 1


def test_decision_headers():
    d = Decision(pool="light", reason="explicit", score=None, threshold=None, policy_version="heuristic-1")
    assert d.headers() == {"x-frontier-pool": "light", "x-frontier-reason": "explicit", "x-frontier-score": "",
                           "x-frontier-policy-version": "heuristic-1"}
