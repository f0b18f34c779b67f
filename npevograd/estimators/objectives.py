r"""Score-function gradient estimators, each written out term by term.

Every objective here is an estimate J(r) built from n samples x_i ~ p_theta and
the probability ratios r_i = p_theta(x_i) / p_theta0(x_i), all equal to 1 at the
current parameters.  Its gradient is

.. math::

    \nabla_\theta J = \sum_i w_i \, \nabla_\theta \log p_\theta(x_i), \qquad
    w_i = \left.\frac{\partial J}{\partial r_i}\right|_{r=1}

so an estimator only computes the weights w_i and hands them to the
distribution's ``weighted_score``.  Sign convention: every objective is
maximised, every gradient points uphill (as in EvoGrad).  See
``docs/derivations.md`` for the derivations step by step.

Sample reuse (``proposal=q`` or ``log_proposal=``, see ``docs/reuse.md``): with
x_i drawn from q, the same identity holds at r = rho, rho_i = p(x_i) / q(x_i):

.. math::

    \nabla_\theta J = \sum_i \left.\frac{\partial J}{\partial r_i}\right|_{r=\rho}
                      \rho_i \, \nabla_\theta \log p_\theta(x_i)

Each estimator states J itself as ``objective(values, ratios)`` (plain NumPy, dense)
beside its hand-derived weights, so ``npevograd.testing.assert_weights_close`` can
check the weights by the complex step without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._checks import all_finite, as_float_array, behaviour_matrix, fitness_vector, per_sample
from ..distributions import Distribution, Grad
from ..distributions._scaled import scaled, split
from . import _kde, _ratio_kde
from ._ratios import check_min_ess, check_ratios, effective_sample_size, importance_ratios, reuse_weights
from .shaping import on_validated, standardize


@dataclass(frozen=True)
class Estimate:
    """An objective's value, its gradient per parameter, and the per-sample weights w_i.

    With sample reuse, ``ratios`` holds rho_i = p(x_i) / q(x_i) and ``weights`` are
    rho_i dJ/dr_i at r = rho; ``ess`` is the effective sample size (sum rho)^2 / sum rho^2,
    n without a proposal.
    """

    value: float | np.ndarray
    grad: Grad
    weights: np.ndarray
    ratios: np.ndarray | None = None

    @property
    def ess(self) -> float:
        if self.ratios is None:
            return float(self.weights.shape[0])
        return effective_sample_size(self.ratios)


class Estimator:
    """Base class: subclasses implement ``weights(values, n) -> (value, w)`` with w_i = dJ/dr_i at r = 1.

    For sample reuse they also implement ``ratio_weights(values, ratios) -> (J, dJ/dr)`` at
    r = ratios, and for ``npevograd.testing.assert_weights_close`` the objective itself,
    ``objective(values, ratios) -> J`` in plain NumPy (it may be called with complex ratios).

    Calling ``est(values, x, p)`` returns an ``Estimate``; with ``proposal=q`` (a
    distribution) or ``log_proposal=`` (log q(x_i), shape (n,)) the samples are taken as
    drawn from q and reweighted by rho_i = p(x_i) / q(x_i), computed in log space.
    ``min_ess``: raise a ValueError naming it when the effective sample size is below it.
    """

    def __call__(
        self,
        values: object,
        x: object,
        p: Distribution,
        *,
        proposal: Distribution | None = None,
        log_proposal: object = None,
        min_ess: float | None = None,
    ) -> Estimate:
        if not isinstance(p, Distribution):
            raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
        x = p.check_x(x)
        n = x.shape[0]
        if proposal is None and log_proposal is None:
            if min_ess is not None:
                check_min_ess(float(n), n, min_ess)
            value, w = self.weights(values, n)
            return Estimate(value=value, grad=self._gradient(p, w, x), weights=w)  # p.weighted_score(w, x)
        per_sample("values", values, n)  # values against x first: the clearer error
        rho = importance_ratios(p, x, proposal, log_proposal)
        check_min_ess(effective_sample_size(rho), n, min_ess)
        value, dj_dr = self.ratio_weights(values, rho)
        w = reuse_weights(dj_dr, rho)  # rho_i dJ/dr_i
        return Estimate(value=value, grad=self._gradient(p, w, x, rho), weights=w, ratios=rho)

    def _gradient(self, p: Distribution, w: np.ndarray, x: np.ndarray, rho: np.ndarray | None = None) -> Grad:
        """p.weighted_score(w, x); weights that overflowed are named as this estimator's, with their cause."""
        try:
            return p._contract(w, x)
        except ValueError:
            if all_finite(w):
                raise
        bad = int(np.argmin(np.isfinite(w)))
        cause = (
            f"dJ/dr_i times the importance ratio rho_i = {float(rho[bad]):.4g}"
            if rho is not None
            else "dJ/dr_i at r = 1"
        )
        raise ValueError(
            f"{type(self).__name__}: the weight of sample {bad} overflows float (it is {cause}); the values are "
            "too large for float64 here: rescale the values"
            + (" or reuse fewer generations" if rho is not None else "")
        )

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def ratio_weights(self, values: object, ratios: object) -> tuple[float, np.ndarray]:
        raise NotImplementedError(
            f"{type(self).__name__} has no ratio_weights(values, ratios) -> (J, dJ/dr at r = ratios): "
            "define it to use proposal= or log_proposal="
        )

    def objective(self, values: object, ratios: object) -> float | complex:
        raise NotImplementedError(
            f"{type(self).__name__} has no objective(values, ratios): define J(values, r) in NumPy "
            "to check its weights with npevograd.testing.assert_weights_close"
        )


class Mean(Estimator):
    r"""Expected fitness (NES; Salimans et al. 2017, eq. 1 and 2), optionally with a baseline.

    .. math::

        J = \frac1n \sum_i \big(f_i r_i - b_i (r_i - 1)\big), \qquad w_i = \frac{f_i - b_i}{n}

    ``values`` are the fitnesses, shape (n,) or (n, 1); with ``shaping`` (e.g.
    ``zscore``, ``centered_ranks``) f = shaping(values).  ``value`` is mean(f).
    The baseline b_i is held constant (a control variate: E[r_i - 1] = 0):

    - ``baseline=None``: b_i = 0, w_i = f_i / n;
    - ``baseline="mean"``: b_i = mean(f), w_i = (f_i - mean(f)) / n; biased by a factor
      (n - 1)/n, since f_i enters its own baseline;
    - ``baseline="loo"``: b_i = (sum_{j != i} f_j) / (n - 1), the leave-one-out mean,
      w_i = (f_i - b_i)/n with f_i - b_i = n/(n-1) (f_i - mean(f)); unbiased.

    ``normalize=True`` is the self-normalised estimate (no baseline needed: its
    weights are already centred),

    .. math::

        J = \frac{\sum_i r_i f_i}{\sum_i r_i}, \qquad
        \frac{\partial J}{\partial r_i} = \frac{f_i - J}{\sum_j r_j},

    equal to mean(f) with weights (f_i - mean(f))/n without a proposal.
    (Baselines: Williams 1992, section 4; Kool et al. 2019 for leave-one-out.)
    """

    BASELINES = (None, "mean", "loo")

    def __init__(
        self,
        shaping: Callable[[np.ndarray], np.ndarray] | None = None,
        baseline: str | None = None,
        normalize: bool = False,
    ):
        if shaping is not None and not callable(shaping):
            raise TypeError(f"shaping must be callable or None, got {type(shaping).__name__}")
        if baseline not in self.BASELINES:
            raise ValueError(f"baseline must be None, 'mean' or 'loo', got {baseline!r}")
        if normalize and baseline is not None:
            raise ValueError(
                f"baseline={baseline!r} with normalize=True: the self-normalised weights (f_i - J) / sum(r) "
                "are already centred; use one or the other"
            )
        self.shaping = shaping
        self.baseline = baseline
        self.normalize = bool(normalize)

    def _fitness(self, values: object, n: int, body: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """The (shaped) fitness f; ``body``: ``on_validated(self.shaping)`` if the caller has it."""
        f = fitness_vector("values", values, n)
        if self.shaping is not None:
            body = on_validated(self.shaping) if body is None else body
            if body is None:  # the user's shaping: its result is validated like the values
                f = fitness_vector("shaping(values)", self.shaping(f), n)
            else:  # a built-in one on the f validated just above: finite, shape (n,), f's dtype
                f = body(f)
        if self.baseline == "loo" and n < 2:
            raise ValueError(f"baseline='loo' needs at least 2 samples, got {n}")
        return f

    def _baselines(self, f: np.ndarray) -> np.ndarray:
        """b_i: 0, the batch mean, or the leave-one-out mean (sum_j f_j - f_i) / (n - 1)."""
        n = f.shape[0]
        if self.baseline == "mean":
            return np.full_like(f, f.sum() / n)
        if self.baseline == "loo":
            return (f.sum() - f) / (n - 1)
        return np.zeros_like(f)

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        body = on_validated(self.shaping)
        f = self._fitness(values, n, body)
        w = f / n  # outer expectation: dJ/dr_i = f_i / n
        value = _mean_value(w, bounded=body is not None)
        if self.baseline is not None or self.normalize:
            centred = f - f.dtype.type(value)  # f_i - mean(f): the mean baseline, and normalize at r = 1
            if self.baseline == "loo":
                with np.errstate(over="ignore"):  # an overflowing weight is named by _gradient
                    centred *= n / (n - 1)  # f_i - b_i = n/(n-1) (f_i - mean(f))
            return value, centred / n
        return value, w

    def ratio_weights(self, values: object, ratios: object) -> tuple[float, np.ndarray]:
        """J and dJ/dr at r = ratios, summed in a scaled form (``distributions._scaled``).

        f = f_m 2^e and r = r_m 2^g exactly, so no term f_i r_i (1e300 times e^700) overflows
        where J does not.  Without ``normalize``, J = (1/n) sum_i (f_i - b_i) r_i + mean(b): the
        baseline's r-terms cancel exactly, so a constant fitness gives J = f.  With ``normalize``
        the same holds for J = f_k + sum_i r_i (f_i - f_k) / sum_i r_i, k the largest ratio: a
        common ratio factor cancels and f_i - J is exactly 0 for a constant fitness.
        """
        f = self._fitness(values, _count(values))
        r = check_ratios(ratios, f.shape[0])
        n = f.shape[0]
        f_m, f_e = split(f)
        r_m, r_e = split(r)
        if self.normalize:
            anchor = f_m[int(np.argmax(r))]  # f_k, scaled
            total_m = r_m.sum()  # sum r_i / 2^g
            value_m = anchor + ((f_m - anchor) @ r_m) / total_m  # J / 2^e: f_k plus a weighted mean of f_i - f_k
            dj_dr = np.ldexp((f_m - value_m) / total_m, f_e - r_e).astype(f.dtype, copy=False)  # (f_i - J) / sum r
            return _finite_value(self, scaled(float(value_m), f_e)), dj_dr
        b_m = self._baselines(f_m)  # the baselines of f, scaled as f is
        centred_m = f_m - b_m
        value = scaled(float((centred_m @ r_m) / n), f_e + r_e) + scaled(float(b_m.sum() / n), f_e)
        return _finite_value(self, value), np.ldexp(centred_m / n, f_e).astype(f.dtype, copy=False)  # (f_i - b_i)/n

    def objective(self, values: object, ratios: object) -> float | complex:
        f = self._fitness(values, _count(values))
        r = check_ratios(ratios, f.shape[0], allow_complex=True)
        if self.normalize:
            return np.sum(f * r) / np.sum(r)
        return (np.sum(f * r) - np.sum(self._baselines(f) * (r - 1))) / f.shape[0]


class Variance(Estimator):
    r"""Variance of z-scored behaviours (MaxVar; Gajewski et al. 2019, section 3.1).

    Behaviours b_i (shape (n,) or (n, k)) are z-scored per dimension with the sample
    mean and the ddof=1 standard deviation, held constant:

    .. math::

        J = \frac1n \sum_i \|z_i\|^2 r_i, \qquad w_i = \frac{\|z_i\|^2}{n}
    """

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        z = standardize("behaviours", behaviour_matrix("behaviours", values, n))
        z_norm2 = np.square(z[:, 0]) if z.shape[1] == 1 else np.einsum("ij,ij->i", z, z)  # ||z_i||^2
        w = z_norm2 / n
        return float(z_norm2.sum() / n), w

    def ratio_weights(self, values: object, ratios: object) -> tuple[float, np.ndarray]:
        z_norm2 = self._z_norm2(values)
        r = check_ratios(ratios, z_norm2.shape[0])
        n = z_norm2.shape[0]
        return _finite_value(self, _scaled_mean(z_norm2, r)), z_norm2 / n  # J = (1/n) sum_i ||z_i||^2 r_i

    def objective(self, values: object, ratios: object) -> float | complex:
        z_norm2 = self._z_norm2(values)
        r = check_ratios(ratios, z_norm2.shape[0], allow_complex=True)
        return np.sum(z_norm2 * r) / z_norm2.shape[0]  # J = (1/n) sum_i ||z_i||^2 r_i

    @staticmethod
    def _z_norm2(values: object) -> np.ndarray:
        z = standardize("behaviours", behaviour_matrix("behaviours", values, _count(values)))
        return np.einsum("ij,ij->i", z, z)


class Entropy(Estimator):
    r"""Kernel-density entropy of behaviours (MaxEnt; Gajewski et al. 2019, section 3.2).

    On z-scored behaviours z_i, with K_ij = exp(-||z_i - z_j||^2 / h^2):

    .. math::

        \hat p_j = \frac1n \sum_i K_{ij} r_i, \qquad
        J = \frac1n \sum_j (-\log \hat p_j)\, r_j

        w_i = \frac1n\Big[\underbrace{-\log \hat p_i}_{\text{outer}}
              \;-\; \underbrace{\frac1n \sum_j \frac{K_{ij}}{\hat p_j}}_{\text{nested KDE}}\Big]

    h is ``bandwidth`` (EvoGrad's ``k_sigma``).  The kernel is never formed as a full
    n x n matrix: its strict upper triangle is kept in row panels while it fits in 16 MB
    and recomputed in b x b tiles beyond that (``block_size`` forces tiles of that side;
    see ``npevograd/estimators/_kde.py``).  With ratios r the densities are r-weighted and the
    nested term becomes (1/n) sum_j K_ij r_j / phat_j (tiles, recomputed).
    """

    def __init__(self, bandwidth: float = 1.0, standardize: bool = True, block_size: int | None = None):
        h = as_float_array("bandwidth", bandwidth)
        if h.shape != () or not h > 0:
            raise ValueError(f"bandwidth must be a positive scalar, got {bandwidth!r}")
        if not _kde.MIN_BANDWIDTH <= h <= _kde.MAX_BANDWIDTH:
            raise ValueError(
                f"bandwidth must be in [{_kde.MIN_BANDWIDTH:.3g}, {_kde.MAX_BANDWIDTH:.3g}] "
                f"(h**2 and 1/h**2 normal float64 numbers), got {bandwidth!r}"
            )
        valid_block = isinstance(block_size, int) and not isinstance(block_size, bool) and block_size >= 1
        if block_size is not None and not valid_block:
            raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
        self.bandwidth = float(h)
        self.standardize = bool(standardize)
        self.block_size = block_size

    def weights(self, values: object, n: int) -> tuple[float, np.ndarray]:
        b = behaviour_matrix("behaviours", values, n)
        z = standardize("behaviours", b) if self.standardize else b
        density, nested = _kde.kernel_sums(z, self.bandwidth, self.block_size)
        neg_log_density = -np.log(density)  # outer term, finite since density_j >= K_jj / n = 1/n
        w = (neg_log_density - nested) / n  # nested: (1/n) sum_j K_ij / density_j
        return float(neg_log_density.sum() / n), w

    def ratio_weights(self, values: object, ratios: object) -> tuple[float, np.ndarray]:
        z = self._z(values, _count(values))
        n = z.shape[0]
        r = check_ratios(ratios, n).astype(z.dtype, copy=False)
        density, nested = _ratio_kde.weighted_kernel_sums(z, self.bandwidth, r, self.block_size)
        # phat_j >= r_j / n, so phat_j = 0 only where r_j = 0: there the outer term is 0 in J
        # and dJ/dr_j = +inf (the estimator multiplies it by rho_j = 0)
        positive = density > 0
        neg_log_density = -np.log(np.where(positive, density, 1))
        value = _finite_value(self, _scaled_mean(neg_log_density, r))  # J = (1/n) sum_j -log(phat_j) r_j
        outer = np.where(positive, neg_log_density, np.inf)
        return value, (outer - nested) / n  # nested: (1/n) sum_j K_ij r_j / phat_j

    def objective(self, values: object, ratios: object) -> float | complex:
        z = self._z(values, _count(values))
        r = check_ratios(ratios, z.shape[0], allow_complex=True)
        sq_dist = np.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1)
        kernel = np.exp(-sq_dist / self.bandwidth**2)  # K_ij, dense: the reference, not the fast path
        density = kernel.T @ r / z.shape[0]  # phat_j = (1/n) sum_i K_ij r_i
        carried = r != 0  # r_j = 0 adds nothing: -log(phat_j) r_j -> 0 since phat_j >= r_j / n
        return np.sum(-np.log(density[carried]) * r[carried]) / z.shape[0]  # J = (1/n) sum_j -log(phat_j) r_j

    def _z(self, values: object, n: int) -> np.ndarray:
        b = behaviour_matrix("behaviours", values, n)
        return standardize("behaviours", b) if self.standardize else b


def _count(values: object) -> int:
    """The number of samples in ``values`` (its first axis), checked against the ratios afterwards."""
    shape = np.shape(values)  # type: ignore[call-overload]
    return shape[0] if shape else 0


def _scaled_mean(a: np.ndarray, r: np.ndarray) -> float:
    """(1/n) sum_i a_i r_i in the scaled form: finite wherever the result is (bits of a @ r / n otherwise)."""
    a_m, a_e = split(a)
    r_m, r_e = split(r)
    return scaled(float((a_m @ r_m) / a.shape[0]), a_e + r_e)


def _finite_value(estimator: Estimator, value: float) -> float:
    """The objective's value under importance ratios, or a ValueError saying that J itself overflows."""
    if not math.isfinite(value):
        raise ValueError(
            f"{type(estimator).__name__}: the objective J under these importance ratios is {value}: it exceeds "
            "float64 (the values times the ratios); rescale the values or reuse fewer generations"
        )
    return value


def _mean_value(w: np.ndarray, bounded: bool = False) -> float:
    """sum_i f_i / n from w_i = f_i / n: partial sums bounded by max |f|, finite for finite f.

    ``bounded``: f came from a built-in shaping, whose values are at most 1 (ranks) or about
    sqrt(n) / eps (z-scores) in magnitude, so the sum cannot overflow: no floating-point guard.
    """
    if bounded:
        return float(np.add.reduce(w, axis=None, dtype=np.float64))
    with np.errstate(over="ignore"):  # only a mean within rounding of the float64 limit overflows
        value = float(np.add.reduce(w, axis=None, dtype=np.float64))
    if not np.isfinite(value):
        raise ValueError("values: their mean overflows float64 (it is within rounding of the largest float)")
    return value


def expectation(values: object, x: object, p: Distribution) -> Estimate:
    r"""EvoGrad's primitive: the sample mean of ``values`` and its score-function Jacobian.

    .. math::

        J = \frac1n \sum_i v_i r_i, \qquad
        \nabla_\theta J = \sum_i \frac{v_i}{n} \nabla_\theta \log p_\theta(x_i)

    ``values`` has shape (n,) or (n, m, ...).  ``value`` is their mean over axis 0;
    ``grad[name]`` has shape value.shape + param.shape (one gradient per output entry);
    ``weights`` = values / n.
    """
    if not isinstance(p, Distribution):
        raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
    x = p.check_x(x)
    v = per_sample("values", values, x.shape[0])
    w = v / x.shape[0]
    if v.ndim == 1:
        return Estimate(value=_mean_value(w), grad=p._contract(w, x), weights=w)
    scores = p.score(x)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        grad = {name: np.tensordot(w, s, axes=(0, 0)) for name, s in scores.items()}
        value = w.sum(axis=0)  # mean of v from v / n: finite for finite v
    if not all(np.isfinite(g).all() for g in grad.values()) or not np.isfinite(value).all():
        raise ValueError("values: their mean or its gradient overflows; rescale values")
    return Estimate(value=value, grad=grad, weights=w)
