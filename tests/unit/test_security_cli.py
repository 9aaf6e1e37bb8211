"""``frontier keys``: keys are printed once (last line) and only their hashes reach the config file."""

import json

import pytest

from frontier.cli.main import main
from frontier.config import load_config
from frontier.security.keys import KEY_PREFIX, KeyStore, hash_key

CONFIG = """\
# my deployment (this comment must survive)
pools:
  light: {model: demo://light, max_model_len: 512}   # flow style kept
  reasoning:
    model: demo://reasoning
    max_model_len: 1024
router:
  policy: heuristic
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "frontier.yaml"
    path.write_text(CONFIG)
    path.chmod(0o640)
    return path


def test_keys_add_stores_only_the_hash_and_prints_the_key_last(config_file, capsys):
    assert main(["keys", "add", "team-a", "--config", str(config_file), "--rpm", "60"]) == 0
    out = capsys.readouterr().out
    key = out.rstrip("\n").splitlines()[-1]
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    text = config_file.read_text()
    assert key not in text and key[len(KEY_PREFIX) :] not in text
    assert text.startswith(CONFIG)  # the rest of the file, comments and layout included, is untouched
    assert config_file.stat().st_mode & 0o777 == 0o640
    config = load_config(config_file)
    assert [(k.name, k.sha256, k.rpm) for k in config.auth.keys] == [("team-a", hash_key(key), 60)]
    assert KeyStore.from_config(config.auth, environ={}).authenticate(f"Bearer {key}").name == "team-a"

    assert main(["keys", "add", "team-b", "--config", str(config_file), "--reasoning-tokens-per-day", "5000"]) == 0
    second = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    config = load_config(config_file)
    assert [k.name for k in config.auth.keys] == ["team-a", "team-b"]
    assert config.auth.keys[1].reasoning_tokens_per_day == 5000 and config.auth.keys[1].rpm is None
    assert second != key and second not in config_file.read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "add", "team-a"],  # the name exists already
        ["keys", "add", "bad name"],
        ["keys", "add", "ok", "--rpm", "0"],
        ["keys", "add", "ok", "--reasoning-share", "2"],
    ],
)
def test_refused_additions_leave_the_file_unchanged_and_print_no_key(config_file, capsys, argv):
    assert main(["keys", "add", "team-a", "--config", str(config_file)]) == 0
    before = config_file.read_text()
    capsys.readouterr()
    assert main([*argv, "--config", str(config_file)]) == 2
    captured = capsys.readouterr()
    assert config_file.read_text() == before
    assert KEY_PREFIX not in captured.out
    assert "frontier keys:" in captured.err


def test_an_invalid_config_is_not_written(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("pools: {light: {model: x}}\n")
    assert main(["keys", "add", "a", "--config", str(path)]) == 2
    assert path.read_text() == "pools: {light: {model: x}}\n"
    assert main(["keys", "add", "a", "--config", str(tmp_path / "missing.yaml")]) == 2


def test_keys_entry_prints_a_secret_entry_then_the_key(capsys):
    assert main(["keys", "entry", "helm-team", "--rpm", "600"]) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    entry, key = json.loads(lines[0]), lines[-1]
    assert entry == {"name": "helm-team", "sha256": hash_key(key), "rpm": 600}
