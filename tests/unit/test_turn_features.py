"""A follow-up turn is scored on its own messages, not on the history (or system prompt) it resends."""

from frontier.config import load_config
from frontier.routing.features import extract_features, turn_messages
from frontier.routing.policies import build_router, default_knob
from frontier.routing.types import Pool, SessionState, StatsSnapshot

HARD = "Think step by step: prove that there are infinitely many primes, then derive the prime number theorem."


def conversation(turns):
    messages = [{"role": "system", "content": "Answer briefly."}]
    for text in turns:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": "x " * 200}]
    return messages


def test_turn_messages_are_what_follows_the_last_answer():
    messages = conversation(["first", "second"]) + [
        {"role": "user", "content": "third"}, {"role": "tool", "content": "result", "tool_call_id": "t"}]  # fmt: skip
    assert turn_messages(messages) == messages[-2:]
    first = [{"role": "user", "content": "only"}]
    assert turn_messages(first) == first


def test_ordinary_follow_ups_of_a_long_hard_conversation_stay_on_light():
    config = load_config()
    router, knob = build_router(config), default_knob(config)
    history = conversation([HARD] * 6)
    whole = router.decide(extract_features([*history, {"role": "user", "content": "thanks!"}]), StatsSnapshot(), knob)
    assert whole.decision.pool is Pool.REASONING  # the history alone would look hard
    session = SessionState(pool=Pool.LIGHT, history_tokens=2000)
    for follow_up in ("thanks!", "and in one word?", "go on", "why?"):
        turn = turn_messages([*history, {"role": "user", "content": follow_up}])
        routed = router.decide(extract_features(turn), StatsSnapshot(), knob, session=session)
        assert (routed.decision.pool, routed.decision.reason) == (Pool.LIGHT, "session"), follow_up
