"""Conversations: which conversation a chat turn belongs to, and the pool that answered its previous turn.

Identity, in order of precedence: the request's ``prompt_cache_key``, the ``x-session-id`` header, or (with
``router.session.hash_history``) a hash of the messages a stateless client resends: the conversation up to its
previous user turn, which is what the previous turn's request held (assistant replies echoed back do not have to
match what the pool wrote). A request with no user message before its last one is a first turn: it has no
previous turn to follow (a ``prompt_cache_key`` shared by many conversations cannot pin their first turns), but
it is remembered. A request that ends with tool results continues its turn. Every identity is hashed with the
API key's name, so tenants never share a conversation.

The state, ``P:conv:{digest}`` = ``"pool completion-id"``, expires ``router.session.ttl_s`` after the last turn.
Redis faults fail open (``FailOpen``): the turn is routed as a first turn and its pool is not remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from frontier import jsonbytes
from frontier.config import FrontierConfig, SessionConfig
from frontier.feedback.keys import Keys
from frontier.redis_guard import FailOpen
from frontier.redis_writes import LoopTwin, Write
from frontier.routing.router import CHARS_PER_PROMPT_TOKEN
from frontier.routing.types import POOLS, Pool, SessionState
from frontier.schemas import ChatCompletionRequest
from frontier.security.limits import prompt_bytes

SESSION_HEADER = "x-session-id"
INLINE_IDENTIFY_BYTES = 16_384  # a history this small is hashed on the event loop in well under a millisecond


@dataclass(frozen=True)
class Conversation:
    """A request's place in its conversation: the Redis key of the turn it follows (None for a first turn),
    the key this turn is remembered under, and the size of the history a pool switch would prefill again."""

    follows: str | None
    key: str
    history_tokens: int


@dataclass(frozen=True)
class Turn:
    """What is remembered of a conversation's last turn: the pool that answered it and its completion id."""

    pool: Pool
    completion_id: str | None

    def state(self, conversation: Conversation) -> SessionState:
        return SessionState(self.pool, conversation.history_tokens)


def _digest(*parts: bytes) -> hashlib.blake2b:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest


def identify(
    request: ChatCompletionRequest, key_name: str, headers: Mapping[str, str] | None, keys: Keys, hash_history: bool
) -> Conversation | None:
    """The request's conversation (None: no identity, or no user message at all)."""
    messages = [jsonbytes.dumps(m, sort_keys=True) for m in request.message_dicts]
    users = [i for i, m in enumerate(request.messages) if m.role == "user"]
    if not users:
        return None
    last = users[-1]
    if last < len(messages) - 1:
        previous_end = last + 1  # tool results (or an assistant prefix) after the last user turn: the same turn
    else:
        previous_end = users[-2] + 1 if len(users) > 1 else None
    history_tokens = sum(len(m) for m in messages[:-1]) // CHARS_PER_PROMPT_TOKEN
    tenant = key_name.encode()
    named = request.prompt_cache_key or (headers or {}).get(SESSION_HEADER)
    if named:
        mode = b"key" if request.prompt_cache_key else b"header"
        key = keys.conversation(_digest(tenant, mode, named.encode("utf-8", "surrogatepass")).hexdigest())
        return Conversation(key if previous_end is not None else None, key, history_tokens)
    if not hash_history:
        return None
    digest = _digest(tenant, b"history")
    follows = None
    for i, message in enumerate(messages[: last + 1]):
        digest.update(message)
        if i + 1 == previous_end:
            follows = keys.conversation(digest.hexdigest())
    return Conversation(follows, keys.conversation(digest.hexdigest()), history_tokens)


class Sessions:
    """Conversation state in Redis, shared by every router replica; never fails a request."""

    def __init__(self, client: redis.Redis, keys: Keys, config: SessionConfig, cooldown_s: float = 1.0) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self.guard = FailOpen("conversations", cooldown_s)
        self.twin = LoopTwin(client)

    @classmethod
    def from_config(cls, config: FrontierConfig, client: redis.Redis | None) -> Sessions | None:
        """The conversations of ``config`` (None when they are off or there is no Redis)."""
        if client is None or not config.router.session.enabled:
            return None
        return cls(client, Keys(config.redis.key_prefix), config.router.session)

    async def find(
        self, request: ChatCompletionRequest, key_name: str, headers: Mapping[str, str] | None
    ) -> tuple[Conversation | None, Turn | None]:
        """The request's conversation and the turn it follows (None: a first turn, unknown or expired, or Redis
        unavailable). A long history is hashed in a worker thread, and only a turn that can follow one asks
        Redis: a small first turn costs no hop at all."""
        args = (request, key_name, headers, self.keys, self.config.hash_history)
        if prompt_bytes(request) > INLINE_IDENTIFY_BYTES:
            conversation = await asyncio.to_thread(identify, *args)
        else:
            conversation = identify(*args)
        return conversation, await self.lookup(conversation)

    async def lookup(self, conversation: Conversation | None) -> Turn | None:
        """The turn ``conversation`` follows, from Redis (None: a first turn, unknown or expired, Redis unavailable)."""
        if conversation is None or conversation.follows is None:
            return None
        raw = await self.guard.acall(None, self.twin.redis().get, conversation.follows)
        if raw is None:
            return None
        pool, _, cid = raw.decode().partition(" ")
        return Turn(Pool(pool), cid or None) if pool in POOLS else None

    def remember(self, conversation: Conversation, pool: Pool, completion_id: str | None) -> Write:
        """The write that records the pool that answered this turn (and its completion id), for ``ttl_s``."""
        value = f"{pool} {completion_id or ''}"
        return Write(self.client, self.guard, lambda pipe: pipe.set(conversation.key, value, ex=self.config.ttl_s))
