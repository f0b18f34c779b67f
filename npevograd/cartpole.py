"""CartPole for linear policies, stepping a whole population at once in NumPy.

The classic-control cart-pole (Barto, Sutton and Anderson 1983) with the
constants and Euler integration of Gym's ``CartPole-v0``/``v1``.  With state
``s = (x, x_dot, theta, theta_dot)`` and force ``F = +-force_mag``:

.. math::

    t = (F + m_p l \\dot\\theta^2 \\sin\\theta) / (m_c + m_p)

    \\ddot\\theta = \\frac{g \\sin\\theta - \\cos\\theta \\, t}
                       {l (4/3 - m_p \\cos^2\\theta / (m_c + m_p))}

    \\ddot x = t - m_p l \\ddot\\theta \\cos\\theta / (m_c + m_p)

    x \\leftarrow x + \\tau \\dot x, \\quad \\dot x \\leftarrow \\dot x + \\tau \\ddot x, \\quad
    \\theta \\leftarrow \\theta + \\tau \\dot\\theta, \\quad
    \\dot\\theta \\leftarrow \\dot\\theta + \\tau \\ddot\\theta

(``l`` is half the pole's length, Gym's ``length``).  An episode ends when
``|x| > 2.4`` or ``|theta| > 12 degrees``, or after ``max_steps`` steps (200, as
``CartPole-v0``); every step, the terminating one included, earns reward 1.

A linear policy ``w`` in R^4 pushes right when ``obs @ w > 0`` and left
otherwise, as in EvoGrad's ``demos/cartpole.py``.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_sample_count

GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSCART + MASSPOLE
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * np.pi / 360

__all__ = ["episode_returns", "initial_states", "step", "terminated"]


def step(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """One Euler step of the cart-pole equations for any batch of states.

    ``state`` has shape (..., 4), ``action`` (...) in {0, 1} (1 pushes right);
    returns the next states, shape (..., 4).
    """
    x, x_dot, theta, theta_dot = np.moveaxis(np.asarray(state, dtype=np.float64), -1, 0)
    force = np.where(np.asarray(action) == 1, FORCE_MAG, -FORCE_MAG)
    cos, sin = np.cos(theta), np.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot**2 * sin) / TOTAL_MASS
    theta_acc = (GRAVITY * sin - cos * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * cos**2 / TOTAL_MASS)
    )
    x_acc = temp - POLEMASS_LENGTH * theta_acc * cos / TOTAL_MASS
    return np.stack(
        [x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot, theta_dot + TAU * theta_acc],
        axis=-1,
    )


def terminated(state: np.ndarray) -> np.ndarray:
    """True where the cart left the track (|x| > 2.4) or the pole fell (|theta| > 12 deg)."""
    state = np.asarray(state)
    return (np.abs(state[..., 0]) > X_THRESHOLD) | (np.abs(state[..., 2]) > THETA_THRESHOLD)


def initial_states(seed: int, episodes: int) -> np.ndarray:
    """The ``episodes`` start states, uniform on [-0.05, 0.05]^4, drawn from ``seed``."""
    episodes = check_sample_count("episodes", episodes)
    return np.random.default_rng(seed).uniform(-0.05, 0.05, size=(episodes, 4))


def episode_returns(
    policies: object,
    seed: int = 0,
    episodes: int = 1,
    max_steps: int = 200,
    backend: str = "numpy",
) -> np.ndarray:
    """Mean episode return of each linear policy, shape (n,).

    Every policy starts from the same ``episodes`` initial states (drawn from
    ``seed``), so a policy's return does not depend on the other rows of
    ``policies``.  The NumPy backend steps all ``n * episodes`` carts together
    (a loop over time only); ``backend="gymnasium"`` runs Gymnasium's
    ``CartPole-v1`` one episode at a time from the same initial states, for
    checking against the reference implementation (needs ``gymnasium``).
    """
    w = as_float_array("policies", policies, dtype=np.dtype(np.float64))
    if w.ndim != 2 or w.shape[1] != 4:
        raise ValueError(f"policies must have shape (n, 4), got {w.shape}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    max_steps = check_sample_count("max_steps", max_steps)
    starts = initial_states(seed, episodes)
    if backend == "numpy":
        return _numpy_returns(w, starts, max_steps)
    if backend == "gymnasium":
        return _gymnasium_returns(w, starts, max_steps)
    raise ValueError(f"backend must be 'numpy' or 'gymnasium', got {backend!r}")


def _numpy_returns(w: np.ndarray, starts: np.ndarray, max_steps: int) -> np.ndarray:
    n, episodes = w.shape[0], starts.shape[0]
    state = np.broadcast_to(starts[:, None, :], (episodes, n, 4)).copy()
    alive = np.ones((episodes, n), dtype=bool)
    returns = np.zeros((episodes, n))
    for _ in range(max_steps):
        action = (np.einsum("enk,nk->en", state, w) > 0).astype(np.int8)
        returns += alive
        state = np.where(alive[..., None], step(state, action), state)
        alive &= ~terminated(state)
        if not alive.any():
            break
    return returns.mean(axis=0)


def _gymnasium_returns(w: np.ndarray, starts: np.ndarray, max_steps: int) -> np.ndarray:
    try:
        import gymnasium
    except ImportError as err:
        raise ImportError(
            "backend='gymnasium' needs gymnasium: pip install 'npevograd[gym]'"
        ) from err
    env = gymnasium.make("CartPole-v1", max_episode_steps=max_steps)
    returns = np.zeros(w.shape[0])
    try:
        for i, weights in enumerate(w):
            for start in starts:
                env.reset(seed=0)
                env.unwrapped.state = start.copy()  # type: ignore[attr-defined]
                obs = start.astype(np.float32)
                for _ in range(max_steps):
                    action = int(obs @ weights > 0)
                    obs, reward, term, trunc, _ = env.step(action)
                    returns[i] += reward
                    if term or trunc:
                        break
    finally:
        env.close()
    return returns / starts.shape[0]
