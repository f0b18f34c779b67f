"""CartPole returns of linear and MLP policies on Gymnasium's vector environment, one batch stepped at once.

Gymnasium's ``CartPoleVectorEnv`` (the classic-control cart-pole of Barto,
Sutton and Anderson 1983, ``CartPole-v1``'s equations, all environments
stepped together in NumPy) does the physics.  A linear policy ``w`` in R^4
pushes right when ``obs @ w > 0``, as in EvoGrad's ``demos/cartpole.py``; an
episode ends when the cart leaves the track or the pole falls, or after
``max_steps`` steps (200, as ``CartPole-v0``), and every step, the terminating
one included, earns 1.

The one piece not taken from Gymnasium is the start states.
``CartPoleVectorEnv.reset(seed=s)`` draws all ``num_envs`` start states from one
generator, so an environment's start depends on its position in the batch and
on the batch's size.  Here every policy of a batch starts from the same
``episodes`` states drawn from ``seed`` (common random numbers), so a policy's
return does not depend on the other rows: the batch-independence
``npevograd.parallel.evaluate`` needs to give the same values on any executor.
They are written into the environment's state after ``reset``.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

MAX_STEPS = 200  # CartPole-v0's episode length


def initial_states(seed: int, episodes: int) -> np.ndarray:
    """The ``episodes`` start states, uniform on [-0.05, 0.05]^4 as Gymnasium's, drawn from ``seed``."""
    return np.random.default_rng(seed).uniform(-0.05, 0.05, size=(episodes, 4))


def episode_returns(policies: object, seed: int = 0, episodes: int = 1, max_steps: int = MAX_STEPS) -> np.ndarray:
    """Mean episode return of each linear policy over the same ``episodes`` start states, shape (n,)."""
    return _returns(policies, 4, _linear_actions, seed, episodes, max_steps)


def mlp_size(hidden: int) -> int:
    """Weights of the MLP policy 4 -> hidden (tanh) -> 1: 4 h + h + h + 1."""
    return 6 * hidden + 1


def mlp_returns(
    policies: object, seed: int = 0, episodes: int = 1, max_steps: int = MAX_STEPS, hidden: int = 16
) -> np.ndarray:
    """Mean episode return of each MLP policy (rows of ``mlp_size(hidden)`` weights), shape (n,).

    The policy pushes right when ``w2 . tanh(W1 obs + b1) + b2 > 0``; a row holds W1 (h x 4, row-major),
    b1 (h), w2 (h) and b2.
    """
    return _returns(
        policies, mlp_size(hidden), functools.partial(_mlp_actions, hidden=hidden), seed, episodes, max_steps
    )


def _linear_actions(obs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (np.einsum("ek,ek->e", obs, weights) > 0).astype(np.int64)


def _mlp_actions(obs: np.ndarray, weights: np.ndarray, hidden: int) -> np.ndarray:
    h = 4 * hidden
    w1 = weights[:, :h].reshape(-1, hidden, 4)
    b1, w2, b2 = weights[:, h : h + hidden], weights[:, h + hidden : h + 2 * hidden], weights[:, -1]
    activity = np.tanh(np.einsum("ehk,ek->eh", w1, obs) + b1)
    return (np.einsum("eh,eh->e", activity, w2) + b2 > 0).astype(np.int64)


def _returns(
    policies: object,
    width: int,
    act: Callable[[np.ndarray, np.ndarray], np.ndarray],
    seed: int,
    episodes: int,
    max_steps: int,
) -> np.ndarray:
    """Every policy's mean return over the same start states; ``act(obs (E, 4), weights (E, width))`` -> actions."""
    try:
        from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
    except ImportError as err:
        raise ImportError("the CartPole demos need gymnasium: pip install -e '.[demos]'") from err

    w = np.asarray(policies, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != width:
        raise ValueError(f"policies must have shape (n, {width}), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("policies must be finite")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    for name, value in (("episodes", episodes), ("max_steps", max_steps)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    n = w.shape[0]
    env = CartPoleVectorEnv(num_envs=episodes * n, max_episode_steps=max_steps)
    env.reset(seed=0)
    # environment e * n + i runs episode e of policy i
    env.state = np.repeat(initial_states(seed, episodes), n, axis=0).T.copy()
    obs = env.state.T.astype(np.float32)
    weights = np.tile(w, (episodes, 1))
    alive = np.ones(episodes * n, dtype=bool)
    returns = np.zeros(episodes * n)
    for _ in range(max_steps):
        action = act(obs, weights)
        obs, reward, terminated, truncated, _ = env.step(action)
        returns += reward * alive  # an ended episode's environment restarts: its rewards no longer count
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    env.close()
    return returns.reshape(episodes, n).mean(axis=0)
