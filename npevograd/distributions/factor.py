r"""``FactorNormal``: the Gaussian N(mu, A A^T) drawn as x = mu + A eps with a general square factor A.

A is any nonsingular (d, d) matrix, not necessarily triangular: XNES keeps its natural factor,
:math:`A \leftarrow s A \exp(P)`, and this distribution draws with that A, so ``sample`` with a copy of a
strategy's rng returns the rows its ``ask`` returns (as CMA-ES's ``EigenGaussian`` does with B D).
With the whitened sample :math:`\epsilon = A^{-1}(x - \mu)` (the standard normal draw x was made from):

.. math::

    \log p(x) = -\tfrac12 \|\epsilon\|^2 - \log|\det A| - \tfrac{d}{2}\log 2\pi

Score, every entry of A a parameter (A and A Q, Q orthogonal, are the same distribution).  From
:math:`d\epsilon = -A^{-1}\,dA\,\epsilon` and :math:`d \log|\det A| = \operatorname{tr}(A^{-1} dA)`:

.. math::

    \partial_\mu \log p = A^{-\top} \epsilon, \qquad \partial_A \log p = A^{-\top}(\epsilon \epsilon^\top - I)

and weighted over a sample, with :math:`C = \sum_i w_i \epsilon_i \epsilon_i^\top`:
:math:`A^{-\top} \sum_i w_i \epsilon_i` and :math:`A^{-\top}(C - \sum_i w_i I)`.

Natural gradient, in the local coordinates :math:`\mu = \mu_0 + A_0 \xi`, :math:`A = A_0 (I + B)`, B any (d, d)
matrix: the score is :math:`\partial_\xi = \epsilon`, :math:`\partial_B = \epsilon \epsilon^\top - I`, and since
:math:`E[(\epsilon^\top B \epsilon - \operatorname{tr}B)(\epsilon \epsilon^\top - I)] = B + B^\top` the Fisher
information maps B to :math:`2 \operatorname{sym}(B)`, :math:`\operatorname{sym}(B) = (B + B^\top)/2`: singular on
the antisymmetric B (the rotations A -> A Q that leave the distribution as it is).  Its pseudo-inverse halves
the symmetric part; pulled back (:math:`g_\xi = A^\top g_\mu`, :math:`g_B = A^\top g_A`) and pushed forward:

.. math::

    \tilde g_\mu = A A^\top g_\mu, \qquad \tilde g_A = \tfrac12 A \operatorname{sym}(A^\top g_A)

For the weighted score :math:`\tilde g_A = \tfrac12 A (C - \sum_i w_i I)`: with :math:`w = u / n` that is
:math:`A G_M / (2n)`, xNES's step before its exponential map (Wierstra et al. 2014, JMLR 15, section 4).

``scale_tril`` is the lower-triangular factor L of the same covariance, :math:`L L^\top = A A^\top`: A itself
when A is lower triangular with a positive diagonal, else :math:`R^\top` of the QR factorisation
:math:`A^\top = Q R` with its columns' signs made positive (O(d^3), computed when read; a QR, not the Cholesky
factor of :math:`A A^\top`, whose condition number is the square of A's).  Samples are whitened by a triangular
solve when A is lower triangular, else by LU with partial pivoting (O(d^3) per call).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from .._checks import RNGLike, as_dtype, as_float_array, check_finite, check_params, float_dtype, sample_rows
from ..sampling import standard_normal
from ._base import Distribution, Grad, beyond_limit
from .multivariate import MultivariateNormal, _solve_lower, checked_gram, checked_natural


def is_lower_triangular(A: np.ndarray) -> bool:
    """True when every entry above the diagonal is zero (O(d^2), no copy of A)."""
    d = A.shape[0]
    return all(not np.any(A[i, i + 1 :]) for i in range(d - 1))


def lower_factor(A: np.ndarray) -> np.ndarray:
    """The lower-triangular L with a positive diagonal and L L^T = A A^T (a new array)."""
    if is_lower_triangular(A) and np.all(np.diagonal(A) > 0):
        return np.tril(A)
    R = cast(np.ndarray, np.linalg.qr(A.T.astype(np.float64, copy=False), mode="r"))  # A^T = Q R: A A^T = R^T R
    L = R.T * np.sign(np.diagonal(R))  # column j times sign(R_jj): L L^T unchanged, diagonal |R_jj| > 0
    return L.astype(A.dtype, copy=False)


class FactorNormal(Distribution):
    r"""Gaussian N(mu, A A^T) drawn as x = mu + A z, A any nonsingular (d, d) factor.

    The math (log-density, score, natural gradient, ``scale_tril``) is in the module docstring.

    Parameters
    ----------
    mu : array (d,)
        Mean; copied, then updated in place through ``params["mu"]``.
    factor : array (d, d)
        The nonsingular factor A (finite); copied, cast to mu's dtype; ``params["factor"]``.
    """

    def __init__(self, mu: object, factor: object):
        mu_arr = as_float_array("mu", mu)
        if mu_arr.ndim != 1 or mu_arr.shape[0] == 0:
            raise ValueError(f"mu must be a 1-D array of shape (d,) with d >= 1, got shape {mu_arr.shape}")
        d = mu_arr.shape[0]
        dtype = float_dtype(mu_arr)
        factor_arr = as_float_array("factor", factor, finite=False)
        if factor_arr.shape != (d, d):
            raise ValueError(f"factor must have shape ({d}, {d}) to match mu, got shape {factor_arr.shape}")
        check_finite("factor", factor_arr)
        self.params = {"mu": np.array(mu_arr, dtype=dtype), "factor": np.array(as_dtype("factor", factor_arr, dtype))}
        check_params(self)
        self.log_abs_det()  # a ValueError naming the factor when it is singular

    @classmethod
    def of(cls, p: MultivariateNormal) -> FactorNormal:
        """The same distribution with A = L, sharing nothing with ``p`` (``p``'s samples from a given rng too)."""
        return cls(p.mu, p.scale_tril)

    @property
    def mu(self) -> np.ndarray:
        return self.params["mu"]

    @property
    def factor(self) -> np.ndarray:
        """The live factor A (``params["factor"]``)."""
        return self.params["factor"]

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    @property
    def scale_tril(self) -> np.ndarray:
        """The lower-triangular L with positive diagonal and L L^T = A A^T (a new array; O(d^3) unless A is
        lower triangular)."""
        check_finite("factor", self.factor)
        return lower_factor(self.factor)

    @property
    def covariance(self) -> np.ndarray:
        """Sigma = A A^T, shape (d, d); a ValueError naming the factor if it overflows the dtype."""
        return checked_gram(self.factor, "factor", "A")

    def multivariate_normal(self, learn_scale: bool = True) -> MultivariateNormal:
        """The same distribution as a ``MultivariateNormal(mu, scale_tril)`` (new arrays)."""
        return MultivariateNormal(self.mu.copy(), self.scale_tril, learn_scale=learn_scale)

    def log_abs_det(self) -> float:
        """log |det A|: the sum of log |A_jj| when A is lower triangular, else from its LU factors (O(d^3))."""
        A = self.factor
        if is_lower_triangular(A):
            diagonal = np.abs(np.diagonal(A)).astype(np.float64)
        else:
            diagonal = np.abs(np.diagonal(_lu(A)[0])).astype(np.float64)
        if not np.all(diagonal >= np.finfo(A.dtype).tiny):
            raise ValueError(
                f"factor must be nonsingular (each pivot a normal {A.dtype} number, so that A^-1 is finite), got "
                f"a pivot {float(diagonal.min()):.3g}"
            )
        return float(np.log(diagonal).sum())

    def check_x(self, x: object) -> np.ndarray:
        check_params(self)
        return sample_rows(x, self.dim, self.dtype)

    def draw(self, n: int, rng: RNGLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, y, x): z ~ N(0, I) of shape (n, d) in the parameters' dtype, y = A z and x = mu + y for each row."""
        z = standard_normal(rng, (n, self.dim), self.dtype)
        y = z @ self.factor.T
        return z, y, self.mu + y

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        return self.draw(n, rng)[2]

    def whiten(self, x: object) -> np.ndarray:
        """z_i = A^{-1}(x_i - mu) for each sample, shape (n, d): the z that ``draw`` made x from."""
        return self._whiten(self.check_x(x))

    def _whiten(self, x: np.ndarray) -> np.ndarray:
        return self._solve((x - self.mu).T).T.astype(self.dtype, copy=False)

    def _solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        """A^{-1} b (or A^{-T} b): a triangular solve when A is lower triangular, else LU with partial pivoting."""
        A = self.factor
        if is_lower_triangular(A):
            return _solve_lower(A, b, transpose)
        from scipy.linalg import lu_solve

        return lu_solve(_lu(A), b.astype(np.result_type(A, np.float32), copy=False), trans=1 if transpose else 0)

    def _may_overflow(self) -> bool:
        spread = float(np.abs(self.factor).sum(axis=1).max())  # |(A z)_j| <= max|z| sum_k |A_jk|
        return beyond_limit(self.mu, spread)

    def _scale_text(self) -> str:
        scale, mu = float(np.max(np.abs(self.factor))), float(np.max(np.abs(self.mu)))
        return f"x = mu + factor @ z with largest |factor| {scale:.4g} and largest |mu| {mu:.4g}: lower factor or mu"

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        z = self._whiten(x)
        return -0.5 * np.einsum("ij,ij->i", z, z) - self.log_abs_det() - 0.5 * self.dim * math.log(2 * math.pi)

    def _score(self, x: np.ndarray) -> Grad:
        z = self._whiten(x)
        v = self._solve(z.T, transpose=True).T  # v_i = A^{-T} z_i
        inverse_t = self._solve(np.eye(self.dim, dtype=self.dtype), transpose=True)  # A^{-T}
        scores = {"mu": v, "factor": v[:, :, None] * z[:, None, :] - inverse_t}  # A^{-T}(z z^T - I)
        return {name: s.astype(self.dtype, copy=False) for name, s in scores.items()}

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        z = self._whiten(x)
        c = (z * w[:, None]).T @ z - w.sum() * np.eye(self.dim)  # C - sum_i w_i I
        grad = {"mu": self._solve(w @ z, transpose=True), "factor": self._solve(c, transpose=True)}
        return {name: g.astype(self.dtype, copy=False) for name, g in grad.items()}

    def natural_gradient(self, grad: Grad) -> Grad:
        r"""The pseudo-inverse Fisher applied: mu: A A^T g_mu; factor: A sym(A^T g_A) / 2."""
        grad = self.check_grad(grad)
        A = self.factor
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            local = A.T @ grad["factor"]  # g_B, the gradient in local coordinates
            natural = {"mu": A @ (A.T @ grad["mu"]), "factor": A @ ((local + local.T) / 4)}
        return checked_natural(natural, grad, "factor", A)


def _lu(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy's LU factors (lu, piv) of A, without its warning for an exactly singular A (checked by the caller)."""
    import warnings

    from scipy.linalg import LinAlgWarning, lu_factor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        return lu_factor(A, check_finite=False)
