"""Configuration of who may call and what: API keys, input limits and the Batch API."""

from __future__ import annotations

from pydantic import Field, model_validator

from frontier.config.base import Strict


class ApiKeyEntry(Strict):
    """One API key, stored as the SHA-256 of the key (the key itself is never configured)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Unique name of the key; it identifies the caller in logs, limits and feedback.",
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the key (`frontier keys add` writes it)."
    )
    rpm: int | None = Field(None, ge=1, description="Requests per minute this key may make; None: unlimited.")
    reasoning_share_budget: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Most share of this key's calls (over auth.budget_window_s) that may go to the reasoning pool; "
        "None: no share budget.",
    )
    reasoning_tokens_per_day: int | None = Field(
        None, ge=0, description="Reasoning-pool tokens (prompt + completion) this key may use per UTC day; None: unlimited."
    )
    feedback_per_minute: int | None = Field(
        None, ge=1, description="Feedback posts per minute of this key; None: auth.feedback_per_minute."
    )


class AuthConfig(Strict):
    """API keys and the per-key limits held in Redis (shared by every router replica)."""

    keys: list[ApiKeyEntry] = Field(
        default_factory=list,
        description="API keys (hashes only). Entries of the JSON list in the environment variable FRONTIER_API_KEYS "
        "are added to these. No keys at all: the router serves without authentication (and says so at startup).",
    )
    feedback_per_minute: int = Field(60, ge=1, description="Default feedback posts per minute per key.")
    burst_fraction: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Requests a key may make at once, as a fraction of its per-minute rate (at least 1); in any "
        "minute a key gets at most its rate plus this burst.",
    )
    budget_window_s: float = Field(
        3600.0, ge=60, description="Window over which a key's reasoning_share_budget is measured."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> "AuthConfig":
        names = [entry.name for entry in self.keys]
        if len(names) != len(set(names)):
            raise ValueError("auth.keys: key names must be unique")
        return self


class LimitsConfig(Strict):
    """Input limits checked before any engine work (413 for the body size, 400 for the rest)."""

    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body in bytes; a larger one gets 413 without being read."
    )
    max_messages: int = Field(256, ge=1, description="Most messages one chat request may carry.")
    max_tokens: int = Field(
        32768, ge=1, description="Largest max_tokens / max_completion_tokens a request may ask for."
    )
    max_bytes_per_token: int = Field(
        32,
        ge=1,
        description="Bound on UTF-8 bytes per token: a prompt longer than the pool's max_model_len times this can "
        "never fit and is refused with 400 before tokenization.",
    )


class BatchConfig(Strict):
    """The OpenAI Files and Batches API: input/output files and the batch task queue."""

    enabled: bool = Field(True, description="Serve /v1/files and /v1/batches and run batch workers (needs Redis).")
    storage_uri: str | None = Field(
        None,
        description="Where batch input, output and error files are kept: a local directory path, or an object "
        "store URI that pyarrow.fs understands ('s3://bucket/prefix', 'gs://bucket/prefix'); None: a directory "
        "under the user data directory (one node only: on a cluster every router replica must see the same store).",
    )
    max_file_bytes: int = Field(
        104_857_600, ge=1024, description="Largest uploaded file in bytes (413 above it); uploads are exempt from limits.max_body_bytes."
    )
    max_lines: int = Field(50_000, ge=1, description="Most request lines one batch input file may hold (400 above it).")
    concurrency: int = Field(32, ge=1, description="Batch lines each router replica routes at once while it has no interactive traffic.")
    pause_inflight: int = Field(
        1,
        ge=1,
        description="Interactive requests in flight on one router replica at or above which its batch workers stop "
        "claiming lines (interactive traffic first).",
    )
    resume_quiet_s: float = Field(
        0.25,
        ge=0,
        description="How long a router replica must have had fewer than pause_inflight interactive requests in flight "
        "before its batch workers claim lines again.",
    )
    claim_idle_s: float = Field(
        30.0,
        gt=0,
        description="A claimed line whose worker has not refreshed its claim for this long (a killed replica) is "
        "reclaimed by another worker (XAUTOCLAIM).",
    )
    block_ms: int = Field(500, ge=1, description="How long a batch worker waits for new lines per read.")
    max_attempts: int = Field(
        5, ge=1, description="Tries of one line on a saturated or unavailable pool (429/503/504) before it is an error line."
    )
