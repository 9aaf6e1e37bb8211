"""Typed feedback errors; each is a FrontierError, so the HTTP layer renders it as it is."""

from __future__ import annotations

from frontier.errors import FrontierError


class FeedbackInvalid(FrontierError):
    """Malformed feedback body (400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(400, message, param=param, code="invalid_feedback")


class FeedbackNotFound(FrontierError):
    """Unknown or expired completion id (404)."""

    def __init__(self, cid: str) -> None:
        message = f"no routed completion {cid!r} (unknown or expired)"
        super().__init__(404, message, param="id", code="completion_not_found")


class FeedbackForbidden(FrontierError):
    """The completion was made with another API key (403): only its own key may judge it."""

    def __init__(self, cid: str) -> None:
        super().__init__(403, f"completion {cid!r} was made with another API key", param="id", code="not_your_completion")


class FeedbackConflict(FrontierError):
    """Feedback for this completion was already given; only the first counts (409)."""

    def __init__(self, cid: str) -> None:
        super().__init__(409, f"feedback for {cid!r} was already recorded", param="id", code="feedback_exists")


class FeedbackUnavailable(FrontierError):
    """Redis is unreachable: nothing was accepted; retry later (503 with Retry-After)."""

    def __init__(self, retry_after_s: int, detail: str = "") -> None:
        message = "feedback storage (Redis) is unavailable; nothing was recorded, retry later"
        super().__init__(
            503,
            f"{message} ({detail})" if detail else message,
            code="feedback_unavailable",
            headers={"Retry-After": str(retry_after_s)},
        )
        self.retry_after_s = retry_after_s


class FeedbackBacklogFull(FrontierError):
    """The feedback backlog is at ``feedback.max_backlog``: nothing was accepted; retry later (503)."""

    def __init__(self, retry_after_s: int = 5) -> None:
        super().__init__(
            503,
            "the feedback backlog is full (the consumer is behind); nothing was recorded, retry later",
            code="feedback_backlog_full",
            headers={"Retry-After": str(retry_after_s)},
        )
