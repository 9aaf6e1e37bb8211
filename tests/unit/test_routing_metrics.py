import numpy as np
import pytest

from frontier.routing.evaluation import (
    baseline_scores,
    expected_calibration_error,
    quality_curve,
    summarize,
)

# Light right on row 0 only, reasoning on rows 0-2: q_light 0.25, q_reasoning 0.75, gains [0, 1, 1, 0].
LIGHT = np.array([1.0, 0.0, 0.0, 0.0])
REASONING = np.array([1.0, 1.0, 1.0, 0.0])


def test_curve_apgr_cpt_and_quality_match_hand_computation():
    curve = quality_curve(np.array([0.1, 0.9, 0.5, 0.3]), LIGHT, REASONING)
    # Order by score: rows 1 (gain 1), 2 (gain 1), 3 (0), 0 (0).
    assert np.allclose(curve.quality, [0.25, 0.5, 0.75, 0.75, 0.75])
    assert np.allclose(curve.pgr, [0.0, 0.5, 1.0, 1.0, 1.0])
    m = summarize(curve)
    # Trapezoids of width 0.25: 0.0625 + 0.1875 + 0.25 + 0.25.
    assert m["apgr"] == pytest.approx(0.75)
    assert m["cpt_50"] == pytest.approx(0.25)
    # PGR 0.8 lies 60% of the way from share 0.25 (PGR 0.5) to share 0.5 (PGR 1.0).
    assert m["cpt_80"] == pytest.approx(0.4)
    assert m["quality_at_20"] == pytest.approx(0.25 + 0.8 * 0.25)
    assert m["quality_at_50"] == pytest.approx(0.75)


def test_worst_order_and_ties():
    worst = summarize(quality_curve(np.array([0.9, 0.1, 0.2, 0.8]), LIGHT, REASONING))
    # Order: rows 0 (gain 0), 3 (0), 2 (1), 1 (1): PGR 0, 0, 0, 0.5, 1.
    assert worst["apgr"] == pytest.approx(0.25)
    assert worst["cpt_50"] == pytest.approx(0.75)
    # Rows 1 and 0 tie at the top: each counts as half a gain, so PGR rises 0.25 per step first.
    tied = quality_curve(np.array([1.0, 1.0, 0.5, 0.0]), LIGHT, REASONING)
    assert np.allclose(tied.pgr, [0.0, 0.25, 0.5, 1.0, 1.0])


def test_random_router_is_the_diagonal_and_oracle_beats_it():
    rng = np.random.default_rng(1)
    light = (rng.random(500) < 0.6).astype(float)
    reasoning = (rng.random(500) < 0.8).astype(float)
    prompts = ["x" * int(n) for n in rng.integers(1, 100, 500)]
    base = baseline_scores(prompts, light, reasoning)
    random_curve = quality_curve(base["random"], light, reasoning)
    assert random_curve.apgr() == pytest.approx(0.5)
    assert random_curve.cpt(0.5) == pytest.approx(0.5)
    assert quality_curve(base["oracle"], light, reasoning).apgr() > 1.0
    assert base["prompt_length"][0] == len(prompts[0])


def test_soft_labels_and_undefined_gap():
    curve = quality_curve(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([1.0, 0.6]))
    assert np.allclose(curve.quality, [0.5, 0.75, 0.8])
    with pytest.raises(ValueError, match="not better"):
        quality_curve(np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([1.0, 0.0])).apgr()


def test_expected_calibration_error_by_hand():
    # Bin [0.1]: mean p 0.1, mean y 0.5; bin [0.9]: mean p 0.9, mean y 1.0; each holds half the rows.
    ece = expected_calibration_error(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 1, 1, 1]))
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert expected_calibration_error(np.array([0.25, 0.75]), np.array([0.25, 0.75])) == pytest.approx(0.0)
