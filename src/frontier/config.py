"""The one configuration model used by the CLI, ``serve deploy`` and the Helm chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from frontier.routing.types import POOLS, Pool

# Pool names are the routing vocabulary, typed once in ``frontier.routing.types``.
PoolName = Pool
POOL_NAMES = POOLS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutoscalingConfig(_Strict):
    """Ray Serve autoscaling for one deployment."""

    min_replicas: int = Field(1, ge=0, description="Fewest replicas kept running.")
    max_replicas: int = Field(1, ge=1, description="Most replicas the autoscaler may start.")
    target_ongoing_requests: float = Field(
        4.0, gt=0, description="Ongoing requests per replica the autoscaler aims for."
    )
    upscale_delay_s: float = Field(10.0, ge=0, description="How long load must be high before scaling up.")
    downscale_delay_s: float = Field(300.0, ge=0, description="How long load must be low before scaling down.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "AutoscalingConfig":
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class ReplicaResources(_Strict):
    """Resources one replica reserves on the Ray cluster."""

    num_cpus: float = Field(1.0, ge=0, description="Logical CPUs per replica.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica (0 on a CPU-only cluster).")
    accelerator_type: str | None = Field(
        None, description="Ray accelerator type to schedule on (e.g. 'L4', 'H100'); None for any."
    )
    custom_resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per replica (e.g. {'frontier-light': 1}) that pin replicas to the nodes "
        "declaring them; the Helm chart sets one per pool node group.",
    )


class PrefixAffinityConfig(_Strict):
    """Replica choice inside a pool by prompt prefix (Ray Serve LLM's PrefixCacheAffinityRouter)."""

    enabled: bool | None = Field(
        None,
        description="Send a request to the replica that already holds the longest prefix of its prompt in its prefix "
        "cache, while replica loads are balanced. None: on when the pool can have more than one replica "
        "(autoscaling.max_replicas > 1). The prefix tree lives in a Ray actor that needs 1 free CPU to start.",
    )
    imbalanced_threshold: float | None = Field(
        8.0,
        gt=0,
        description="Difference in queued requests between replicas above which load wins over the prefix "
        "(power of two choices); None: the prefix always wins.",
    )
    match_rate_threshold: float = Field(
        0.1, ge=0, le=1, description="Shortest share of the prompt a replica must hold for the prefix to count."
    )
    max_tree_chars: int = Field(
        400_000,
        ge=1000,
        description="Characters of prompts the prefix tree remembers per pool; beyond it the oldest are evicted.",
    )


class PoolConfig(_Strict):
    """One pool of vLLM replicas serving one model."""

    model: str = Field(
        description="Local path or model name for vLLM; 'demo://light' or 'demo://reasoning' builds a tiny local model."
    )
    max_model_len: int = Field(512, ge=16, description="Longest prompt plus completion in tokens.")
    device: Literal["cpu", "gpu"] = Field("cpu", description="Where the engine runs.")
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="Extra vLLM engine arguments (e.g. dtype, tensor_parallel_size)."
    )
    reasoning_parser: str | None = Field(
        None, description="vLLM reasoning parser name for models that emit thinking (e.g. 'deepseek_r1')."
    )
    tool_call_parser: str | None = Field(
        None, description="vLLM tool-call parser (e.g. 'hermes', 'pythonic'); set it to accept `tools` with tool_choice auto."
    )
    price_input_per_mtok: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    price_output_per_mtok: float = Field(0.0, ge=0, description="USD per million completion tokens.")
    expected_output_tokens: int = Field(
        256, ge=1, description="Typical completion length, used to estimate the cost of a decision."
    )
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Replica autoscaling of this pool."
    )
    max_ongoing_requests: int = Field(16, ge=1, description="Concurrent requests one replica accepts.")
    max_queued_requests: int = Field(
        64, ge=-1, description="Requests waiting for a replica before callers get 429 (-1: unbounded)."
    )
    overflow_inflight: int | None = Field(
        None,
        ge=1,
        description="In-flight requests (per router replica) above which routed requests overflow to the other pool; None disables.",
    )
    resources: ReplicaResources = Field(
        default_factory=ReplicaResources, description="Resources each replica of this pool reserves."
    )
    prefix_affinity: PrefixAffinityConfig = Field(
        default_factory=PrefixAffinityConfig, description="Prefix-cache-aware choice of a replica in this pool."
    )
    graceful_shutdown_timeout_s: float = Field(
        600.0, gt=0, description="How long a stopping replica may finish in-flight requests (longer than the longest generation)."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables for the replica processes."
    )

    def estimated_cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD cost of one call at this pool's prices."""
        return (
            prompt_tokens * self.price_input_per_mtok + completion_tokens * self.price_output_per_mtok
        ) / 1_000_000


class PoolsConfig(_Strict):
    """The two pools behind the unified model."""

    light: PoolConfig = Field(description="Fast, cheap, non-reasoning pool.")
    reasoning: PoolConfig = Field(description="Slow, expensive reasoning pool.")

    def get(self, name: PoolName) -> PoolConfig:
        """The pool called ``name``."""
        return getattr(self, name)


class SessionConfig(_Strict):
    """Conversations: a follow-up turn stays on the pool that answered its conversation's previous turn."""

    enabled: bool = Field(
        True,
        description="Recognise conversations (prompt_cache_key, the x-session-id header, or a hash of the earlier "
        "messages) and keep a routed follow-up turn on its conversation's pool unless switching pays.",
    )
    ttl_s: int = Field(
        3600, ge=1, description="How long a conversation's state (in Redis) outlives its last turn."
    )
    hash_history: bool = Field(
        True,
        description="Recognise a client that sends neither prompt_cache_key nor x-session-id by a hash of the "
        "messages it resends (the conversation up to its previous user turn).",
    )
    switch_penalty: float = Field(
        0.25,
        ge=0,
        description="Score points past the threshold a follow-up turn must be to move its conversation to the other "
        "pool (scores lie in [0, 1]; 1 never moves one).",
    )
    cache_weight: float = Field(
        10.0,
        ge=0,
        description="Further score points per USD of prefix cache a move throws away: the history's tokens at the "
        "target pool's price_input_per_mtok.",
    )


class RouterConfig(_Strict):
    """The routing policy and the router (ingress) deployment."""

    policy: str = Field(
        "learned",
        description="Routing policy: learned (the trained artifact, learning online from feedback), heuristic, "
        "always-light or always-reasoning.",
    )
    artifact: str | None = Field(
        None, description="Directory of a trained router artifact for learned policies; None for the packaged default."
    )
    threshold: float = Field(
        0.5, ge=0, le=1, description="Score above which a routed request goes to the reasoning pool."
    )
    reasoning_share: float | None = Field(
        None, ge=0, le=1, description="Cost knob: target share of routed requests sent to the reasoning pool."
    )
    price_weight: float | None = Field(
        None, ge=0, description="Cost knob: quality points traded per USD of expected cost (lambda)."
    )
    session: SessionConfig = Field(
        default_factory=SessionConfig, description="Conversations stay on their pool; switching has a cost."
    )
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Autoscaling of the router deployment."
    )
    max_ongoing_requests: int = Field(256, ge=1, description="Concurrent requests one router replica accepts.")
    num_cpus: float = Field(0.5, ge=0, description="Logical CPUs per router replica.")
    custom_resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per router replica that pin it to the nodes declaring them "
        "(the Helm chart sets one for its router node group).",
    )

    @model_validator(mode="after")
    def _one_knob(self) -> "RouterConfig":
        if self.reasoning_share is not None and self.price_weight is not None:
            raise ValueError("set at most one cost knob: reasoning_share or price_weight")
        return self


class ServerConfig(_Strict):
    """HTTP server settings."""

    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port clients connect to.")
    request_timeout_s: float = Field(600.0, gt=0, description="Longest a request may take end to end.")
    access_log: bool = Field(
        False, description="Ray Serve's per-request access logs in proxy and replicas (the router logs each request as JSON anyway)."
    )
    health_probe_interval_s: float = Field(
        2.0, gt=0, description="How often the router probes each pool; an unhealthy pool gets no routed traffic."
    )
    health_probe_timeout_s: float = Field(
        5.0, gt=0, description="A pool that does not answer a probe within this time counts as unhealthy."
    )
    app_name: str = Field("frontier", description="Ray Serve application name.")
    ray_address: str | None = Field(
        None, description="Existing Ray cluster to join ('auto', 'ray://...'); None starts a local one."
    )
    ray_num_cpus: int | None = Field(
        None, ge=1, description="Logical CPUs of a locally started Ray (None: at least 8)."
    )
    direct_ingress: bool = Field(
        True,
        description="For a Ray that `frontier serve` starts itself (which always runs Ray Serve in its "
        "throughput-optimized mode) with one router replica: the router replica answers HTTP on `port` itself "
        "(direct ingress), so no Serve proxy hop sits in front of it (the proxy moves to a free internal port). "
        "With more router replicas, with `ray_address`, and on Kubernetes, clients reach the Serve proxy. "
        "Trade-off: a router replica that crashes is replaced on the same port only after about 70 s (its "
        "connections' TCP TIME_WAIT), against about 20 s behind the proxy.",
    )


class RedisConfig(_Strict):
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


class ControllerConfig(_Strict):
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


class FeedbackConfig(_Strict):
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


class ObservabilityConfig(_Strict):
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


class ApiKeyEntry(_Strict):
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


class AuthConfig(_Strict):
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


class LimitsConfig(_Strict):
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


class BatchConfig(_Strict):
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


class FrontierConfig(_Strict):
    """Everything a Frontier deployment needs."""

    pools: PoolsConfig = Field(description="The light and the reasoning pool.")
    router: RouterConfig = Field(default_factory=RouterConfig, description="Routing policy and router deployment.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="HTTP server settings.")
    redis: RedisConfig = Field(default_factory=RedisConfig, description="Redis server for feedback and online state.")
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig, description="Online learning from feedback.")
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Prometheus metrics and OpenTelemetry traces."
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys and per-key limits.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Input limits on chat requests.")
    batch: BatchConfig = Field(default_factory=BatchConfig, description="OpenAI Files and Batches API and its task queue.")


class ConfigError(ValueError):
    """A configuration file that cannot be used, with a message for the operator."""


DEFAULT_CONFIG_PATH = Path(__file__).parent / "defaults" / "frontier-cpu.yaml"


def load_config(path: str | Path | None = None) -> FrontierConfig:
    """Load and validate a YAML config file; ``None`` loads the embedded CPU default."""
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        data = yaml.safe_load(source.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return FrontierConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration:\n{exc}") from exc
