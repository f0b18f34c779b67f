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
"""

from __future__ import annotations

from typing import Union

import numpy as np

from ._base import Distribution, Grad
from ._checks import check_grad

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
                "p_or_params must be an npevograd Distribution or a dict of arrays, "
                f"got {type(p_or_params).__name__}"
            )
        if not params:
            raise ValueError("p_or_params has no parameters to optimize")
        for name, value in params.items():
            if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
                got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(
                    f"params[{name!r}] must be a floating numpy array (updated in place), got {got}"
                )
            if not value.flags.writeable:
                raise ValueError(f"params[{name!r}] is read-only; the optimizer updates it in place")
        self.params: dict[str, np.ndarray] = params
        self.lr = _hyper("lr", lr, 0.0, low_open=True)
        self.weight_decay = _hyper("weight_decay", weight_decay, 0.0)
        self.t = 0

    def step(self, grad: Grad) -> Grad:
        """Move every parameter uphill along ``grad``; returns the update applied to each."""
        grad = check_grad(self.params, grad)
        self.t += 1
        updates = {}
        for name, theta in self.params.items():
            g = grad[name].astype(np.float64)
            if self.weight_decay:
                g = g - self.weight_decay * theta  # gradient of -(lambda/2) ||theta||^2
            update = np.asarray(self._update(name, g), dtype=theta.dtype)
            theta += update  # in place: a 0-d sigma array stays the same object
            updates[name] = update
        return updates

    def _update(self, name: str, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SGD(Optimizer):
    r"""Gradient ascent with heavy-ball momentum.

    :math:`v \leftarrow \beta v + g`, :math:`\theta \leftarrow \theta + \eta v`.
    """

    def __init__(self, p_or_params: Params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(p_or_params, lr, weight_decay)
        self.momentum = _hyper("momentum", momentum, 0.0, 1.0)
        self.velocity = {name: np.zeros(v.shape) for name, v in self.params.items()}

    def _update(self, name: str, g: np.ndarray) -> np.ndarray:
        v = self.velocity[name]
        v *= self.momentum
        v += g
        return self.lr * v


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
        self.v = {name: np.zeros(v.shape) for name, v in self.params.items()}

    def _update(self, name: str, g: np.ndarray) -> np.ndarray:
        m, v = self.m[name], self.v[name]
        m *= self.beta1
        m += (1 - self.beta1) * g  # first moment
        v *= self.beta2
        v += (1 - self.beta2) * g * g  # second moment
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
