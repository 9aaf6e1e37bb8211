"""Batch input lines in, OpenAI batch output and error lines out: pure functions, no Redis, no I/O.

An input line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``. Problems
of the whole file (too many lines, a repeated ``custom_id``, no usable line) are a 400 when the batch is
created; a problem of one line becomes that line's entry in the error file and the others are processed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from frontier.errors import FrontierError
from frontier.schemas import ChatCompletionRequest
from frontier.serving.admission import parse_body

CHAT_ENDPOINT = "/v1/chat/completions"
MAX_CUSTOM_ID_CHARS = 512


@dataclass(frozen=True)
class LineTask:
    """A valid line: its number (from 0) and where it lies in the input file."""

    index: int
    offset: int
    length: int
    custom_id: str


@dataclass(frozen=True)
class LineError:
    """An invalid line: its number, its custom_id if it had one, and why."""

    index: int
    custom_id: str | None
    code: str
    message: str


@dataclass(frozen=True)
class ParsedInput:
    tasks: list[LineTask]
    errors: list[LineError]

    @property
    def total(self) -> int:
        return len(self.tasks) + len(self.errors)


def _check_line(raw: bytes, endpoint: str) -> tuple[str | None, LineError | None]:
    """The line's custom_id and, if it cannot be processed, why (index filled in by the caller)."""
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return None, LineError(-1, None, "invalid_json", f"the line is not valid JSON: {exc}")
    if not isinstance(line, dict):
        return None, LineError(-1, None, "invalid_request", "the line must be a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID_CHARS:
        return None, LineError(
            -1, None, "invalid_custom_id", f"custom_id must be a string of 1 to {MAX_CUSTOM_ID_CHARS} characters"
        )
    if line.get("method") != "POST":
        return custom_id, LineError(-1, custom_id, "invalid_method", "method must be POST")
    if line.get("url") != endpoint:
        return custom_id, LineError(-1, custom_id, "invalid_url", f"url must be the batch's endpoint {endpoint}")
    body = line.get("body")
    if not isinstance(body, dict):
        return custom_id, LineError(-1, custom_id, "invalid_body", "body must be a JSON object")
    try:
        request = parse_body(ChatCompletionRequest, json.dumps(body).encode())
    except FrontierError as exc:
        return custom_id, LineError(-1, custom_id, "invalid_body", exc.message)
    if request.stream:
        return custom_id, LineError(-1, custom_id, "invalid_body", "stream is not supported in a batch")
    return custom_id, None


def parse_input(data: bytes, endpoint: str = CHAT_ENDPOINT, max_lines: int = 50_000) -> ParsedInput:
    """Check every line of an input file; FrontierError 400 for problems of the whole file."""
    tasks: list[LineTask] = []
    errors: list[LineError] = []
    first_seen: dict[str, int] = {}
    offset = 0
    index = 0
    for raw in data.split(b"\n"):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        if index >= max_lines:
            raise FrontierError(400, f"the input file has more than {max_lines} lines", param="input_file_id",
                                code="too_many_lines")  # fmt: skip
        custom_id, error = _check_line(raw, endpoint)
        if custom_id is not None:
            if custom_id in first_seen:
                raise FrontierError(
                    400,
                    f"custom_id {custom_id!r} appears on lines {first_seen[custom_id] + 1} and {index + 1}; "
                    "each line needs its own",
                    param="input_file_id",
                    code="duplicate_custom_id",
                )
            first_seen[custom_id] = index
        if error is not None:
            errors.append(LineError(index, custom_id, error.code, error.message))
        else:
            assert custom_id is not None
            tasks.append(LineTask(index, start, len(raw), custom_id))
        index += 1
    if not tasks:
        why = f": line {errors[0].index + 1}: {errors[0].message}" if errors else ": the file is empty"
        raise FrontierError(400, f"the input file has no valid request line{why}", param="input_file_id",
                            code="invalid_input_file")  # fmt: skip
    return ParsedInput(tasks, errors)


def request_id() -> str:
    return f"batch_req_{secrets.token_hex(12)}"


def output_line(custom_id: str, status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    """A line of the output (2xx) or error (4xx/5xx) file carrying the router's HTTP answer."""
    rid = request_id()
    return {"id": rid, "custom_id": custom_id, "response": {"status_code": status_code, "request_id": rid, "body": body},
            "error": None}  # fmt: skip


def error_line(custom_id: str | None, code: str, message: str) -> dict[str, Any]:
    """A line of the error file for a request that was never sent (invalid, expired, cancelled)."""
    return {"id": request_id(), "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}


def result_field(custom_id: str | None, index: int) -> str:
    """The results-hash field of a line: ``c:{custom_id}``, or ``l:{number}`` for a line without a custom_id."""
    return f"c:{custom_id}" if custom_id is not None else f"l:{index}"
