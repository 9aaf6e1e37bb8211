"""What a replica logs for feedback: a pool moved by overflow, fallback or a budget carries no propensity."""

import asyncio

import numpy as np
import pytest

from frontier.config import load_config
from frontier.feedback.ope_log import encode_record
from frontier.feedback.redis_server import connect
from frontier.routing.features import features_from_prompt
from frontier.routing.policies import build_router
from frontier.routing.types import StatsSnapshot
from frontier.redis_writes import GroupCommit
from frontier.serving.online import OnlineRouting
from tests.support.budget import redis_server  # noqa: F401 - fixture


@pytest.mark.parametrize("moved", [False, True])
def test_a_moved_decision_is_logged_without_the_routers_propensity(redis_server, moved):  # noqa: F811
    config = load_config()
    router = build_router(config)
    url = redis_server.url
    online = OnlineRouting(config, connect(url, 1.0), url, router)
    routed = router.decide(features_from_prompt("What is 17 * 23?"), StatsSnapshot(), router.rule.operator_knob)
    served = routed.decision
    if moved:
        other = "reasoning" if served.pool == "light" else "light"
        served = served.model_copy(update={"pool": other, "reason": "overflow"})
    cid, write = online.decision_write(routed.context, served, None)
    assert asyncio.run(GroupCommit().commit([write])) == [True]
    logged = online.service.log.get(cid)
    assert logged["pool"] == served.pool
    assert logged["prop"] == (0.0 if moved else routed.context.propensity)
    fields = {b"pool": served.pool.encode(), b"prop": repr(logged["prop"]).encode(), b"kind": b"score",
              b"value": b"1.0", b"o": np.zeros(2, np.float32).tobytes(), b"x": b""}  # fmt: skip
    # Off-policy evaluation keeps only the router's own draws.
    assert (encode_record(fields, 1) is None) == moved
