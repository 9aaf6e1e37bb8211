"""RouterMetrics: what each call records, and the /metrics exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from frontier.config import ObservabilityConfig
from frontier.errors import FrontierError
from frontier.schemas import Decision
from frontier.serving.metrics import NullMetrics, RouterMetrics, build_metrics, metrics_response


def decision(pool: str, reason: str = "policy", version: str = "heuristic-1") -> Decision:
    return Decision(pool=pool, reason=reason, score=0.7, threshold=0.5, policy_version=version)


@pytest.fixture
def metrics() -> RouterMetrics:
    return RouterMetrics(share_window=4, process=False)


def value(m: RouterMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_decisions_are_counted_by_pool_and_reason(metrics):
    for d in (decision("light"), decision("light"), decision("reasoning", "overflow"), decision("light", "explicit")):
        metrics.observe_decision(d)
    assert value(metrics, "frontier_decisions_total", pool="light", reason="policy") == 2
    assert value(metrics, "frontier_decisions_total", pool="reasoning", reason="overflow") == 1
    assert value(metrics, "frontier_decisions_total", pool="light", reason="explicit") == 1
    assert value(metrics, "frontier_decisions_total", pool="reasoning", reason="policy") is None


def test_reasoning_share_is_over_the_last_routed_decisions_only(metrics):
    metrics.observe_decision(decision("reasoning"))
    assert value(metrics, "frontier_reasoning_share") == 1.0
    metrics.observe_decision(decision("light"))
    assert value(metrics, "frontier_reasoning_share") == 0.5
    # The caller chose these pools: they do not move the realised share.
    metrics.observe_decision(decision("reasoning", "explicit"))
    metrics.observe_decision(decision("reasoning", "effort"))
    assert value(metrics, "frontier_reasoning_share") == 0.5
    # A window of 4: the first (reasoning) decision slides out after four more light ones.
    for _ in range(3):
        metrics.observe_decision(decision("light"))
    assert value(metrics, "frontier_reasoning_share") == 0.0
    metrics.observe_decision(decision("light", "explicit"), routed=True)
    metrics.observe_decision(decision("reasoning", "policy"), routed=False)
    assert value(metrics, "frontier_reasoning_share") == 0.0


def test_responses_feed_latency_ttft_cost_and_tokens(metrics):
    metrics.observe_response("light", 0.2, ttft_s=0.03, cost_usd=0.001, prompt_tokens=10, completion_tokens=5)
    metrics.observe_response("light", 3.0, cost_usd=0.002, completion_tokens=7)
    metrics.observe_response("reasoning", 0.4, outcome="error")
    assert value(metrics, "frontier_request_duration_seconds_count", pool="light", outcome="ok") == 2
    assert value(metrics, "frontier_request_duration_seconds_sum", pool="light", outcome="ok") == pytest.approx(3.2)
    assert value(metrics, "frontier_request_duration_seconds_bucket", pool="light", outcome="ok", le="0.25") == 1
    assert value(metrics, "frontier_request_duration_seconds_count", pool="reasoning", outcome="error") == 1
    assert value(metrics, "frontier_time_to_first_token_seconds_count", pool="light") == 1
    assert value(metrics, "frontier_time_to_first_token_seconds_count", pool="reasoning") is None
    assert value(metrics, "frontier_estimated_cost_usd_total", pool="light") == pytest.approx(0.003)
    assert value(metrics, "frontier_tokens_total", pool="light", kind="prompt") == 10
    assert value(metrics, "frontier_tokens_total", pool="light", kind="completion") == 12


def test_inflight_gauge_set_and_tracked(metrics):
    metrics.set_inflight("reasoning", 7)
    assert value(metrics, "frontier_pool_inflight_requests", pool="reasoning") == 7
    with metrics.track_inflight("light"):
        with metrics.track_inflight("light"):
            assert value(metrics, "frontier_pool_inflight_requests", pool="light") == 2
    assert value(metrics, "frontier_pool_inflight_requests", pool="light") == 0
    with pytest.raises(RuntimeError), metrics.track_inflight("light"):
        raise RuntimeError("pool failed")
    assert value(metrics, "frontier_pool_inflight_requests", pool="light") == 0


def test_feedback_events_by_kind_and_outcome(metrics):
    metrics.observe_feedback("rating", "accepted")
    metrics.observe_feedback("rating", "accepted")
    metrics.observe_feedback("rating", "unknown_decision")
    assert value(metrics, "frontier_feedback_events_total", kind="rating", outcome="accepted") == 2
    assert value(metrics, "frontier_feedback_events_total", kind="rating", outcome="unknown_decision") == 1


def test_policy_version_label_moves_and_changes_are_counted(metrics):
    metrics.observe_decision(decision("light", version="v1"))
    metrics.set_policy_version("v1")
    assert value(metrics, "frontier_policy_version_info", version="v1") == 1
    assert value(metrics, "frontier_policy_version_changes_total") == 0
    metrics.set_policy_version("v2")
    assert value(metrics, "frontier_policy_version_info", version="v1") is None
    assert value(metrics, "frontier_policy_version_info", version="v2") == 1
    metrics.observe_decision(decision("light", version="v3"))
    assert value(metrics, "frontier_policy_version_info", version="v3") == 1
    assert value(metrics, "frontier_policy_version_changes_total") == 2


def test_exposition_is_parseable_prometheus_text(metrics):
    metrics.observe_decision(decision("reasoning"))
    metrics.observe_response("reasoning", 1.5, ttft_s=0.2, cost_usd=0.01)
    response = metrics_response(metrics)
    assert response.status_code == 200
    assert response.media_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.body.decode())}
    assert {
        "frontier_decisions",
        "frontier_reasoning_share",
        "frontier_estimated_cost_usd",
        "frontier_request_duration_seconds",
        "frontier_time_to_first_token_seconds",
        "frontier_pool_inflight_requests",
        "frontier_feedback_events",
        "frontier_policy_version_info",
    } <= set(families)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in families["frontier_decisions"].samples}
    assert samples[("frontier_decisions_total", (("pool", "reasoning"), ("reason", "policy")))] == 1


def test_process_metrics_are_included_by_default():
    text = RouterMetrics().exposition()[0].decode()
    assert "process_cpu_seconds_total" in text  # ProcessCollector reads /proc: Linux, as everywhere Frontier runs
    assert "frontier_reasoning_share" in text


def test_disabled_metrics_record_nothing_and_404():
    metrics = build_metrics(ObservabilityConfig(metrics=False))
    assert isinstance(metrics, NullMetrics) and not metrics.enabled
    metrics.observe_decision(decision("light"))
    metrics.observe_response("light", 0.1)
    with metrics.track_inflight("light"):
        pass
    with pytest.raises(FrontierError) as info:
        metrics_response(metrics)
    assert info.value.status_code == 404


def test_build_metrics_uses_the_configured_window():
    metrics = build_metrics(ObservabilityConfig(share_window=2))
    assert isinstance(metrics, RouterMetrics)
    for pool in ("reasoning", "light", "light"):
        metrics.observe_decision(decision(pool))
    assert metrics.registry.get_sample_value("frontier_reasoning_share") == 0.0
