"""``frontier keys``: create API keys, storing only their SHA-256 (and limits) in a YAML config."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from frontier.config import ApiKeyEntry, FrontierConfig
from frontier.security.keys import generate_key, hash_key


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create API keys")
    sub = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add", help="create a key and store its hash in a config file; the key is printed once, as the last line"
    )
    add.add_argument("name", help="unique name of the key (letters, digits, '.', '_', '-')")
    add.add_argument("--config", required=True, help="YAML config file to add the key to (other content is kept)")
    _limit_args(add)
    add.set_defaults(handler=_add)
    entry = sub.add_parser(
        "entry",
        help="create a key and print its FRONTIER_API_KEYS / Helm Secret JSON entry, then the key as the last line",
    )
    entry.add_argument("name", help="unique name of the key")
    _limit_args(entry)
    entry.set_defaults(handler=_entry)


def _limit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpm", type=int, help="requests per minute (default: unlimited)")
    parser.add_argument("--reasoning-share", type=float, help="most share of calls sent to the reasoning pool")
    parser.add_argument("--reasoning-tokens-per-day", type=int, help="most reasoning-pool tokens per UTC day")
    parser.add_argument(
        "--feedback-per-minute", type=int, help="feedback posts per minute (default: auth.feedback_per_minute)"
    )


def _new_entry(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    key = generate_key()
    fields = {
        "name": args.name,
        "sha256": hash_key(key),
        "rpm": args.rpm,
        "reasoning_share_budget": args.reasoning_share,
        "reasoning_tokens_per_day": args.reasoning_tokens_per_day,
        "feedback_per_minute": args.feedback_per_minute,
    }
    entry = {k: v for k, v in fields.items() if v is not None}
    ApiKeyEntry.model_validate(entry)
    return key, entry


def _fail(message: str) -> int:
    print(f"frontier keys: {message}", file=sys.stderr)
    return 2


def _entry(args: argparse.Namespace) -> int:
    try:
        key, entry = _new_entry(args)
    except ValidationError as exc:
        return _fail(f"invalid key settings:\n{exc}")
    print(json.dumps(entry))
    print("API key (shown once, store it now):")
    print(key)
    return 0


def _add(args: argparse.Namespace) -> int:
    path = Path(args.config)
    yaml = YAML()  # round-trip mode: comments, order and layout of the rest of the file are kept
    yaml.preserve_quotes = True
    try:
        document = yaml.load(path.read_text())
    except FileNotFoundError:
        return _fail(f"config file not found: {path}")
    except YAMLError as exc:
        return _fail(f"{path}: not valid YAML: {exc}")
    if not isinstance(document, dict):
        return _fail(f"{path}: expected a mapping at the top level")
    try:
        key, entry = _new_entry(args)
    except ValidationError as exc:
        return _fail(f"invalid key settings:\n{exc}")
    auth = document.setdefault("auth", {})
    if auth is None:
        auth = document["auth"] = {}
    if not isinstance(auth, dict):
        return _fail(f"{path}: 'auth' must be a mapping")
    keys = auth.setdefault("keys", [])
    if keys is None:
        keys = auth["keys"] = []
    if any(isinstance(existing, dict) and existing.get("name") == args.name for existing in keys):
        return _fail(f"{path}: a key named {args.name!r} already exists")
    keys.append(entry)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    text = buffer.getvalue()
    try:
        FrontierConfig.model_validate(YAML(typ="safe").load(text))
    except ValidationError as exc:
        return _fail(f"{path}: the config would not be valid, nothing was written:\n{exc}")
    _write_atomically(path, text)
    limits = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "sha256")) or "no limits"
    print(f"added key {args.name!r} ({limits}) to {path}; only its SHA-256 is stored there.")
    print("API key (shown once, store it now):")
    print(key)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
