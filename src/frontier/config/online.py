"""Configuration of the online side: Redis, feedback, the cost controller and observability."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from frontier.config.base import Strict


class RedisConfig(Strict):
    """The Redis server that holds decisions, the feedback queue and the online statistics."""

    url: str | None = Field(
        None,
        description="redis:// URL of an existing server; None starts an embedded one. "
        "The environment variable FRONTIER_REDIS_URL, when set, overrides this.",
    )
    data_dir: str | None = Field(
        None, description="Directory of the embedded server's append-only file; None: the user data directory."
    )
    appendfsync: Literal["always", "everysec"] = Field(
        "everysec",
        description="fsync policy of the embedded server's append-only file (every acknowledged write survives "
        "a killed Redis process with either; 'always' also survives a machine crash).",
    )
    maxmemory_mb: int = Field(
        512,
        ge=16,
        description="maxmemory of the embedded server (policy noeviction: nothing is evicted; when full, writes fail "
        "loudly: feedback gets 503, limits fail open). Size it above feedback.max_decisions x 1.4 KB.",
    )
    key_prefix: str = Field("frontier", min_length=1, description="Prefix of every Redis key Frontier writes.")
    socket_timeout_s: float = Field(
        0.25, gt=0, description="Longest a Redis call may block the request path before Redis counts as down."
    )


class ControllerConfig(Strict):
    """The online cost controller that holds router.reasoning_share on live traffic."""

    window: int = Field(2000, ge=50, description="Routed decisions in the sliding window the share is measured over.")
    interval_s: float = Field(1.0, gt=0, description="Seconds between controller steps.")
    gain: float = Field(
        0.05, ge=0, le=1, description="Integral gain that corrects what the score quantile alone misses (exploration)."
    )
    proportional_gain: float = Field(
        2.0,
        ge=0,
        le=10,
        description="Proportional term on the window's share error: repays a deficit (e.g. the first requests, routed "
        "before the controller had a window) without the overshoot an integral wound up by it would cause.",
    )
    tolerance: float = Field(
        0.03, gt=0, le=0.5, description="Stated band around the target the realised window share is held within."
    )


class FeedbackConfig(Strict):
    """Online learning from feedback: decision log, feedback queue, online model, exploration."""

    enabled: bool = Field(True, description="Log decisions, accept POST /v1/feedback and learn online.")
    decision_ttl_s: int = Field(7 * 86400, ge=60, description="How long a decision can still receive feedback.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 while Redis is unavailable.")
    max_decisions: int = Field(
        300_000,
        ge=100,
        description="Size budget of the decision log beside its TTL (about 1.4 KB of Redis memory each): the oldest "
        "decisions beyond it are dropped, and feedback on them gets 404.",
    )
    max_backlog: int = Field(
        100_000,
        ge=1,
        description="Most unapplied feedback events queued; beyond it feedback gets 503 (never dropped once accepted).",
    )
    consumer_batch: int = Field(256, ge=1, description="Feedback events the consumer applies per transaction.")
    consumer_block_ms: int = Field(1000, ge=1, description="How long the consumer waits for new events per read.")
    reclaim_idle_s: float = Field(
        30.0, gt=0, description="Events pending this long on a consumer (e.g. one that crashed) are reclaimed."
    )
    online_dim: int = Field(32, ge=1, le=512, description="Dimension of the projected features the online model learns over.")
    prior_variance: float = Field(
        1.0, gt=0, description="Prior variance of each online residual weight (smaller: stays closer to the offline artifact)."
    )
    prior_bias_variance: float = Field(
        0.001,
        gt=0,
        le=1,
        description="Prior variance of the residuals' bias weight, relative to prior_variance: small, so feedback "
        "from one kind of prompt shifts similar prompts (along their feature directions), not every request.",
    )
    prior_correlation: float = Field(
        0.95,
        ge=0,
        lt=1,
        description="Prior correlation of the two pools' residuals (shared difficulty): bandit feedback on one pool "
        "then informs the other, and the gain is learned from fewer events (benchmarks/online_learning_lab.py).",
    )
    half_life_events: float = Field(
        20000.0, gt=0, description="Exponential forgetting: evidence halves after this many further events."
    )
    key_quota_events: float = Field(
        2000.0,
        gt=0,
        description="Most feedback events one API key can add to the shared online statistics (forgotten like the "
        "evidence, so the quota refills at the forgetting rate); further events from that key have no effect. "
        "Feedback without a key (authentication off) is one tenant's and is not limited.",
    )
    evidence_cap_events: float = Field(
        5000.0,
        gt=0,
        description="Most events' worth of precision any one direction of the online statistics can hold, so new "
        "feedback can always move them.",
    )
    half_life_s: float = Field(
        7 * 86400.0, gt=0, description="Exponential forgetting: evidence halves after this many seconds."
    )
    explore_cap: float = Field(
        0.05, ge=0, le=0.5, description="Most probability with which a routed request goes off the greedy choice."
    )
    explore_seed: int = Field(
        0,
        ge=0,
        lt=2**63,
        description="Key of the exploration draw, a hash of the request and the online state version: replicas and "
        "`frontier replay` with the same seed make the same choices on the same requests. Set a private value so "
        "clients cannot predict which requests explore.",
    )
    poll_interval_s: float = Field(
        0.5, gt=0, le=2.0, description="How often each router replica polls for a new policy version (besides pub/sub)."
    )
    gate_events: int = Field(
        32,
        ge=0,
        description="Promotion gate: every this many applied events, the learner's state frozen at the start of the "
        "window is compared off-policy (doubly robust) with the served one on the events applied since, and served only "
        "if not worse. 0 serves every batch at once (no gate).",
    )
    versions_kept: int = Field(20, ge=1, le=1000, description="Served versions kept for `frontier router rollback`.")
    ope_log_size: int = Field(
        5000, ge=1, description="Applied feedback events kept for off-policy evaluation (`frontier router evaluate`)."
    )
    controller: ControllerConfig = Field(
        default_factory=ControllerConfig, description="Online cost controller (active when router.reasoning_share is set)."
    )


class ObservabilityConfig(Strict):
    """Prometheus metrics and OpenTelemetry traces of the router."""

    metrics: bool = Field(True, description="Serve Prometheus metrics on the router's GET /metrics route.")
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP collector that receives the traces (e.g. 'http://otel-collector:4318/v1/traces' for "
        "http/protobuf, 'http://otel-collector:4317' for grpc); None: no spans are exported.",
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="OTLP transport used to export traces to otlp_endpoint."
    )
    service_name: str = Field("frontier", min_length=1, description="service.name resource attribute of the traces.")
    log_prompts: bool = Field(
        False,
        description="Put prompt and completion text on spans (gen_ai.input.messages / gen_ai.output.messages); "
        "off: only sizes, models and the decision are recorded.",
    )
    share_window: int = Field(
        1000, ge=1, description="Routed decisions over which the realised reasoning share gauge is measured (per router replica)."
    )
    request_log: Literal["file", "stderr", "off"] = Field(
        "file",
        description="Where each request's JSON line goes: 'file' appends it to a file in request_log_dir (one per "
        "replica process, rotated); 'stderr' writes it to the replica's stderr, which Ray's log monitor ships to "
        "the driver (the terminal of `frontier serve`) at 1 to 3 ms of CPU per request; 'off' writes none.",
    )
    request_log_dir: str | None = Field(
        None,
        description="Directory of the request log files ('file'); None: 'frontier' in the Ray session's log "
        "directory (e.g. /tmp/ray/session_latest/logs/frontier), where Ray's log tools and log collectors look.",
    )
