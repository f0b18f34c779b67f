r"""Restarts: IPOP (Auger and Hansen 2005) and BIPOP (Hansen 2009) around any strategy.

A run of a strategy ends when its ``stop()`` fires (or, for BIPOP's small runs, at their
generation budget); a restart builds a new strategy with ``factory(x0, popsize, rng)``,
from a new start ``x0`` drawn uniformly in ``box`` (else the same ``x0``), and goes on until
the total ``budget`` of evaluations, the target ``ftarget`` or ``max_restarts`` restarts.

IPOP ("A restart CMA evolution strategy with increasing population size", CEC 2005):
run k (k = 0, 1, ...) has popsize :math:`\lambda_k = \lambda_0\, 2^k` (``incpopsize = 2``),
:math:`\lambda_0` the strategy's default.

BIPOP ("Benchmarking a BI-population CMA-ES on the BBOB-2009 function testbed", GECCO 2009),
as pycma's ``fmin(..., bipop=True)``: the first run has the default popsize; afterwards, while
the evaluations spent in small-regime runs (the first run counted there) are below those spent
in large-regime runs, a *small* run follows, else a *large* one.  With :math:`i` the number of
large runs so far (the next large one's exponent), U uniform on [0, 1) drawn per small run:

.. math::

    \text{large: } \lambda = \lambda_0 2^{i}, \ \sigma = \sigma_0; \qquad
    \text{small: } \lambda = \big\lfloor \lambda_0 (2^{i})^{U^2} \big\rfloor, \ \sigma = \sigma_0\, 10^{-2U},
    \ \text{at most } \tfrac{1}{2} E_{\text{large}} / \lambda \text{ generations}

with :math:`E_{\text{large}}` the evaluations of all large runs so far.  The factory receives the
small runs' sigma factor as the keyword ``sigma_scale`` when its signature has that parameter
(``optimize``'s does); otherwise the small runs differ from the large ones in popsize only.  A
small popsize keeps the parity of :math:`\lambda_0` (mirrored strategies need it even).

``Restarts`` is an ask/tell object (pickle it between generations to checkpoint: it resumes bit
for bit); ``restart(factory, fitness, x0, ...)`` runs it to the end.  Fitness values and the best
point speak the strategies' sign (``minimize`` is the factory's).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from .._checks import RNGLike, as_float_array, as_rng, check_sample_count
from ._strategy import Result, Samples, Strategy

REGIMES = ("ipop", "bipop")
INCPOPSIZE = 2  # Auger and Hansen 2005: the population doubles at each restart

Factory = Callable[..., Strategy]


class Run(NamedTuple):
    """One run of a restart sequence: its regime, popsize, counts, best value and why it stopped."""

    regime: str  # "first", "large" (IPOP: every restart) or "small"
    popsize: int
    evaluations: int
    generations: int
    fbest: float
    stop: dict[str, float]


@dataclass(frozen=True)
class RestartResult(Result):
    """``Result`` over all runs (best of all, total counts; mean and sigma of the last run) and each ``Run``."""

    runs: tuple[Run, ...] = field(default=())


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number or None, got {type(value).__name__}")
    if math.isnan(float(value)):
        raise ValueError(f"{name} must be a number or None, got nan")
    return float(value)


class Restarts:
    """IPOP or BIPOP restarts of the strategies ``factory`` builds: ``ask()``, ``tell(f)``, ``stop()``, ``result``.

    Parameters
    ----------
    factory : callable
        ``factory(x0, popsize, rng) -> Strategy``: popsize None for the strategy's default (the first
        run), an int afterwards; with a ``sigma_scale`` parameter BIPOP passes its small runs' factor.
        Picklable (a module-level function, a ``functools.partial`` or class) for checkpoints.
    x0 : array (d,)
        The first run's start.
    strategy : "ipop" or "bipop"
    box : (lower, upper) or None
        Later runs start uniformly in this box (scalars or (d,) arrays, finite); None: from ``x0``.
    budget : int or None
        Total evaluations over all runs; the sequence stops once it is reached (the last
        generation may pass it by less than one population).
    ftarget : float or None
        Stop once the best fitness reaches it (<= with ``minimize=True`` strategies, else >=).
    max_restarts : int
        Runs after the first (default 9, pycma's usual ``restarts=9``); as in pycma's
        ``fmin(bipop=True)``, BIPOP's small-population runs do not count.
    rng : Generator, int or None
        Draws the starts, BIPOP's U and each run's generator (``default_rng`` of a drawn seed).
    """

    def __init__(
        self,
        factory: Factory,
        x0: object,
        strategy: str = "ipop",
        box: object = None,
        budget: int | None = None,
        ftarget: float | None = None,
        max_restarts: int = 9,
        rng: RNGLike = None,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable as factory(x0, popsize, rng), got {type(factory).__name__}")
        if strategy not in REGIMES:
            raise ValueError(f"strategy must be 'ipop' or 'bipop', got {strategy!r}")
        self.factory, self.regime = factory, strategy
        self.x0 = as_float_array("x0", x0).copy()
        if self.x0.ndim != 1 or self.x0.size == 0:
            raise ValueError(f"x0 must be a 1-D array of shape (d,) with d >= 1, got shape {self.x0.shape}")
        self.box = None if box is None else _box(box, self.x0.size)
        self.budget = None if budget is None else check_sample_count("budget", budget)
        self.ftarget = None if ftarget is None else _real("ftarget", ftarget)
        self.max_restarts = check_sample_count("max_restarts", max_restarts, minimum=0)
        rng = as_rng(rng)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")
        self.rng = rng
        self._sigma_scale = "sigma_scale" in _parameters(factory)
        self.runs: list[Run] = []
        self.evaluations = 0  # of the finished runs
        self.generations = 0
        self.failed = 0
        self.best: tuple[np.ndarray, float] | None = None  # over the finished runs
        self.popsize0: int | None = None
        self.large_runs = 0  # BIPOP: large-regime runs so far (i above)
        self.small_evaluations = 0  # BIPOP: evaluations of the small regime (the first run included)
        self.large_evaluations = 0
        self._stopped: dict[str, float] = {}
        self._start(self.x0, None, "first", 1.0, None)

    # -- the current run
    def _start(self, x0: np.ndarray, popsize: int | None, regime: str, sigma_scale: float, maxiter: int | None) -> None:
        child = np.random.default_rng(int(self.rng.integers(2**63)))
        if self._sigma_scale:
            es = self.factory(x0, popsize, child, sigma_scale=sigma_scale)
        else:
            es = self.factory(x0, popsize, child)
        if not isinstance(es, Strategy):
            raise TypeError(f"factory must return an npevograd Strategy, got {type(es).__name__}")
        if es.dim != self.x0.size:
            raise ValueError(f"factory built a strategy of dimension {es.dim}, expected {self.x0.size} (x0's)")
        if self.popsize0 is None:
            self.popsize0 = es.popsize
        self.strategy, self.run_regime, self.run_maxiter = es, regime, maxiter

    def _run_stop(self) -> dict[str, float]:
        fired = self.strategy.stop()
        if self.run_maxiter is not None and self.strategy.generation >= self.run_maxiter:
            fired["maxiter"] = self.run_maxiter
        return fired

    def _next(self) -> None:
        """Close the current run and start the next one (the regime's popsize, sigma factor, start)."""
        es = self.strategy
        self.runs.append(
            Run(self.run_regime, es.popsize, es.evaluations, es.generation, es.result.fbest, self._run_stop())
        )
        self.evaluations += es.evaluations
        self.generations += es.generation
        self.failed += es.failed
        if es.best is not None and (self.best is None or es._better(es.best.fitness, self.best[1])):
            self.best = (es.best.x.copy(), es.best.fitness)
        if self.run_regime == "large":
            self.large_evaluations += es.evaluations
        else:
            self.small_evaluations += es.evaluations
        x0 = self.x0 if self.box is None else self.rng.uniform(self.box[0], self.box[1])
        base = int(self.popsize0 or 0)  # set by the first run
        if self.regime == "ipop" or self.small_evaluations >= max(1, self.large_evaluations):
            self.large_runs += 1
            self._start(x0, base * INCPOPSIZE**self.large_runs, "large", 1.0, None)
            return
        u = float(self.rng.uniform())
        popsize = int(base * (INCPOPSIZE**self.large_runs) ** (u * u))
        if base % 2 == 0:
            popsize += popsize % 2
        maxiter = max(1, int(0.5 * self.large_evaluations / popsize))
        self._start(x0, popsize, "small", 0.01**u, maxiter)

    # -- ask / tell ---------------------------------------------------------------------------------------------------
    def ask(self) -> np.ndarray:
        """The current run's next population, shape (popsize, d)."""
        if self._stopped:
            raise ValueError(f"the restarts have stopped ({sorted(self._stopped)}); read .result")
        return self.strategy.ask()  # type: ignore[return-value]

    def tell(self, fitness: object, x: Samples | None = None) -> None:
        """Tell the current run; if it stopped, start the next one unless the whole sequence is done."""
        if self._stopped:
            raise ValueError(f"the restarts have stopped ({sorted(self._stopped)}); read .result")
        self.strategy.tell(fitness, x)
        self._stopped = self._overall()
        if not self._stopped and self._run_stop():
            if self._counted_runs() > self.max_restarts:
                self._stopped = {"max_restarts": float(self.max_restarts)}
            else:
                self._next()

    def _counted_runs(self) -> int:
        """Finished runs that count against ``max_restarts``, the current one included: BIPOP's small runs do not."""
        runs = [run.regime for run in self.runs] + [self.run_regime]
        return len(runs) - runs.count("small")

    def _overall(self) -> dict[str, float]:
        fired: dict[str, float] = {}
        total = self.evaluations + self.strategy.evaluations
        if self.budget is not None and total >= self.budget:
            fired["maxfevals"] = float(self.budget)
        fbest = self._best()[1]
        es = self.strategy
        if self.ftarget is not None and not math.isnan(fbest) and not es._better(self.ftarget, fbest):
            fired["ftarget"] = self.ftarget
        return fired

    def stop(self) -> dict[str, float]:
        """Why the sequence stopped (``maxfevals``: the budget, ``ftarget``, ``max_restarts``); empty: go on."""
        return dict(self._stopped)

    def halt(self, reason: str) -> None:
        """Stop the sequence now (e.g. a callback asked to), with ``reason`` in ``stop()``."""
        self._stopped = {**self._stopped, reason: 1.0}

    def _best(self) -> tuple[np.ndarray | None, float]:
        es, best = self.strategy, self.best
        if es.best is not None and (best is None or es._better(es.best.fitness, best[1])):
            best = (es.best.x, es.best.fitness)
        return (None, math.nan) if best is None else (best[0].copy(), best[1])

    @property
    def result(self) -> RestartResult:
        """The best over all runs, the total counts, the last run's mean and sigma, the stop reasons and the runs."""
        es = self.strategy
        xbest, fbest = self._best()
        last = es.result
        current = Run(self.run_regime, es.popsize, es.evaluations, es.generation, last.fbest, self._run_stop())
        return RestartResult(
            xbest=xbest,
            fbest=fbest,
            evaluations=self.evaluations + es.evaluations,
            generations=self.generations + es.generation,
            mean=last.mean,
            sigma=last.sigma,
            stop=self.stop(),
            failed=self.failed + es.failed,
            runs=(*self.runs, current),
        )

    def __repr__(self) -> str:
        return f"Restarts({self.regime}, run {len(self.runs) + 1}, popsize={self.strategy.popsize})"


@dataclass(frozen=True)
class StrategyFactory:
    """``factory(x0, popsize, rng, sigma_scale)``: ``cls(x0, sigma0 * sigma_scale, popsize=, rng=, **options)``.

    Picklable, so a ``Restarts`` built on it checkpoints.  ``popsize`` None: ``default_popsize`` (None: the
    strategy's own default).
    """

    cls: type[Strategy]
    sigma0: Any
    default_popsize: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x0: np.ndarray, popsize: int | None, rng: RNGLike, sigma_scale: float = 1.0) -> Strategy:
        sigma = self.sigma0 if sigma_scale == 1.0 else np.asarray(self.sigma0, dtype=np.float64) * sigma_scale
        popsize = self.default_popsize if popsize is None else popsize
        return self.cls(x0, sigma, popsize=popsize, rng=rng, **self.options)


def _parameters(factory: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return set()


def _box(box: object, d: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(box, (tuple, list)) or len(box) != 2:
        raise TypeError(f"box must be a pair (lower, upper) of scalars or ({d},) arrays, got {box!r}")
    sides = []
    for name, side in zip(("lower", "upper"), box):
        arr = as_float_array(f"box' {name}", side)
        if arr.shape not in ((), (d,)):
            raise ValueError(f"box' {name} must be a scalar or of shape ({d},), got shape {arr.shape}")
        sides.append(np.broadcast_to(arr, (d,)).astype(np.float64))
    if not np.all(sides[0] < sides[1]):
        raise ValueError("box must have lower < upper in every coordinate")
    return sides[0], sides[1]


def restart(
    factory: Factory,
    fitness: Callable[[np.ndarray], object],
    x0: object,
    strategy: str = "ipop",
    *,
    executor: Any = None,
    callback: Callable[[Strategy], object] | None = None,
    verbose: bool | int = False,
    **options: Any,
) -> RestartResult:
    """Run ``Restarts(factory, x0, strategy, **options)`` to its end on ``fitness`` and return its result.

    ``options``: ``Restarts``' ``box``, ``budget``, ``ftarget``, ``max_restarts`` and ``rng``.
    ``fitness(x)`` takes a population (m, d) and returns (m,) values (see ``optimize``); ``executor``,
    ``callback(es)`` (True stops everything) and ``verbose`` as in ``optimize``.
    """
    from ._loop import drive

    restarts = Restarts(factory, x0, strategy, **options)
    return drive(restarts, fitness, executor=executor, callback=callback, verbose=verbose)  # type: ignore[return-value]
