"""The ask/tell loop every algorithm shares, and the run around it.

An algorithm supplies its distribution, its ``_update(x, f)`` (which maximises ``f``
and returns the generation's Estimate), its ``sigma`` and its per-coordinate search
widths ``_widths()``.  This base draws the population (``ask``; repaired into the box
with ``bounds``), validates what comes back (``tell``) before any state changes, turns
the user's fitness into the maximised ``f`` (the sign for ``minimize=True``, failed
evaluations ranked worst with ``nan_policy="worst"``, the bound penalty), counts
evaluations and generations, keeps the best sample, and answers ``stop()`` (pycma's
criteria, ``_stopping``) and ``result``.  ``_update`` computes the new parameters first
and writes them last, so a bad ``tell`` leaves the state as it was.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple, TypeVar, Union

import numpy as np

from .._checks import (
    SMALL_SIZE,
    RNGLike,
    all_finite,
    all_positive,
    as_float_array,
    as_rng,
    check_bool,
    check_params,
    check_sample_count,
)
from ..distributions import Distribution, Normal
from ..estimators import Estimate
from ..noise import EncodedSamples
from ._bounds import Box
from ._stopping import Stopping

Samples = Union[np.ndarray, EncodedSamples]


class Best(NamedTuple):
    """The best sample told so far and its fitness, in the user's sign (lowest with ``minimize=True``)."""

    x: np.ndarray
    fitness: float


def default_popsize(d: int) -> int:
    """4 + floor(3 ln d): the NES population size (Wierstra et al. 2014, table 1)."""
    return 4 + int(math.floor(3 * math.log(d)))


def positive(name: str, value: object) -> float:
    """A finite float > 0 (a learning rate, a step size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


# A population of at most this many entries is drawn by ``Strategy._draw`` itself (one ``standard_normal``,
# scaled and shifted in place), as ``Normal._sample`` draws it below ``sampling._blocks.PARALLEL_MIN_ENTRIES``.
SMALL_DRAW = 1 << 16


class SampleOverflow(ValueError):
    """An update would let the next samples overflow their dtype; ``Strategy.tell`` turns it into a stop."""


# A standard normal draw of numpy's ziggurat is below 14 in absolute value (its tail step is at most
# r + 37 / r, r = 3.65), so a sample mu + sum_j L_ij z_j is below |mu_i| + 14 sum_j |L_ij| in every coordinate;
# 64 leaves room for other standard-normal sources (a noise table).
SAMPLE_REACH = 64.0


def gaussian_params(distribution: Distribution) -> dict[str, np.ndarray]:
    """The distribution's parameters, with a fixed (not learnt) ``sigma`` of a ``Normal`` added as ``"sigma"``."""
    params = distribution.params
    if isinstance(distribution, Normal) and "sigma" not in params:
        return {**params, "sigma": distribution.sigma}
    return params


def sample_spread(params: dict[str, np.ndarray]) -> np.ndarray | None:
    """How far a sample reaches from mu per unit draw, per coordinate: |sigma_i| or sum_j |L_ij|; None if unknown."""
    if "sigma" in params:
        return np.abs(params["sigma"])
    if "scale_tril" in params:
        with np.errstate(over="ignore"):
            return np.abs(params["scale_tril"]).sum(axis=1)
    return None


def overflow_risk(params: dict[str, np.ndarray]) -> str | None:
    """Why a sample of a Gaussian with these parameters could overflow its dtype, or None if none can.

    Every coordinate of a sample lies below |mu_i| + 64 x spread_i (``SAMPLE_REACH``); when that
    bound is not finite in mu's dtype the reason names the largest |mu| and spread.
    """
    mu, spread = params.get("mu"), sample_spread(params)
    if mu is None or spread is None:
        return None  # parameters of another form: the strategy checks its own samples
    with np.errstate(over="ignore", invalid="ignore"):
        reach = np.abs(mu) + mu.dtype.type(SAMPLE_REACH) * spread
    if all_finite(reach):
        return None
    return (
        f"a sample could overflow {mu.dtype}: |mu| up to {float(np.max(np.abs(mu))):.3g}, "
        f"sigma (per-coordinate spread) up to {float(np.max(spread)):.3g}"
    )


def write_params(owner: str, params: dict[str, np.ndarray], new: dict[str, np.ndarray], rates: str) -> None:
    """Write the updated parameters in place, all or none: each is checked finite (sigma > 0) in its dtype first.

    An update that overflows (an extreme fitness scale or learning rate) raises a ValueError
    naming ``rates`` and leaves every parameter as it was.  An update whose parameters are finite
    but whose samples could overflow (``overflow_risk``: a run whose width diverged) raises
    ``SampleOverflow`` and writes nothing; ``Strategy.tell`` ends the run with the stop reason
    ``"overflow"`` (``overflow_risk``).  ``new`` holds fresh arrays (read, not kept).
    """
    cast = {}
    for name, value in new.items():
        dtype = params[name].dtype
        if type(value) is np.ndarray and value.dtype == dtype:
            cast[name] = value  # already in the parameters' dtype: checked as it is
        else:
            with np.errstate(over="ignore", under="ignore"):  # checked just below, in the parameters' dtype
                cast[name] = np.asarray(value).astype(dtype)
    if not _small_gaussian_fits(cast):  # otherwise each check in turn, naming what failed
        _check_written(owner, params, cast, rates)
    for name, value in cast.items():
        params[name][...] = value
    _WRITTEN.params = params if cast.keys() == params.keys() else None  # every parameter written: stamp them


def _check_written(owner: str, params: dict[str, np.ndarray], cast: dict[str, np.ndarray], rates: str) -> None:
    """``write_params``'s checks of the updated parameters ``cast``: finite (sigma > 0), then their reach."""
    for name, value in cast.items():
        if not all_finite(value) or (name == "sigma" and not all_positive(value)):
            raise ValueError(
                f"{owner}: the updated {name} is not finite{'' if name != 'sigma' else ' and > 0'} in "
                f"{params[name].dtype}; rescale the fitness or lower {rates} (nothing was changed)"
            )
    risk = overflow_risk({**params, **cast})
    if risk is not None:
        raise SampleOverflow(f"{owner}: after this update {risk}; the update was not written")


_LARGEST = {
    np.dtype(np.float32): float(np.finfo(np.float32).max),
    np.dtype(np.float64): float(np.finfo(np.float64).max),
}


def _small_gaussian_fits(new: dict[str, np.ndarray]) -> bool:
    """True when ``new`` is a few entries of ``mu`` and ``sigma`` that pass every check of ``_check_written``.

    On Python floats (a few entries: cheaper than the NumPy calls): sum_i |mu_i| + 64 sum_i sigma_i
    below the dtype's largest number bounds every |mu_i| + 64 sigma_i (so mu and sigma are finite,
    and no sample overflows: its rounding in the dtype stays finite too), and min sigma_i > 0.  A
    NaN makes the sums NaN, which fails the comparison.  False otherwise (larger, other
    parameters, a sum beyond the bound, or a check that fails): the checks run one by one.
    """
    mu, sigma = new.get("mu"), new.get("sigma")
    if len(new) != 2 or mu is None or sigma is None or mu.size > SMALL_SIZE or mu.shape != sigma.shape:
        return False
    largest, mus, sigmas = _LARGEST.get(mu.dtype), mu.tolist(), sigma.tolist()
    if largest is None or sigma.dtype != mu.dtype or mu.ndim != 1:
        return False
    return min(sigmas) > 0 and sum(map(abs, mus)) + SAMPLE_REACH * sum(sigmas) < largest


# The params dict whose every entry write_params last wrote on this thread (else None): ``owning`` stamps it.
_WRITTEN = threading.local()
Method = TypeVar("Method", bound=Callable[..., Any])


def owning(method: Method) -> Method:
    """``ask``/``tell`` on a distribution this strategy owns: parameters it wrote and checked are not re-checked.

    On entry, params still holding what ``write_params`` last wrote (the stamp:
    ``Distribution._params_unchanged``, an identity and bytes comparison) set ``_checked``
    for the call, so the distribution skips its parameter checks.  A user who changed them
    in place, or replaced one, breaks the stamp, and the call checks them (and raises) as any
    other call does.  After a successful call that wrote every parameter through
    ``write_params`` the parameters are stamped; after one that wrote them otherwise (an
    optimizer's step) the stamp no longer matches and the next call checks them.
    """

    @functools.wraps(method)
    def run(self: Strategy, *args: Any, **kwargs: Any) -> Any:
        p = self.distribution
        p._checked = p._params_unchanged()
        _WRITTEN.params = None
        try:
            result = method(self, *args, **kwargs)
        finally:
            p._checked = False
        written, _WRITTEN.params = _WRITTEN.params, None
        if written is not None and written is p.params:
            p._stamp_params()
        return result

    return run  # type: ignore[return-value]


@dataclass(frozen=True)
class Result:
    """A run's outcome, as pycma's ``es.result``: the best point and value (the user's sign), counts, state, stop."""

    xbest: np.ndarray | None  # the best evaluated point (inside the box with bounds); None before the first tell
    fbest: float  # its fitness; nan before the first tell
    evaluations: int
    generations: int
    mean: np.ndarray  # the search distribution's mean now
    sigma: float | np.ndarray  # the strategy's step size now (a scalar or a (d,) vector, as ``es.sigma``)
    stop: dict[str, float]  # the criteria that fired (empty: the run may go on)
    failed: int = 0  # evaluations that were not finite and were ranked worst (nan_policy="worst")


class Strategy:
    """Base class: ``ask() -> x (popsize, d)``, ``tell(fitness (popsize,))``, ``stop()``, ``result``.

    Options every strategy takes (keywords):

    - ``minimize``: False (default: higher fitness is better) or True; ``best`` and ``result``
      speak the user's sign.
    - ``nan_policy``: ``"raise"`` (default: a non-finite fitness is a ValueError) or ``"worst"``
      (strategies that rank their fitness only: a non-finite value ranks below every finite one,
      ties among them shared; ``failed_last`` and ``result.failed`` count them).
    - ``bounds``: ``(lower, upper)``, scalars or (d,) arrays: ``ask`` returns samples projected
      onto the box and ``tell`` adds a penalty growing with the squared distance (``_bounds``).
    - pycma's stop criteria and thresholds (``_stopping``): ``ftarget``, ``maxfevals``,
      ``maxiter``, ``tolfun``, ``tolfunhist``, ``tolx``, ``tolupsigma``, ``tolstagnation``,
      ``tolflatfitness``; None turns one off.
    """

    distribution: Distribution
    rank_based: ClassVar[bool] = True  # the update sees only the fitness' ranks: nan_policy="worst" is allowed
    _mean_name: ClassVar[str] = "mu"  # the distribution's parameter that is the search mean

    def __init__(
        self,
        distribution: Distribution,
        popsize: object,
        rng: RNGLike,
        *,
        minimize: bool = False,
        nan_policy: str = "raise",
        bounds: object = None,
        **stop: Any,
    ) -> None:
        self.distribution = distribution
        self.popsize = check_sample_count("popsize", popsize, minimum=2)
        self.rng = as_rng(rng)
        self.minimize = check_bool("minimize", minimize)
        if nan_policy not in ("raise", "worst"):
            raise ValueError(f"nan_policy must be 'raise' or 'worst', got {nan_policy!r}")
        if nan_policy == "worst" and not self.rank_based:
            raise ValueError(
                f"nan_policy='worst' needs a strategy that ranks its fitness; {type(self).__name__} uses the "
                "values themselves, so a failed evaluation has no rank to take: use nan_policy='raise'"
            )
        self.nan_policy = nan_policy
        self.bounds = None if bounds is None else Box(bounds, distribution.dim)
        if self.bounds is not None and getattr(distribution, "noise", None) is not None:
            raise ValueError("bounds cannot be used with a noise table: encoded samples cannot be repaired")
        self._stopping = Stopping(distribution.dim, self.popsize, stop)
        self.generation = 0
        self.evaluations = 0
        self.failed = 0  # non-finite evaluations ranked worst, over the run
        self.failed_last = 0  # ... in the last generation
        self.best: Best | None = None
        self.estimate: Estimate | None = None  # the last tell's gradient estimate
        self._initial_width: float | None = None
        self._population: Samples | None = None
        self._z: np.ndarray | None = None  # the standard draws behind ``_population``, when ``_draw`` kept them
        self._ranked: tuple[np.ndarray, np.ndarray] | None = None  # tell's argsort of the costs, and them sorted
        self._overflow: str | None = None  # why the last update was not written (its samples could overflow)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pickles made before the run layer lack its state: it starts as a new run's would."""
        self.__dict__.update(state)
        self.__dict__.setdefault("_overflow", None)
        self.__dict__.setdefault("_z", None)
        if "_stopping" not in state:
            self.minimize, self.nan_policy, self.bounds = False, "raise", None
            self._stopping = Stopping(self.dim, self.popsize, {})
            self.evaluations, self.failed, self.failed_last = self.generation * self.popsize, 0, 0
            self.estimate = state.get("estimate")
            self._initial_width = None

    @property
    def dim(self) -> int:
        return self.distribution.dim

    @property
    def mean(self) -> np.ndarray:
        """The search distribution's current mean (a copy)."""
        return self.distribution.params[self._mean_name].copy()

    @property
    def sigma(self) -> float | np.ndarray:
        """The step size: a float (one global step) or a (d,) array (one per coordinate), as the strategy has it."""
        raise NotImplementedError

    def _widths(self) -> np.ndarray:
        """The search distribution's standard deviation along each coordinate, shape (d,)."""
        raise NotImplementedError

    def _own_stop(self) -> dict[str, float]:
        """Criteria of this strategy beside the generic ones (e.g. a covariance's condition)."""
        return {}

    def stop(self) -> dict[str, float]:
        """The stop criteria that fired after the last tell, ``{name: threshold}``; empty: go on.

        Beside pycma's criteria (``_stopping``) and the strategy's own, ``"overflow"`` (value: the
        largest float of the parameters' dtype) when the last update was not written because the
        next samples could overflow (a diverging width, see ``write_params``).
        """
        fired = {**self._stopping.check(self), **self._own_stop()}
        if self._overflow is not None:
            fired["overflow"] = float(np.finfo(self.distribution.params[self._mean_name].dtype).max)
        return fired

    @property
    def result(self) -> Result:
        """The run so far: best point and value (the user's sign), counts, mean, sigma, stop reasons."""
        best = self.best
        sigma = self.sigma
        return Result(
            xbest=None if best is None else best.x.copy(),
            fbest=math.nan if best is None else best.fitness,
            evaluations=self.evaluations,
            generations=self.generation,
            mean=self.mean,
            sigma=sigma.copy() if isinstance(sigma, np.ndarray) else sigma,
            stop=self.stop(),
            failed=self.failed,
        )

    @owning
    def ask(self, encode: bool = False) -> Samples:
        """Draw the next population, shape (popsize, d); ``tell`` takes its fitness.

        With ``bounds``, the samples projected onto the box (evaluate these). With
        ``encode=True`` (a strategy built with ``noise=NoiseTable(...)``) the population's
        (index, sign) encoding instead, for workers that rebuild it.  A ValueError instead of samples
        that could overflow (sigma or mu near the largest float), and after an ``"overflow"`` stop.
        """
        self._check_reach()
        if encode:
            if not isinstance(self.distribution, Normal) or self.distribution.noise is None:
                raise ValueError(
                    f"encode=True needs a noise table: build {type(self).__name__}(..., noise=NoiseTable(size, seed))"
                )
            self._population = self.distribution.sample(self.popsize, self.rng, encode=True)
            return self._population
        self._z = None
        self._population = self._draw()
        if self.bounds is not None:
            return self.bounds.repair(self._population)
        return self._population.copy()

    def _draw(self) -> np.ndarray:
        """``distribution.sample(popsize, rng)``, without the checks ``ask`` has already made.

        ``_check_reach`` found the parameters of a ``Normal`` with a learned sigma valid with every
        |mu_i| + 64 sigma_i finite (``overflow_risk``; or ``write_params`` did and vouches for them),
        so no sample can overflow: the distribution's scan for it, and its checks of the parameters
        and of the popsize (checked when the strategy was built), are skipped.  The same draws either way.
        """
        p = self.distribution
        if isinstance(p, Normal) and p.learn_sigma and p.noise is None:  # checked: here or by _check_reach
            if (
                type(p) is Normal
                and isinstance(self.rng, np.random.Generator)
                and p.mu.size * self.popsize <= SMALL_DRAW
            ):
                # Normal._sample's draw for a small population: the same numbers, fewer calls; z is kept
                # for the update (``_z``: never recovered from x, which loses it below mu's rounding step)
                z = self.rng.standard_normal((self.popsize, p.dim), p.dtype)
                x = z * p.sigma  # checked > 0 here unless write_params vouches for it
                x += p.mu
                self._z = z
                return x
            return p._sample(self.popsize, self.rng)
        return p.sample(self.popsize, self.rng)

    def _check_reach(self) -> None:
        """Refuse to draw when the samples could overflow: a clear error rather than inf samples."""
        name = type(self).__name__
        if self._overflow is not None:
            raise ValueError(f"{name} has stopped (es.stop() -> 'overflow'): {self._overflow}")
        if self.distribution._checked:
            return  # the parameters are as write_params wrote them, and it checked their reach
        check_params(self.distribution)  # a parameter changed by hand: named if not finite, before its reach
        risk = overflow_risk(gaussian_params(self.distribution))
        if risk is not None:
            raise ValueError(f"{name}.ask(): {risk}; start from a smaller sigma or mu")

    @owning
    def tell(self, fitness: object, x: object = None) -> None:
        """Update from one fitness per row of the last ``ask()`` (higher is better, lower with ``minimize``).

        ``fitness`` must have shape (popsize,) and be finite (with ``nan_policy="worst"``, non-finite
        values rank worst); otherwise a ValueError, and nothing changes (``ask`` need not be repeated).
        ``x``: the population the fitness belongs to, when it was drawn elsewhere from this
        ``distribution`` (e.g. ``npevograd.parallel.evaluate(f, es.distribution, es.popsize, es.rng)``'s
        ``samples``, rows or encoded); by default the last ``ask()``'s.  Rows ``x`` that this
        distribution would practically never draw are refused (``check_plausible``).  An update whose
        next samples could overflow is not written: the generation counts and ``stop()`` reports
        ``"overflow"``.
        """
        samples = self._pending(x)
        raw = self._check_fitness(fitness)
        costs, failed = self._costs(samples, raw)
        order = costs.argsort(kind="stable")  # best first, ties in sample order
        self._ranked = order, costs[order]  # ranked once: for the stop record and any rank-based update
        best = self._best_of(samples, raw)  # decoded before the update moves mu and sigma
        if self._initial_width is None:
            self._initial_width = float(self._widths().max())
        try:
            estimate = self._update(samples, -costs)  # strategies maximise
        except SampleOverflow as err:
            self._overflow, estimate = str(err), None
        self._commit(best, estimate, self._ranked[1], failed)

    def _check_fitness(self, fitness: object) -> np.ndarray:
        arr = as_float_array("fitness", fitness, finite=self.nan_policy == "raise")
        if arr.shape != (self.popsize,):
            raise ValueError(
                f"fitness must have shape ({self.popsize},), one value per row of ask(), got shape {arr.shape}"
            )
        return arr

    def _costs(self, samples: Samples, raw: np.ndarray) -> tuple[np.ndarray, int]:
        """The fitness as costs (lower is better): the sign, the bound penalty, failed evaluations ranked worst.

        A penalised cost that overflows (a fitness near the largest float outside the box) ranks worst too.
        """
        costs = raw if self.minimize else -raw
        if self.nan_policy == "raise" and self.bounds is None:
            return costs, 0  # _check_fitness found every value finite: so are the costs
        failed = int(raw.size - np.count_nonzero(np.isfinite(raw)))  # 0 unless nan_policy="worst"
        if self.bounds is not None:
            x = self._rows(samples)
            with np.errstate(over="ignore", invalid="ignore"):  # a penalised cost beyond the largest float: worst
                costs = costs + self.bounds.penalty(x, self.bounds.repair(x), costs, self._widths())
        ok = np.isfinite(costs)
        if ok.all():
            return costs, failed
        return worst_for_failed(costs, ok), failed

    def _rows(self, samples: Samples) -> np.ndarray:
        if isinstance(samples, EncodedSamples):
            if not isinstance(self.distribution, Normal):
                raise TypeError(f"{type(self).__name__} takes sample rows, not encoded samples")
            return self.distribution.decode(samples)
        return samples

    def _pending(self, x: object = None) -> Samples:
        if x is not None:
            samples = self.distribution.check_x(x)
            if samples.shape[0] != self.popsize:
                raise ValueError(f"x has {samples.shape[0]} samples, expected popsize = {self.popsize}")
            if not isinstance(samples, EncodedSamples):  # encoded samples are the table's windows: drawn here
                check_plausible(self.distribution, samples)
            return samples
        if self._population is None:
            raise ValueError(f"{type(self).__name__}.tell() needs a population: call ask() first")
        return self._population

    def _best_of(self, x: Samples, raw: np.ndarray) -> Best | None:
        """This population's best evaluated point (a copy) if it beats the best so far, else None."""
        if self.nan_policy == "raise":  # every value finite (_check_fitness): the first best, as argmax below
            i = int(raw.argmin() if self.minimize else raw.argmax())
        else:
            score = np.where(np.isfinite(raw), -raw if self.minimize else raw, -np.inf)
            i = int(score.argmax())
            if not np.isfinite(score[i]):
                return None  # every evaluation failed
        if self.best is not None and not self._better(raw.item(i), self.best.fitness):
            return None  # the usual case late in a run: no row to copy
        if isinstance(x, EncodedSamples):
            row = self._rows(x)[i]
        else:
            row = np.array(x[i])
        if self.bounds is not None:
            row = self.bounds.repair(row)
        return Best(row, float(raw[i]))

    def _better(self, f: float, than: float) -> bool:
        return f < than if self.minimize else f > than

    def _check_values(self, name: str, values: object, allow_columns: bool = False) -> np.ndarray:
        arr = as_float_array(name, values)
        n = self.popsize
        shape_ok = arr.ndim == 1 or (allow_columns and arr.ndim == 2)
        if not shape_ok or arr.shape[0] != n:
            expected = f"({n},) or ({n}, k)" if allow_columns else f"({n},)"
            raise ValueError(f"{name} must have shape {expected}, one value per row of ask(), got shape {arr.shape}")
        return arr

    def _commit(self, best: Best | None, estimate: Estimate | None, ordered: np.ndarray, failed: int = 0) -> None:
        """After a successful update: keep the best and the estimate, count, record the sorted costs for ``stop()``."""
        if best is not None:
            self.best = best
        self.estimate = estimate
        self._population = self._z = None
        self.generation += 1
        self.evaluations += self.popsize
        self.failed += failed
        self.failed_last = failed
        self._stopping.record(ordered, self.generation)

    def _update(self, x: Samples, f: np.ndarray) -> Estimate | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.dim}, popsize={self.popsize}, generation={self.generation})"


class FixedSigma:
    """``sigma`` and ``_widths`` of a strategy whose distribution's sigma stays as given."""

    distribution: Normal
    dim: int

    @property
    def sigma(self) -> float | np.ndarray:
        """The fixed exploration noise: a float, or a (d,) array if given one (a copy)."""
        sigma = self.distribution.sigma
        return float(sigma) if np.ndim(sigma) == 0 else np.array(sigma)

    def _widths(self) -> np.ndarray:
        return np.broadcast_to(self.distribution.sigma, (self.dim,))


# The tail probability below which a told row is refused as not drawn from the strategy's distribution.
IMPLAUSIBLE_TAIL = 1e-12


def check_plausible(distribution: Distribution, x: np.ndarray) -> None:
    r"""Refuse rows ``x`` that the Gaussian search distribution practically never draws.

    A row drawn from N(mu, L L^T) has a squared Mahalanobis norm :math:`\|L^{-1}(x - \mu)\|^2 \sim \chi^2_d`;
    a row whose norm exceeds the chi-square(d) quantile of upper tail 1e-12 (``IMPLAUSIBLE_TAIL``; about
    d + 10 sqrt(2 d) + 28 for large d) is refused with a ValueError naming it.  A population of n
    genuine samples is refused with probability below n x 1e-12.  Costs one whitening (O(n d), or the
    triangular solve of a full factor).  Other distributions are not checked.
    """
    params = gaussian_params(distribution)
    whiten = getattr(distribution, "whiten", None)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if whiten is not None:
            z = np.asarray(whiten(x), dtype=np.float64)
        elif "mu" in params and "sigma" in params:
            z = (x.astype(np.float64) - params["mu"]) / params["sigma"]
        else:
            return
        largest = np.max(np.abs(z), axis=1)
        norm2 = largest**2 * np.sum((z / np.where(largest > 0, largest, 1.0)[:, None]) ** 2, axis=1)
    limit = _chi2_limit(distribution.dim)
    bad = np.flatnonzero(~(norm2 <= limit))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"x[{i}] is not a sample of this strategy's distribution: its squared Mahalanobis distance to the "
            f"mean is {norm2[i]:.4g}, beyond the chi-square({distribution.dim}) quantile {limit:.4g} of tail "
            f"{IMPLAUSIBLE_TAIL:g}; tell x drawn from es.distribution as it is now (nothing was changed)"
        )


@functools.lru_cache(maxsize=64)
def _chi2_limit(d: int) -> float:
    from scipy.special import chdtri  # the inverse survival function of chi-square(d)

    return float(chdtri(d, IMPLAUSIBLE_TAIL))


def worst_for_failed(costs: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``costs`` with each non-finite entry replaced by one value above every finite cost (ties shared)."""
    finite = costs[ok]
    if finite.size == 0:
        return np.zeros_like(costs)
    top = finite.max()
    worse = np.nextafter(top, np.inf)
    if not np.isfinite(worse):  # the largest finite cost is the largest float: halve every cost (ranks kept)
        finite = finite / 2
        top = finite.max()
        worse = np.nextafter(top, np.inf)
    out = np.full_like(costs, worse)
    out[ok] = finite
    return out
