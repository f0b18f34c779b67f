r"""Gradient-ascent optimizers that update a distribution's parameters in place.

Every objective in npevograd is maximised, so both optimizers step *along* the
gradient.  With optional L2 weight decay :math:`\lambda` the ascended objective
is :math:`J(\theta) - \tfrac{\lambda}{2}\|\theta\|^2`, whose gradient is

.. math::

    g = \nabla J - \lambda \theta .

``SGD`` (with heavy-ball momentum :math:`\beta`, as ``torch.optim.SGD`` without
dampening):

.. math::

    v_t = \beta v_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} + \eta\, v_t

``Adam`` (Kingma and Ba 2015, Algorithm 1, with bias correction; Salimans et
al. 2017 use it with :math:`\beta_1 = 0.9, \beta_2 = 0.999, \epsilon = 10^{-8}`):

.. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2

    \theta_t = \theta_{t-1} + \eta\, \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

Both take a distribution (its ``params``) or a plain dict of float arrays and
write into those arrays, so the distribution sees the new values at once.
Weight decay applies to every parameter in the dict (a learned sigma included).

The rule for a parameter driven to an extreme: a step is computed in full before
anything is written, and a step that would make a parameter non-finite raises a
``ValueError`` naming it and changes nothing (parameters and optimizer state stay
as they were).  A step that keeps it finite but leaves it invalid for its
distribution (a learned sigma <= 0) is written, and the distribution raises the
same error as its constructor at its next use.  A ``params`` entry may be replaced
by an array of the same shape and dtype between steps (the optimizer reads the dict
at every step); any other change raises at the next step.

Adam keeps :math:`\sqrt{v_t}` rather than :math:`v_t`, updated as
``hypot(sqrt(beta2) sqrt(v), sqrt(1 - beta2) g)``, so a gradient entry of 1e160
(whose square overflows) still gives a step of about :math:`\eta`.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from ._checks import check_grad
from .distributions import Distribution, Grad

Params = Union[Distribution, dict]

__all__ = ["SGD", "Adam", "Optimizer"]


def _hyper(name: str, value: object, low: float, high: float = np.inf, low_open: bool = False) -> float:
    """A finite float hyper-parameter in [low, high) (or (low, high) with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    ok = np.isfinite(v) and (v > low if low_open else v >= low) and v < high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}), got {value!r}")
    return v


class Optimizer:
    """Base class: holds the live parameter arrays and validates each gradient."""

    def __init__(self, p_or_params: Params, lr: float, weight_decay: float = 0.0):
        if isinstance(p_or_params, Distribution):
            params = p_or_params.params
        elif isinstance(p_or_params, dict):
            params = p_or_params
        else:
            raise TypeError(
                f"p_or_params must be an npevograd Distribution or a dict of arrays, got {type(p_or_params).__name__}"
            )
        if not params:
            raise ValueError("p_or_params has no parameters to optimize")
        self._owner = p_or_params if isinstance(p_or_params, Distribution) else None
        self._shapes = {name: np.shape(value) for name, value in params.items()}
        self.params: dict[str, np.ndarray] = params
        self._check_params()
        self.lr = _hyper("lr", lr, 0.0, low_open=True)
        self.weight_decay = _hyper("weight_decay", weight_decay, 0.0)
        self.t = 0

    def _check_params(self) -> None:
        """The dict is still the distribution's, with the same names and shapes, of writable float arrays."""
        if self._owner is not None and self._owner.params is not self.params:
            raise ValueError(
                "p.params was replaced by a new dict after the optimizer was built; "
                "update or replace its entries instead, or build a new optimizer"
            )
        if set(self.params) != set(self._shapes):
            raise ValueError(f"params must keep the keys {sorted(self._shapes)}, got {sorted(self.params)}")
        for name, value in self.params.items():
            if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
                got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(f"params[{name!r}] must be a floating numpy array (updated in place), got {got}")
            if value.shape != self._shapes[name]:
                raise ValueError(
                    f"params[{name!r}] has shape {value.shape}, expected {self._shapes[name]} "
                    "(the shape the optimizer was built with)"
                )
            if not value.flags.writeable:
                raise ValueError(f"params[{name!r}] is read-only; the optimizer updates it in place")

    def step(self, grad: Grad) -> Grad:
        """Move every parameter uphill along ``grad``; returns the update applied to each.

        Computed in full first: if any new value would be non-finite, a ValueError names
        the parameter and neither the parameters nor the optimizer's state change.
        """
        self._check_params()
        grad = check_grad(self.params, grad)
        t = self.t + 1
        updates, states, new_values = {}, {}, {}
        for name, theta in self.params.items():
            g = grad[name].astype(np.float64)
            if self.weight_decay:
                g = g - self.weight_decay * theta  # gradient of -(lambda/2) ||theta||^2
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                step, states[name] = self._update(name, g, t)
                updates[name] = update = step.astype(theta.dtype)
                new_values[name] = theta + update
            if not (np.isfinite(g).all() and np.isfinite(new_values[name]).all()):
                raise ValueError(
                    f"params[{name!r}]: this step (lr={self.lr}, largest gradient entry "
                    f"{float(np.max(np.abs(grad[name])))}) would make it non-finite in {theta.dtype}; "
                    "nothing was changed: lower lr or rescale the objective"
                )
        for name, theta in self.params.items():
            theta[...] = new_values[name]  # in place: a 0-d sigma array stays the same object
            self._commit(name, states[name])
        self.t = t
        return updates

    def _update(self, name: str, g: np.ndarray, t: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The step for gradient g at step t, and the new state; nothing is written yet."""
        raise NotImplementedError

    def _commit(self, name: str, state: tuple[np.ndarray, ...]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    r"""Gradient ascent with heavy-ball momentum.

    :math:`v \leftarrow \beta v + g`, :math:`\theta \leftarrow \theta + \eta v`.
    """

    def __init__(self, p_or_params: Params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(p_or_params, lr, weight_decay)
        self.momentum = _hyper("momentum", momentum, 0.0, 1.0)
        self.velocity = {name: np.zeros(v.shape) for name, v in self.params.items()}

    def _update(self, name: str, g: np.ndarray, t: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        v = self.momentum * self.velocity[name] + g
        return self.lr * v, (v,)

    def _commit(self, name: str, state: tuple[np.ndarray, ...]) -> None:
        (self.velocity[name],) = state


class Adam(Optimizer):
    r"""Adam ascent with bias correction (Kingma and Ba 2015, Algorithm 1).

    :math:`\theta \leftarrow \theta + \eta\,\hat m / (\sqrt{\hat v} + \epsilon)`,
    :math:`\hat m = m_t / (1 - \beta_1^t)`, :math:`\hat v = v_t / (1 - \beta_2^t)`.
    """

    def __init__(
        self,
        p_or_params: Params,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(p_or_params, lr, weight_decay)
        self.beta1 = _hyper("beta1", beta1, 0.0, 1.0)
        self.beta2 = _hyper("beta2", beta2, 0.0, 1.0)
        self.eps = _hyper("eps", eps, 0.0, low_open=True)
        self.m = {name: np.zeros(v.shape) for name, v in self.params.items()}
        self.rms = {name: np.zeros(v.shape) for name, v in self.params.items()}  # sqrt(v_t)

    @property
    def v(self) -> dict[str, np.ndarray]:
        """The second moments v_t (inf where they overflow float64; the step uses ``rms`` = sqrt(v_t))."""
        with np.errstate(over="ignore"):
            return {name: rms**2 for name, rms in self.rms.items()}

    def _update(self, name: str, g: np.ndarray, t: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        m = self.beta1 * self.m[name] + (1 - self.beta1) * g  # first moment
        # sqrt(v_t) = sqrt(beta2 v_{t-1} + (1 - beta2) g^2), scaled by hypot: g^2 is never formed
        rms = np.hypot(np.sqrt(self.beta2) * self.rms[name], np.sqrt(1 - self.beta2) * g)
        c1, c2 = 1 - self.beta1**t, 1 - self.beta2**t  # bias corrections
        # m_hat / (sqrt(v_hat) + eps) = (m / c1) / (rms / sqrt(c2) + eps), with no quotient above |m|
        step = m / (rms + self.eps * np.sqrt(c2)) * (np.sqrt(c2) / c1)
        return self.lr * step, (m, rms)

    def _commit(self, name: str, state: tuple[np.ndarray, ...]) -> None:
        self.m[name], self.rms[name] = state
