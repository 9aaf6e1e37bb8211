from pathlib import Path

import pytest
import yaml

from frontier.config import DEFAULT_CONFIG_PATH, ConfigError, FrontierConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _minimal() -> dict:
    return {"pools": {"light": {"model": "demo://light"}, "reasoning": {"model": "demo://reasoning"}}}


def test_embedded_default_loads_and_matches_deploy_copy():
    config = load_config()
    assert config.pools.light.model == "demo://light"
    assert config.pools.reasoning.model == "demo://reasoning"
    assert (REPO / "deploy" / "frontier-cpu.yaml").read_text() == DEFAULT_CONFIG_PATH.read_text()


def test_gpu_example_is_valid_and_uses_gpus():
    config = load_config(REPO / "deploy" / "frontier-gpu.yaml")
    assert config.pools.reasoning.reasoning_parser
    assert config.pools.light.resources.num_gpus >= 1 and config.pools.reasoning.resources.num_gpus >= 1
    assert config.pools.reasoning.price_output_per_mtok > config.pools.light.price_output_per_mtok


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    data = _minimal()
    data["pools"]["light"]["modle_len"] = 3
    with pytest.raises(ConfigError, match="modle_len"):
        load_config(_write(tmp_path, data))


def test_wrong_type_and_range_are_rejected(tmp_path):
    data = _minimal()
    data["server"] = {"port": 70000}
    with pytest.raises(ConfigError, match="port"):
        load_config(_write(tmp_path, data))


def test_min_replicas_above_max_is_rejected(tmp_path):
    data = _minimal()
    data["pools"]["light"]["autoscaling"] = {"min_replicas": 3, "max_replicas": 2}
    with pytest.raises(ConfigError, match="min_replicas"):
        load_config(_write(tmp_path, data))


def test_two_cost_knobs_are_rejected(tmp_path):
    data = _minimal()
    data["router"] = {"reasoning_share": 0.3, "price_weight": 1.0}
    with pytest.raises(ConfigError, match="at most one cost knob"):
        load_config(_write(tmp_path, data))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pools: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_every_field_has_a_description():
    schema = FrontierConfig.model_json_schema()
    defs = schema.get("$defs", {})

    def described(prop: dict) -> bool:
        # pydantic omits a field description equal to its model's docstring; the $ref then carries it.
        ref = prop.get("$ref", "").rsplit("/", 1)[-1]
        return bool(prop.get("description") or defs.get(ref, {}).get("description"))

    for name, sub in [("FrontierConfig", schema), *defs.items()]:
        for field, prop in sub.get("properties", {}).items():
            assert described(prop), f"{name}.{field} has no description"


def test_cost_estimate_uses_prices():
    config = load_config()
    light = config.pools.light
    assert light.estimated_cost_usd(1_000_000, 0) == pytest.approx(light.price_input_per_mtok)
    assert light.estimated_cost_usd(0, 2_000_000) == pytest.approx(2 * light.price_output_per_mtok)
