r"""xNES: exponential natural evolution strategy (Glasmachers, Schaul, Sun, Wierstra and Schmidhuber 2010).

"Exponential natural evolution strategies", GECCO 2010, Algorithm 1; also
Wierstra et al. 2014, JMLR 15, section 4.

Distribution: ``FactorNormal(mu, A)`` (``npevograd.distributions.factor``), x_k = mu + A eps_k with the paper's
full factor A = sigma B, det B = 1, not triangular.  Estimator: ``Mean(shaping=nes_utilities)`` (its weights
times n are the NES utilities u_k).  Update: the natural gradient in local coordinates
:math:`\mu = \mu_0 + A\xi`, :math:`A = A_0 \exp(M/2)`, M symmetric, where the
Fisher information is the identity, followed by the exponential map:

.. math::

    G_\xi = \sum_k u_k \epsilon_k, \qquad G_M = \sum_k u_k (\epsilon_k \epsilon_k^\top - I)

    G_\sigma = \operatorname{tr}(G_M)/d, \qquad G_B = G_M - G_\sigma I

    \mu \leftarrow \mu + \eta_\mu A G_\xi, \qquad
    A \leftarrow A\, e^{\eta_\sigma G_\sigma / 2} \operatorname{expm}\big(\tfrac{\eta_B}{2} G_B\big)

``es.distribution`` is the distribution the next samples come from: ``ask`` draws them with its ``draw``
(``es.distribution.sample(n, rng)`` with a copy of ``es.rng`` returns the rows ``ask`` returns).  Its
``scale_tril`` (the lower-triangular factor of the same covariance :math:`A A^\top`, from a QR of
:math:`A^\top`), ``covariance``, ``log_prob`` and ``whiten`` are computed from A when read.

The eps_k are the ones ``ask`` drew, and so are the y_k = A eps_k (kept, never recovered from x: solving
A eps = x - mu loses them once sigma is below the rounding step of mu or A is ill-conditioned, issue 25); samples
told with ``x=`` are whitened by ``FactorNormal.whiten`` (a triangular solve while A is triangular, else LU).

The new A costs O(n d^2): no dense ``expm``, no Cholesky, no triangular product.  With E the (n, d) matrix of
the eps_k, :math:`W = \operatorname{diag}(\eta_B u / 2)` and :math:`P = E^\top W E` (rank n),
:math:`\tfrac{\eta_B}{2} G_B = P - c I` with :math:`c = \tfrac{\eta_B}{2}(\sum_k u_k + G_\sigma)`, so
:math:`A \leftarrow s A \exp(P)` with :math:`s = e^{\eta_\sigma G_\sigma / 2 - c}`; and since
:math:`P^j = E^\top (W E E^\top)^{j-1} W E`,

.. math::

    \exp(P) = I + E^\top \big(\varphi(W E E^\top) W\big) E, \qquad
    \varphi(X) = \sum_{j \ge 0} \frac{X^j}{(j + 1)!}

with :math:`\varphi(X)` of the n x n matrix the upper-right block of the exponential of ``[[X, I], [0, 0]]``
(Higham 2008, section 10.7.4; ``expm_taylor``: scaling and squaring with a Taylor polynomial, a few
2n x 2n products, where scipy's Pade ``expm`` costs milliseconds per call at n = 8).  With
:math:`Y = E A^\top` the kept :math:`y_k`, the new factor is one rank-n product added to A (one ``dgemm``):

.. math::

    A \leftarrow s \big(A + Y^\top (\varphi(W E E^\top) W E)\big), \qquad
    \mu \leftarrow \mu + \eta_\mu Y^\top u, \qquad
    \log\lvert\det A\rvert \leftarrow \log\lvert\det A\rvert + d \log s + \textstyle\sum_k W_{kk} \|\epsilon_k\|^2

(:math:`\det \exp(P) = e^{\operatorname{tr} P}`: sigma = |det A|^(1/d) is carried along, not recomputed).
Where :math:`2n \ge d` the d x d matrix P is the smaller one (a population as large as the dimension): the
update then takes :math:`\exp(P)` of P itself (the same ``expm_taylor``) and the product :math:`s A \exp(P)`,
O(n d^2 + d^3), rather than the exponential of a 2n x 2n block.
The new factor replaces ``params["factor"]`` (a new array of the same shape and dtype, as the params rule
allows; read it from ``params`` after each ``tell``); the old one is kept for ``es.estimate``, the Mean estimate
on the distribution that drew the samples (its gradient in ``mu`` and ``factor``), computed when read.
``tolconditioncov`` keeps an upper bound of cond(A A^T) (it grows by at most
:math:`e^{2(\lambda_{\max} - \lambda_{\min})}` of P, whose nonzero eigenvalues are those of the n x n
:math:`W E E^\top`) and computes the singular values of A, O(d^3), only when the bound passes the threshold.

``separable=True`` keeps only a diagonal factor (no rotation is learnt; O(d) memory): the distribution is
``Normal(mu, sigma (d,), learn_sigma=True)`` and the update multiplies sigma_j by
:math:`\exp(\tfrac{\eta_\sigma}{2} G_\sigma + \tfrac{\eta_B}{2} (G_B)_{jj})`.  It equals SNES
(Schaul et al. 2011) exactly when eta_sigma = eta_B = SNES's rate (3 + ln d) / (5 sqrt d); with the defaults
below its rates are xNES's, smaller by 3/d.

The dense factor needs d^2 x itemsize bytes, and an update two more arrays of that size: a d whose factor
exceeds a quarter of the machine's physical memory (``os.sysconf``; 8 GiB when unknown) is a ValueError naming
d and the bytes, raised before anything is allocated.

Pickles of the XNES with a ``MultivariateNormal`` (before issue 24, section 3) load with A = L, the same
distribution; their next ``ask`` draws the rows the old code drew, and from the next generation on their A is
the paper's, no longer triangular (the same covariance as the old update's to rounding, other rows).

Defaults (the paper's): popsize n = 4 + floor(3 ln d), eta_mu = 1,
eta_sigma = eta_B = 3 (3 + ln d) / (5 d sqrt d).
"""

from __future__ import annotations

import math
import os
from typing import Any, cast

import numpy as np

from .._checks import RNGLike, all_finite, as_float_array
from ..distributions import MultivariateNormal, Normal
from ..distributions.factor import FactorNormal
from ..estimators import Estimate, Mean, nes_utilities
from ..sampling import standard_normal
from ._strategy import SAMPLE_REACH, Samples, Strategy, default_popsize, overflow_risk, positive

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
    ``es.distribution``: ``FactorNormal(mu, A)`` (or the separable ``Normal``), what the next ``ask`` draws from.
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

            p: FactorNormal | Normal = Normal(mu_arr, diagonal_sigma(mu_arr, sigma_arr), learn_sigma=True)
        else:
            if mu_arr.ndim == 1:
                check_dense_size(mu_arr.shape[0], 4 if mu_arr.dtype == np.float32 else 8)
            # validated as a MultivariateNormal's scale_tril (lower triangular, positive normal diagonal)
            p = FactorNormal.of(MultivariateNormal(mu_arr, initial_factor(mu_arr, sigma)))
        d = p.dim
        super().__init__(p, default_popsize(d) if popsize is None else popsize, rng, **options)
        self.tolconditioncov = None if tolconditioncov is None else positive("tolconditioncov", tolconditioncov)
        default_lr = 3 * (3 + math.log(d)) / (5 * d * math.sqrt(d))
        self.lr_mu = positive("lr_mu", lr_mu)
        self.lr_sigma = positive("lr_sigma", default_lr if lr_sigma is None else lr_sigma)
        self.lr_B = positive("lr_B", default_lr if lr_B is None else lr_B)
        self.estimator = Mean(shaping=nes_utilities)
        self._log_cond = self._exact_log_cond()  # an upper bound of log cond(A A^T)
        self._log_det = self._exact_log_det()  # log |det A| of the array _log_det_of, carried along by each update
        self._log_det_of = self._A
        self._z: np.ndarray | None = None  # the last ask's z and y = A z (full factor)
        self._y: np.ndarray | None = None
        self._told: tuple[Any, ...] | None = None  # what the last estimate is computed from, when it is read

    # ------------------------------------------------------------------ the state
    @property
    def _mu(self) -> np.ndarray:
        return self.distribution.params["mu"]

    @property
    def _full(self) -> FactorNormal:
        """The distribution of the full factor (not ``separable``)."""
        return cast(FactorNormal, self.distribution)

    @property
    def _A(self) -> np.ndarray:
        """The factor: A (``params["factor"]``), or the diagonal (``params["sigma"]``)."""
        return self.distribution.params["sigma" if self.separable else "factor"]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Older pickles: before issue 25 they lack the kept z, the condition bound and the lazy estimate; before
        issue 24 section 3 the distribution is a ``MultivariateNormal``, continued as ``FactorNormal`` with A = L."""
        state.setdefault("separable", False)
        state.setdefault("_z", None)
        state.setdefault("_y", None)  # recomputed as z A^T (the old ask's product) when a kept z is told
        state.setdefault("_told", None)
        state.setdefault("_log_cond", math.inf)  # computed at the next check
        if "estimate" in state:
            state["_estimate"] = state.pop("estimate")
        p = state["distribution"]
        if isinstance(p, MultivariateNormal):
            state["distribution"] = FactorNormal(p.params["mu"], p.params["scale_tril"])
        told = state["_told"]
        if told is not None and len(told) == 3:  # (f, x, the distribution that drew x): its mean and factor
            drew = told[2].params
            state["_told"] = (told[0], told[1], drew["mu"], drew["sigma" if state["separable"] else "scale_tril"])
        super().__setstate__(state)
        if "_log_det" not in state:
            self._log_det = self._exact_log_det()
            self._log_det_of = self._A

    @property
    def estimate(self) -> Estimate | None:
        """The last tell's ``Mean(shaping=nes_utilities)`` estimate on the distribution that drew its samples.

        Computed when read, on the told ``FactorNormal(mu, A)`` (separable: ``Normal``), so its gradient has the
        distribution's parameters ``mu`` and ``factor`` (the solves with A are O(d^3)); the update needs only the
        utilities.
        """
        if self._told is not None:
            f, x, mu, A = self._told
            p = Normal(mu, A, learn_sigma=True) if self.separable else FactorNormal(mu, A)
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
        """The step size sigma = |det A|^(1/d) (separable: the geometric mean of the diagonal)."""
        if self.separable:
            return float(np.exp(np.mean(np.log(self._A))))
        return math.exp(self._current_log_det() / self.dim)

    def _current_log_det(self) -> float:
        """log |det A|: the carried value, or A's own when params["factor"] was replaced since (by hand)."""
        if self._A is not self._log_det_of:
            self._log_det, self._log_det_of = self._exact_log_det(), self._A
        return self._log_det

    def _exact_log_det(self) -> float:
        """log |det A| from A itself (the diagonal while A is triangular, else LU: O(d^3))."""
        if self.separable:
            return float(np.log(self._A).sum())
        return self._full.log_abs_det()

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
        """The next population x_k = mu + A z_k, shape (popsize, d); the z_k (and y_k = A z_k) are kept for ``tell``."""
        if encode:
            raise ValueError(
                f"encode=True needs a noise table: build {type(self).__name__}(..., noise=NoiseTable(size, seed))"
                " (XNES has none)"
            )
        self._check_reach()
        if self.separable:
            z = standard_normal(self.rng, (self.popsize, self.dim), self._mu.dtype)
            y, x = None, self._mu + z * self._A
        else:
            z, y, x = self._full.draw(self.popsize, self.rng)
        self._z, self._y, self._population = z, y, x
        if self.bounds is not None:
            return self.bounds.repair(x)
        return x.copy()

    def _check_reach(self) -> None:
        """The run layer's overflow check (``overflow_risk``) on A itself: |(A z)_j| <= max|z| sum_k |A_jk|.

        The full factor's row sums (a d x d temporary) only when the cheaper bound d max|A_jk| does not clear it.
        """
        if self._overflow is not None:
            raise ValueError(f"XNES has stopped (es.stop() -> 'overflow'): {self._overflow}")
        if not self.separable:
            A, mu = self._A, self._mu
            largest = float(np.max(np.abs([A.max(), A.min(), mu.max(), mu.min()])))  # NaN stays NaN: not cleared
            if largest * (1 + SAMPLE_REACH * self.dim) < float(np.finfo(mu.dtype).max):
                return
        with np.errstate(over="ignore"):
            spread = np.abs(self._A) if self.separable else np.abs(self._A).sum(axis=1)
        risk = overflow_risk({"mu": self._mu, "sigma": spread})
        if risk is not None:
            raise ValueError(f"XNES.ask(): {risk}; start from a smaller sigma or mu")

    def _whitened(self, x: Samples) -> tuple[np.ndarray, np.ndarray | None]:
        """(z, y) of the samples: the last ask's, or z = A^{-1}(x - mu) and y = x - mu for samples from elsewhere
        (separable: y is not used, None)."""
        if x is self._population and self._z is not None:
            z, y = self._z, self._y
            if y is None and not self.separable:  # a population asked before y was kept: the old ask's product
                y = z @ self._A.T
            return z, y
        if self.separable:
            return ((x - self._mu) / self._A).astype(self._mu.dtype, copy=False), None
        return self._full.whiten(x), (x - self._mu).astype(self._mu.dtype, copy=False)

    def _update(self, x: Samples, f: np.ndarray) -> None:
        n, d = self.popsize, self.dim
        w = self.estimator.weights(f, n)[1]
        u = n * w  # NES utilities u_k
        z, y = self._whitened(x)
        A = self._A
        rates = "lr_mu, lr_sigma, lr_B"
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # checked below, before any write
            squared_norms = np.einsum("ij,ij->i", z, z)
            u_sum = float(u.sum())
            g_sigma = float(u @ squared_norms) / d - u_sum  # tr(G_M) / d
            if self.separable:  # diag(G_B) = sum_k u_k z_k^2 - sum_k u_k - G_sigma
                new_mu = self._mu + self.lr_mu * (A * (u @ z))
                exponent = 0.5 * self.lr_sigma * g_sigma + 0.5 * self.lr_B * (u @ np.square(z) - u_sum - g_sigma)
                ok = np.all(np.abs(exponent) < _EXP_LIMIT)
                new_A = A * np.exp(exponent) if ok else np.full_like(A, np.inf)
                spread = 2 * float(exponent.max() - exponent.min()) if ok else math.inf  # of log cond(A^2)
            else:
                new_mu = self._mu + self.lr_mu * (u @ y)  # A G_xi = sum_k u_k A z_k
                new_A, spread, log_det_step = self._full_step(
                    A, z, cast(np.ndarray, y), u, u_sum, g_sigma, squared_norms
                )
                new_log_det = self._current_log_det() + log_det_step
            # in the parameters' dtype (float32 overflows there first); one finiteness pass over the new factor
            new_A = new_A.astype(A.dtype, copy=False)
            new_mu = new_mu.astype(self._mu.dtype, copy=False)
        # every sigma_j (separable), or sigma = |det A|^(1/d), a normal number, as the distributions require
        tiny = np.finfo(A.dtype).tiny
        if self.separable:
            normal = bool(np.all(new_A >= tiny))
        else:
            normal = math.isfinite(new_log_det) and new_log_det / d >= math.log(tiny)
        if not (all_finite(new_A) and all_finite(new_mu) and normal):
            raise ValueError(
                f"XNES: the updated factor is not finite; rescale the fitness or lower {rates} (in {A.dtype})"
            )
        told_mu = self._mu.copy()
        self._mu[...] = new_mu
        if self.separable:
            told_A = A.copy()
            A[...] = new_A
        else:  # the old A stays as it is, for the estimate: the new one replaces it in params
            told_A = A
            self.distribution.params["factor"] = new_A
            self._log_det, self._log_det_of = new_log_det, new_A
        self._log_cond += spread
        self._z = self._y = None
        self._told = (f, x if x is self._population else x.copy(), told_mu, told_A)  # the estimate, when read
        return None

    def _full_step(
        self,
        A: np.ndarray,
        z: np.ndarray,
        y: np.ndarray,
        u: np.ndarray,
        u_sum: float,
        g_sigma: float,
        squared_norms: np.ndarray,
    ) -> tuple[np.ndarray, float, float]:
        """The new factor s (A + Y^T phi(W Z Z^T) W Z), the spread of P's eigenvalues (for the condition bound)
        and the step of log |det A|, d log s + tr P.

        A e^{eta_sigma G_sigma / 2} expm(eta_B G_B / 2) = s A expm(P) with P = Z^T W Z,
        s = e^{eta_sigma G_sigma / 2 - c} and expm(P) = I + Z^T phi(W Z Z^T) W Z: O(n d^2), one ``dgemm``.
        With 2n >= d the d x d P is the smaller matrix: s A expm(P) directly, O(n d^2 + d^3).
        """
        n, d = z.shape
        log_scale = 0.5 * self.lr_sigma * g_sigma - 0.5 * self.lr_B * (u_sum + g_sigma)  # the multiples of I
        w_diag = 0.5 * self.lr_B * u  # W
        z64 = z.astype(np.float64, copy=False)
        log_det_step = d * log_scale + float(w_diag @ squared_norms)
        if 2 * n >= d:  # the d x d P is the smaller matrix: expm(P) itself, then A expm(P) (d^3 more, no 2n x 2n)
            p_matrix = (z64.T * w_diag[None, :]) @ z64  # P = Z^T W Z, symmetric
            if not (np.abs(p_matrix).sum(axis=1).max() < _EXP_LIMIT and abs(log_scale) < _EXP_LIMIT):
                return np.full_like(A, np.inf), math.inf, math.inf
            eigenvalues = np.linalg.eigvalsh(p_matrix)
            new_A = math.exp(log_scale) * (A.astype(np.float64, copy=False) @ expm_taylor(p_matrix))
            return new_A, 2 * float(max(0.0, eigenvalues[-1]) - min(0.0, eigenvalues[0])), log_det_step
        x_small = (w_diag[:, None] * z64) @ z64.T  # X = W Z Z^T, n x n
        if not (np.abs(x_small).sum(axis=1).max() < _EXP_LIMIT and abs(log_scale) < _EXP_LIMIT):
            return np.full_like(A, np.inf), math.inf, math.inf  # e^P or e^(log scale) would overflow
        block = np.zeros((2 * n, 2 * n))
        block[:n, :n] = x_small
        block[:n, n:] = np.eye(n)
        phi = expm_taylor(block)[:n, n:]  # phi(X) = sum_j X^j / (j + 1)!
        right = (phi * w_diag[None, :]) @ z64  # phi(X) W Z, (n, d)
        scale = math.exp(log_scale)
        # (s A + s Y^T (phi W Z))^T = s (phi W Z)^T Y + s A^T: A^T is A's C-ordered data read as Fortran, so the
        # product is one dgemm into a new array whose transpose is C-ordered
        new_A = _blas("dgemm")(scale, right, y.astype(np.float64, copy=False), beta=scale, c=A.T, trans_a=1).T
        eigenvalues = np.linalg.eigvals(x_small).real  # the nonzero eigenvalues of P = Z^T W Z; the rest are 0
        top, bottom = max(0.0, float(eigenvalues.max())), min(0.0, float(eigenvalues.min()))
        return new_A, 2 * (top - bottom), log_det_step


_ROUTINES: dict[str, Any] = {}


def _blas(name: str) -> Any:
    """A scipy BLAS routine (``dgemm``: alpha a^T b + beta c), imported on first use: scipy.linalg is slow."""
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
