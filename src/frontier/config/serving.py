"""Configuration of the serving side: pools, the router deployment and the HTTP server."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from frontier.config.base import PoolName, Strict


class AutoscalingConfig(Strict):
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


class ReplicaResources(Strict):
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


class PrefixAffinityConfig(Strict):
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


class PoolConfig(Strict):
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


class PoolsConfig(Strict):
    """The two pools behind the unified model."""

    light: PoolConfig = Field(description="Fast, cheap, non-reasoning pool.")
    reasoning: PoolConfig = Field(description="Slow, expensive reasoning pool.")

    def get(self, name: PoolName) -> PoolConfig:
        """The pool called ``name``."""
        return getattr(self, name)


class SessionConfig(Strict):
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


class RouterConfig(Strict):
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


class ServerConfig(Strict):
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
