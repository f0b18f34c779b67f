r"""CMA-ES (Hansen and Ostermeier 2001; Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772)
and its separable variant SepCMAES (Ros and Hansen 2008).

Sampling (tutorial eq. 38-40), with B, D from the last eigendecomposition :math:`C = B D^2 B^\top`::

    z_k ~ N(0, I)                     z = standard_normal(rng, (n, d))
    y_k = B D z_k ~ N(0, C)           y = (z * D) @ B.T
    x_k = m + sigma y_k               x = m + sigma * y

Selection and recombination (eq. 41; weights: table 1, ``cma_recombination_weights``, the weights of the shaping
``ng.cma_weights``), x_{i:n} the i-th best::

    <y>_w = sum_{i<=mu} w_i y_{i:n}                     y_w = w_pos @ y[order[:mu]]
    m <- m + c_m sigma <y>_w                            m + c_m * sigma * y_w

Step-size control (eq. 43-44; CSA), :math:`C^{-1/2} y = B z`::

    p_s <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_eff) C^{-1/2} <y>_w        B @ (w_pos @ z[...])
    sigma <- sigma exp(min(1, c_s / d_s (||p_s|| / E||N(0, I)|| - 1)))

(``csa_squared=True``: :math:`(\|p_\sigma\|^2 / d - 1) / 2` in the bracket, as purecma; the cap at 1, at most a
factor e per generation, is pycma's and purecma's).

Covariance matrix adaptation (eq. 45-47)::

    h_s = ||p_s||^2 / d < (2 + 4 / (d + 1)) (1 - (1 - c_s)^(2 (g + 1)))      (pycma's and purecma's form of eq. 45)
    p_c <- (1 - c_c) p_c + h_s sqrt(c_c (2 - c_c) mu_eff) <y>_w
    w°_i = w_i (w_i >= 0),  w_i d / ||C^{-1/2} y_{i:n}||^2 = w_i d / ||z_{i:n}||^2 (w_i < 0)
    C <- (1 + c_1 (1 - h_s) c_c (2 - c_c) - c_1 - c_mu sum_j w_j) C          decay
         + c_1 p_c p_c^T                                                      rank-one
         + c_mu sum_i w°_i y_{i:n} y_{i:n}^T                                  rank-mu

The rank-mu term is a natural-gradient step.  For weights :math:`v_i` and :math:`y_i = (x_i - m)/\sigma`, the
natural gradient of :math:`J = \sum_i v_i r_i` (``Mean(shaping=cma_weights)``'s objective, ``v = w`` by rank) with
respect to the mean and covariance :math:`\Sigma = \sigma^2 C` of the full Gaussian is
(``MultivariateNormal.natural_weighted_score``; Akimoto et al. 2010, Ollivier et al. 2017):

.. math::

    \tilde\nabla_m J = \sigma \sum_i v_i y_i, \qquad
    \tilde\nabla_\Sigma J = \sigma^2 \sum_i v_i (y_i y_i^\top - C)

so with positive weights only (``active=False``, w° = w, sum w = 1) the mean step is
:math:`m + c_m \tilde\nabla_m J` and decay plus rank-mu are :math:`C + c_\mu \tilde\nabla_\Sigma J / \sigma^2`;
with active weights the rank-mu term is the natural gradient for the weights w° plus
:math:`c_\mu (\sum w°_i - \sum w_j) C`, and the mean uses the positive weights only (tests/test_cmaes.py checks both).

Lazy eigendecomposition (tutorial appendix B.2, pycma): before sampling, :math:`C \leftarrow (C + C^\top)/2` and
``eigh`` when at least ``lazy_gap`` generations of updates have gathered since the last one (pycma's default
:math:`1 / (10 d (c_1 + c_\mu))`, so at most every max(1, ceil(lazy_gap)) generations); in between, sampling and
:math:`C^{-1/2}` use the last B and D, as pycma and purecma do.

Defaults (tutorial table 1, v2, as pycma 4): n = 4 + floor(3 ln d), mu = floor(n / 2), c_m = 1,
c_s = (mu_eff + 2) / (d + mu_eff + 5), d_s = 1 + 2 max(0, sqrt((mu_eff - 1) / (d + 1)) - 1) + c_s,
c_c = (4 + mu_eff / d) / (d + 4 + 2 mu_eff / d), c_1 = 2 / ((d + 1.3)^2 + mu_eff),
c_mu = min(1 - c_1, 2 (1/4 + mu_eff - 2 + 1/mu_eff) / ((d + 2)^2 + mu_eff)), the negative weights' sum
min(1 + c_1 / c_mu, 1 + 2 mu_eff^- / (mu_eff + 2), (1 - c_1 - c_mu) / (d c_mu)).

SepCMAES (Ros and Hansen 2008, "A simple modification in CMA-ES achieving linear time and space complexity"):
C diagonal (B = I, D = sqrt(diag C), no eigendecomposition), c_1 and c_mu multiplied by (d + 2) / 3
(c_mu capped at 1 - c_1), every update elementwise: O(d) memory besides the population and O(d) time per sample.

Stop criteria beside the run layer's (``Strategy.stop()``), pycma's rules:
``tolconditioncov`` (cond(C) > 1e14), ``noeffectaxis`` (m + 0.1 sigma D_i b_i == m for the axis i = g mod d),
``tolx`` (every sigma sqrt(C_jj) and sigma |p_c,j| < 1e-11: replaces the generic rule) and ``tolupsigma``
(sigma / max(D) > sigma_0 1e20, typically a sign mistake: replaces the generic rule).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._checks import RNGLike, all_finite, as_float_array, check_bool, sample_rows
from ..distributions import Distribution
from ..estimators import Estimate
from ..estimators.shaping import cma_learning_rates, cma_recombination_weights, effective_mu
from ..sampling import standard_normal
from ._stopping import STOP_DEFAULTS, _threshold
from ._strategy import SMALL_DRAW, Samples, Strategy, default_popsize, positive


class EigenGaussian(Distribution):
    r"""The distribution CMA-ES samples: :math:`N(m, \sigma^2 B D^2 B^\top)`, B, D the last eigendecomposition.

    ``B`` is (d, d) orthogonal (``None`` for the identity, SepCMAES), ``D`` the (d,) square roots of the
    eigenvalues.  ``params`` holds ``mu`` (m).  The strategy writes m, sigma, B and D.
    """

    def __init__(self, mu: np.ndarray, sigma: float, separable: bool):
        self.params = {"mu": mu}
        self.sigma = sigma
        self.D = np.ones(mu.shape[0])
        self.B: np.ndarray | None = None if separable else np.eye(mu.shape[0])
        self.BD: np.ndarray | None = None if separable else np.eye(mu.shape[0])  # B diag(D), kept with B and D

    @property
    def dim(self) -> int:
        return self.params["mu"].shape[0]

    def check_x(self, x: object) -> np.ndarray:
        return sample_rows(x, self.dim, np.dtype(np.float64))

    def draw(self, n: int, rng: RNGLike) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """(z, y, x): z ~ N(0, I), shape (n, d), y = B D z and x = m + sigma y (B = I: z becomes x in place,
        (None, None, x), no (n, d) array beside x)."""
        d = self.params["mu"].shape[0]
        if type(rng) is np.random.Generator and n * d <= SMALL_DRAW:
            z = rng.standard_normal((n, d))  # standard_normal(rng, ...)'s numbers below its threaded size
        else:
            z = standard_normal(rng, (n, d), np.float64)
        if self.B is None:
            z *= self.sigma * self.D
            z += self.params["mu"]
            return None, None, z
        y = z @ self.BD.T  # B D z_k for every row
        return z, y, self.params["mu"] + self.sigma * y

    def whiten(self, x: np.ndarray) -> np.ndarray:
        """z = D^{-1} B^T (x - m) / sigma for each row: the z that ``draw`` made x from."""
        y = (x - self.params["mu"]) / self.sigma
        if self.B is None:
            return y / self.D
        return (y @ self.B) / self.D

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        return self.draw(n, rng)[2]

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        z = self.whiten(x)
        log_det = self.dim * math.log(self.sigma) + np.log(self.D).sum()
        return -0.5 * np.einsum("ij,ij->i", z, z) - log_det - 0.5 * self.dim * math.log(2 * math.pi)


class CMAES(Strategy):
    """CMA-ES: ``es = CMAES(mu, sigma)``; ``x = es.ask()``; ``es.tell(fitness)`` (maximised; ``minimize=True``).

    ``mu``: the initial mean (d,); ``sigma``: the initial step size (a float; C starts as I).
    ``active``: negative weights of active CMA (default) or positive weights only.
    ``c_1``, ``c_mu``, ``c_c``, ``c_sigma``, ``d_sigma``, ``c_m``, ``lazy_gap``: override the tutorial's defaults
    (``c_sigma=0`` keeps sigma fixed); ``csa_squared``: purecma's squared-norm step-size rule.
    ``tolconditioncov``: stop when cond(C) exceeds it (None: off).  Other keywords: the run layer's
    (``minimize``, ``nan_policy``, ``bounds``) and pycma's stop criteria.
    """

    distribution: EigenGaussian
    separable = False

    def __init__(
        self,
        mu: object,
        sigma: object = 1.0,
        popsize: int | None = None,
        rng: RNGLike = None,
        active: bool = True,
        c_1: float | None = None,
        c_mu: float | None = None,
        c_c: float | None = None,
        c_sigma: float | None = None,
        d_sigma: float | None = None,
        c_m: float = 1.0,
        csa_squared: bool = False,
        lazy_gap: float | None = None,
        tolconditioncov: float | None = 1e14,
        **options: Any,
    ) -> None:
        mean = np.array(as_float_array("mu", mu), dtype=np.float64)
        if mean.ndim != 1 or mean.shape[0] == 0:
            raise ValueError(f"mu must be a 1-D array of shape (d,) with d >= 1, got shape {mean.shape}")
        sigma0 = positive("sigma", sigma)
        d = mean.shape[0]
        self.active = check_bool("active", active)
        self.csa_squared = check_bool("csa_squared", csa_squared)
        # pycma's CMA forms of tolx and tolupsigma replace the generic ones (_own_stop)
        self.tolx = _threshold("tolx", options.pop("tolx", STOP_DEFAULTS["tolx"]))
        self.tolupsigma = _threshold("tolupsigma", options.pop("tolupsigma", STOP_DEFAULTS["tolupsigma"]))
        self.tolconditioncov = _threshold("tolconditioncov", tolconditioncov)
        super().__init__(
            EigenGaussian(mean, sigma0, self.separable),
            default_popsize(d) if popsize is None else popsize,
            rng,
            tolx=None,
            tolupsigma=None,
            **options,
        )
        n = self.popsize
        self.mu = n // 2  # parents: the weights of ranks 1..mu are positive
        self.mueff = effective_mu(cma_recombination_weights(n)[: self.mu])
        c1, cmu = cma_learning_rates(d, self.mueff)
        if self.separable:  # Ros and Hansen 2008: the diagonal learns (d + 2) / 3 times faster
            c1 *= (d + 2) / 3
            cmu = min(1 - c1, cmu * (d + 2) / 3)
        self.c_1 = c1 if c_1 is None else rate("c_1", c_1)
        self.c_mu = cmu if c_mu is None else rate("c_mu", c_mu)
        if self.c_1 + self.c_mu > 1:
            raise ValueError(f"c_1 + c_mu must be <= 1, got c_1 = {self.c_1}, c_mu = {self.c_mu}")
        default_cs = (self.mueff + 2) / (d + self.mueff + 5)
        self.c_sigma = default_cs if c_sigma is None else rate("c_sigma", c_sigma)
        default_ds = 1 + 2 * max(0.0, math.sqrt((self.mueff - 1) / (d + 1)) - 1) + self.c_sigma
        self.d_sigma = default_ds if d_sigma is None else positive("d_sigma", d_sigma)
        self.c_c = (4 + self.mueff / d) / (d + 4 + 2 * self.mueff / d) if c_c is None else rate("c_c", c_c)
        self.c_m = positive("c_m", c_m)
        self.chi_d = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))  # E||N(0, I)||
        self.weights = np.array(
            cma_recombination_weights(n, d if self.active else None, self.c_1, self.c_mu if self.c_mu > 0 else None)
        )
        default_gap = 1 / (10 * d * (self.c_1 + self.c_mu)) if self.c_1 + self.c_mu > 0 else math.inf
        self.lazy_gap = default_gap if lazy_gap is None else positive("lazy_gap", lazy_gap)
        self.sigma0 = sigma0
        self.p_sigma = np.zeros(d)
        self.p_c = np.zeros(d)
        self.C = np.ones(d) if self.separable else np.eye(d)  # SepCMAES: the diagonal only
        self._decomposed_at = 0  # the generation whose C the current B, D decompose
        self._zy: tuple[np.ndarray, np.ndarray] | None = None  # the last ask's z and y = B D z (CMAES)
        self._told: tuple[Any, ...] | None = None  # what the last estimate is computed from, when it is read
        self._fixed_factors()

    def _fixed_factors(self) -> None:
        """The update's factors that depend on the constants only (made once, at construction)."""
        w, mu = self.weights, self.mu
        self._w_sum = float(w.sum())
        self._ranks_used = int(np.flatnonzero(w)[-1]) + 1  # the ranks past it have no weight (active=False)
        self._has_negative = bool(np.any(w < 0))
        self._cs_factor = math.sqrt(self.c_sigma * (2 - self.c_sigma) * self.mueff)
        self._cc_factor = math.sqrt(self.c_c * (2 - self.c_c) * self.mueff)
        self._parent_weights = w[:mu].copy()  # w_1..w_mu
        self._rank_mu_rates = self.c_mu * w[: self._ranks_used]  # c_mu w_i (the negative ones replaced below)
        self._negative_rates = self.dim * self._rank_mu_rates[mu:]  # d c_mu w_i, for d c_mu w_i / ||z_i||^2
        self._h_bound = 2 + 4 / (self.dim + 1)  # h_sigma's bound: ||p_s||^2 / d < h_bound (1 - (1 - c_s)^(2 g))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pickles made before the kept (z, y) pair and the lazy estimate load too; the fixed factors are made again."""
        for old in ("_z", "_y", "_used", "_negative"):
            state.pop(old, None)
        state.setdefault("_zy", None)
        state.setdefault("_told", None)
        if "estimate" in state:
            state["_estimate"] = state.pop("estimate")
        super().__setstate__(state)
        self._fixed_factors()  # the constants' products, the same numbers however old the pickle

    @property
    def estimate(self) -> Estimate | None:
        """The last tell's estimate: J = sum_i w_i f_i (w by rank, in sample order) and its gradient in the mean,
        Sigma^{-1} sum_{i<=mu} w_i (x_{i:n} - m) = B D^{-1} <z>_w / sigma.

        Computed when read: the update itself needs none of it.
        """
        if self._told is not None:
            order, f, z_w, B, D, sigma = self._told
            weights = np.empty(self.popsize)
            weights[order] = self.weights
            grad_mu = (z_w / D if B is None else B @ (z_w / D)) / sigma
            self._estimate, self._told = Estimate(value=float(weights @ f), grad={"mu": grad_mu}, weights=weights), None
        return self._estimate

    @estimate.setter
    def estimate(self, value: Estimate | None) -> None:
        self._estimate = value

    # ------------------------------------------------------------------ state
    @property
    def sigma(self) -> float:
        """The global step size sigma (a float)."""
        return self.distribution.sigma

    def _widths(self) -> np.ndarray:
        """sigma sqrt(C_jj): the search distribution's standard deviation along each coordinate."""
        diagonal = self.C if self.separable else np.diagonal(self.C)
        return self.sigma * np.sqrt(diagonal)

    @property
    def axis_ratio(self) -> float:
        """max(D) / min(D): the square root of the condition number of C (at the last eigendecomposition)."""
        D = self.distribution.D
        return float(D.max() / D.min())

    @property
    def covariance(self) -> np.ndarray:
        """sigma^2 C, the covariance of the search distribution (a (d, d) array; SepCMAES: its diagonal)."""
        return self.sigma**2 * self.C

    # ------------------------------------------------------------------ ask / tell
    def ask(self, encode: bool = False) -> Samples:
        """The next population x = m + sigma B D z, shape (popsize, d) (projected onto the box with ``bounds``)."""
        if encode:
            raise ValueError(f"encode=True needs a noise table; {type(self).__name__} has none")
        self._check_reach()
        z, y, x = self.distribution.draw(self.popsize, self.rng)
        self._zy = None if z is None else (z, y)
        self._population = x
        if self.bounds is not None:
            return self.bounds.repair(x)
        return x.copy()

    def _decompose_if_due(self, generation: int) -> None:
        """Eigendecompose C (made symmetric) when ``lazy_gap`` generations have updated it since the last time.

        Run at the end of each update (``generation``: the count after it), so that ``es.distribution``, whoever
        draws from it (``ask``, or ``npevograd.parallel.evaluate``), is the one pycma and purecma sample next.
        """
        since = generation - self._decomposed_at
        if since < 1 or since < self.lazy_gap:
            return
        p = self.distribution
        if self.separable:
            p.D = np.sqrt(self.C)
        else:
            self.C = (self.C + self.C.T) / 2
            # np.linalg.eigh's driver, on C^T = C (Fortran order: not copied)
            eigenvalues, B, info = _lapack("dsyevd")(self.C.T, compute_v=1, lower=1)
            if info != 0 or not eigenvalues[0] > 0:
                raise ValueError(
                    f"{type(self).__name__}: the covariance matrix lost positive definiteness (smallest eigenvalue "
                    f"{eigenvalues[0]:.3g}) at generation {generation}; stop() reports tolconditioncov before "
                    "this in a run that checks it"
                )
            p.B, p.D = B, np.sqrt(eigenvalues)
            p.BD = B * p.D
        self._decomposed_at = generation

    def _update(self, x: Samples, f: np.ndarray) -> None:
        p = self.distribution
        m, sigma = p.params["mu"], p.sigma
        d = m.shape[0]
        order = self._ranked[0]  # the argsort of the costs -f (tell's, stable): best first
        # <z>_w = sum_{i<=mu} w_i z_{i:n}, <y>_w = B D <z>_w, C^{-1/2} <y>_w = B <z>_w
        z_w, y_w, whitened, selected = self._recombine(x, order)
        new_m = m + (self.c_m * sigma) * y_w
        # cumulation for sigma
        c_s = self.c_sigma
        p_sigma = (1 - c_s) * self.p_sigma + self._cs_factor * whitened
        ps_squared = float(p_sigma @ p_sigma)
        h_sigma = ps_squared / d < self._h_bound * (1 - (1 - c_s) ** (2 * (self.generation + 1)))
        # cumulation for C, stalled when h_sigma = 0
        c_c = self.c_c
        p_c = (1 - c_c) * self.p_c + self._cc_factor * y_w if h_sigma else (1 - c_c) * self.p_c
        # covariance: decay (with the variance that h_sigma = 0 takes from p_c put back), rank-one, rank-mu
        c1a = self.c_1 * (1 - (0.0 if h_sigma else 1.0) * c_c * (2 - c_c))
        decay = 1 - c1a - self.c_mu * self._w_sum
        new_C = self._new_covariance(decay, p_c, selected)
        # step size: CSA
        if self.csa_squared:
            exponent = (ps_squared / d - 1) / 2
        else:
            exponent = math.sqrt(ps_squared) / self.chi_d - 1
        new_sigma = sigma * math.exp(min(1.0, c_s / self.d_sigma * exponent))
        diagonal = new_C if self.separable else new_C.diagonal()  # |C_ij| <= sqrt(C_ii C_jj): finite with it
        if not (0 < new_sigma < math.inf and all_finite(new_m) and all_finite(diagonal)):
            raise ValueError(
                f"{type(self).__name__}: the update is not finite (sigma {new_sigma:.3g}); the samples or the "
                "fitness overflowed the mean or the covariance (nothing was changed)"
            )
        m[...] = new_m
        p.sigma = new_sigma
        self.C, self.p_sigma, self.p_c = new_C, p_sigma, p_c
        self._zy = None
        self._told = (order, f, z_w, p.B, p.D, sigma)  # the estimate, computed when read (B, D: before the update)
        self._decompose_if_due(self.generation + 1)  # for the next samples

    def _recombine(self, x: Samples, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """<z>_w, <y>_w, B <z>_w and the rank-mu term's (c_mu w°_i, y_{i:n}) for the ranks with a weight.

        The z and y of the last ``ask`` are kept (never recovered from x); samples told with ``x=`` are whitened:
        y = (x - m) / sigma, z = D^{-1} B^T y.
        """
        p, mu, k = self.distribution, self.mu, self._ranks_used
        if x is self._population and self._zy is not None:
            z, y = self._zy
        else:
            y = (x - p.params["mu"]) / p.sigma
            z = (y @ p.B) / p.D
        ranked = order if k == self.popsize else order[:k]  # the ranks with a weight, best first
        z, y = z[ranked], y[ranked]
        w = self._parent_weights
        z_w, y_w = w @ z[:mu], w @ y[:mu]
        rates = self._rank_mu_rates
        if self._has_negative:  # w°_i = w_i d / ||z_i||^2: the negative terms' lengths are normalised
            z_negative = z[mu:]
            rates = rates.copy()
            np.divide(self._negative_rates, np.einsum("ij,ij->i", z_negative, z_negative), out=rates[mu:])
        return z_w, y_w, p.B @ z_w, (rates, y)

    def _new_covariance(self, decay: float, p_c: np.ndarray, selected: Any) -> np.ndarray:
        """decay C + c_1 p_c p_c^T + sum_i c_mu w°_i y_i y_i^T: a new (d, d) array, in two BLAS calls.

        ``dgemm`` makes decay C^T + Y^T diag(c_mu w°) Y in one pass over C (its beta C) and ``dger`` adds the rank-one
        term in place.  Both run on Fortran-ordered transposes (no operand is copied into Fortran order), so the new
        C is the transpose of what they return: decay C plus the transposes of the two symmetric terms, which equal
        them to rounding.
        """
        rates, y = selected
        y_t = y.T  # (d, k), Fortran order
        new_t = _blas("dgemm")(1.0, y_t * rates, y_t, beta=decay, c=self.C.T, trans_b=1)  # a new array (c copied)
        _blas("dger")(self.c_1, p_c, p_c, a=new_t, overwrite_a=1)  # rank one, in place
        return new_t.T

    # ------------------------------------------------------------------ stop
    def _own_stop(self) -> dict[str, float]:
        """pycma's CMA criteria: tolconditioncov, noeffectaxis, tolx (with p_c), tolupsigma (sigma / max D)."""
        if self.generation == 0:
            return {}
        fired: dict[str, float] = {}
        p = self.distribution
        D, sigma = p.D, p.sigma
        if self.tolconditioncov is not None and D.max() > math.sqrt(self.tolconditioncov) * D.min():
            fired["tolconditioncov"] = self.tolconditioncov
        i = self.generation % self.dim
        axis = 0.1 * sigma * D[i] * (p.B[:, i] if p.B is not None else np.eye(1, self.dim, i)[0])
        m = p.params["mu"]
        if np.all(m == m + axis):
            fired["noeffectaxis"] = 0.1
        if (
            self.tolx is not None
            and np.all(self._widths() < self.tolx)
            and np.all(sigma * np.abs(self.p_c) < self.tolx)
        ):
            fired["tolx"] = self.tolx
        if self.tolupsigma is not None and sigma / D.max() > self.sigma0 * self.tolupsigma:
            fired["tolupsigma"] = self.tolupsigma
        return fired


class SepCMAES(CMAES):
    """Separable CMA-ES (Ros and Hansen 2008): a diagonal C, c_1 and c_mu times (d + 2) / 3; O(d) per sample.

    The same arguments as ``CMAES``; ``es.C`` is the (d,) diagonal.
    """

    separable = True

    def _recombine(self, x: Samples, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """<z>_w, <y>_w = D <z>_w, <z>_w again (B = I) and the diagonal rank-mu term D^2 sum_i c_mu w°_i z_{i:n}^2.

        One sample row at a time: z_i = (x_i - m) / (sigma D), elementwise (exact to rounding), so no (n, d)
        array is made beside the population.
        """
        p, w, d = self.distribution, self.weights, self.dim
        m, scale = p.params["mu"], p.sigma * p.D
        z_w, rank_mu = np.zeros(d), np.zeros(d)
        for k, i in enumerate(order):
            if w[k] == 0:
                continue
            z_i = (x[i] - m) / scale
            z_squared = np.square(z_i)
            if k < self.mu:
                z_w += w[k] * z_i
            rank_mu += (w[k] if w[k] > 0 else w[k] * d / z_squared.sum()) * z_squared
        return z_w, z_w * p.D, z_w, (self.c_mu * np.square(p.D)) * rank_mu

    def _new_covariance(self, decay: float, p_c: np.ndarray, selected: Any) -> np.ndarray:
        """decay c + c_1 p_c^2 + (the diagonal rank-mu term), elementwise."""
        return decay * self.C + self.c_1 * np.square(p_c) + selected


_ROUTINES: dict[str, Any] = {}


def _blas(name: str) -> Any:
    """A scipy BLAS routine (``dgemm``: alpha a^T b + beta c), imported on first use: scipy.linalg is slow to import."""
    if name not in _ROUTINES:
        from scipy.linalg import blas

        _ROUTINES[name] = getattr(blas, name)
    return _ROUTINES[name]


def _lapack(name: str) -> Any:
    """A scipy LAPACK routine (``dsyevd``: the eigendecomposition np.linalg.eigh runs), imported on first use."""
    if name not in _ROUTINES:
        from scipy.linalg import lapack

        _ROUTINES[name] = getattr(lapack, name)
    return _ROUTINES[name]


def rate(name: str, value: object) -> float:
    """A learning rate in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not 0 <= v <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return v
