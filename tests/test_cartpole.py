"""The NumPy CartPole: the classic-control equations, termination and batching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npevograd import cartpole
from npevograd.cartpole import episode_returns, initial_states, step, terminated


def test_step_from_rest_matches_hand_computed_accelerations():
    # At theta = theta_dot = 0 the equations reduce to
    #   temp = F / M,  theta_acc = -temp / (l (4/3 - m_p / M)),  x_acc = temp - m_p l theta_acc / M
    # with F = 10, M = 1.1, m_p = 0.1, l = 0.5; the state moves by tau = 0.02 times them.
    temp = 10.0 / 1.1
    theta_acc = -temp / (0.5 * (4.0 / 3.0 - 0.1 / 1.1))
    x_acc = temp - 0.1 * 0.5 * theta_acc / 1.1
    for action, sign in [(1, 1.0), (0, -1.0)]:
        nxt = step(np.zeros(4), np.array(action))
        np.testing.assert_allclose(nxt, [0.0, sign * 0.02 * x_acc, 0.0, sign * 0.02 * theta_acc], rtol=1e-14)
    assert x_acc > 0 > theta_acc  # pushing the cart right tips the pole left


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


def test_step_matches_scalar_reference_on_a_batch_of_states():
    rng = np.random.default_rng(3)
    states = rng.uniform(-1, 1, size=(7, 4))
    actions = rng.integers(0, 2, size=7)
    got = step(states, actions)
    want = [_reference_step(list(s), a) for s, a in zip(states, actions)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_termination_thresholds():
    theta_max = 12 * 2 * np.pi / 360
    states = np.array(
        [
            [2.4, 0, 0, 0],  # on the edge: still alive
            [2.4000001, 0, 0, 0],
            [-2.4000001, 0, 0, 0],
            [0, 0, theta_max, 0],
            [0, 0, -theta_max * 1.000001, 0],
            [0, 5.0, 0, -5.0],  # velocities never terminate
        ]
    )
    np.testing.assert_array_equal(terminated(states), [False, True, True, False, True, False])


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
    with pytest.raises(ValueError, match="backend must be 'numpy' or 'gymnasium', got 'gym'"):
        episode_returns(np.zeros((1, 4)), backend="gym")


def test_gymnasium_backend_agrees_with_numpy():
    pytest.importorskip("gymnasium")
    policies = np.random.default_rng(7).standard_normal((15, 4))
    np.testing.assert_array_equal(
        episode_returns(policies, seed=3, episodes=2, backend="gymnasium"),
        episode_returns(policies, seed=3, episodes=2),
    )


def test_gymnasium_constants_match():
    gymnasium = pytest.importorskip("gymnasium")
    env = gymnasium.make("CartPole-v1").unwrapped
    ours = (cartpole.GRAVITY, cartpole.MASSCART, cartpole.MASSPOLE, cartpole.LENGTH, cartpole.FORCE_MAG)
    assert (env.gravity, env.masscart, env.masspole, env.length, env.force_mag) == ours
    assert env.tau == cartpole.TAU
    assert (env.x_threshold, env.theta_threshold_radians) == (cartpole.X_THRESHOLD, cartpole.THETA_THRESHOLD)
    assert env.kinematics_integrator == "euler"
