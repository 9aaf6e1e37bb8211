"""API keys: generation, hashing, and the key store that authenticates ``Authorization: Bearer`` headers.

Keys are configured only as the SHA-256 of the key (``auth.keys`` and the environment variable
``FRONTIER_API_KEYS``, a JSON list of the same entries, which the Helm chart fills from a Secret). A
key is 256 random bits, so a fast hash is enough: nothing can be guessed from it, and the Helm chart
can compute it. With no key configured at all authentication is off, which ``startup_warning`` says; but
``FRONTIER_API_KEYS`` set to a value that holds no key (``""``, ``[]``) is an error: a deployment that meant
to turn authentication on must not come up with it off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from frontier.config import ApiKeyEntry, AuthConfig, ConfigError
from frontier.errors import FrontierError

KEY_PREFIX = "fk-"
API_KEYS_ENV = "FRONTIER_API_KEYS"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_KEY_CHARS = 256
_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="frontier"'}
_ENTRIES = TypeAdapter(list[ApiKeyEntry])


def generate_key() -> str:
    """A new API key: ``fk-`` and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """Lower-case hex SHA-256 of a key, as stored in ``auth.keys[].sha256``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def requires_key(path: str) -> bool:
    """Whether a request path needs an API key (all but health, readiness and metrics)."""
    return path.rstrip("/") not in PUBLIC_PATHS


@dataclass(frozen=True)
class KeyInfo:
    """The authenticated caller: its name and limits (never the key or its hash)."""

    name: str
    rpm: int | None = None
    reasoning_share_budget: float | None = None
    reasoning_tokens_per_day: int | None = None
    feedback_per_minute: int | None = None

    @classmethod
    def from_entry(cls, entry: ApiKeyEntry) -> KeyInfo:
        return cls(
            name=entry.name,
            rpm=entry.rpm,
            reasoning_share_budget=entry.reasoning_share_budget,
            reasoning_tokens_per_day=entry.reasoning_tokens_per_day,
            feedback_per_minute=entry.feedback_per_minute,
        )


def load_env_entries(environ: Mapping[str, str] | None = None) -> list[ApiKeyEntry]:
    """Key entries from ``FRONTIER_API_KEYS`` (a JSON list of ``auth.keys`` entries); [] when unset.

    Raises ConfigError when it is set but is not such a list, or holds no entry (fail closed).
    """
    raw = (environ if environ is not None else os.environ).get(API_KEYS_ENV)
    if raw is None:
        return []
    entries = _parse_entries(raw) if raw.strip() else []
    if not entries:
        raise ConfigError(
            f"{API_KEYS_ENV} is set but holds no key, so the server would run without authentication; refusing "
            "to start. Put at least one entry in it (`frontier keys add NAME`), or unset it to run without keys."
        )
    return entries


def _parse_entries(raw: str) -> list[ApiKeyEntry]:
    try:
        return _ENTRIES.validate_python(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        # The message names the problem but never echoes the value (it is a secret's hash list).
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else f"{exc.error_count()} invalid field(s)"
        raise ConfigError(
            f"{API_KEYS_ENV} is not a JSON list of key entries {{name, sha256, rpm, ...}}: {reason}"
        ) from None


class KeyStore:
    """The configured keys; authenticates bearer headers in constant time per key."""

    def __init__(self, entries: Iterable[ApiKeyEntry]) -> None:
        self._entries: list[tuple[bytes, KeyInfo]] = []
        seen: set[str] = set()
        for entry in entries:
            if entry.name in seen:
                raise ConfigError(f"API key name {entry.name!r} is configured twice")
            seen.add(entry.name)
            self._entries.append((entry.sha256.encode("ascii"), KeyInfo.from_entry(entry)))

    @classmethod
    def from_config(cls, auth: AuthConfig, environ: Mapping[str, str] | None = None) -> KeyStore:
        """Keys from ``auth.keys`` plus those in ``FRONTIER_API_KEYS``."""
        return cls([*auth.keys, *load_env_entries(environ)])

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key (at least one key is configured)."""
        return bool(self._entries)

    @property
    def names(self) -> list[str]:
        return [info.name for _, info in self._entries]

    def startup_warning(self) -> str | None:
        """The warning to log at startup when authentication is off; None when keys are configured."""
        if self.enabled:
            return None
        return (
            "AUTHENTICATION IS OFF: no API keys are configured (auth.keys in the config, or "
            f"{API_KEYS_ENV}), so anyone who can reach this server may call every route, use the GPUs and "
            "send feedback. Add a key with `frontier keys add NAME --config FILE`."
        )

    def lookup(self, key: str) -> KeyInfo | None:
        """The key's info, or None; compares against every entry so timing does not depend on the match."""
        digest = hash_key(key).encode("ascii")
        found: KeyInfo | None = None
        for stored, info in self._entries:
            if hmac.compare_digest(stored, digest):
                found = info
        return found

    def authenticate(self, authorization: str | None) -> KeyInfo | None:
        """The caller of a request from its ``Authorization`` header.

        Returns None when authentication is off; raises FrontierError 401 when keys are configured and
        the header is missing, malformed or names no configured key.
        """
        if not self.enabled:
            return None
        if not authorization or not authorization.strip():
            raise FrontierError(
                401,
                "missing API key: send the header 'Authorization: Bearer <key>'",
                code="missing_api_key",
                headers=_WWW_AUTHENTICATE,
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS or any(c.isspace() for c in token):
            raise FrontierError(
                401,
                "malformed Authorization header: expected 'Bearer <key>'",
                code="invalid_api_key",
                headers=_WWW_AUTHENTICATE,
            )
        info = self.lookup(token)
        if info is None:
            raise FrontierError(401, "invalid API key", code="invalid_api_key", headers=_WWW_AUTHENTICATE)
        return info
