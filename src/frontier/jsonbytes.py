"""JSON bodies and SSE lines as bytes: orjson, falling back to the standard library for what orjson refuses.

orjson rejects integers beyond 64 bits, strings with lone surrogates and non-string keys; an engine's answer
may carry any of them, so those bodies are written by ``json`` (surrogates escaped as ``\\uXXXX``) instead.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """``value`` as compact UTF-8 JSON (``sort_keys``: each object's keys in order)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys).encode("utf-8")
