"""The demos' CartPole (``demos/_cartpole.py``): Gymnasium's vector env against a scalar reference,
the seeded common start states, batch independence and the episode bookkeeping."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnasium")

_spec = importlib.util.spec_from_file_location(
    "_test_cartpole_env", Path(__file__).resolve().parent.parent / "demos" / "_cartpole.py"
)
cartpole = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cartpole)
episode_returns, initial_states = cartpole.episode_returns, cartpole.initial_states


def _reference_step(s, action):
    """One transition written out with scalar math, as a person would by hand."""
    x, x_dot, th, th_dot = s
    f = 10.0 if action == 1 else -10.0
    t = (f + 0.05 * th_dot * th_dot * math.sin(th)) / 1.1
    th_acc = (9.8 * math.sin(th) - math.cos(th) * t) / (0.5 * (4 / 3 - 0.1 * math.cos(th) ** 2 / 1.1))
    x_acc = t - 0.05 * th_acc * math.cos(th) / 1.1
    return [x + 0.02 * x_dot, x_dot + 0.02 * x_acc, th + 0.02 * th_dot, th_dot + 0.02 * th_acc]


def _reference_return(w, s, max_steps=200):
    total = 0
    for _ in range(max_steps):
        action = 1 if sum(wi * si for wi, si in zip(w, s)) > 0 else 0
        s = _reference_step(s, action)
        total += 1
        if abs(s[0]) > 2.4 or abs(s[2]) > 12 * 2 * math.pi / 360:
            break
    return total


def test_initial_states_are_uniform_in_the_small_box_and_seeded():
    s = initial_states(seed=4, episodes=1000)
    assert s.shape == (1000, 4) and np.all(np.abs(s) <= 0.05)
    assert np.all(s.max(axis=0) > 0.049) and np.all(s.min(axis=0) < -0.049)
    np.testing.assert_array_equal(initial_states(4, 3), s[:3])


def test_returns_equal_scalar_reference_episodes():
    rng = np.random.default_rng(0)
    policies = rng.standard_normal((12, 4))
    starts = initial_states(seed=5, episodes=3)
    want = [np.mean([_reference_return(list(w), list(s0)) for s0 in starts]) for w in policies]
    got = episode_returns(policies, seed=5, episodes=3)
    np.testing.assert_array_equal(got, want)
    assert len(set(want)) > 3  # the policies differ, so the check sees many episode lengths


def test_a_policys_return_does_not_depend_on_the_batch():
    rng = np.random.default_rng(1)
    policies = rng.standard_normal((20, 4))
    batch = episode_returns(policies, seed=2, episodes=4)
    alone = np.array([episode_returns(w[None], seed=2, episodes=4)[0] for w in policies])
    np.testing.assert_array_equal(batch, alone)
    perm = rng.permutation(20)
    np.testing.assert_array_equal(episode_returns(policies[perm], seed=2, episodes=4), batch[perm])


def test_returns_are_bounded_by_max_steps_and_a_balancing_policy_reaches_it():
    # Push toward the side the pole is falling to: action = 1 iff theta + theta_dot > 0.
    balance = np.array([[0.0, 0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(episode_returns(balance, seed=0, episodes=10), [200.0])
    np.testing.assert_array_equal(episode_returns(balance, seed=0, episodes=2, max_steps=37), [37.0])
    # The zero policy always pushes left and falls within a few dozen steps.
    r = episode_returns(np.zeros((1, 4)), seed=0, episodes=5)
    assert 1 <= r[0] < 50


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"policies must have shape \(n, 4\), got \(3, 5\)"):
        episode_returns(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"policies must have shape \(n, 4\), got \(4,\)"):
        episode_returns(np.zeros(4))
    with pytest.raises(ValueError, match="policies must be finite"):
        episode_returns(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        episode_returns(np.zeros((1, 4)), episodes=0)
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        episode_returns(np.zeros((1, 4)), seed=1.5)
    with pytest.raises(ValueError, match="max_steps must be >= 1, got 0"):
        episode_returns(np.zeros((1, 4)), max_steps=0)
