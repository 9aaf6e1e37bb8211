"""API keys: generation, hashing, the key store and the config entries it is built from."""

import argparse
import json

import pytest
from pydantic import ValidationError

from frontier.config import ApiKeyEntry, AuthConfig, ConfigError, FrontierConfig, load_config
from frontier.cli import serve as serve_cli
from frontier.errors import FrontierError
from frontier.security.keys import (
    API_KEYS_ENV,
    KEY_PREFIX,
    KeyInfo,
    KeyStore,
    generate_key,
    hash_key,
    load_env_entries,
    requires_key,
)
from frontier.serving.access import AccessControl

KEY_A = generate_key()
KEY_B = generate_key()


def _store(**env):
    auth = AuthConfig(keys=[ApiKeyEntry(name="team-a", sha256=hash_key(KEY_A), rpm=60, reasoning_share_budget=0.25)])
    return KeyStore.from_config(auth, environ=env)


def test_generated_keys_are_prefixed_random_and_hash_to_sha256_hex():
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith(KEY_PREFIX) and len(k) >= 40 for k in keys)
    # The known SHA-256 of "abc": the Helm chart and `sha256sum` compute the same.
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_authenticate_returns_the_key_info_never_the_key():
    info = _store().authenticate(f"Bearer {KEY_A}")
    assert info == KeyInfo(name="team-a", rpm=60, reasoning_share_budget=0.25)
    assert KEY_A not in repr(info) and hash_key(KEY_A) not in repr(info)
    assert _store().authenticate(f"bearer   {KEY_A}  ").name == "team-a"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
        (f"Bearer {KEY_A} extra", "invalid_api_key"),
        (f"Bearer {KEY_B}", "invalid_api_key"),
        (f"Bearer {KEY_A[:-1]}", "invalid_api_key"),
        ("Bearer " + "x" * 10_000, "invalid_api_key"),
    ],
)
def test_missing_or_invalid_keys_get_401_in_the_openai_shape(header, code):
    with pytest.raises(FrontierError) as err:
        _store().authenticate(header)
    exc = err.value
    assert exc.status_code == 401
    assert exc.headers["WWW-Authenticate"].startswith("Bearer")
    body = exc.body()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "authentication_error" and body["error"]["code"] == code
    assert KEY_B not in body["error"]["message"]


def test_env_keys_are_added_to_the_configured_ones():
    env = {API_KEYS_ENV: json.dumps([{"name": "helm", "sha256": hash_key(KEY_B), "rpm": 600}])}
    store = _store(**env)
    assert store.names == ["team-a", "helm"]
    assert store.authenticate(f"Bearer {KEY_B}") == KeyInfo(name="helm", rpm=600)
    assert store.authenticate(f"Bearer {KEY_A}").name == "team-a"


def test_no_keys_means_authentication_off_and_a_loud_warning():
    store = KeyStore.from_config(AuthConfig(), environ={})
    assert not store.enabled
    assert store.authenticate(None) is None
    assert store.authenticate("Bearer anything") is None
    assert "AUTHENTICATION IS OFF" in store.startup_warning()
    assert _store().startup_warning() is None


@pytest.mark.parametrize("raw", ["", "   ", "[]", " [ ] "])
def test_a_key_source_that_is_set_but_holds_no_key_refuses_to_start(raw, monkeypatch):
    with pytest.raises(ConfigError, match="holds no key"):
        load_env_entries({API_KEYS_ENV: raw})
    # The replica builds its keys the same way: it fails to start rather than serve without authentication.
    monkeypatch.setenv(API_KEYS_ENV, raw)
    with pytest.raises(ConfigError, match="holds no key"):
        AccessControl.from_config(load_config(), redis_client=None)
    assert load_env_entries({}) == []  # unset: no keys from the environment (authentication off, said loudly)


def test_serve_refuses_to_start_with_an_empty_key_source(monkeypatch, capsys):
    monkeypatch.setattr("frontier.serving.pools.resolve_pool_model", lambda name, pool: "model")
    monkeypatch.setattr(serve_cli, "LocalStack", None)  # nothing may be started
    monkeypatch.setenv(API_KEYS_ENV, "[]")
    assert serve_cli.run(argparse.Namespace(config=None, host=None, port=None)) == 2
    assert f"{API_KEYS_ENV} is set but holds no key" in capsys.readouterr().err


def test_the_key_list_reaches_replicas_on_an_existing_ray_cluster(monkeypatch):
    entries = json.dumps([{"name": "helm", "sha256": hash_key(KEY_B)}])
    assert serve_cli.replica_runtime_env({API_KEYS_ENV: entries}) == {"env_vars": {API_KEYS_ENV: entries}}
    assert serve_cli.replica_runtime_env({}) == {}
    monkeypatch.setenv(API_KEYS_ENV, entries)
    data = load_config().model_dump()
    data["server"]["ray_address"] = "ray://cluster:10001"
    stack = serve_cli.LocalStack(FrontierConfig.model_validate(data))
    inits = []

    class Stop(Exception):
        pass

    def init(**kwargs):
        inits.append(kwargs)
        raise Stop  # what ray.init was given is all this test needs

    monkeypatch.setattr(stack.redis, "start", lambda: "redis://127.0.0.1:1")
    monkeypatch.setattr("ray.init", init)
    monkeypatch.setattr(serve_cli, "port_is_free", lambda host, port: True)
    with pytest.raises(Stop):
        stack.start()
    assert inits == [{"address": "ray://cluster:10001", "runtime_env": {"env_vars": {API_KEYS_ENV: entries}}}]


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        json.dumps({"name": "x"}),
        json.dumps([{"name": "x", "sha256": "plain-key-not-a-hash"}]),
        json.dumps([{"name": "x", "sha256": hash_key("k"), "unknown": 1}]),
    ],
)
def test_a_bad_env_value_is_a_config_error_that_does_not_echo_it(raw):
    with pytest.raises(ConfigError) as err:
        load_env_entries({API_KEYS_ENV: raw})
    assert API_KEYS_ENV in str(err.value)
    assert "plain-key-not-a-hash" not in str(err.value)


def test_duplicate_names_are_refused_in_config_and_across_env():
    entry = {"name": "a", "sha256": hash_key("k1")}
    with pytest.raises(ValidationError, match="unique"):
        AuthConfig(keys=[entry, {**entry, "sha256": hash_key("k2")}])
    env = {API_KEYS_ENV: json.dumps([{"name": "team-a", "sha256": hash_key("k3")}])}
    with pytest.raises(ConfigError, match="twice"):
        _store(**env)


def test_config_accepts_only_hashes_and_valid_limits():
    data = load_config().model_dump()
    data["auth"] = {"keys": [{"name": "ok", "sha256": hash_key("k"), "rpm": 10, "reasoning_tokens_per_day": 1000}]}
    assert FrontierConfig.model_validate(data).auth.keys[0].rpm == 10
    for bad in (
        {"name": "ok", "sha256": "fk-plaintextkey"},
        {"name": "ok", "sha256": hash_key("k").upper()},
        {"name": "has space", "sha256": hash_key("k")},
        {"name": "ok", "sha256": hash_key("k"), "rpm": 0},
        {"name": "ok", "sha256": hash_key("k"), "reasoning_share_budget": 1.5},
        {"name": "ok", "sha256": hash_key("k"), "key": "fk-plain"},
    ):
        data["auth"] = {"keys": [bad]}
        with pytest.raises(ValidationError):
            FrontierConfig.model_validate(data)


def test_every_new_config_field_has_a_description():
    for model in (AuthConfig, ApiKeyEntry, FrontierConfig.model_fields["limits"].annotation):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


@pytest.mark.parametrize(
    ("path", "needs"),
    [
        ("/healthz", False),
        ("/readyz", False),
        ("/metrics", False),
        ("/metrics/", False),
        ("/v1/chat/completions", True),
        ("/v1/models", True),
        ("/v1/feedback", True),
        ("/openapi.json", True),
        ("/", True),
        ("/healthz/../v1/models", True),
    ],
)
def test_only_health_readiness_and_metrics_are_public(path, needs):
    assert requires_key(path) is needs
