"""Pool deployments: one Ray Serve LLM ``LLMServer`` (a real vLLM engine) per pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frontier.config import PoolConfig, PoolName
from frontier.serving.demo_models import DEMO_SCHEME, resolve_model_path

_LOCAL_PREFIXES = ("/", "./", "../", "~", "file://")


class ModelPathError(ValueError):
    """A configured model path that does not exist."""


def engine_model_id(pool_name: PoolName) -> str:
    """The model name the pool's engine serves under (internal; clients use ``frontier-*``)."""
    return f"frontier-{pool_name}-engine"


def resolve_pool_model(pool_name: PoolName, pool: PoolConfig) -> str:
    """Local directory or hub name vLLM should load; fails clearly for a missing local path."""
    if pool.model.startswith(DEMO_SCHEME):
        return resolve_model_path(pool.model)
    if pool.model.startswith(_LOCAL_PREFIXES):
        path = Path(pool.model.removeprefix("file://")).expanduser()
        if not path.exists():
            raise ModelPathError(f"pool '{pool_name}': model path does not exist: {path}")
        return str(path)
    return pool.model


def cpu_threads(pool: PoolConfig) -> int:
    """Compute threads of a CPU engine: the whole CPUs its replica reserves (at least one)."""
    return max(1, int(pool.resources.num_cpus))


PREFIX_ROUTER = "ray.serve.llm.request_router.PrefixCacheAffinityRouter"


def request_router_config(pool: PoolConfig) -> dict[str, Any] | None:
    """Ray Serve's request router for the pool's replicas: prefix-cache affinity where it is on, else None
    (Serve's default power of two choices). A pool of one replica has no choice to make: auto leaves it off."""
    affinity = pool.prefix_affinity
    enabled = affinity.enabled if affinity.enabled is not None else pool.autoscaling.max_replicas > 1
    if not enabled:
        return None
    kwargs: dict[str, Any] = {
        "match_rate_threshold": affinity.match_rate_threshold,
        "do_eviction": True,
        "eviction_threshold_chars": affinity.max_tree_chars,
        "eviction_target_chars": affinity.max_tree_chars * 9 // 10,
    }
    if affinity.imbalanced_threshold is not None:  # Ray's default: the prefix always wins
        kwargs["imbalanced_threshold"] = affinity.imbalanced_threshold
    return {"request_router_class": PREFIX_ROUTER, "request_router_kwargs": kwargs}


def llm_config_dict(pool_name: PoolName, pool: PoolConfig, model_source: str) -> dict[str, Any]:
    """The ``ray.serve.llm.LLMConfig`` (as a dict) for one pool."""
    # Usage reports the prompt tokens served from the prefix cache (OpenAI's prompt_tokens_details.cached_tokens).
    engine_kwargs: dict[str, Any] = {"max_model_len": pool.max_model_len, "enable_prompt_tokens_details": True}
    if pool.device == "cpu":
        # vLLM's CPU default block is 128 tokens, and the prefix cache only reuses whole blocks: a conversation
        # would find little of its history cached. 32 is the smallest block the CPU kernels run well with.
        engine_kwargs.update(dtype="float32", enforce_eager=True, block_size=32)
    if pool.reasoning_parser:
        engine_kwargs["reasoning_parser"] = pool.reasoning_parser
    if pool.tool_call_parser:
        engine_kwargs.update(enable_auto_tool_choice=True, tool_call_parser=pool.tool_call_parser)
    engine_kwargs.update(pool.engine_args)

    bundle: dict[str, float] = {"CPU": pool.resources.num_cpus}
    if pool.resources.num_gpus:
        bundle["GPU"] = pool.resources.num_gpus
    bundle.update(pool.resources.custom_resources)
    env = {}
    if pool.device == "cpu":
        # Ray pins OMP_NUM_THREADS=1 in actors; the CPU engine should use the cores the replica reserved.
        env = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": str(cpu_threads(pool))}
    env.update(pool.env)

    config: dict[str, Any] = {
        "model_loading_config": {"model_id": engine_model_id(pool_name), "model_source": model_source},
        "engine_kwargs": engine_kwargs,
        "placement_group_config": {"bundle_per_worker": bundle, "strategy": "PACK"},
        "runtime_env": {"env_vars": env},
        "deployment_config": {
            "name": f"{pool_name}-pool",
            "autoscaling_config": pool.autoscaling.model_dump(),
            "max_ongoing_requests": pool.max_ongoing_requests,
            "max_queued_requests": pool.max_queued_requests,
            "graceful_shutdown_timeout_s": pool.graceful_shutdown_timeout_s,
        },
        "log_engine_metrics": False,
    }
    if (router := request_router_config(pool)) is not None:
        config["deployment_config"]["request_router_config"] = router
    if pool.device == "cpu":
        config["accelerator_config"] = {"kind": "cpu"}
    elif pool.resources.accelerator_type:
        config["accelerator_type"] = pool.resources.accelerator_type
    return config


def build_pool_deployment(pool_name: PoolName, pool: PoolConfig, access_log: bool = False):
    """A bound Ray Serve LLM deployment (``PoolServer``, named ``LLMServer:<pool>-pool``) for one pool."""
    from ray.serve.llm import LLMConfig, build_llm_deployment

    from frontier.serving.pool_server import PoolServer

    source = resolve_pool_model(pool_name, pool)
    config = llm_config_dict(pool_name, pool, source)
    config["deployment_config"]["logging_config"] = {"enable_access_log": access_log}
    llm_config = LLMConfig(**config)
    return build_llm_deployment(llm_config, deployment_cls=PoolServer, name_prefix="LLMServer:")
