"""``frontier replay --live URL``: the replay experiment driven through a running server's public API.

Rows are shuffled exactly as the simulator shuffles them. Each learning row is a chat for ``frontier``
followed by ``POST /v1/feedback`` with the label of the pool that answered (bandit feedback: the other
pool's outcome is never sent). The tail is then sent once and each ``x-frontier-score`` recorded; a cold
pass over the tail before learning gives the same figure for the untrained server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np

from frontier.feedback.replay import split_rows, tail_metrics

SCORE_HEADER = "x-frontier-score"
POOL_HEADER = "x-frontier-pool"
REASON_HEADER = "x-frontier-reason"
VERSION_HEADER = "x-frontier-policy-version"


class LiveReplayError(RuntimeError):
    """The server answered something the replay cannot use (not a client-side row problem)."""


@dataclass
class LiveRoute:
    """What the server said about one routed chat, or why it refused it."""

    status: int
    pool: str | None = None
    reason: str | None = None
    score: float | None = None
    completion_id: str | None = None
    version: str | None = None


@dataclass
class LiveReplay:
    """A client of one running Frontier server."""

    base_url: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_tokens: int = 1
    transport: httpx.BaseTransport | None = None
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        root = self.base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.Client(base_url=root, headers=headers, timeout=self.timeout_s, transport=self.transport)

    def close(self) -> None:
        self._client.close()

    def route(self, prompt: str) -> LiveRoute:
        """One routed chat completion; 4xx answers (e.g. a prompt over the pool's context) are returned."""
        r = self._client.post(
            "/v1/chat/completions",
            json={"model": "frontier", "messages": [{"role": "user", "content": prompt}], "max_tokens": self.max_tokens},
        )
        if r.status_code >= 500 or r.status_code in (401, 403, 404, 429):
            raise LiveReplayError(f"chat answered {r.status_code}: {r.text[:300]}")
        if r.status_code != 200:
            return LiveRoute(r.status_code)
        score = r.headers.get(SCORE_HEADER)
        return LiveRoute(
            200,
            pool=r.headers.get(POOL_HEADER),
            reason=r.headers.get(REASON_HEADER),
            score=float(score) if score not in (None, "") else None,
            completion_id=r.json().get("id"),
            version=r.headers.get(VERSION_HEADER),
        )

    def wait_applied(self, timeout_s: float = 120.0) -> None:
        """Wait until the server's feedback consumer has no backlog (``/readyz``'s cached ``feedback``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            feedback = self._client.get("/readyz").json().get("feedback") or {}
            if feedback.get("backlog") == 0:
                return
            time.sleep(0.2)
        raise LiveReplayError(f"the server still had unapplied feedback after {timeout_s:.0f} s")

    def feedback(self, completion_id: str, score: float) -> None:
        """Feedback on one completion; retried while the server says it is busy (429/503)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            r = self._client.post("/v1/feedback", json={"id": completion_id, "score": float(score)})
            if r.status_code == 202:
                return
            if r.status_code not in (429, 503) or time.monotonic() > deadline:
                raise LiveReplayError(f"feedback answered {r.status_code}: {r.text[:300]}")
            time.sleep(float(r.headers.get("retry-after", "0.2") or 0.2))


def _score_rows(
    client: LiveReplay, prompts: list[str], rows: np.ndarray, progress: Callable[[], None], rounds: int = 3
) -> np.ndarray:
    """Scores of ``rows`` under one policy version: rows answered by an older version (the replicas'
    watchers pick a new version up within their poll interval) are asked again."""
    scores = np.full(len(rows), np.nan)
    versions: list[str | None] = [None] * len(rows)
    todo = range(len(rows))
    for _ in range(rounds):
        for j in todo:
            routed = client.route(prompts[rows[j]])
            scores[j] = routed.score if routed.score is not None else np.nan
            versions[j] = routed.version
            progress()
        latest = versions[-1]
        todo = [j for j, v in enumerate(versions) if v != latest and not np.isnan(scores[j])]
        if not todo:
            break
    return scores


def replay_live(
    client: LiveReplay,
    prompts: list[str],
    light: np.ndarray,
    reasoning: np.ndarray,
    learn_fraction: float = 0.5,
    seed: int = 0,
    cold_pass: bool = True,
    progress: Callable[[], None] = lambda: None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float | int]]:
    """Learn through the API on the first ``learn_fraction`` of the shuffled rows, then score the rest.

    Returns the tail's row numbers, their scores (NaN where the server refused the row) and the metrics.
    """
    learn, tail = split_rows(len(prompts), learn_fraction, seed)
    started = time.perf_counter()
    metrics: dict[str, float | int] = {}
    if cold_pass:
        cold = _score_rows(client, prompts, tail, progress)
        ok = ~np.isnan(cold)
        metrics.update({f"offline_tail_{k}": v for k, v in tail_metrics(cold[ok], light[tail][ok], reasoning[tail][ok]).items()})
    routed = to_reasoning = explored = refused = 0
    for i in learn:
        answer = client.route(prompts[i])
        progress()
        if answer.status != 200 or answer.completion_id is None:
            refused += 1
            continue
        routed += 1
        to_reasoning += answer.pool == "reasoning"
        explored += answer.reason == "explore"
        client.feedback(answer.completion_id, float(reasoning[i] if answer.pool == "reasoning" else light[i]))
    client.wait_applied()
    scores = _score_rows(client, prompts, tail, progress)
    ok = ~np.isnan(scores)
    online = tail_metrics(scores[ok], light[tail][ok], reasoning[tail][ok])
    metrics.update(
        {
            "learn_rows": int(routed),
            "tail_rows": int(ok.sum()),
            "refused_rows": int(refused + (~ok).sum()),
            "learn_reasoning_share": to_reasoning / max(routed, 1),
            "learn_explored_share": explored / max(routed, 1),
            "tail_apgr": online["apgr"],
            "tail_cpt50": online["cpt50"],
            "tail_cpt80": online["cpt80"],
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    return tail, scores, metrics
