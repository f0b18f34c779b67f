r"""Full-covariance Gaussian ``MultivariateNormal``: x = mu + L z, L lower triangular.

With :math:`z \sim N(0, I)`, :math:`\Sigma = L L^\top` and the whitened sample
:math:`\epsilon = L^{-1}(x - \mu)` (the standard normal draw of a sample of this distribution):

.. math::

    \log p(x) = -\tfrac12 \|\epsilon\|^2 - \sum_j \log L_{jj} - \tfrac{d}{2}\log 2\pi

Score, with :math:`v = L^{-\top} \epsilon = \Sigma^{-1}(x - \mu)`.  From
:math:`d\epsilon = -L^{-1}\,dL\,\epsilon`,
:math:`d(-\tfrac12 \epsilon^\top \epsilon) = \operatorname{tr}(\epsilon \epsilon^\top L^{-1} dL)`
and :math:`d \log\det L = \operatorname{tr}(\operatorname{diag}(1/L_{jj})\, dL)`; kept to the
lower triangle (the parameters; zeros above it):

.. math::

    \partial_\mu \log p = v, \qquad
    \partial_L \log p = \operatorname{tril}\big(v \epsilon^\top\big) - \operatorname{diag}(1/L_{jj})
                      = \operatorname{tril}\big(L^{-\top}(\epsilon \epsilon^\top - I)\big)

(the second form because :math:`L^{-\top}` is upper triangular with diagonal
:math:`1/L_{jj}`).  Weighted over a sample, with :math:`C = \sum_i w_i \epsilon_i \epsilon_i^\top
= U^\top \operatorname{diag}(w) U` (one BLAS product, never an (n, d, d) array; w, U and L scaled by powers of 2 first):

.. math::

    \sum_i w_i \partial_\mu \log p(x_i) = L^{-\top} \textstyle\sum_i w_i \epsilon_i, \qquad
    \sum_i w_i \partial_L \log p(x_i) = \operatorname{tril}\big(L^{-\top} C\big)
        - \big(\textstyle\sum_i w_i\big) \operatorname{diag}(1/L_{jj})

Natural gradient, in the local coordinates :math:`\mu = \mu_0 + L_0\xi`,
:math:`L = L_0 (I + B)`, B lower triangular (both zero at the current parameters).
There the score is :math:`\partial_\xi = \epsilon`,
:math:`\partial_B = \operatorname{tril}(\epsilon \epsilon^\top - I)`,
and since :math:`E[(\epsilon^\top B \epsilon - \operatorname{tr}B)(\epsilon \epsilon^\top - I)] = B + B^\top` for
:math:`\epsilon \sim N(0, I)` the Fisher information is diagonal: 1 for every entry of
:math:`\xi` and every strictly-lower entry of B, 2 for a diagonal entry of B, and
the cross terms vanish (odd moments).  Pulling the gradient back
(:math:`g_\xi = L^\top g_\mu`, :math:`g_B = \operatorname{tril}(L^\top g_L)`), dividing by the
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
from ._base import Distribution, Grad, beyond_limit
from ._scaled import split

# Up to this dimension L is solved by substitution in NumPy: LAPACK's trtrs (scipy's OpenBLAS) starts its
# threads even for a 5 x 5 factor, and interleaved with other work that made log_prob 4 to 8 times slower
# than LU on the 2-core test machine; above it the solve's own work dominates.
SUBSTITUTION_MAX_DIM = 16


def _solve_lower(L: np.ndarray, b: np.ndarray, transpose: bool = False) -> np.ndarray:
    """L^{-1} b (or L^{-T} b) for lower-triangular L, b (d,) or (d, m): a triangular solve.

    A triangular solve, not LU (``np.linalg.solve``): it reads only the triangle and never
    pivots, so a valid factor with a huge off-diagonal entry beside a tiny diagonal
    (``[[1e-200, 0], [1e200, 1e-200]]``) is solved, where LU calls it singular.  Forward (or
    backward) substitution for small d, LAPACK's ``trtrs`` above ``SUBSTITUTION_MAX_DIM``;
    both are backward stable.  Entries that overflow come out inf, for the caller's check.
    """
    rhs = b.astype(L.dtype, copy=False)
    if L.shape[0] <= SUBSTITUTION_MAX_DIM:
        return _substitute(L, rhs, transpose)
    from scipy.linalg import lapack  # imported when first used: import npevograd stays light

    trtrs = lapack.strtrs if L.dtype == np.float32 else lapack.dtrtrs
    solved, info = trtrs(L, rhs if rhs.ndim == 2 else rhs[:, None], lower=1, trans=1 if transpose else 0)
    if info != 0:  # cannot happen: the diagonal is checked positive and normal
        raise np.linalg.LinAlgError(f"triangular solve failed (LAPACK trtrs info={info})")
    return solved if rhs.ndim == 2 else solved[:, 0]


def _substitute(L: np.ndarray, b: np.ndarray, transpose: bool) -> np.ndarray:
    """Forward substitution u_j = (b_j - L[j, :j] u[:j]) / L_jj, or backward with L^T."""
    d = L.shape[0]
    u = np.empty(b.shape, dtype=np.result_type(L, b))
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is inf here and reported by the caller
        if transpose:  # L^T is upper triangular: from the last row up, with column j of L below the diagonal
            for j in range(d - 1, -1, -1):
                u[j] = (b[j] - L[j + 1 :, j] @ u[j + 1 :]) / L[j, j]
        else:
            for j in range(d):
                u[j] = (b[j] - L[j, :j] @ u[:j]) / L[j, j]
    return u


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


def checked_gram(F: np.ndarray, name: str, symbol: str) -> np.ndarray:
    """The covariance F F^T of a scale factor F (``name``, written ``symbol``); a ValueError naming it if it
    overflows F's dtype."""
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        covariance = F @ F.T
    if not np.isfinite(covariance).all():
        raise ValueError(
            f"the covariance {name} @ {name}.T overflows {F.dtype} (largest |{name}| "
            f"{float(np.max(np.abs(F))):.4g}); rescale {name} (samples and scores use {symbol} itself)"
        )
    return covariance


def checked_natural(natural: Grad, grad: Grad, name: str, F: np.ndarray) -> Grad:
    """A natural gradient, each entry checked finite (a ValueError naming the gradient entry and the largest
    entries of it and of the factor F, ``name``), in F's dtype."""
    for key, value in natural.items():
        if not np.isfinite(value).all():
            raise ValueError(
                f"the natural gradient of grad[{key!r}] overflows {value.dtype} (largest |grad| "
                f"{float(np.max(np.abs(grad[key])))}, largest |{name}| {float(np.max(np.abs(F)))})"
            )
    return {key: g.astype(F.dtype, copy=False) for key, g in natural.items()}


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
        """Sigma = L L^T, shape (d, d); a ValueError naming scale_tril if it overflows the dtype."""
        return checked_gram(self.scale_tril, "scale_tril", "L")

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

    def _may_overflow(self) -> bool:
        L = self.params["scale_tril"] if self.learn_scale else self._scale_tril  # checked where sampled
        return beyond_limit(self.mu, self.dim * float(np.max(np.abs(L))))  # |(L z)_j| <= max|z| d max|L|

    def _scale_text(self) -> str:
        scale, mu = float(np.max(np.abs(self.scale_tril))), float(np.max(np.abs(self.mu)))
        return (
            f"x = mu + scale_tril @ z with largest |scale_tril| {scale:.4g} (the sigma of this distribution) and "
            f"largest |mu| {mu:.4g}: lower scale_tril or mu"
        )

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
        w_m, w_e = split(w.astype(np.float64, copy=False))
        u_m, u_e = split(u.astype(np.float64, copy=False))
        L_m, L_e = split(L.astype(np.float64, copy=False))
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
        return checked_natural(natural, grad, "scale_tril", L)

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
