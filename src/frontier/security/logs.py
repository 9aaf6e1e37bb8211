"""Structured JSON logs with a request id, the decision and latency; keys and prompts redacted.

``configure_logging`` puts one JSON handler with a ``RedactionFilter`` on the ``frontier`` logger, and on
``frontier.requests`` (one record per request, from ``log_request``) when those go to their own file. The
filter rewrites every record it passes: bearer tokens and key-shaped strings in the message, arguments
and tracebacks become ``[redacted]``; extra fields named like secrets are always redacted, and fields
named like prompt text (``messages``, ``prompt``, ``content``, ...) unless ``log_prompts`` is on.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from frontier.security.keys import KeyInfo

REDACTED = "[redacted]"
HANDLER_NAME = "frontier-json"
REQUEST_LOGGER = "frontier.requests"
ROTATE_BYTES, ROTATE_BACKUPS = 512 * 1024**2, 5  # Ray's defaults for its own log files
SECRET_FIELDS = frozenset({"authorization", "api_key", "apikey", "key", "token", "password", "secret", "bearer"})
PROMPT_FIELDS = frozenset({"messages", "prompt", "content", "completion", "text", "input", "output", "tools"})
_SECRET_PATTERNS = (
    re.compile(r"(?i)\b(authorization)(['\"]?\s*[:=]\s*['\"]?)(?:[A-Za-z]+\s+)?[^\s'\",;}]+"),
    re.compile(r"(?i)\b(api[_-]?key|password|secret|token)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",;}]+"),
)
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s'\",;]+")
_KEY_SHAPED = re.compile(r"\b(?:fk|sk)-[A-Za-z0-9_\-]{8,}")
# pydantic's ValidationError text quotes the offending input, which may be the prompt.
_PYDANTIC_INPUT = re.compile(r"input_value=.*?(?=, input_type=)")
# What every pattern above needs somewhere in the text: one scan clears most strings.
_SUSPECT = re.compile(r"(?i)authorization|api[_-]?key|password|secret|token|bearer|\b(?:fk|sk)-|input_value=")
# Standard record attributes: set by logging from the code, and emitted only as the format names them.
_STANDARD = frozenset(RESERVED_ATTRS)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def scrub(text: str, log_prompts: bool = False) -> str:
    """``text`` with secrets (and, unless ``log_prompts``, quoted request input) replaced by ``[redacted]``."""
    if not _SUSPECT.search(text):
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BEARER.sub("Bearer " + REDACTED, text)
    text = _KEY_SHAPED.sub(REDACTED, text)
    if not log_prompts:
        text = _PYDANTIC_INPUT.sub("input_value=" + REDACTED, text)
    return text


class RedactionFilter(logging.Filter):
    """Rewrites records so that no key and (unless ``log_prompts``) no prompt text reaches a handler."""

    def __init__(self, log_prompts: bool = False) -> None:
        super().__init__()
        self.log_prompts = log_prompts
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage(), self.log_prompts)
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(self._formatter.formatException(record.exc_info), self.log_prompts)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text, self.log_prompts)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.log_prompts)
        for name, value in list(vars(record).items()):
            if name in _STANDARD:
                continue
            lowered = name.lower()
            if lowered in SECRET_FIELDS or lowered in PROMPT_FIELDS and not self.log_prompts:
                setattr(record, name, REDACTED)
            elif isinstance(value, str):
                setattr(record, name, scrub(value, self.log_prompts))
        return True


def json_handler(stream: IO[str] | None = None, log_prompts: bool = False) -> logging.Handler:
    """A stream handler writing one redacted JSON object per record (default: the process's own stderr).

    The default is ``sys.__stderr__``, not ``sys.stderr``: a Ray replica may replace ``sys.stderr`` with a
    stream that turns every write into one more log record (inspecting the caller's stack each time), which
    on the request path costs more than the record itself.
    """
    return _as_json(logging.StreamHandler(stream or sys.__stderr__ or sys.stderr), log_prompts)


def _as_json(handler: logging.Handler, log_prompts: bool) -> logging.Handler:
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        OrjsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(RedactionFilter(log_prompts))
    return handler


def configure_logging(
    level: str | int = "INFO",
    log_prompts: bool = False,
    stream: IO[str] | None = None,
    request_log: Literal["stderr", "file", "off"] = "stderr",
    request_log_file: Path | None = None,
) -> logging.Logger:
    """Send the ``frontier`` loggers to one JSON handler (replacing an earlier one); returns that logger.

    ``request_log`` says where ``log_request`` records go: with the others (``stderr``), to ``request_log_file``
    (JSON lines, rotated like Ray's own logs), or nowhere (``off``)."""
    logger = _reset(logging.getLogger("frontier"))
    logger.addHandler(json_handler(stream, log_prompts))
    logger.setLevel(level)
    logger.propagate = False
    requests = _reset(logging.getLogger(REQUEST_LOGGER))
    requests.setLevel(logging.NOTSET if request_log != "off" else logging.CRITICAL + 1)
    requests.propagate = request_log == "stderr"
    if request_log == "file":
        if request_log_file is None:
            raise ValueError("request_log 'file' needs request_log_file")
        request_log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = RequestLogFile(request_log_file, maxBytes=ROTATE_BYTES, backupCount=ROTATE_BACKUPS, encoding="utf-8")
        requests.addHandler(_as_json(handler, log_prompts))
    return logger


class RequestLogFile(RotatingFileHandler):
    """``RotatingFileHandler`` that formats each record once: the stdlib's formats it a second time (and stats the
    file twice) only to see whether it would overflow the file."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            # Only a regular file rotates (bpo-45401): not /dev/null or a pipe given as the log file.
            if 0 < self.maxBytes <= self.stream.tell() + len(line) and os.path.isfile(self.baseFilename):
                self.doRollover()
            self.stream.write(line)
            self.flush()
        except Exception:  # as logging.Handler.emit: a failed log line never fails the request
            self.handleError(record)


def _reset(logger: logging.Logger) -> logging.Logger:
    for handler in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
        logger.removeHandler(handler)
        handler.close()
    return logger


def request_id(headers: Mapping[str, str]) -> str:
    """The caller's ``x-request-id`` when it is a safe token, else a new one."""
    given = headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def log_request(
    *,
    request_id: str,
    route: str,
    status: int,
    latency_s: float,
    key: KeyInfo | None = None,
    decision: Any = None,
    messages: Any = None,
    **fields: Any,
) -> None:
    """One ``request`` record: id, route, status, latency, the key's name and the decision.

    ``decision`` is a ``frontier.schemas.Decision`` (or None); ``messages`` are kept only when the
    handler's filter has ``log_prompts`` on.
    """
    extra: dict[str, Any] = {
        "request_id": request_id,
        "route": route,
        "status": status,
        "latency_ms": round(latency_s * 1000, 3),
        "key_name": key.name if key is not None else None,
        **fields,
    }
    if decision is not None:
        extra.update(
            pool=decision.pool,
            reason=decision.reason,
            score=decision.score,
            threshold=decision.threshold,
            policy_version=decision.policy_version,
        )
    if messages is not None:
        extra["messages"] = messages
    logging.getLogger(REQUEST_LOGGER).info("request", extra=extra)
