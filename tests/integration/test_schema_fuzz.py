"""Schema fuzzing of the live router with schemathesis: positive and negative cases from its own /openapi.json.

Every operation gets a bounded number of generated requests (positive: valid by the schema; negative:
invalid by it). The router must never answer 5xx, and every 4xx (including error events inside a
stream) must carry the OpenAI error shape ``{"error": {"message", "type", "param", "code"}}``. When the
session defines an ``api_key`` fixture (a stack with authentication on) it is sent with every request.

schemathesis's pytest plugin (``from_fixture(...).parametrize()``) does not run on pytest 9.2 (it sets
``Node._nodeid``, which pytest removed), so each operation's Hypothesis strategy is driven with ``given``.
"""

import json
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30
REQUEST_TIMEOUT_S = 120
ERROR_FIELDS = {"message", "type", "param", "code"}
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=REQUEST_TIMEOUT_S + 30),
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found, in bounded time
    derandomize=True,  # the same cases on every run
    database=None,
)


@pytest.fixture(scope="session")
def fuzz_headers(request):
    """The Authorization header of the stack's test key, or nothing when it serves without keys."""
    try:
        key = request.getfixturevalue("api_key")
    except pytest.FixtureLookupError:
        return {}
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture(scope="session")
def router_schema(base_url, fuzz_headers):
    config = schemathesis.Config.from_dict(
        {"base-url": base_url, "headers": fuzz_headers, "request-timeout": REQUEST_TIMEOUT_S}
    )
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config, headers=fuzz_headers, timeout=30)


def _assert_openai_error(payload, where):
    assert isinstance(payload, dict) and set(payload) == {"error"}, f"{where}: not an OpenAI error: {payload!r}"
    error = payload["error"]
    assert isinstance(error, dict) and set(error) == ERROR_FIELDS, f"{where}: error fields {sorted(error)}"
    assert isinstance(error["message"], str) and error["message"], where
    assert isinstance(error["type"], str) and error["type"], where
    assert error["param"] is None or isinstance(error["param"], str), where
    assert error["code"] is None or isinstance(error["code"], (str, int)), where


def _stream_events(text):
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            yield json.loads(line[5:])


def _check(case, headers):
    response = case.call(headers=headers, timeout=REQUEST_TIMEOUT_S)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    content_type = (response.headers.get("content-type") or [""])[0]  # lower-case names, lists of values
    if 400 <= response.status_code < 500:
        assert content_type.startswith("application/json"), f"{where}: content-type {content_type}"
        _assert_openai_error(response.json(), where)
    elif content_type.startswith("text/event-stream"):
        for event in _stream_events(response.text):
            if "error" in event:
                _assert_openai_error(event, f"{where} (stream event)")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_5xx_and_every_4xx_in_the_openai_error_shape(router_schema, fuzz_headers, mode):
    operations = []
    for result in router_schema.get_all_operations():
        operations.append(result.ok())  # raises on an operation the schema cannot describe
    assert any(op.path == "/v1/chat/completions" for op in operations)
    failures = []
    for operation in operations:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            _check(case, fuzz_headers)

        try:
            fuzz()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid request to make (negative mode).
            assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request could be generated"
        except Exception as exc:  # noqa: BLE001 - every operation is fuzzed; the failures are reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)
