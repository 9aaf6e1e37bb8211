"""Structured logs: JSON records with request id, decision and latency; never a key, never a prompt by default."""

import io
import json
import logging

import pytest
from pydantic import ValidationError

from frontier.schemas import ChatCompletionRequest, Decision
from frontier.security.keys import KeyInfo, generate_key
from frontier.security.logs import RequestLogFile, configure_logging, log_request, request_id, scrub

KEY = generate_key()
HELM_KEY = "sk-frontier-" + "Q" * 40
PROMPT = "my secret diagnosis is zebra-umbrella-42"
DECISION = Decision(pool="reasoning", reason="policy", score=0.81, threshold=0.5, policy_version="heuristic:1")


@pytest.fixture
def capture():
    buffer = io.StringIO()
    logger = configure_logging("DEBUG", stream=buffer)
    yield logger, buffer
    _restore()


def _restore():
    configure_logging(stream=io.StringIO())
    logger = logging.getLogger("frontier")
    logger.handlers.clear()
    logger.propagate = True


def _emit_everything(logger):
    messages = [{"role": "user", "content": PROMPT}]
    log_request(request_id="req-1", route="/v1/chat/completions", status=200, latency_s=0.0123,
                key=KeyInfo(name="team-a"), decision=DECISION, messages=messages)
    logger.info("incoming headers %s", {"authorization": f"Bearer {KEY}"})
    logger.warning("auth failed", extra={"authorization": f"Bearer {KEY}", "api_key": KEY, "prompt": PROMPT})
    logger.getChild("ingress").info("retry with key=%s and helm key %s", KEY, HELM_KEY)
    try:
        ChatCompletionRequest.model_validate({"model": "frontier", "messages": [{"role": "bogus", "content": PROMPT}]})
    except ValidationError:
        logger.exception("unhandled error")
    try:
        raise RuntimeError(f"upstream rejected Authorization: Bearer {KEY}")
    except RuntimeError:
        logger.exception("pool call failed")


def test_records_are_json_with_request_id_decision_and_latency(capture):
    logger, buffer = capture
    log_request(request_id="req-1", route="/v1/chat/completions", status=200, latency_s=0.0123,
                key=KeyInfo(name="team-a"), decision=DECISION)
    record = json.loads(buffer.getvalue().splitlines()[0])
    assert record["message"] == "request" and record["level"] == "INFO" and record["logger"] == "frontier.requests"
    assert record["request_id"] == "req-1" and record["status"] == 200 and record["latency_ms"] == 12.3
    assert record["key_name"] == "team-a"
    assert (record["pool"], record["reason"], record["score"], record["policy_version"]) == (
        "reasoning",
        "policy",
        0.81,
        "heuristic:1",
    )


def test_a_key_and_a_prompt_never_appear_in_the_log_output(capture):
    logger, buffer = capture
    _emit_everything(logger)
    output = buffer.getvalue()
    lines = output.splitlines()
    assert len(lines) == 6 and all(json.loads(line) for line in lines)
    assert KEY not in output and KEY[3:] not in output
    assert HELM_KEY not in output and "Q" * 40 not in output
    assert PROMPT not in output and "zebra" not in output
    assert "[redacted]" in output
    assert "team-a" in output and "unhandled error" in output and "ValidationError" in output


def test_prompts_are_logged_only_when_the_operator_turns_it_on():
    buffer = io.StringIO()
    logger = configure_logging("INFO", log_prompts=True, stream=buffer)
    try:
        _emit_everything(logger)
    finally:
        _restore()
    output = buffer.getvalue()
    assert PROMPT in output
    assert KEY not in output and HELM_KEY not in output


def test_configure_logging_replaces_its_handler_instead_of_stacking():
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    logger = configure_logging(stream=second)
    try:
        logger.info("once")
    finally:
        _restore()
    assert first.getvalue() == "" and second.getvalue().count("once") == 1


def test_scrub_keeps_ordinary_text():
    text = "prompt_tokens=12 completion_tokens=30 disk-usage pool=light"
    assert scrub(text) == text


def test_request_ids_are_taken_only_when_safe():
    assert request_id({"x-request-id": "abc-123_x.y"}) == "abc-123_x.y"
    for bad in ("", "has space", "x" * 200, "evil\nlog-line"):
        generated = request_id({"x-request-id": bad})
        assert generated != bad and len(generated) == 32
    assert request_id({}) != request_id({})


def test_request_records_go_to_their_own_file_redacted_or_nowhere(tmp_path):
    stream, path = io.StringIO(), tmp_path / "frontier" / "requests-1.jsonl"
    logger = configure_logging(stream=stream, request_log="file", request_log_file=path)
    try:
        log_request(request_id="req-file", route="chat", status=200, latency_s=0.001, key=KeyInfo(name="team-a"),
                    decision=DECISION, messages=[{"role": "user", "content": PROMPT}], note=f"Bearer {KEY}")
        logger.warning("other records stay on stderr")
        configure_logging(stream=stream, request_log="off")
        log_request(request_id="req-off", route="chat", status=200, latency_s=0.001)
    finally:
        _restore()
    written = path.read_text()
    [record] = [json.loads(line) for line in written.splitlines()]
    assert (record["request_id"], record["pool"], record["key_name"]) == ("req-file", "reasoning", "team-a")
    assert PROMPT not in written and KEY not in written
    assert "other records stay on stderr" in stream.getvalue() and "req-" not in stream.getvalue()


def test_the_request_log_file_formats_each_record_once_and_rotates_past_its_size(tmp_path):
    path = tmp_path / "requests-1.jsonl"
    handler = RequestLogFile(path, maxBytes=300, backupCount=2, encoding="utf-8")
    formatted = []
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.format = lambda record: formatted.append(record) or logging.Handler.format(handler, record)
    try:
        for i in range(10):
            handler.emit(logging.makeLogRecord({"msg": f"{i:02d}" + "x" * 98}))  # 101 bytes a line
    finally:
        handler.close()
    assert len(formatted) == 10
    files = [path, path.with_name(path.name + ".1"), path.with_name(path.name + ".2")]
    lines = [line for f in reversed(files) for line in f.read_text().splitlines()]
    assert [line[:2] for line in lines] == [f"{i:02d}" for i in range(10 - len(lines), 10)]  # the newest, in order
    assert all(f.stat().st_size <= 300 for f in files) and len(lines) == 6  # two lines a file, three files kept
