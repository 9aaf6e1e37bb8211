"""One error type for every client-visible failure, rendered in the OpenAI error shape."""

from __future__ import annotations

from typing import Any

from frontier.schemas import ErrorDetail, ErrorResponse

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


MAX_MESSAGE_CHARS = 1024


def _printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates escaped (a client's field names can carry them,
    and they cannot be encoded as UTF-8)."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


class FrontierError(Exception):
    """An error with an HTTP status, shown to the client as ``{"error": {...}}``."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        message, param = _printable(message, MAX_MESSAGE_CHARS), None if param is None else _printable(param, 256)
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type or _TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        detail = ErrorDetail(message=self.message, type=self.error_type, param=self.param, code=self.code)
        return ErrorResponse(error=detail).model_dump()


def validation_error_to_frontier(errors: list[dict[str, Any]]) -> FrontierError:
    """Turn pydantic/FastAPI validation errors into one 400 naming the first bad parameter."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return FrontierError(400, f"request body is not valid JSON: {first.get('msg')}", code="invalid_json")
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error(s))"
    return FrontierError(400, message, param=param, code="invalid_value")
