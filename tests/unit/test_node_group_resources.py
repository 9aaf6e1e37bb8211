"""Custom Ray resources pin pool and router replicas to their node groups (the Helm chart relies on it)."""

from frontier.config import FrontierConfig
from frontier.serving.pools import llm_config_dict


def _config() -> FrontierConfig:
    return FrontierConfig.model_validate({
        "pools": {
            "light": {"model": "m", "device": "gpu",
                      "resources": {"num_cpus": 4, "num_gpus": 1, "custom_resources": {"frontier-light": 1}}},
            "reasoning": {"model": "r"},
        },
        "router": {"custom_resources": {"frontier-router": 1}},
    })


def test_pool_bundle_requests_the_custom_resource_next_to_cpus_and_gpus():
    config = _config()
    bundle = llm_config_dict("light", config.pools.light, "m")["placement_group_config"]["bundle_per_worker"]
    assert bundle == {"CPU": 4.0, "GPU": 1.0, "frontier-light": 1.0}


def test_without_custom_resources_the_bundle_is_unchanged():
    config = _config()
    bundle = llm_config_dict("reasoning", config.pools.reasoning, "r")["placement_group_config"]["bundle_per_worker"]
    assert bundle == {"CPU": 1.0}
    assert config.router.custom_resources == {"frontier-router": 1.0}
