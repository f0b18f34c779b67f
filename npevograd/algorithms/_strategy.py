"""The ask/tell loop every algorithm shares: sample, validate, update, remember the best.

An algorithm supplies its distribution and its ``_update(x, values)``; this base
draws the population (``ask``), validates what comes back (``tell``) before any
state changes, and keeps the best sample seen.  ``_update`` computes the new
parameters first and writes them last, so a bad ``tell`` leaves the state as it was.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Union

import numpy as np

from .._checks import RNGLike, all_finite, all_positive, as_float_array, as_rng, check_sample_count
from ..distributions import Distribution, Normal
from ..noise import EncodedSamples

Samples = Union[np.ndarray, EncodedSamples]


class Best(NamedTuple):
    """The best sample told so far (highest fitness) and its fitness."""

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


def write_params(owner: str, params: dict[str, np.ndarray], new: dict[str, np.ndarray], rates: str) -> None:
    """Write the updated parameters in place, all or none: each is checked finite (sigma > 0) in its dtype first.

    An update that overflows (an extreme fitness scale or learning rate) raises a ValueError
    naming ``rates`` and leaves every parameter as it was.  ``new`` holds fresh arrays (read, not kept).
    """
    cast = {}
    for name, value in new.items():
        dtype = params[name].dtype
        if type(value) is np.ndarray and value.dtype == dtype:
            cast[name] = value  # already in the parameters' dtype: checked as it is
        else:
            with np.errstate(over="ignore", under="ignore"):  # checked just below, in the parameters' dtype
                cast[name] = np.asarray(value).astype(dtype)
    for name, value in cast.items():
        if not all_finite(value) or (name == "sigma" and not all_positive(value)):
            raise ValueError(
                f"{owner}: the updated {name} is not finite{'' if name != 'sigma' else ' and > 0'} in "
                f"{params[name].dtype}; rescale the fitness or lower {rates} (nothing was changed)"
            )
    for name, value in cast.items():
        params[name][...] = value


class Strategy:
    """Base class: ``ask() -> x (popsize, d)``, ``tell(fitness (popsize,))``; all maximise."""

    distribution: Distribution

    def __init__(self, distribution: Distribution, popsize: object, rng: RNGLike) -> None:
        self.distribution = distribution
        self.popsize = check_sample_count("popsize", popsize, minimum=2)
        self.rng = as_rng(rng)
        self.generation = 0
        self.best: Best | None = None
        self._population: Samples | None = None

    @property
    def mean(self) -> np.ndarray:
        """The search distribution's current mean (a copy)."""
        return self.distribution.params["mu"].copy()

    def ask(self, encode: bool = False) -> Samples:
        """Draw the next population, shape (popsize, d); ``tell`` takes its fitness.

        With ``encode=True`` (a strategy built with ``noise=NoiseTable(...)``) the
        population's (index, sign) encoding instead, for workers that rebuild it.
        """
        if encode:
            if not isinstance(self.distribution, Normal) or self.distribution.noise is None:
                raise ValueError(
                    f"encode=True needs a noise table: build {type(self).__name__}(..., noise=NoiseTable(size, seed))"
                )
            self._population = self.distribution.sample(self.popsize, self.rng, encode=True)
            return self._population
        self._population = self.distribution.sample(self.popsize, self.rng)
        return self._population.copy()

    def tell(self, fitness: object, x: object = None) -> None:
        """Update from one fitness per row of the last ``ask()`` (higher is better).

        ``fitness`` must have shape (popsize,) and be finite; otherwise a ValueError,
        and nothing changes (``ask`` need not be repeated).  ``x``: the population the
        fitness belongs to, when it was drawn elsewhere from this ``distribution`` (e.g.
        ``npevograd.parallel.evaluate(f, es.distribution, es.popsize, es.rng)``'s
        ``samples``, rows or encoded); by default the last ``ask()``'s.
        """
        samples = self._pending(x)
        f = self._check_values("fitness", fitness)
        best = self._best_of(samples, f)  # decoded before the update moves mu and sigma
        self._update(samples, f)
        self._commit(best)

    def _pending(self, x: object = None) -> Samples:
        if x is not None:
            samples = self.distribution.check_x(x)
            if samples.shape[0] != self.popsize:
                raise ValueError(f"x has {samples.shape[0]} samples, expected popsize = {self.popsize}")
            return samples
        if self._population is None:
            raise ValueError(f"{type(self).__name__}.tell() needs a population: call ask() first")
        return self._population

    def _best_of(self, x: Samples, f: np.ndarray) -> Best | None:
        """This population's best sample (a copy) if it beats the best so far, else None."""
        i = int(f.argmax())
        fitness = float(f[i])
        if self.best is not None and not fitness > self.best.fitness:
            return None  # the usual case late in a run: no row to copy
        if isinstance(x, EncodedSamples):
            if not isinstance(self.distribution, Normal):
                raise TypeError(f"{type(self).__name__} takes sample rows, not encoded samples")
            row = self.distribution.decode(x)[i]
        else:
            row = np.array(x[i])
        return Best(row, fitness)

    def _check_values(self, name: str, values: object, allow_columns: bool = False) -> np.ndarray:
        arr = as_float_array(name, values)
        n = self.popsize
        shape_ok = arr.ndim == 1 or (allow_columns and arr.ndim == 2)
        if not shape_ok or arr.shape[0] != n:
            expected = f"({n},) or ({n}, k)" if allow_columns else f"({n},)"
            raise ValueError(
                f"{name} must have shape {expected}, one value per row of ask(), got shape {arr.shape}"
            )
        return arr

    def _commit(self, best: Best | None) -> None:
        """After a successful update: remember the best sample (``_best_of``'s, if any), close the generation."""
        if best is not None:
            self.best = best
        self._population = None
        self.generation += 1

    def _update(self, x: Samples, f: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.mean.shape[0]}, popsize={self.popsize}, generation={self.generation})"
