"""Equal-weight mixture of isotropic Gaussians with a shared sigma."""

from __future__ import annotations

import math

import numpy as np

from .._checks import (
    RNGLike,
    as_float_array,
    as_rng,
    cast_sigma,
    check_params,
    check_positive,
    check_sigma,
    float_dtype,
    sample_rows,
)
from ..sampling import standard_normal, uniform
from ._base import Distribution, Grad


class MixNormal(Distribution):
    r"""p(x) = (1/K) sum_k N(x; mu_k, sigma^2 I), parameters ``mus`` of shape (K, d).

    .. math::

        \partial_{\mu_k} \log p(x) = \gamma_k(x)\,\frac{x - \mu_k}{\sigma^2}, \qquad
        \gamma_k(x) = \operatorname{softmax}_k\!\left(-\frac{\|x - \mu_k\|^2}{2\sigma^2}\right)

    The responsibilities :math:`\gamma_k` are computed from log-densities with
    log-sum-exp, so they stay finite however far apart the components are.
    (Bishop, Pattern Recognition and Machine Learning, 2006, eq. 9.23.)
    """

    def __init__(self, mus: object, sigma: object = 1.0):
        mus_arr = as_float_array("mus", mus)
        if mus_arr.ndim != 2 or 0 in mus_arr.shape:
            raise ValueError(f"mus must have shape (K, d) with K, d >= 1, got shape {mus_arr.shape}")
        sigma_arr = as_float_array("sigma", sigma)
        if sigma_arr.shape != ():
            raise ValueError(f"sigma must be a scalar (shared isotropic sigma), got shape {sigma_arr.shape}")
        check_positive("sigma", sigma_arr)
        dtype = float_dtype(mus_arr)
        self.params = {"mus": np.array(mus_arr, dtype=dtype)}
        self._sigma = cast_sigma(sigma_arr, dtype)  # checked after the cast: 1e39 is inf in float32
        check_params(self)  # records the shapes and dtype that params entries keep

    @property
    def sigma(self) -> np.ndarray:
        """The shared sigma (fixed, not in ``params``), checked finite and > 0 at every use."""
        return check_sigma(self._sigma)

    @property
    def mus(self) -> np.ndarray:
        return self.params["mus"]

    @property
    def dim(self) -> int:
        return self.mus.shape[1]

    def check_x(self, x: object) -> np.ndarray:
        check_params(self)
        return sample_rows(x, self.dim, self.dtype)

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        rng = as_rng(rng)
        n_components = self.mus.shape[0]
        component = np.minimum((uniform(rng, (n,)) * n_components).astype(np.intp), n_components - 1)
        return self.mus[component] + self.sigma * standard_normal(rng, (n, self.dim), self.dtype)

    def _log_components(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """z_ik = (x_i - mu_k) / sigma (n, K, d); log N(x_i; mu_k) relative to the nearest component m,
        -(||z_ik||^2 - ||z_im||^2) / 2 (n, K); and ||z_im||^2 / 2 (n,).

        The difference of squared norms is taken as a product, never as a difference of squares:

            ||z_k||^2 - ||z_m||^2 = ((mu_m - mu_k) / sigma) . (z_k + z_m)

        so it is exact to rounding however far x is (1e208 sigma away from components 1e-8
        apart), finite (or inf: responsibility 0) wherever ||z||^2 itself would overflow.
        """
        mus = self.mus
        z = (x[:, None, :] - mus[None, :, :]) / self.sigma
        peak = np.max(np.abs(z), axis=2)
        safe = np.where(peak > 0, peak, 1)
        unit = z / safe[:, :, None]
        r = safe * np.sqrt(np.einsum("ikj,ikj->ik", unit, unit))  # ||z_ik||, scaled before squaring
        r[np.isinf(peak)] = np.inf  # z overflowed (inf / inf is NaN in unit): that component is infinitely far
        nearest = np.argmin(r, axis=1)
        rows = np.arange(x.shape[0])
        apart = (mus[nearest][:, None, :] - mus[None, :, :]) / self.sigma  # (mu_m - mu_k) / sigma
        log_k = -0.5 * np.einsum("ikj,ikj->ik", apart, z + z[rows, nearest][:, None, :])
        m = r[rows, nearest]
        return z, log_k, 0.5 * m * m

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import logsumexp  # imported when first used: import npevograd stays light

        _, log_k, nearest = self._log_components(x)
        n_components = self.mus.shape[0]
        const = self.dim * (np.log(self.sigma) + 0.5 * math.log(2 * math.pi)) + math.log(n_components)
        return logsumexp(log_k, axis=1) - nearest - const

    def _score(self, x: np.ndarray) -> Grad:
        z, log_k, _ = self._log_components(x)
        ratio = self._responsibilities_over_sigma(log_k)  # gamma_ik / sigma
        return {"mus": ratio[:, :, None] * _where_responsible(ratio, z)}

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        z, log_k, _ = self._log_components(x)
        ratio = self._responsibilities_over_sigma(log_k)  # gamma_ik / sigma, (n, K)
        # sum_i w_i gamma_ik (x_i - mu_k) / sigma^2 = sum_i (w_i gamma_ik / sigma) z_ik
        w_ratio = w[:, None] * ratio
        grad = np.einsum("ik,ikj->kj", w_ratio, _where_responsible(w_ratio, z))
        if not np.isfinite(grad).all():  # w gamma / sigma overflowed (where a score may be 0): scores first
            grad = np.einsum("i,ikj->kj", w, ratio[:, :, None] * _where_responsible(ratio, z))
        return {"mus": grad}

    def _responsibilities_over_sigma(self, log_k: np.ndarray) -> np.ndarray:
        """gamma_ik / sigma (n, K); where gamma underflows (to 0, or to a subnormal with few bits) but
        gamma / sigma need not (sigma = 1e-301, gamma = exp(-815)), from the logs instead."""
        from scipy.special import logsumexp, softmax

        gamma = softmax(log_k, axis=1)
        ratio = gamma / self.sigma
        lost = gamma < np.finfo(gamma.dtype).tiny
        if lost.any():
            log_ratio = log_k - logsumexp(log_k, axis=1, keepdims=True) - np.log(self.sigma)
            ratio = np.where(lost, np.exp(log_ratio), ratio)
        return ratio


def _where_responsible(gamma: np.ndarray, z: np.ndarray) -> np.ndarray:
    """z where gamma_ik != 0, else 0: a component too far to matter adds exactly 0, even if its z overflowed."""
    return np.where(gamma[:, :, None] != 0, z, 0)
