r"""xNES: exponential natural evolution strategy (Glasmachers, Schaul, Sun, Wierstra and Schmidhuber 2010).

"Exponential natural evolution strategies", GECCO 2010, Algorithm 1; also
Wierstra et al. 2014, JMLR 15, section 4.

Distribution: ``MultivariateNormal(mu, L, learn_scale=True)``, x_k = mu + A eps_k with A = sigma B,
det B = 1.  Estimator: ``Mean(shaping=nes_utilities)`` (its weights times n are the
NES utilities u_k).  Update: the natural gradient in local coordinates
:math:`\mu = \mu_0 + A\xi`, :math:`A = A_0 \exp(M/2)`, M symmetric, where the
Fisher information is the identity, followed by the exponential map:

.. math::

    G_\xi = \sum_k u_k \epsilon_k, \qquad G_M = \sum_k u_k (\epsilon_k \epsilon_k^\top - I)

    G_\sigma = \operatorname{tr}(G_M)/d, \qquad G_B = G_M - G_\sigma I

    \mu \leftarrow \mu + \eta_\mu A G_\xi, \qquad
    A \leftarrow A\, e^{\eta_\sigma G_\sigma / 2} \operatorname{expm}\big(\tfrac{\eta_B}{2} G_B\big)

(``scipy.linalg.expm``).  The updated A is full; npevograd's distribution keeps the
lower-triangular factor L of the same covariance :math:`A A^\top` (from a QR
decomposition of :math:`A^\top`).  That changes nothing: with L = A Q, Q orthogonal,
the whitened samples are :math:`Q^\top \epsilon`, :math:`G_M` becomes :math:`Q^\top G_M Q`, and
both the mean step and :math:`A e^{G} A^\top` come out the same.

``separable=True`` keeps only the diagonal of G_B (no rotation is learnt): with a
diagonal factor and eta_sigma = eta_B this is exactly SNES (Schaul et al. 2011:
SNES is xNES restricted to diagonal covariances).

Defaults (the paper's): popsize n = 4 + floor(3 ln d), eta_mu = 1,
eta_sigma = eta_B = 3 (3 + ln d) / (5 d sqrt d).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._checks import RNGLike, as_float_array
from ..distributions import MultivariateNormal
from ..estimators import Estimate, Mean, nes_utilities
from ._strategy import Samples, Strategy, default_popsize, positive, write_params


def initial_factor(mu: object, sigma: object) -> np.ndarray:
    """sigma as a lower-triangular (d, d) factor: a scalar (sigma I), a (d,) diagonal, or the factor itself."""
    sigma_arr = as_float_array("sigma", sigma)
    shape = as_float_array("mu", mu).shape
    if len(shape) == 1 and sigma_arr.shape in ((), shape):
        return np.diag(np.broadcast_to(sigma_arr, shape)).astype(sigma_arr.dtype)
    return sigma_arr  # (d, d): validated by MultivariateNormal


def lower_factor(a: np.ndarray) -> np.ndarray:
    """The lower-triangular L with a positive diagonal and L L^T = A A^T (QR of A^T)."""
    q, r = np.linalg.qr(a.T)  # A^T = Q R, so A = R^T Q^T and A A^T = R^T R
    signs = np.where(np.diagonal(r) < 0, -1.0, 1.0)
    return r.T * signs  # flipping column signs of R^T keeps R^T R and makes the diagonal positive


class XNES(Strategy):
    """Exponential NES: ``es = XNES(mu, sigma)``; ``x = es.ask()``; ``es.tell(fitness)`` (maximised).

    ``sigma``: a scalar, a (d,) diagonal, or a (d, d) lower-triangular initial factor.
    """

    distribution: MultivariateNormal

    def __init__(
        self,
        mu: object,
        sigma: object = 1.0,
        popsize: int | None = None,
        rng: RNGLike = None,
        lr_mu: float = 1.0,
        lr_sigma: float | None = None,
        lr_B: float | None = None,
        separable: bool = False,
        tolconditioncov: float | None = 1e14,
        **options: Any,
    ) -> None:
        p = MultivariateNormal(mu, initial_factor(mu, sigma), learn_scale=True)
        d = p.dim
        super().__init__(p, default_popsize(d) if popsize is None else popsize, rng, **options)
        self.tolconditioncov = None if tolconditioncov is None else positive("tolconditioncov", tolconditioncov)
        default_lr = 3 * (3 + math.log(d)) / (5 * d * math.sqrt(d))
        self.lr_mu = positive("lr_mu", lr_mu)
        self.lr_sigma = positive("lr_sigma", default_lr if lr_sigma is None else lr_sigma)
        self.lr_B = positive("lr_B", default_lr if lr_B is None else lr_B)
        self.separable = bool(separable)
        self.estimator = Mean(shaping=nes_utilities)

    @property
    def sigma(self) -> float:
        """The step size sigma = det(A)^(1/d) (geometric mean of L's diagonal)."""
        return float(np.exp(np.mean(np.log(np.diagonal(self.distribution.scale_tril)))))

    def _widths(self) -> np.ndarray:
        return np.sqrt(np.einsum("ij,ij->i", self.distribution.scale_tril, self.distribution.scale_tril))

    def _own_stop(self) -> dict[str, float]:
        """``tolconditioncov``: the condition number of the covariance A A^T above the threshold (pycma's 1e14)."""
        if self.tolconditioncov is None:
            return {}
        s = np.linalg.svd(self.distribution.scale_tril, compute_uv=False)
        well_conditioned = s[-1] > 0 and (s[0] / s[-1]) ** 2 <= self.tolconditioncov
        return {} if well_conditioned else {"tolconditioncov": self.tolconditioncov}

    def _update(self, x: Samples, f: np.ndarray) -> Estimate:
        p, n, d = self.distribution, self.popsize, self.distribution.dim
        A = p.scale_tril
        estimate = self.estimator(f, x, p)
        u = n * estimate.weights  # NES utilities u_k
        z = p.whiten(x)  # z_k = A^{-1} (x_k - mu)
        rates = "lr_mu, lr_sigma, lr_B"
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # checked below, before any write
            g_delta = u @ z
            g_m = (z * u[:, None]).T @ z - u.sum() * np.eye(d)
            g_sigma = np.trace(g_m) / d
            g_b = g_m - g_sigma * np.eye(d)
            new_mu = p.mu + self.lr_mu * (A @ g_delta)
            log_scale = 0.5 * self.lr_sigma * g_sigma
            exponent = 0.5 * self.lr_B * g_b
            if self.separable:
                new_a = A * np.exp(log_scale + np.diagonal(exponent))
            elif np.abs(exponent).sum() < _EXP_LIMIT and abs(log_scale) < _EXP_LIMIT:  # False for NaN too
                from scipy.linalg import expm  # scipy.linalg is slow to import: only when updating

                new_a = lower_factor(A * math.exp(log_scale) @ expm(exponent))
            else:  # e^G or e^(log scale) would overflow (sum |G_ij| bounds every entry's growth)
                new_a = np.full_like(A, np.inf)
            if not np.all(np.isfinite(new_a)) or not np.all(np.diagonal(new_a) > 0):
                raise ValueError(f"XNES: the updated factor is not finite; rescale the fitness or lower {rates}")
        write_params("XNES", p.params, {"mu": new_mu, "scale_tril": new_a}, rates)
        return estimate


_EXP_LIMIT = 700.0  # exp(700) ~ 1e304: beyond it the factor's update overflows float64
