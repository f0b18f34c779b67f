r"""Score-function gradient estimators, each written out term by term.

Every objective here is an estimate J(r) built from n samples x_i ~ p_theta and
the probability ratios r_i = p_theta(x_i) / p_theta0(x_i), all equal to 1 at the
current parameters.  Its gradient is

.. math::

    \nabla_\theta J = \sum_i w_i \, \nabla_\theta \log p_\theta(x_i), \qquad
    w_i = \left.\frac{\partial J}{\partial r_i}\right|_{r=1}

so an estimator only computes the weights w_i and hands them to the
distribution's ``weighted_score``.  Sign convention: every objective is
maximised, every gradient points uphill (as in EvoGrad).  See
``docs/derivations.md`` for the derivations step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _kde
from ._base import Distribution, Grad
from ._checks import as_float_array, behaviour_matrix, fitness_vector, per_sample
from .shaping import standardize


@dataclass(frozen=True)
class Estimate:
    """An objective's value, its gradient per parameter, and the per-sample weights w_i."""

    value: float | np.ndarray
    grad: Grad
    weights: np.ndarray


class Estimator:
    """Base class: subclasses implement ``weights(values) -> (value, w)``."""

    def __call__(self, values: object, x: object, p: Distribution) -> Estimate:
        if not isinstance(p, Distribution):
            raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
        x = p.check_x(x)
        value, w = self.weights(values, x.shape[0])
        return Estimate(value=value, grad=p.weighted_score(w, x), weights=w)

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        raise NotImplementedError


class Mean(Estimator):
    r"""Expected fitness (NES; Salimans et al. 2017, eq. 1 and 2).

    .. math::

        J = \frac1n \sum_i f_i r_i, \qquad w_i = \frac{f_i}{n}

    ``values`` are the fitnesses, shape (n,) or (n, 1); with ``shaping`` (e.g.
    ``zscore``, ``centered_ranks``) f = shaping(values).  ``value`` is mean(f).
    """

    def __init__(self, shaping: Callable[[np.ndarray], np.ndarray] | None = None):
        if shaping is not None and not callable(shaping):
            raise TypeError(f"shaping must be callable or None, got {type(shaping).__name__}")
        self.shaping = shaping

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        f = fitness_vector("values", values, n)
        if self.shaping is not None:
            f = fitness_vector("shaping(values)", self.shaping(f), n)
        w = f / n  # outer expectation: dJ/dr_i = f_i / n
        return _mean_value(w), w


class Variance(Estimator):
    r"""Variance of z-scored behaviours (MaxVar; Gajewski et al. 2019, section 3.1).

    Behaviours b_i (shape (n,) or (n, k)) are z-scored per dimension with the sample
    mean and the ddof=1 standard deviation, held constant:

    .. math::

        J = \frac1n \sum_i \|z_i\|^2 r_i, \qquad w_i = \frac{\|z_i\|^2}{n}
    """

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        z = standardize("behaviours", behaviour_matrix("behaviours", values, n))
        z_norm2 = np.einsum("ij,ij->i", z, z)  # ||z_i||^2
        w = z_norm2 / n
        return float(z_norm2.sum() / n), w


class Entropy(Estimator):
    r"""Kernel-density entropy of behaviours (MaxEnt; Gajewski et al. 2019, section 3.2).

    On z-scored behaviours z_i, with K_ij = exp(-||z_i - z_j||^2 / h^2):

    .. math::

        \hat p_j = \frac1n \sum_i K_{ij} r_i, \qquad
        J = \frac1n \sum_j (-\log \hat p_j)\, r_j

        w_i = \frac1n\Big[\underbrace{-\log \hat p_i}_{\text{outer}}
              \;-\; \underbrace{\frac1n \sum_j \frac{K_{ij}}{\hat p_j}}_{\text{nested KDE}}\Big]

    h is ``bandwidth`` (EvoGrad's ``k_sigma``).  Large n is processed in row blocks
    (``block_size``; automatic by default), never as a full n x n kernel.
    """

    def __init__(self, bandwidth: float = 1.0, standardize: bool = True, block_size: int | None = None):
        h = as_float_array("bandwidth", bandwidth)
        if h.shape != () or not h > 0:
            raise ValueError(f"bandwidth must be a positive scalar, got {bandwidth!r}")
        if not _kde.MIN_BANDWIDTH <= h <= _kde.MAX_BANDWIDTH:
            raise ValueError(
                f"bandwidth must be in [{_kde.MIN_BANDWIDTH:.3g}, {_kde.MAX_BANDWIDTH:.3g}] "
                f"(h**2 and 1/h**2 normal float64 numbers), got {bandwidth!r}"
            )
        valid_block = isinstance(block_size, int) and not isinstance(block_size, bool) and block_size >= 1
        if block_size is not None and not valid_block:
            raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
        self.bandwidth = float(h)
        self.standardize = bool(standardize)
        self.block_size = block_size

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        b = behaviour_matrix("behaviours", values, n)
        z = standardize("behaviours", b) if self.standardize else b
        density, nested = _kde.kernel_sums(z, self.bandwidth, self.block_size)
        neg_log_density = -np.log(density)  # outer term, finite since density_j >= K_jj / n = 1/n
        w = (neg_log_density - nested) / n  # nested: (1/n) sum_j K_ij / density_j
        return float(neg_log_density.sum() / n), w


def _mean_value(w: np.ndarray) -> float:
    """sum_i f_i / n from w_i = f_i / n: partial sums bounded by max |f|, finite for finite f."""
    with np.errstate(over="ignore"):  # only a mean within rounding of the float64 limit overflows
        value = float(np.sum(w, dtype=np.float64))
    if not np.isfinite(value):
        raise ValueError("values: their mean overflows float64 (it is within rounding of the largest float)")
    return value


def expectation(values: object, x: object, p: Distribution) -> Estimate:
    r"""EvoGrad's primitive: the sample mean of ``values`` and its score-function Jacobian.

    .. math::

        J = \frac1n \sum_i v_i r_i, \qquad
        \nabla_\theta J = \sum_i \frac{v_i}{n} \nabla_\theta \log p_\theta(x_i)

    ``values`` has shape (n,) or (n, m, ...).  ``value`` is their mean over axis 0;
    ``grad[name]`` has shape value.shape + param.shape (one gradient per output entry);
    ``weights`` = values / n.
    """
    if not isinstance(p, Distribution):
        raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
    x = p.check_x(x)
    v = per_sample("values", values, x.shape[0])
    w = v / x.shape[0]
    if v.ndim == 1:
        return Estimate(value=_mean_value(w), grad=p.weighted_score(w, x), weights=w)
    scores = p.score(x)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        grad = {name: np.tensordot(w, s, axes=(0, 0)) for name, s in scores.items()}
        value = w.sum(axis=0)  # mean of v from v / n: finite for finite v
    if not all(np.isfinite(g).all() for g in grad.values()) or not np.isfinite(value).all():
        raise ValueError("values: their mean or its gradient overflows; rescale values")
    return Estimate(value=value, grad=grad, weights=w)
