"""Gaussian search distributions: ``Normal`` and its antithetic ``PairedNormal``."""

from __future__ import annotations

import math

import numpy as np

from ._base import Distribution, Grad
from ._checks import RNGLike, as_float_array, check_positive, float_dtype, standard_normal

# Rows per block when a pass over x needs a temporary the size of a block of x.
_BLOCK_ELEMENTS = 1 << 18


class Normal(Distribution):
    r"""Gaussian N(mu, diag(sigma^2)) with isotropic or diagonal sigma.

    .. math::

        \log p(x) = -\sum_j \frac{(x_j - \mu_j)^2}{2\sigma_j^2} - \sum_j \log\sigma_j
                    - \frac{d}{2}\log 2\pi

    Score, with :math:`\epsilon = x - \mu`:

    .. math::

        \partial_{\mu} \log p = \epsilon / \sigma^2, \qquad
        \partial_{\sigma_j} \log p = \epsilon_j^2/\sigma_j^3 - 1/\sigma_j \;\text{(diagonal)},
        \qquad
        \partial_{\sigma} \log p = \|\epsilon\|^2/\sigma^3 - d/\sigma \;\text{(isotropic)}.

    Fisher information: :math:`1/\sigma^2` per coordinate of mu, :math:`2/\sigma^2`
    per coordinate of a diagonal sigma and :math:`2d/\sigma^2` for an isotropic one
    (Wierstra et al. 2014, JMLR 15, section 3.2).

    Parameters
    ----------
    mu : array (d,)
        Mean; copied, then updated in place through ``params["mu"]``.
    sigma : float or array (d,)
        Standard deviation, scalar (isotropic) or per coordinate (diagonal).
    learn_sigma : bool
        If true, ``params`` holds ``sigma`` too and every score includes it.
    """

    def __init__(self, mu: object, sigma: object = 1.0, learn_sigma: bool = False):
        mu_arr = as_float_array("mu", mu)
        if mu_arr.ndim != 1 or mu_arr.shape[0] == 0:
            raise ValueError(f"mu must be a 1-D array of shape (d,) with d >= 1, got shape {mu_arr.shape}")
        sigma_arr = as_float_array("sigma", sigma)
        dtype = float_dtype(mu_arr)
        d = mu_arr.shape[0]
        if sigma_arr.shape not in ((), (d,)):
            raise ValueError(
                f"sigma must be a scalar or have shape ({d},) to match mu, got shape {sigma_arr.shape}"
            )
        check_positive("sigma", sigma_arr)
        self.learn_sigma = bool(learn_sigma)
        self.params = {"mu": np.array(mu_arr, dtype=dtype)}
        self._sigma = np.array(sigma_arr, dtype=dtype)
        if self.learn_sigma:
            self.params["sigma"] = self._sigma

    @property
    def mu(self) -> np.ndarray:
        return self.params["mu"]

    @property
    def sigma(self) -> np.ndarray:
        """Current sigma, checked positive (an optimizer step may have broken it)."""
        check_positive("sigma", self._sigma)
        return self._sigma

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    @property
    def isotropic(self) -> bool:
        return self._sigma.ndim == 0

    def check_x(self, x: object) -> np.ndarray:
        arr = as_float_array("x", x, finite=False)  # finiteness is checked on the result
        if arr.ndim != 2 or arr.shape[1] != self.dim or arr.shape[0] == 0:
            raise ValueError(f"x must have shape (n, {self.dim}) with n >= 1, got shape {arr.shape}")
        return arr

    def _noise(self, n: int, rng: RNGLike) -> np.ndarray:
        return standard_normal(rng, (n, self.dim), self.dtype)

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        return self.mu + self.sigma * self._noise(n, rng)

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        sigma = self.sigma
        z = (x - self.mu) / sigma
        log_det = self.dim * np.log(sigma) if self.isotropic else np.sum(np.log(sigma))
        return -0.5 * np.einsum("ij,ij->i", z, z) - log_det - 0.5 * self.dim * math.log(2 * math.pi)

    def _score(self, x: np.ndarray) -> Grad:
        sigma = self.sigma
        eps = x - self.mu
        scores = {"mu": eps / sigma**2}
        if self.learn_sigma:
            if self.isotropic:
                scores["sigma"] = np.einsum("ij,ij->i", eps, eps) / sigma**3 - self.dim / sigma
            else:
                scores["sigma"] = eps**2 / sigma**3 - 1 / sigma
        return scores

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        sigma = self.sigma
        w_sum = w.sum()
        # sum_i w_i eps_i / sigma^2 = (w @ x - sum(w) mu) / sigma^2: one BLAS pass over x.
        grad = {"mu": (w @ x - w_sum * self.mu) / sigma**2}
        if self.learn_sigma:
            # sum_i w_i eps_i^2 / sigma^3 - sum(w) / sigma, eps_i^2 built a block at a time.
            w_eps2 = _weighted_squared_deviation(w, x, self.mu)
            if self.isotropic:
                grad["sigma"] = w_eps2.sum() / sigma**3 - self.dim * w_sum / sigma
            else:
                grad["sigma"] = w_eps2 / sigma**3 - w_sum / sigma
        return grad

    def natural_gradient(self, grad: Grad) -> Grad:
        r"""F^{-1} g: mu: sigma^2 g; sigma: sigma^2 g / 2 (diagonal), sigma^2 g / (2d) (isotropic)."""
        grad = self.check_grad(grad)
        var = self.sigma**2
        natural = {"mu": var * grad["mu"]}
        if self.learn_sigma:
            natural["sigma"] = var * grad["sigma"] / (2 * self.dim if self.isotropic else 2)
        return natural


def _weighted_squared_deviation(w: np.ndarray, x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """sum_i w_i (x_i - mu)^2 per coordinate, without an (n, d) temporary."""
    n, d = x.shape
    rows = max(1, _BLOCK_ELEMENTS // d)
    total = np.zeros(d, dtype=np.result_type(w, x))
    for start in range(0, n, rows):
        eps = x[start : start + rows] - mu
        np.multiply(eps, eps, out=eps)
        total += w[start : start + rows] @ eps
    return total


class PairedNormal(Normal):
    r"""Normal with antithetic (mirrored) sampling; same density and score as ``Normal``.

    For even n the samples are :math:`\mu + \sigma\epsilon_i` for the first n/2 and
    :math:`\mu - \sigma\epsilon_i` for the last n/2, with the same :math:`\epsilon` in the
    same order (EvoGrad's order).  Mirrored sampling cancels the odd terms of the
    fitness's Taylor expansion and so lowers the estimator's variance
    (Brockhoff et al. 2010; Salimans et al. 2017, section 2.3).
    """

    def _noise(self, n: int, rng: RNGLike) -> np.ndarray:
        if n % 2:
            raise ValueError(f"n must be even for PairedNormal (antithetic pairs), got {n}")
        half = super()._noise(n // 2, rng)
        return np.concatenate([half, -half])
