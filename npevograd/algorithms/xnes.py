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

The updated A is full; npevograd's distribution keeps the lower-triangular factor L of the same covariance
:math:`A A^\top`.  That changes nothing: with L = A Q, Q orthogonal, the whitened samples are
:math:`Q^\top \epsilon`, :math:`G_M` becomes :math:`Q^\top G_M Q`, and both the mean step and
:math:`A e^{G} A^\top` come out the same.

The eps_k are the ones ``ask`` drew (kept, never recovered from x: solving L eps = x - mu loses them once sigma
is below the rounding step of mu or L is ill-conditioned, issue 25); samples told with ``x=`` are whitened
with ``scipy.linalg.solve_triangular``.

The new L costs O(n d^2) plus one Cholesky and one triangular product, never a dense ``expm`` or a QR.  With
E the (n, d) matrix of the eps_k, :math:`W = \operatorname{diag}(\eta_B u / 2)` and
:math:`P = E^\top W E`, :math:`\tfrac{\eta_B}{2} G_B = P - c I` with
:math:`c = \tfrac{\eta_B}{2}(\sum_k u_k + G_\sigma)`, so the new covariance is
:math:`s^2 L \exp(2P) L^\top` with :math:`s = e^{\eta_\sigma G_\sigma / 2 - c}`; and since
:math:`P^j = E^\top (W E E^\top)^{j-1} W E`,

.. math::

    \exp(2P) = I + E^\top \big(2\varphi(2 W E E^\top) W\big) E, \qquad
    \varphi(X) = \sum_{j \ge 0} \frac{X^j}{(j + 1)!}

with :math:`\varphi(X)` of the n x n matrix the upper-right block of the exponential of ``[[X, I], [0, 0]]``
(Higham 2008, section 10.7.4; ``expm_taylor``: scaling and squaring with a Taylor polynomial, a few
2n x 2n products, where scipy's Pade ``expm`` costs milliseconds per call at n = 8).  The new factor is
:math:`s L R`, R the Cholesky factor of :math:`\exp(2P)`: a product of lower-triangular matrices
(``dtrmm``).  ``tolconditioncov`` keeps an upper bound of cond(L L^T) (it grows by at most
:math:`e^{2(\lambda_{\max} - \lambda_{\min})}` of M, whose eigenvalues come from the n x n
:math:`W E E^\top`) and computes the singular values, O(d^3), only when the bound passes the threshold;
``es.estimate`` (the Mean estimate with its ``scale_tril`` gradient) is computed when read.

``separable=True`` keeps only a diagonal factor (no rotation is learnt; O(d) memory): the distribution is
``Normal(mu, sigma (d,), learn_sigma=True)`` and the update multiplies sigma_j by
:math:`\exp(\tfrac{\eta_\sigma}{2} G_\sigma + \tfrac{\eta_B}{2} (G_B)_{jj})`.  It equals SNES
(Schaul et al. 2011) exactly when eta_sigma = eta_B = SNES's rate (3 + ln d) / (5 sqrt d); with the defaults
below its rates are xNES's, smaller by 3/d.

The dense factor needs d^2 x itemsize bytes, and an update two more arrays of that size: a d whose factor
exceeds a quarter of the machine's physical memory (``os.sysconf``; 8 GiB when unknown) is a ValueError naming
d and the bytes, raised before anything is allocated.

Defaults (the paper's): popsize n = 4 + floor(3 ln d), eta_mu = 1,
eta_sigma = eta_B = 3 (3 + ln d) / (5 d sqrt d).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .._checks import RNGLike, all_finite, as_float_array
from ..distributions import MultivariateNormal, Normal
from ..estimators import Estimate, Mean, nes_utilities
from ..sampling import standard_normal
from ._strategy import Samples, Strategy, default_popsize, overflow_risk, positive

_EXP_LIMIT = 700.0  # exp(700) ~ 1e304: beyond it the factor's update overflows float64


def initial_factor(mu: object, sigma: object) -> np.ndarray:
    """sigma as a lower-triangular (d, d) factor: a scalar (sigma I), a (d,) diagonal, or the factor itself."""
    sigma_arr = as_float_array("sigma", sigma)
    shape = as_float_array("mu", mu).shape
    if len(shape) == 1 and sigma_arr.shape in ((), shape):
        return np.diag(np.broadcast_to(sigma_arr, shape)).astype(sigma_arr.dtype)
    return sigma_arr  # (d, d): validated by MultivariateNormal


def memory_limit() -> int:
    """A quarter of the physical memory in bytes (8 GiB if the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def check_dense_size(d: int, itemsize: int) -> None:
    """A ValueError naming d and the bytes when a dense d x d factor would not fit (before allocating it)."""
    need = d * d * itemsize
    limit = memory_limit()
    if need > limit:
        raise ValueError(
            f"XNES at d = {d} needs a dense d x d factor of {need / 2**30:.1f} GiB (d^2 x {itemsize} bytes; an "
            f"update holds three arrays of that size), more than {limit / 2**30:.1f} GiB (a quarter of this "
            "machine's memory): use XNES(..., separable=True), SNES or SepCMAES, whose memory is O(d)"
        )


class XNES(Strategy):
    """Exponential NES: ``es = XNES(mu, sigma)``; ``x = es.ask()``; ``es.tell(fitness)`` (maximised).

    ``sigma``: a scalar, a (d,) diagonal, or a (d, d) lower-triangular initial factor (not with ``separable``).
    ``separable``: a bool; True keeps a diagonal factor only (distribution ``Normal``, O(d) memory).
    ``es.estimate``: the last tell's ``Mean(shaping=nes_utilities)`` estimate, computed when read.
    """

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
        if not isinstance(separable, (bool, np.bool_)):
            raise TypeError(f"separable must be a bool, got {type(separable).__name__} {separable!r}")
        self.separable = bool(separable)
        mu_arr = as_float_array("mu", mu)
        if self.separable:
            sigma_arr = as_float_array("sigma", sigma)
            if sigma_arr.ndim == 2:
                raise ValueError(
                    f"separable=True keeps a diagonal factor: sigma must be a scalar or of shape (d,), got shape "
                    f"{sigma_arr.shape}"
                )
            from .snes import diagonal_sigma

            p: MultivariateNormal | Normal = Normal(mu_arr, diagonal_sigma(mu_arr, sigma_arr), learn_sigma=True)
        else:
            if mu_arr.ndim == 1:
                check_dense_size(mu_arr.shape[0], 4 if mu_arr.dtype == np.float32 else 8)
            p = MultivariateNormal(mu_arr, initial_factor(mu_arr, sigma), learn_scale=True)
        d = p.dim
        super().__init__(p, default_popsize(d) if popsize is None else popsize, rng, **options)
        self.tolconditioncov = None if tolconditioncov is None else positive("tolconditioncov", tolconditioncov)
        default_lr = 3 * (3 + math.log(d)) / (5 * d * math.sqrt(d))
        self.lr_mu = positive("lr_mu", lr_mu)
        self.lr_sigma = positive("lr_sigma", default_lr if lr_sigma is None else lr_sigma)
        self.lr_B = positive("lr_B", default_lr if lr_B is None else lr_B)
        self.estimator = Mean(shaping=nes_utilities)
        self._log_cond = self._exact_log_cond()  # an upper bound of log cond(L L^T)
        self._z: np.ndarray | None = None
        self._told: tuple[Any, ...] | None = None  # what the last estimate is computed from, when it is read

    # ------------------------------------------------------------------ the state
    @property
    def _mu(self) -> np.ndarray:
        return self.distribution.params["mu"]

    @property
    def _A(self) -> np.ndarray:
        """The factor: L (lower triangular, ``params["scale_tril"]``), or the diagonal (``params["sigma"]``)."""
        return self.distribution.params["sigma" if self.separable else "scale_tril"]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pickles of the XNES before issue 25 lack the kept z, the condition bound and the lazy estimate."""
        state.setdefault("separable", False)
        state.setdefault("_z", None)
        state.setdefault("_told", None)
        state.setdefault("_log_cond", math.inf)  # computed at the next check
        if "estimate" in state:
            state["_estimate"] = state.pop("estimate")
        super().__setstate__(state)

    @property
    def estimate(self) -> Estimate | None:
        """The last tell's ``Mean(shaping=nes_utilities)`` estimate on the distribution that drew its samples.

        Computed when read (its gradient in ``scale_tril`` costs a triangular solve, O(d^3)); the update
        itself needs only the utilities.
        """
        if self._told is not None:
            f, x, p = self._told
            self._estimate, self._told = self.estimator(f, x, p), None
        return self._estimate

    @estimate.setter
    def estimate(self, value: Estimate | None) -> None:
        self._estimate = value

    @property
    def mean(self) -> np.ndarray:
        return self._mu.copy()

    @property
    def dim(self) -> int:
        return self._mu.shape[0]

    @property
    def sigma(self) -> float:
        """The step size sigma = det(A)^(1/d), the geometric mean of the factor's diagonal."""
        return float(np.exp(np.mean(np.log(self._A if self.separable else np.diagonal(self._A)))))

    def _widths(self) -> np.ndarray:
        if self.separable:
            return self._A
        return np.sqrt(np.einsum("ij,ij->i", self._A, self._A))

    @property
    def axis_ratio(self) -> float:
        """sqrt(cond(L L^T)) = s_max / s_min of L: the ratio of the longest to the shortest principal axis."""
        return math.exp(self._exact_log_cond() / 2)

    def _exact_log_cond(self) -> float:
        if self.separable:
            return float(2 * (np.log(self._A.max()) - np.log(self._A.min())))
        s = np.linalg.svd(self._A, compute_uv=False)
        return math.inf if not s[-1] > 0 else float(2 * (math.log(s[0]) - math.log(s[-1])))

    def _own_stop(self) -> dict[str, float]:
        """``tolconditioncov``: the condition number of the covariance A A^T above the threshold (pycma's 1e14)."""
        if self.tolconditioncov is None:
            return {}
        threshold = math.log(self.tolconditioncov)
        if self._log_cond > threshold:  # the bound passed: compute the condition number itself
            self._log_cond = self._exact_log_cond()
        return {} if self._log_cond <= threshold else {"tolconditioncov": self.tolconditioncov}

    # ------------------------------------------------------------------ ask / tell
    def ask(self, encode: bool = False) -> Samples:
        """The next population x_k = mu + A z_k, shape (popsize, d); the z_k are kept for ``tell``."""
        if encode:
            raise ValueError(
                f"encode=True needs a noise table: build {type(self).__name__}(..., noise=NoiseTable(size, seed))"
                " (XNES has none)"
            )
        self._check_reach()
        dtype = self._mu.dtype
        z = standard_normal(self.rng, (self.popsize, self.dim), dtype)
        x = self._mu + (z * self._A if self.separable else z @ self._A.T)
        self._z, self._population = z, x
        if self.bounds is not None:
            return self.bounds.repair(x)
        return x.copy()

    def _check_reach(self) -> None:
        """The run layer's overflow check (``overflow_risk``) on A itself: the view's QR is not needed for it."""
        if self._overflow is not None:
            raise ValueError(f"XNES has stopped (es.stop() -> 'overflow'): {self._overflow}")
        with np.errstate(over="ignore"):
            spread = np.abs(self._A) if self.separable else np.abs(self._A).sum(axis=1)
        risk = overflow_risk({"mu": self._mu, "sigma": spread})
        if risk is not None:
            raise ValueError(f"XNES.ask(): {risk}; start from a smaller sigma or mu")

    def _whitened(self, x: Samples) -> np.ndarray:
        """The z of the samples: the last ask's, or L^{-1}(x - mu) (``solve_triangular``) for samples from elsewhere."""
        if x is self._population and self._z is not None:
            return self._z
        if self.separable:
            return ((x - self._mu) / self._A).astype(self._mu.dtype, copy=False)
        from scipy.linalg import solve_triangular

        return solve_triangular(self._A, (x - self._mu).T, lower=True, check_finite=False).T.astype(self._mu.dtype)

    def _update(self, x: Samples, f: np.ndarray) -> None:
        n, d = self.popsize, self.dim
        w = self.estimator.weights(f, n)[1]
        u = n * w  # NES utilities u_k
        z = self._whitened(x)
        A = self._A
        rates = "lr_mu, lr_sigma, lr_B"
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # checked below, before any write
            g_delta = u @ z
            squared_norms = np.einsum("ij,ij->i", z, z)
            u_sum = float(u.sum())
            g_sigma = float(u @ squared_norms) / d - u_sum  # tr(G_M) / d
            new_mu = self._mu + self.lr_mu * (A * g_delta if self.separable else A @ g_delta)
            if self.separable:  # diag(G_B) = sum_k u_k z_k^2 - sum_k u_k - G_sigma
                exponent = 0.5 * self.lr_sigma * g_sigma + 0.5 * self.lr_B * (u @ np.square(z) - u_sum - g_sigma)
                ok = np.all(np.abs(exponent) < _EXP_LIMIT)
                new_A = A * np.exp(exponent) if ok else np.full_like(A, np.inf)
                spread = 2 * float(exponent.max() - exponent.min()) if ok else math.inf  # of log cond(A^2)
            else:
                new_A, spread = self._full_step(A, z, u, u_sum, g_sigma)
            # in the parameters' dtype (float32 overflows there first); one finiteness pass over the new factor
            new_A = new_A.astype(A.dtype, copy=False)
            new_mu = new_mu.astype(self._mu.dtype, copy=False)
        # a positive diagonal of normal numbers, as the distributions require
        positive = bool(np.all((new_A if self.separable else np.diagonal(new_A)) >= np.finfo(A.dtype).tiny))
        if not (all_finite(new_A) and all_finite(new_mu) and positive):
            raise ValueError(
                f"XNES: the updated factor is not finite; rescale the fitness or lower {rates} (in {A.dtype})"
            )
        p = self.distribution
        learn = {"learn_sigma": True} if self.separable else {"learn_scale": True}
        told = type(p)(self._mu.copy(), A.copy(), **learn)  # the distribution that drew x
        self._mu[...] = new_mu
        self._A[...] = new_A
        self._log_cond += spread
        self._z = None
        self._told = (f, x if x is self._population else x.copy(), told)  # the estimate, computed when read
        return None

    def _full_step(
        self, L: np.ndarray, z: np.ndarray, u: np.ndarray, u_sum: float, g_sigma: float
    ) -> tuple[np.ndarray, float]:
        """The new lower-triangular factor and the spread of M's eigenvalues (for the condition bound).

        A = L e^{eta_sigma G_sigma / 2} expm(eta_B G_B / 2) has A A^T = s^2 L expm(2 P) L^T with P = Z^T W Z and
        s = e^{eta_sigma G_sigma / 2 - c}; expm(2 P) = I + Z^T (2 phi(2 W Z Z^T) W) Z, so the new L is
        s L chol(I + Z^T G Z): a rank-n matrix (n d^2), one Cholesky (d^3 / 3), one triangular product (d^3 / 2).
        """
        n, d = z.shape
        log_scale = 0.5 * self.lr_sigma * g_sigma - 0.5 * self.lr_B * (u_sum + g_sigma)  # the multiples of I
        w_diag = 0.5 * self.lr_B * u  # W
        z64 = z.astype(np.float64, copy=False)
        x_small = (w_diag[:, None] * z64) @ z64.T  # W Z Z^T, n x n
        if not (np.abs(x_small).sum(axis=1).max() < _EXP_LIMIT / 2 and abs(log_scale) < _EXP_LIMIT):
            return np.full_like(L, np.inf), math.inf  # e^{2P} or e^(log scale) would overflow
        block = np.zeros((2 * n, 2 * n))
        block[:n, :n] = 2 * x_small
        block[:n, n:] = np.eye(n)
        phi = expm_taylor(block)[:n, n:]  # phi(2 W Z Z^T) = sum_j (2X)^j / (j + 1)!
        g = 2 * phi * w_diag[None, :]  # G = 2 phi(2X) W, symmetric
        square = z64.T @ (g @ z64)  # Z^T G Z: expm(2P) - I
        square[np.diag_indices(d)] += 1.0
        try:
            root = np.linalg.cholesky(square)
        except np.linalg.LinAlgError:  # expm(2P) is positive definite; only rounding at an extreme step fails here
            return np.full_like(L, np.inf), math.inf
        new_L = _blas("dtrmm")(math.exp(log_scale), L.astype(np.float64, copy=False), root, lower=1)
        eigenvalues = np.linalg.eigvals(x_small).real  # the nonzero eigenvalues of P = Z^T W Z; the rest are 0
        top, bottom = max(0.0, float(eigenvalues.max())), min(0.0, float(eigenvalues.min()))
        return np.tril(new_L), 2 * (top - bottom)


_ROUTINES: dict[str, Any] = {}


def _blas(name: str) -> Any:
    """A scipy BLAS routine (``dtrmm``: alpha L B, L triangular), imported on first use: scipy.linalg is slow."""
    if name not in _ROUTINES:
        from scipy.linalg import blas

        _ROUTINES[name] = getattr(blas, name)
    return _ROUTINES[name]


def expm_taylor(m: np.ndarray) -> np.ndarray:
    """e^M of a small square matrix: M / 2^s with 1-norm <= 1/2, its Taylor series to rounding, squared s times."""
    norm = float(np.abs(m).sum(axis=0).max())
    squarings = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    scaled = m / 2.0**squarings
    result = np.eye(m.shape[0]) + scaled
    term = scaled
    for j in range(2, 30):  # 0.5^j / j! < 1e-17 by j = 15
        term = term @ scaled / j
        result += term
        if np.abs(term).max() <= 1e-17 * np.abs(result).max():
            break
    for _ in range(squarings):
        result = result @ result
    return result
