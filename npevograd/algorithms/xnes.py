r"""xNES: exponential natural evolution strategy (Glasmachers, Schaul, Sun, Wierstra and Schmidhuber 2010).

"Exponential natural evolution strategies", GECCO 2010, Algorithm 1; also
Wierstra et al. 2014, JMLR 15, section 4.

Search distribution: x_k = mu + A z_k, z_k ~ N(0, I), A = sigma B with det B = 1.  Estimator:
``Mean(shaping=nes_utilities)`` (its weights times n are the NES utilities u_k).  Update: the natural gradient in
local coordinates :math:`\mu = \mu_0 + A\delta`, :math:`A = A_0 \exp(M/2)`, M symmetric, where the Fisher
information is the identity, followed by the exponential map:

.. math::

    G_\delta = \sum_k u_k z_k, \qquad G_M = \sum_k u_k (z_k z_k^\top - I)

    G_\sigma = \operatorname{tr}(G_M)/d, \qquad G_B = G_M - G_\sigma I

    \mu \leftarrow \mu + \eta_\mu A G_\delta, \qquad
    A \leftarrow A\, e^{\eta_\sigma G_\sigma / 2} \operatorname{expm}\big(\tfrac{\eta_B}{2} G_B\big)

The z_k are the ones ``ask`` drew (kept, never recovered from x: solving A z = x - mu loses them once sigma is
below the rounding step of mu or A is ill-conditioned, issue 25).  Samples told with ``x=`` are whitened against
the lower-triangular factor L of the covariance (``scipy.linalg.solve_triangular``), which then becomes A.

The exponential costs O(n d^2), not O(d^3): with :math:`Z` the (n, d) matrix of the z_k and
:math:`W = \operatorname{diag}(\eta_B u / 2)`, :math:`\tfrac{\eta_B}{2} G_B = Z^\top W Z - c I` with
:math:`c = \tfrac{\eta_B}{2}(\sum_k u_k + G_\sigma)`, and :math:`(Z^\top W Z)^j = Z^\top (W Z Z^\top)^{j-1} W Z`, so

.. math::

    \operatorname{expm}\big(\tfrac{\eta_B}{2} G_B\big) = e^{-c}\big(I + Z^\top \varphi(W Z Z^\top)\, W Z\big),
    \qquad \varphi(X) = \sum_{j \ge 0} \frac{X^j}{(j + 1)!}

where :math:`\varphi(X)` of the n x n matrix is the upper-right block of ``expm([[X, I], [0, 0]])``
(Higham 2008, section 10.7.4; ``expm_taylor``: scaling and squaring with a Taylor polynomial, a few
2n x 2n products, where scipy's Pade ``expm`` costs milliseconds per call at n = 8).
A generation is then: sampling (n d^2), the Gram matrix Z Z^T (n^2 d), a 2n x 2n
``expm``, and A Z^T times (phi W Z) (2 n d^2).  log det A is carried along (det expm(P) = e^{tr P}), so
``sigma = det(A)^(1/d)`` costs nothing; ``tolconditioncov`` keeps an upper bound of cond(A A^T) (cond(A expm(M))
<= cond(A) e^{lambda_max(M) - lambda_min(M)}, the eigenvalues of M from the n x n W Z Z^T) and computes the
singular values, O(d^3), only when the bound passes the threshold.

``es.distribution`` is a ``MultivariateNormal`` view of (mu, A): its lower-triangular factor (QR of A^T, so
L L^T = A A^T) is refreshed when read, not every generation.

``separable=True`` keeps only a diagonal A (no rotation is learnt; O(d) memory): the distribution is
``Normal(mu, sigma (d,), learn_sigma=True)`` and the update multiplies a_j by
:math:`\exp(\tfrac{\eta_\sigma}{2} G_\sigma + \tfrac{\eta_B}{2} (G_B)_{jj})`.  It equals SNES
(Schaul et al. 2011) exactly when eta_sigma = eta_B = SNES's rate (3 + ln d) / (5 sqrt d); with the defaults
below its rates are xNES's, d times smaller.

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


def lower_factor(a: np.ndarray) -> np.ndarray:
    """The lower-triangular L with a positive diagonal and L L^T = A A^T (QR of A^T)."""
    r = np.linalg.qr(a.T, mode="r")  # A^T = Q R, so A = R^T Q^T and A A^T = R^T R
    signs = np.where(np.diagonal(r) < 0, -1.0, 1.0).astype(r.dtype)
    return r.T * signs  # flipping column signs of R^T keeps R^T R and makes the diagonal positive


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
    ``es.estimate``: the utilities as ``weights`` and the natural gradient in the local coordinates as ``grad``
    (``delta``: G_delta, ``log_sigma``: G_sigma).
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
        self._mu = p.params["mu"]  # live: the view's mean is this array
        if self.separable:
            self._A = p.params["sigma"]  # the diagonal factor, live
            self._log_det = float(np.log(self._A).sum())
        else:
            self._A = np.array(p.params["scale_tril"])  # the full factor A (lower triangular at first)
            self._log_det = float(np.log(np.diagonal(self._A)).sum())
        self._stale = False  # the view's scale_tril is behind A
        self._log_cond = self._exact_log_cond()  # an upper bound of log cond(A A^T)
        self._z: np.ndarray | None = None

    # ------------------------------------------------------------------ the state and its view
    @property
    def distribution(self) -> MultivariateNormal | Normal:  # type: ignore[override]
        """The search distribution: ``MultivariateNormal(mu, L)`` with L L^T = A A^T (``Normal`` when separable)."""
        p = self._distribution
        if self._stale:
            p.params["scale_tril"][...] = lower_factor(self._A)
            self._stale = False
        return p

    @distribution.setter
    def distribution(self, value: MultivariateNormal | Normal) -> None:
        self._distribution = value

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pickles of the XNES before issue 25 hold ``distribution`` and no A: A starts as its L."""
        if "distribution" in state:
            p = state.pop("distribution")
            state["_distribution"] = p
            state.setdefault("separable", False)
            state["_mu"] = p.params["mu"]
            state["_A"] = np.array(p.params["scale_tril"])
            state["_log_det"] = float(np.log(np.diagonal(state["_A"])).sum())
            state["_stale"] = False
            state["_z"] = None
            state["_log_cond"] = math.inf  # computed at the next check
            state["separable"] = False  # the old separable kept a dense diagonal factor: the full update holds it
        super().__setstate__(state)

    @property
    def mean(self) -> np.ndarray:
        return self._mu.copy()

    @property
    def dim(self) -> int:
        return self._mu.shape[0]

    @property
    def sigma(self) -> float:
        """The step size sigma = det(A)^(1/d) (the geometric mean of the diagonal factor when separable)."""
        return float(math.exp(self._log_det / self.dim))

    def _widths(self) -> np.ndarray:
        if self.separable:
            return self._A
        return np.sqrt(np.einsum("ij,ij->i", self._A, self._A))

    @property
    def axis_ratio(self) -> float:
        """sqrt(cond(A A^T)) = s_max / s_min of A: the ratio of the longest to the shortest principal axis."""
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
        """The z of the samples: the last ask's, or L^{-1}(x - mu) for samples from elsewhere (A becomes L)."""
        if x is self._population and self._z is not None:
            return self._z
        if self.separable:
            return ((x - self._mu) / self._A).astype(self._mu.dtype, copy=False)
        from scipy.linalg import solve_triangular

        L = self.distribution.scale_tril  # refreshed from A
        self._A = np.array(L)
        self._log_det = float(np.log(np.diagonal(L)).sum())
        return solve_triangular(L, (x - self._mu).T, lower=True, check_finite=False).T.astype(self._mu.dtype)

    def _update(self, x: Samples, f: np.ndarray) -> Estimate:
        n, d = self.popsize, self.dim
        value, w = self.estimator.weights(f, n)
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
                log_det_step = float(exponent.sum())
                spread = 2 * float(exponent.max() - exponent.min()) if ok else math.inf  # of log cond(A^2)
            else:
                new_A, log_det_step, spread = self._full_step(A, z, u, u_sum, g_sigma)
            # in the parameters' dtype (float32 overflows there first); one finiteness pass over the new factor
            new_A = new_A.astype(A.dtype, copy=False)
            new_mu = new_mu.astype(self._mu.dtype, copy=False)
        positive = bool(np.all(new_A > 0)) if self.separable else log_det_step > -math.inf
        if not (all_finite(new_A) and all_finite(new_mu) and positive):
            raise ValueError(
                f"XNES: the updated factor is not finite; rescale the fitness or lower {rates} (in {A.dtype})"
            )
        self._mu[...] = new_mu
        if self.separable:
            self._A[...] = new_A
        else:
            self._A = new_A
            self._stale = True
        self._log_det += log_det_step
        self._log_cond += spread
        self._z = None
        # the natural gradient in the local coordinates: delta (mu = mu_0 + A delta) and G_sigma (log sigma)
        return Estimate(value=value, grad={"delta": g_delta, "log_sigma": np.array(g_sigma)}, weights=w)

    def _full_step(
        self, A: np.ndarray, z: np.ndarray, u: np.ndarray, u_sum: float, g_sigma: float
    ) -> tuple[np.ndarray, float, float]:
        """A e^{eta_sigma G_sigma / 2} expm(eta_B G_B / 2) in O(n d^2), log det of the step, the spread of M."""
        n, d = z.shape
        log_scale = 0.5 * self.lr_sigma * g_sigma - 0.5 * self.lr_B * (u_sum + g_sigma)  # the multiples of I
        wz = (0.5 * self.lr_B * u)[:, None] * z  # W Z
        x_small = wz.astype(np.float64) @ z.T.astype(np.float64)  # W Z Z^T, n x n
        if not (np.abs(x_small).sum(axis=1).max() < _EXP_LIMIT and abs(log_scale) < _EXP_LIMIT):
            return np.full_like(A, np.inf), math.inf, math.inf  # e^P or e^(log scale) would overflow
        block = np.zeros((2 * n, 2 * n))
        block[:n, :n] = x_small
        block[:n, n:] = np.eye(n)
        phi = expm_taylor(block)[:n, n:]  # phi(W Z Z^T) = sum_j X^j / (j + 1)!
        new_A = (A @ z.T) @ (phi @ wz)  # A Z^T phi(X) W Z
        new_A += A
        new_A *= math.exp(log_scale)
        eigenvalues = np.linalg.eigvals(x_small).real  # the nonzero eigenvalues of P = Z^T W Z; the rest are 0
        top, bottom = max(0.0, float(eigenvalues.max())), min(0.0, float(eigenvalues.min()))
        log_det_step = d * log_scale + float(np.trace(x_small))  # det expm(P) = e^{tr P}, tr P = tr(W Z Z^T)
        return new_A, log_det_step, 2 * (top - bottom)


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
