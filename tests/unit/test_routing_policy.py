import math
from types import MappingProxyType

import numpy as np
import pytest

from frontier.config import load_config
from frontier.errors import FrontierError
from frontier.routing.features import extract_features, features_from_prompt
from frontier.routing.policies import build_router
from frontier.routing.router import ThresholdRule, threshold_for
from frontier.routing.types import CostKnob, Pool, Reason, StatsSnapshot

STATS = StatsSnapshot()
KNOB = CostKnob()
HARD = "Think hard and prove that sqrt(2) is irrational."


def _router(policy="heuristic", **router):
    config = load_config()
    update = {"policy": policy, "reasoning_share": None, "price_weight": None, "threshold": 0.5, **router}
    return build_router(config.model_copy(update={"router": config.router.model_copy(update=update)}))


def test_features_see_structure():
    f = extract_features(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "def f(x):\n    return x"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Think step by step: solve 3 + 4 = x"},
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
    )
    assert f.num_messages == 4 and f.num_user_turns == 2
    assert f.has_tools and f.code_markers >= 1 and f.math_markers >= 1 and f.reasoning_intent
    assert f.last_user_text.startswith("Think step by step")
    plain = features_from_prompt("hello there")
    assert not plain.reasoning_intent and plain.code_markers == 0 and plain.math_markers == 0


def test_heuristic_sends_hard_requests_to_reasoning_and_chat_to_light():
    router = _router()
    easy = router.decide(features_from_prompt("hi, how are you?"), STATS, KNOB).decision
    hard = router.decide(features_from_prompt(HARD), STATS, KNOB).decision
    assert easy.pool == "light" and hard.pool == "reasoning"
    assert easy.reason == hard.reason == "policy"
    assert hard.score > easy.score and hard.threshold == 0.5
    assert hard.policy_version == "heuristic-1"


def test_heuristic_score_is_its_logistic_score():
    f = features_from_prompt("Think step by step: solve 3 + 4 = x")
    logit = -2.0 + 0.45 * math.log1p(f.prompt_chars / 200) + 0.25 + 0.7 * min(f.math_markers, 5) ** 0.5 + 3.0
    assert _router().decide(f, STATS, KNOB).decision.score == pytest.approx(1 / (1 + math.exp(-logit)))


def test_share_knob_moves_the_threshold():
    router = _router()
    f = features_from_prompt("hi")
    assert router.decide(f, STATS, CostKnob(reasoning_share=1.0)).decision.pool == "reasoning"
    assert router.decide(f, STATS, CostKnob(reasoning_share=0.0)).decision.pool == "light"


@pytest.mark.parametrize(
    "model,effort,pool,reason",
    [
        ("frontier-light", "high", "light", "explicit"),
        ("frontier-reasoning", "minimal", "reasoning", "explicit"),
        ("frontier", "minimal", "light", "effort"),
        ("frontier", "high", "reasoning", "effort"),
    ],
)
@pytest.mark.parametrize("policy", ["heuristic", "learned", "always-light"])
def test_explicit_model_and_effort_override_the_policy(model, effort, pool, reason, policy):
    router = _router(policy)
    for f in (features_from_prompt(HARD), features_from_prompt("hi")):
        routed = router.decide(f, STATS, KNOB, model=model, reasoning_effort=effort)
        assert (routed.decision.pool, routed.decision.reason) == (pool, reason)
        assert routed.context is None  # the caller chose: nothing for the learner


@pytest.mark.parametrize("effort", ["low", "medium", None])
def test_low_and_medium_effort_leave_it_to_the_policy(effort):
    routed = _router().decide(features_from_prompt("Think hard: prove it."), STATS, KNOB, reasoning_effort=effort)
    assert routed.decision.reason == "policy" and routed.decision.pool == "reasoning"
    assert routed.context is not None and routed.context.pool == "reasoning" and routed.context.propensity == 1.0


def test_unknown_model_is_404():
    with pytest.raises(FrontierError) as info:
        _router().decide(features_from_prompt("hi"), STATS, KNOB, model="gpt-4")
    assert info.value.status_code == 404 and info.value.param == "model"


def test_policy_registry_builds_named_routers_and_rejects_unknown():
    for name, pool in (("always-light", "light"), ("always-reasoning", "reasoning")):
        router = _router(name)
        routed = router.decide(features_from_prompt("Think hard"), STATS, CostKnob(reasoning_share=0.0))
        assert routed.decision.pool == pool and routed.decision.reason == "policy" and routed.context is None
        assert routed.decision.policy_version == f"{name}-1"
    with pytest.raises(ValueError, match="unknown routing policy 'nope'"):
        _router("nope")


def test_the_learned_router_is_the_default():
    assert load_config().router.policy == "learned"
    from frontier.config import RouterConfig

    assert RouterConfig().policy == "learned"


def test_pool_and_reason_are_their_wire_strings():
    assert [str(p) for p in Pool] == ["light", "reasoning"] and Pool.LIGHT.other is Pool.REASONING
    assert {str(r) for r in Reason} == {
        "policy", "explore", "explicit", "effort", "overflow", "fallback", "budget", "session", "session_switch"
    }
    assert f"{Reason.EXPLORE}" == "explore" and Pool.LIGHT == "light"


# The one threshold rule, branch by branch.

RULE = ThresholdRule(
    operator_knob=CostKnob(reasoning_share=0.3),
    share_threshold=lambda share: {0.0: 1.0, 1.0: 0.0}.get(share, 0.9 - share),
    extra_cost_usd=lambda chars: 1e-3 * chars,
    default=0.42,
)
LIVE = StatsSnapshot(version=3, values=MappingProxyType({"threshold": 0.61}))


def test_threshold_share_uses_the_controllers_live_threshold_for_the_operators_knob():
    assert threshold_for(RULE, CostKnob(reasoning_share=0.3), LIVE, 100) == 0.61


def test_threshold_share_without_a_controller_or_for_another_share_is_the_calibrated_quantile():
    assert threshold_for(RULE, CostKnob(reasoning_share=0.3), STATS, 100) == pytest.approx(0.6)
    assert threshold_for(RULE, CostKnob(reasoning_share=0.5), LIVE, 100) == pytest.approx(0.4)


def test_threshold_share_ends_are_exact_even_with_a_controller():
    rule = ThresholdRule(CostKnob(reasoning_share=0.0), RULE.share_threshold, RULE.extra_cost_usd)
    assert threshold_for(rule, CostKnob(reasoning_share=0.0), LIVE, 100) == 1.0
    rule = ThresholdRule(CostKnob(reasoning_share=1.0), RULE.share_threshold, RULE.extra_cost_usd)
    assert threshold_for(rule, CostKnob(reasoning_share=1.0), LIVE, 100) == 0.0


def test_threshold_price_weight_grows_with_the_prompt_and_is_clamped_and_finite():
    assert threshold_for(RULE, CostKnob(price_weight=0.0), LIVE, 100) == 0.5
    assert threshold_for(RULE, CostKnob(price_weight=1.0), LIVE, 100) == pytest.approx(0.5 + 0.1 / 2)
    assert threshold_for(RULE, CostKnob(price_weight=1.0), LIVE, 400) == pytest.approx(0.5 + 0.4 / 2)
    assert threshold_for(RULE, CostKnob(price_weight=1e9), LIVE, 100) == 1.0
    cheaper = ThresholdRule(RULE.operator_knob, RULE.share_threshold, lambda chars: -1.0)
    assert threshold_for(cheaper, CostKnob(price_weight=1e9), LIVE, 100) == 0.0
    unknown = ThresholdRule(RULE.operator_knob, RULE.share_threshold, lambda chars: math.inf)
    assert threshold_for(unknown, CostKnob(price_weight=0.0), LIVE, 100) == 0.5
    assert threshold_for(unknown, CostKnob(price_weight=2.0), LIVE, 100) == 1.0


def test_threshold_without_a_knob_is_the_configured_one():
    assert threshold_for(RULE, CostKnob(), LIVE, 100) == 0.42


def test_every_policy_uses_the_one_rule_with_the_prompts_own_length():
    knob = CostKnob(price_weight=5.0)
    for policy in ("heuristic", "learned"):
        router = _router(policy)
        short, long = features_from_prompt("hi"), features_from_prompt("word " * 2000)
        t_short = router.decide(short, STATS, knob).decision.threshold
        t_long = router.decide(long, STATS, knob).decision.threshold
        assert t_short == router.threshold(knob, STATS, short.prompt_chars)
        assert 0.5 < t_short < t_long <= 1.0


def test_heuristic_router_scores_in_batch_equal_its_decisions():
    router = _router()
    features = [features_from_prompt(p) for p in ("hi", HARD, "```python\ndef f(): return 1\n```", "3 + 4 = ?")]
    x = np.stack([router.scorer.featurize(f) for f in features])
    single = [router.decide(f, STATS, KNOB).decision.score for f in features]
    np.testing.assert_allclose(router.scores(x, STATS), single, rtol=0, atol=1e-12)


def test_decisions_show_the_same_wire_strings_in_headers_json_and_metrics_labels():
    import json

    from frontier.schemas import Decision

    routed = _router().decide(features_from_prompt(HARD), STATS, KNOB).decision
    assert isinstance(routed.pool, Pool) and isinstance(routed.reason, Reason)
    headers = routed.headers()
    assert (headers["x-frontier-pool"], headers["x-frontier-reason"]) == ("reasoning", "policy")
    assert all(type(v.encode("latin-1")) is bytes for v in headers.values())
    body = json.loads(json.dumps(routed.model_dump()))
    assert (body["pool"], body["reason"]) == ("reasoning", "policy")
    moved = Decision.model_validate({**routed.model_dump(mode="json"), "pool": "light", "reason": "overflow"})
    assert (str(moved.pool), str(moved.reason)) == ("light", "overflow") and moved.reason is Reason.OVERFLOW
    with pytest.raises(ValueError):
        Decision(pool="medium", reason="policy", policy_version="x")


def test_the_routing_package_needs_neither_redis_nor_ray():
    import subprocess
    import sys
    from pathlib import Path

    import frontier.routing

    modules = sorted(p.stem for p in Path(frontier.routing.__file__).parent.glob("*.py") if p.stem != "__init__")
    code = (f"import sys\nfor m in {modules!r}: __import__('frontier.routing.' + m)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('redis', 'ray')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
