import pytest

from frontier.feedback.decision_log import COMPLETION_ID_RE, decode_offsets, encode_offsets, new_completion_id
from frontier.feedback.errors import FeedbackInvalid, FeedbackUnavailable
from frontier.feedback.queue import parse_feedback

CID = new_completion_id()


def test_completion_ids_are_unique_and_valid():
    ids = {new_completion_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(COMPLETION_ID_RE.match(i) for i in ids)
    assert all(len(i) >= 35 for i in ids)


@pytest.mark.parametrize(
    "body, kind, value",
    [
        ({"id": CID, "score": 1}, "score", "1.0"),
        ({"id": CID, "score": 0.25}, "score", "0.25"),
        ({"id": CID, "rating": "down"}, "rating", "down"),
        ({"id": CID, "preferred": "reasoning"}, "preferred", "reasoning"),
    ],
)
def test_valid_bodies(body, kind, value):
    fb = parse_feedback(body)
    assert (fb.cid, fb.kind, fb.value) == (CID, kind, value)


@pytest.mark.parametrize(
    "body, param",
    [
        ([], None),
        ({"score": 0.5}, "id"),
        ({"id": "x y", "score": 0.5}, "id"),
        ({"id": CID}, None),
        ({"id": CID, "score": 0.5, "rating": "up"}, "rating"),
        ({"id": CID, "score": 1.5}, "score"),
        ({"id": CID, "score": float("nan")}, "score"),
        ({"id": CID, "score": True}, "score"),
        ({"id": CID, "score": "0.5"}, "score"),
        ({"id": CID, "rating": "meh"}, "rating"),
        ({"id": CID, "preferred": "gpt"}, "preferred"),
        ({"id": CID, "rating": "up", "comment": "x"}, "comment"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(body, param):
    with pytest.raises(FeedbackInvalid) as err:
        parse_feedback(body)
    assert err.value.status_code == 400 and err.value.param == param


def test_unavailable_is_503_with_retry_after():
    err = FeedbackUnavailable(7)
    assert err.status_code == 503 and err.headers == {"Retry-After": "7"}
    assert err.body()["error"]["code"] == "feedback_unavailable"


def test_offsets_round_trip():
    assert decode_offsets(encode_offsets({"light": 0.5, "reasoning": -1.25})) == {"light": 0.5, "reasoning": -1.25}


def test_redis_url_env_overrides_config_and_none_means_embedded(monkeypatch):
    from frontier.config import RedisConfig
    from frontier.feedback.redis_server import REDIS_URL_ENV, configured_url

    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    assert configured_url(RedisConfig()) is None
    assert configured_url(RedisConfig(url="redis://a:6379/0")) == "redis://a:6379/0"
    monkeypatch.setenv(REDIS_URL_ENV, "redis://helm:6379/1")
    assert configured_url(RedisConfig(url="redis://a:6379/0")) == "redis://helm:6379/1"
