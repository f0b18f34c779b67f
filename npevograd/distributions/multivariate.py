r"""Full-covariance Gaussian ``MultivariateNormal``: x = mu + L z, L lower triangular.

With :math:`z \sim N(0, I)`, :math:`\Sigma = L L^\top` and the whitened sample
:math:`u = L^{-1}(x - \mu)` (so :math:`u = z` for a sample of this distribution):

.. math::

    \log p(x) = -\tfrac12 \|u\|^2 - \sum_j \log L_{jj} - \tfrac{d}{2}\log 2\pi

Score, with :math:`v = L^{-\top} u = \Sigma^{-1}(x - \mu)`.  From
:math:`du = -L^{-1}\,dL\,u`, :math:`d(-\tfrac12 u^\top u) = \operatorname{tr}(u u^\top L^{-1} dL)`
and :math:`d \log\det L = \operatorname{tr}(\operatorname{diag}(1/L_{jj})\, dL)`; kept to the
lower triangle (the parameters; zeros above it):

.. math::

    \partial_\mu \log p = v, \qquad
    \partial_L \log p = \operatorname{tril}\big(v u^\top\big) - \operatorname{diag}(1/L_{jj})
                      = \operatorname{tril}\big(L^{-\top}(u u^\top - I)\big)

(the second form because :math:`L^{-\top}` is upper triangular with diagonal
:math:`1/L_{jj}`).  Weighted over a sample, with :math:`C = \sum_i w_i u_i u_i^\top
= U^\top \operatorname{diag}(w) U` (one BLAS product, never an (n, d, d) array; w, U and L scaled by powers of 2 first):

.. math::

    \sum_i w_i \partial_\mu \log p(x_i) = L^{-\top} \textstyle\sum_i w_i u_i, \qquad
    \sum_i w_i \partial_L \log p(x_i) = \operatorname{tril}\big(L^{-\top} C\big)
        - \big(\textstyle\sum_i w_i\big) \operatorname{diag}(1/L_{jj})

Natural gradient, in the local coordinates :math:`\mu = \mu_0 + L_0\delta`,
:math:`L = L_0 (I + B)`, B lower triangular (both zero at the current parameters).
There the score is :math:`\partial_\delta = u`, :math:`\partial_B = \operatorname{tril}(u u^\top - I)`,
and since :math:`E[(u^\top B u - \operatorname{tr}B)(u u^\top - I)] = B + B^\top` for
:math:`u \sim N(0, I)` the Fisher information is diagonal: 1 for every entry of
:math:`\delta` and every strictly-lower entry of B, 2 for a diagonal entry of B, and
the cross terms vanish (odd moments).  Pulling the gradient back
(:math:`g_\delta = L^\top g_\mu`, :math:`g_B = \operatorname{tril}(L^\top g_L)`), dividing by the
Fisher and pushing forward again:

.. math::

    \tilde g_\mu = L L^\top g_\mu, \qquad
    \tilde g_L = L\, H\big(\operatorname{tril}(L^\top g_L)\big), \quad
    H: \text{halve the diagonal}

(the natural gradient is a tangent vector, the same in any coordinates).
References: Glasmachers et al. 2010 (xNES, local coordinates); Wierstra et al.
2014, JMLR 15, section 3.4.

Only the lower triangle of ``scale_tril`` is ever read: the constructor rejects
nonzero entries above the diagonal, and the score there is zero, so a
gradient step never fills them in.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import (
    RNGLike,
    as_dtype,
    as_float_array,
    check_bool,
    check_finite,
    check_params,
    float_dtype,
    sample_rows,
)
from ..sampling import standard_normal
from ._base import Distribution, Grad


def _solve_lower(L: np.ndarray, b: np.ndarray, transpose: bool = False) -> np.ndarray:
    """L^{-1} b (or L^{-T} b) for lower-triangular L, b (d,) or (d, m).

    ``np.linalg.solve`` (LU, backward stable) rather than ``scipy.linalg.solve_triangular``:
    the same accuracy here, and about 30 times less overhead per call for small d.
    """
    return np.linalg.solve(L.T if transpose else L, b)


def _split(a: np.ndarray) -> tuple[np.ndarray, int]:
    """a = m * 2**e exactly, with max |m| in [0.5, 1) (a all zero or not finite: m = a, e = 0)."""
    largest = float(np.max(np.abs(a))) if a.size else 0.0
    if largest == 0 or not math.isfinite(largest):
        return a, 0
    exponent = math.frexp(largest)[1]
    return np.ldexp(a, -exponent).astype(a.dtype, copy=False), exponent


def _check_scale_tril(L: np.ndarray, d: int) -> None:
    if L.shape != (d, d):
        raise ValueError(f"scale_tril must have shape ({d}, {d}) to match mu, got shape {L.shape}")
    check_finite("scale_tril", L)
    above = np.triu(L, 1)
    if np.any(above != 0):
        i, j = np.unravel_index(int(np.argmax(np.abs(above))), above.shape)
        raise ValueError(
            "scale_tril must be lower triangular (zeros above the diagonal), got "
            f"scale_tril[{i}, {j}] = {float(L[i, j])}; pass np.tril(...) or a Cholesky factor"
        )
    _check_diagonal(L)


def _check_diagonal(L: np.ndarray) -> None:
    """A positive diagonal of normal numbers: 1 / L_jj (in the score and log det) then stays finite."""
    diagonal = np.diagonal(L)
    j = int(np.argmin(np.where(np.isnan(diagonal), -np.inf, diagonal)))
    if not (diagonal > 0).all():
        raise ValueError(f"scale_tril must have a positive diagonal, got scale_tril[{j}, {j}] = {float(diagonal[j])}")
    smallest = np.finfo(L.dtype).tiny
    if not (diagonal >= smallest).all():
        raise ValueError(
            f"scale_tril must have a diagonal of normal {L.dtype} numbers (>= {float(smallest):.3g}, so that "
            f"1 / L_jj is finite), got scale_tril[{j}, {j}] = {float(diagonal[j])}"
        )


class MultivariateNormal(Distribution):
    r"""Gaussian N(mu, L L^T) with a lower-triangular scale factor L (positive diagonal).

    The math (log-density, score, weighted score, natural gradient) is in the
    module docstring.

    Parameters
    ----------
    mu : array (d,)
        Mean; copied, then updated in place through ``params["mu"]``.
    scale_tril : array (d, d)
        Lower-triangular L with a positive diagonal, e.g. ``np.linalg.cholesky(cov)``;
        copied.  Cast to mu's dtype (float32 kept).
    learn_scale : bool
        If true, ``params`` holds ``scale_tril`` too and every score includes it
        (lower triangle; zeros above the diagonal).
    """

    def __init__(self, mu: object, scale_tril: object, learn_scale: bool = False):
        mu_arr = as_float_array("mu", mu)
        if mu_arr.ndim != 1 or mu_arr.shape[0] == 0:
            raise ValueError(f"mu must be a 1-D array of shape (d,) with d >= 1, got shape {mu_arr.shape}")
        d = mu_arr.shape[0]
        scale_arr = as_float_array("scale_tril", scale_tril, finite=False)
        _check_scale_tril(scale_arr, d)
        dtype = float_dtype(mu_arr)
        self.learn_scale = check_bool("learn_scale", learn_scale)
        self.params = {"mu": np.array(mu_arr, dtype=dtype)}
        with np.errstate(under="ignore"):  # checked just below, in the parameters' dtype
            self._scale_tril = np.array(as_dtype("scale_tril", scale_arr, dtype))
        _check_diagonal(self._scale_tril)  # after the cast: 1e-46 is 0 in float32
        if self.learn_scale:
            self.params["scale_tril"] = self._scale_tril
        check_params(self)  # records the shapes and dtype that params entries keep

    @property
    def mu(self) -> np.ndarray:
        return self.params["mu"]

    @property
    def scale_tril(self) -> np.ndarray:
        """The current L (its lower triangle; ``params["scale_tril"]`` when learned), checked finite with a
        positive diagonal at every use."""
        L = self.params["scale_tril"] if self.learn_scale else self._scale_tril
        check_finite("scale_tril", L)
        _check_diagonal(L)
        return np.tril(L)

    @property
    def covariance(self) -> np.ndarray:
        """Sigma = L L^T, shape (d, d)."""
        L = self.scale_tril
        return L @ L.T

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    def check_x(self, x: object) -> np.ndarray:
        check_params(self)
        return sample_rows(x, self.dim, self.dtype)

    def whiten(self, x: object) -> np.ndarray:
        """u_i = L^{-1}(x_i - mu) for each sample, shape (n, d): z back from x = mu + L z."""
        return self._whiten(self.check_x(x), self.scale_tril)

    def _whiten(self, x: np.ndarray, L: np.ndarray) -> np.ndarray:
        u = _solve_lower(L, (x - self.mu).T).T
        return u.astype(self.dtype, copy=False)

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        z = standard_normal(rng, (n, self.dim), self.dtype)
        return self.mu + z @ self.scale_tril.T  # x_i = mu + L z_i

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        L = self.scale_tril
        u = self._whiten(x, L)
        log_det = np.sum(np.log(np.diagonal(L)))
        return -0.5 * np.einsum("ij,ij->i", u, u) - log_det - 0.5 * self.dim * math.log(2 * math.pi)

    def _score(self, x: np.ndarray) -> Grad:
        L = self.scale_tril
        u = self._whiten(x, L)
        v = _solve_lower(L, u.T, transpose=True).T.astype(self.dtype, copy=False)  # v_i = L^{-T} u_i
        scores = {"mu": v}
        if self.learn_scale:
            inverse_diagonal = np.diag(1 / np.diagonal(L))
            scores["scale_tril"] = np.tril(v[:, :, None] * u[:, None, :]) - inverse_diagonal
        return scores

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        L = self.scale_tril
        u = self._whiten(x, L)
        # w, u and L are split into a mantissa part (largest entry in [0.5, 1)) and a power of 2, exactly, so
        # the products and solves run on numbers near 1 and the exponents are added once at the end: neither
        # w u (4e-274 * 1e-100, then / 1e-100) underflows, nor u / L (1e-200 / 1e200, then * 1e100), nor
        # w u u^T (1e200 * 1e100^2, then / 1e200) overflows where the gradient itself does not
        # (float32 inputs in float64: entries 1e-30 beside 1e30 in one vector fit its range, not float32's)
        w_m, w_e = _split(w.astype(np.float64, copy=False))
        u_m, u_e = _split(u.astype(np.float64, copy=False))
        L_m, L_e = _split(L.astype(np.float64, copy=False))
        grad = {"mu": np.ldexp(_solve_lower(L_m, w_m @ u_m, transpose=True), w_e + u_e - L_e)}  # L^{-T} sum w_i u_i
        if self.learn_scale:
            c = (u_m * w_m[:, None]).T @ u_m  # C = sum_i w_i u_i u_i^T, in mantissa parts
            solved = np.ldexp(np.tril(_solve_lower(L_m, c, transpose=True)), w_e + 2 * u_e - L_e)
            grad["scale_tril"] = solved - w.sum() * np.diag(1 / np.diagonal(L))
        return {name: g.astype(self.dtype, copy=False) for name, g in grad.items()}

    def natural_gradient(self, grad: Grad) -> Grad:
        r"""F^{-1} g: mu: L L^T g_mu; scale_tril: L H(tril(L^T g_L)), H halving the diagonal."""
        grad = self.check_grad(grad)
        L = self.scale_tril
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            natural = {"mu": L @ (L.T @ grad["mu"])}
            if self.learn_scale:
                local = np.tril(L.T @ grad["scale_tril"])  # g_B, the gradient in local coordinates
                local[np.diag_indices(self.dim)] /= 2  # Fisher 2 on the diagonal of B, 1 below it
                natural["scale_tril"] = L @ local
        for name, value in natural.items():
            if not np.isfinite(value).all():
                raise ValueError(
                    f"the natural gradient of grad[{name!r}] overflows {value.dtype} (largest |grad| "
                    f"{float(np.max(np.abs(grad[name])))}, largest |scale_tril| {float(np.max(np.abs(L)))})"
                )
        return {name: g.astype(self.dtype, copy=False) for name, g in natural.items()}

    def natural_weighted_score(self, w: object, x: object) -> Grad:
        r"""The natural gradient of :math:`\sum_i w_i \log p(x_i)` in the mean-and-covariance coordinates.

        .. math::

            \tilde\nabla_\mu = \sum_i w_i (x_i - \mu), \qquad
            \tilde\nabla_\Sigma = \sum_i w_i \big((x_i - \mu)(x_i - \mu)^\top - \Sigma\big)

        The same tangent vector as ``natural_gradient(weighted_score(w, x))`` in (mu, scale_tril):
        with :math:`\tilde g_L = L H(\operatorname{tril}(C - \sum_i w_i I))`, C = sum_i w_i u_i u_i^T,
        :math:`d\Sigma = \tilde g_L L^\top + L \tilde g_L^\top = L (C - \sum_i w_i I) L^\top` since
        :math:`H(\operatorname{tril}(S)) + H(\operatorname{tril}(S))^\top = S` for symmetric S.  With the CMA
        weights this is the rank-mu update of CMA-ES (Akimoto et al. 2010; ``npevograd.algorithms.cmaes``).
        Returns ``{"mu": (d,), "covariance": (d, d)}``.
        """
        x = self.check_x(x)
        weights = as_float_array("w", w)
        if weights.shape != (x.shape[0],):
            raise ValueError(f"w has shape {weights.shape} but x has {x.shape[0]} samples; expected ({x.shape[0]},)")
        y = x - self.mu
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            natural = {"mu": weights @ y, "covariance": (weights * y.T) @ y - weights.sum() * self.covariance}
        for name, value in natural.items():
            if not np.isfinite(value).all():
                raise ValueError(f"natural_weighted_score: the {name} part overflows {value.dtype}; rescale w or x")
        return {name: g.astype(self.dtype, copy=False) for name, g in natural.items()}
