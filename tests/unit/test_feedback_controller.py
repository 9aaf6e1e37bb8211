import numpy as np
import pytest

from frontier.feedback.controller import ControllerState, Window, control_step


def _simulate(score_sampler, target, steps, per_step, window, rng, explore=0.0, gain=0.05):
    """Routers send a request to reasoning when its score clears the current threshold."""
    state = ControllerState()
    scores, flags, shares = [], [], []
    for _ in range(steps):
        threshold = state.threshold if state.threshold is not None else 0.5
        s = score_sampler(per_step)
        to_reason = s > threshold
        flip = rng.random(per_step) < explore
        to_reason = np.where(flip, ~to_reason, to_reason)
        scores.extend(s), flags.extend(to_reason)
        scores, flags = scores[-window:], flags[-window:]
        state = control_step(np.array(scores), np.array(flags), target, state, gain)
        shares.append(state.share)
    return state, shares


@pytest.mark.parametrize("target", [0.1, 0.3, 0.6])
def test_converges_to_the_target_within_tolerance(target):
    rng = np.random.default_rng(0)
    state, shares = _simulate(lambda n: rng.beta(2, 5, n), target, 60, 200, 2000, rng)
    assert abs(np.mean(shares[-20:]) - target) < 0.02
    assert abs(state.share - target) < 0.03


def test_tracks_drift_and_corrects_for_exploration():
    rng = np.random.default_rng(1)
    phase = {"a": True}

    def sampler(n):
        return rng.beta(2, 5, n) if phase["a"] else rng.beta(5, 2, n)

    state, _ = _simulate(sampler, 0.2, 40, 200, 2000, rng, explore=0.05)
    assert abs(state.share - 0.2) < 0.03
    phase["a"] = False  # traffic suddenly needs much more reasoning by score
    state2, shares = _simulate(sampler, 0.2, 60, 200, 2000, rng, explore=0.05)
    assert abs(np.mean(shares[-20:]) - 0.2) < 0.03


def test_empty_window_keeps_state_and_extremes_are_clipped():
    st = ControllerState(0.4, 0.1, 0.3, 10)
    assert control_step(np.array([]), np.array([], dtype=bool), 0.3, st, 0.5) == st
    out = control_step(np.array([0.1, 0.2, 0.3]), np.array([True, True, True]), 0.0, ControllerState(), 1.0)
    assert out.threshold > 0.3 and out.integral == -0.25


def test_the_window_keeps_the_newest_entries_of_its_size():
    window = Window(3)
    window.push([b"0.25 reasoning", b"-0.1 light"])  # newest first, as the Redis list holds them
    scores, flags = window.decisions()
    assert sorted(zip(scores.tolist(), flags.tolist())) == [(-0.1, False), (0.25, True)]
    window.push([b"0.9 reasoning", b"0.8 light"])  # 0.8 then 0.9 arrive: -0.1, the oldest, leaves
    assert sorted(window.decisions()[0].tolist()) == [0.25, 0.8, 0.9]
    window.push([f"{s} light".encode() for s in (5, 4, 3, 2, 1)])  # more than the window at once
    assert sorted(window.decisions()[0].tolist()) == [3.0, 4.0, 5.0] and not window.decisions()[1].any()
