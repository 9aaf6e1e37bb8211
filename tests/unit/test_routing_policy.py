import pytest

from frontier.config import load_config
from frontier.errors import FrontierError
from frontier.routing.decide import route
from frontier.routing.features import extract_features, features_from_prompt
from frontier.routing.policies import HeuristicPolicy
from frontier.routing.policy import CostKnob, StatsSnapshot, build_policy

STATS = StatsSnapshot()
KNOB = CostKnob()


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
    policy = HeuristicPolicy(threshold=0.5)
    easy = policy.decide(features_from_prompt("hi, how are you?"), STATS, KNOB)
    hard = policy.decide(features_from_prompt("Think hard and prove that sqrt(2) is irrational."), STATS, KNOB)
    assert easy.pool == "light" and hard.pool == "reasoning"
    assert easy.reason == hard.reason == "policy"
    assert hard.score > easy.score and hard.threshold == 0.5
    assert hard.policy_version.startswith("heuristic")


def test_share_knob_moves_the_threshold():
    policy = HeuristicPolicy(threshold=0.5)
    f = features_from_prompt("hi")
    assert policy.decide(f, STATS, CostKnob(reasoning_share=1.0)).pool == "reasoning"
    assert policy.decide(f, STATS, CostKnob(reasoning_share=0.0)).pool == "light"


@pytest.mark.parametrize(
    "model,effort,pool,reason",
    [
        ("frontier-light", "high", "light", "explicit"),
        ("frontier-reasoning", "minimal", "reasoning", "explicit"),
        ("frontier", "minimal", "light", "effort"),
        ("frontier", "high", "reasoning", "effort"),
    ],
)
def test_explicit_model_and_effort_override_the_policy(model, effort, pool, reason):
    policy = HeuristicPolicy(threshold=0.5)
    hard = features_from_prompt("Think hard and prove that sqrt(2) is irrational.")
    easy = features_from_prompt("hi")
    for f in (hard, easy):
        d = route(model, effort, f, policy, STATS, KNOB)
        assert (d.pool, d.reason) == (pool, reason)


@pytest.mark.parametrize("effort", ["low", "medium", None])
def test_low_and_medium_effort_leave_it_to_the_policy(effort):
    policy = HeuristicPolicy(threshold=0.5)
    d = route("frontier", effort, features_from_prompt("Think hard: prove it."), policy, STATS, KNOB)
    assert d.reason == "policy" and d.pool == "reasoning"


def test_unknown_model_is_404():
    with pytest.raises(FrontierError) as info:
        route("gpt-4", None, features_from_prompt("hi"), HeuristicPolicy(0.5), STATS, KNOB)
    assert info.value.status_code == 404 and info.value.param == "model"


def test_policy_registry_builds_named_policies_and_rejects_unknown():
    config = load_config()
    assert build_policy(config.model_copy(update={"router": config.router.model_copy(update={"policy": "always-light"})})).decide(
        features_from_prompt("Think hard"), STATS, KNOB
    ).pool == "light"
    bad = config.model_copy(update={"router": config.router.model_copy(update={"policy": "nope"})})
    with pytest.raises(ValueError, match="unknown routing policy 'nope'"):
        build_policy(bad)
