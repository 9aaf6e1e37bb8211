"""One router brain: the served system and the simulator, fed the same requests and feedback, decide alike.

The live side is the real stack (HTTP, Ray Serve, the decision log, the feedback stream, the consumer, the
watcher). The simulator is what ``frontier replay`` runs: ``Router.decide`` on a watcher's state, the same
decision log, intake and consumer, on a private key prefix of the same Redis.
"""

import csv
import dataclasses
import time
import uuid

import httpx

from frontier.feedback.consumer import FeedbackConsumer, ensure_state
from frontier.feedback.keys import Keys
from frontier.feedback.live import LiveStats
from frontier.feedback.service import FeedbackService, new_completion_id
from frontier.feedback.versions import reset
from frontier.routing.features import features_from_prompt
from frontier.routing.policies import build_router
from tests.integration.conftest import LIGHT_COL, REASONING_COL, ROUTELLM_DATA

STEPS = 20


def _rows():
    with ROUTELLM_DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    # Rows outside the training slice (every 20th row), short enough for the demo engines' context.
    picked = [r for r in rows[7::89] if len(r["prompt"]) < 900][:STEPS]
    return [(r["prompt"], float(r[LIGHT_COL] == "True"), float(r[REASONING_COL] == "True")) for r in picked]


def _served_chat(http, prompt, version, deadline):
    """A routed chat answered by the served state ``version`` (the replica's watcher may lag a moment)."""
    while True:
        r = http.post("/v1/chat/completions", json={
            "model": "frontier", "messages": [{"role": "user", "content": prompt}], "max_tokens": 1})  # fmt: skip
        assert r.status_code == 200, r.text
        if r.headers["x-frontier-policy-version"].endswith(f"+online-{version}"):
            return r
        assert time.monotonic() < deadline, f"served version never reached {version}: {r.headers}"
        time.sleep(0.1)


def test_the_live_server_and_the_simulator_make_the_same_decisions_and_learn_the_same(
    local_stack, stack_config, base_url, api_keys
):
    config = stack_config
    router = build_router(config)
    redis_client = local_stack.redis.client()
    fm = (router.feature_map.fingerprint, router.feature_map.dim)
    version = reset(redis_client, Keys(config.redis.key_prefix), config.feedback, fm)

    sim_keys = Keys(f"frontier-sim-{uuid.uuid4().hex[:8]}")
    ensure_state(redis_client, sim_keys, *fm, config.feedback)
    sim_service = FeedbackService(redis_client, config.feedback, sim_keys)
    sim_consumer = FeedbackConsumer(redis_client, sim_keys, config.feedback, name="sim")
    sim_live = LiveStats(redis_client, sim_keys, config.feedback.poll_interval_s)
    sim_live.refresh()
    knob = router.rule.operator_knob

    headers = {"Authorization": f"Bearer {api_keys['learner']}"}
    live_scores, sim_scores, live_pools, sim_pools = [], [], [], []
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
        for step, (prompt, light, reasoning) in enumerate(_rows()):
            answer = _served_chat(http, prompt, version + step, time.monotonic() + 60)
            live_pools.append(answer.headers["x-frontier-pool"])
            live_scores.append(float(answer.headers["x-frontier-score"]))

            routed = router.decide(features_from_prompt(prompt), sim_live.snapshot(), knob)
            sim_pools.append(str(routed.decision.pool))
            sim_scores.append(float(f"{routed.decision.score:.6f}"))
            cid = new_completion_id()
            sim_service.log.record(cid, dataclasses.replace(routed.context, key_id="learner"))

            label = reasoning if live_pools[-1] == "reasoning" else light
            assert http.post("/v1/feedback", json={"id": answer.json()["id"], "score": label}).status_code == 202
            sim_label = reasoning if sim_pools[-1] == "reasoning" else light
            sim_service.submit({"id": cid, "score": sim_label}, "learner")
            deadline = time.monotonic() + 30
            while sim_consumer.step(block_ms=1) == 0:
                assert time.monotonic() < deadline
            sim_live.refresh()

    assert live_pools == sim_pools
    assert live_scores == sim_scores
    # Learning happened: the scores of the last requests come from a state that moved off the prior.
    assert sim_live.snapshot().values["applied"] == len(live_scores)
