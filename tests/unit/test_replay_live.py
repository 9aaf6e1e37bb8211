"""`frontier replay --live`'s client against a scripted server: bandit feedback, version re-asks, refusals."""

import json

import httpx
import numpy as np

from frontier.cli.replay_live import LiveReplay, replay_live


class ScriptedServer:
    """Routes prompts containing 'hard' to reasoning; its score rises with the feedback it has applied."""

    def __init__(self, lag: int = 0):
        self.version = 0
        self.feedback: list[tuple[str, float]] = []
        self.pools: dict[str, str] = {}
        self.lagging = lag  # answers still served by the previous version after each change
        self.lag = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ok", "feedback": {"backlog": 0, "lag_s": 0.0}})
        body = json.loads(request.content)
        if request.url.path == "/v1/feedback":
            self.feedback.append((self.pools[body["id"]], body["score"]))
            self.version = len(self.feedback)
            self.lag = self.lagging
            return httpx.Response(202, json={"id": body["id"], "status": "queued"})
        prompt = body["messages"][0]["content"]
        if "too long" in prompt:
            return httpx.Response(400, json={"error": {"message": "too long", "type": "invalid_request_error"}})
        version = self.version
        if self.lag:
            version, self.lag = max(version - 1, 0), self.lag - 1
        hard = "hard" in prompt
        cid = f"chatcmpl-{len(self.pools)}"
        self.pools[cid] = "reasoning" if hard else "light"
        score = (0.6 if hard else 0.4) + 0.001 * version
        headers = {"x-frontier-pool": self.pools[cid], "x-frontier-reason": "policy",
                   "x-frontier-score": f"{score:.6f}", "x-frontier-policy-version": f"r+online-{version}"}
        return httpx.Response(200, headers=headers, json={"id": cid, "choices": []})


def test_live_replay_sends_the_answering_pools_label_and_scores_the_tail_on_one_version():
    prompts = [f"{'hard' if i % 2 else 'easy'} question {i}" for i in range(40)] + ["too long " * 3]
    light = np.array([1.0 if i % 2 == 0 else 0.0 for i in range(41)])
    reasoning = np.ones(41)
    server = ScriptedServer(lag=1)
    client = LiveReplay("http://frontier.test/v1", "key", transport=httpx.MockTransport(server))
    tail, scores, metrics = replay_live(client, prompts, light, reasoning, learn_fraction=0.5, seed=3)

    learn = np.random.default_rng(3).permutation(41)[:20]
    sent = [(pool, score) for pool, score in server.feedback]
    expected = [("reasoning" if i % 2 else "light", reasoning[i] if i % 2 else light[i]) for i in learn if i != 40]
    assert sent == expected  # only the answering pool's label, in the simulator's order
    assert metrics["learn_rows"] == len(expected) and metrics["refused_rows"] == 1
    assert metrics["learn_reasoning_share"] == np.mean([p == "reasoning" for p, _ in expected])
    ok = ~np.isnan(scores)
    assert set(np.round((scores[ok] - np.where(tail[ok] % 2, 0.6, 0.4)) / 0.001)) == {len(expected)}
    # The ranking puts every row light fails first: the best APGR there is, before and after learning.
    assert metrics["tail_apgr"] == metrics["offline_tail_apgr"] > 0.7
