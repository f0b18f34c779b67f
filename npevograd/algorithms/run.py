"""``optimize``: one call from a fitness function to a result, for any strategy, with restarts.

Minimising the 20-D ellipsoid with xNES, a progress line every 100 generations::

    import numpy as np
    import npevograd as ng

    scales = 1e3 ** (np.arange(20) / 19)

    def ellipsoid(x):                       # x: the population, shape (m, 20); returns shape (m,)
        return (scales * x**2).sum(axis=1)

    result = ng.optimize(ellipsoid, np.ones(20), 0.5, method="xnes", ftarget=1e-8, verbose=True)
    result.xbest, result.fbest, result.evaluations, result.stop

The fitness takes the whole population, shape (m, d), and returns one value per row, shape (m,).
A function of one point ``f(x_row)`` becomes one with
``lambda x: np.apply_along_axis(f, 1, x)`` or ``lambda x: np.array([f(row) for row in x])``.
With an ``executor`` the population is split into batches evaluated there
(``npevograd.parallel.evaluate``): the fitness must then be picklable (a module-level function).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._checks import RNGLike, as_float_array, check_sample_count
from ._bounds import Box
from ._loop import drive
from ._strategy import Result, Strategy
from .restarts import REGIMES, Restarts, StrategyFactory

# method name -> class name in npevograd.algorithms, resolved when called (CMA-ES arrives in its own module)
METHODS = {
    "snes": "SNES",
    "xnes": "XNES",
    "pgpe": "PGPE",
    "openes": "OpenES",
    "cmaes": "CMAES",
    "sepcmaes": "SepCMAES",
}


def available_methods() -> list[str]:
    """The method names whose strategy this installation has."""
    import npevograd.algorithms as algorithms

    return [name for name, cls in METHODS.items() if hasattr(algorithms, cls)]


def strategy_class(method: object) -> type[Strategy]:
    """The strategy class of a method name (``"snes"``, ``"xnes"``, ...), or a clear ValueError."""
    import npevograd.algorithms as algorithms

    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {available_methods()}, got {type(method).__name__}")
    name = METHODS.get(method.lower())
    if name is None:
        raise ValueError(f"method must be one of {available_methods()}, got {method!r}")
    cls = getattr(algorithms, name, None)
    if cls is None:
        raise ValueError(
            f"method {method!r} needs npevograd.algorithms.{name}, which this installation does not have; "
            f"the available methods are {available_methods()}"
        )
    return cls


def optimize(
    fitness: Callable[[np.ndarray], object],
    x0: object,
    sigma0: object,
    method: str = "cmaes",
    *,
    minimize: bool = True,
    restarts: str | int | None = None,
    budget: int | None = None,
    box: object = None,
    executor: Any = None,
    callback: Callable[[Strategy], object] | None = None,
    verbose: bool | int = False,
    rng: RNGLike = None,
    **options: Any,
) -> Result:
    """Minimise (or, with ``minimize=False``, maximise) ``fitness`` from ``x0`` with step size ``sigma0``.

    Parameters
    ----------
    fitness : callable
        ``fitness(x)``: x the population, shape (m, d); returns shape (m,), one value per row (see the
        module docstring for a row-wise function).  Non-finite values: see ``nan_policy``.
    x0 : array (d,)
        The start (the first run's mean).
    sigma0 : float or array
        The initial step size: a scalar, or what the strategy takes (a (d,) vector, XNES a factor).
    method : str
        ``"cmaes"`` (default), ``"sepcmaes"``, ``"snes"``, ``"xnes"``, ``"pgpe"``, ``"openes"``;
        ``available_methods()`` lists them.
    minimize : bool
        True (default): lower fitness is better.  ``result.fbest`` is in the fitness' own sign.
    restarts : None, "ipop", "bipop" or int
        None: one run.  ``"ipop"``/``"bipop"``: restarts (``Restarts``, at most 9 after the first);
        an int k: IPOP with at most k restarts.  Later runs start uniformly in ``box``.
    budget : int or None
        Total evaluations (over all runs).
    box : (lower, upper) or None
        Where restarts start; default: ``bounds`` when given and finite, else every run starts at ``x0``.
    executor : concurrent.futures.Executor or None
        Evaluate there (``npevograd.parallel.evaluate``); None: in this process, one call per generation.
    callback : callable or None
        ``callback(es)`` after every generation with the current strategy; returning True stops the run
        (``result.stop`` then has ``"callback"``).
    verbose : bool or int
        A pycma-style progress line every k generations (True: 100): generation, evaluations, best f,
        axis ratio (full-covariance strategies), sigma, smallest and largest width, time.
    rng : Generator, int or None
        The random source (of the strategy, or of the restarts, which seed each run from it).
    **options
        Passed to the strategy: ``popsize``, learning rates, ``bounds``, ``nan_policy``, the stop criteria
        (``ftarget``, ``tolx``, ``maxiter``, ...; see ``Strategy``).

    Returns
    -------
    Result (``RestartResult`` with restarts): xbest, fbest, evaluations, generations, mean, sigma, stop.
    """
    cls = strategy_class(method)
    if restarts is not None and (isinstance(restarts, bool) or not isinstance(restarts, (str, int, np.integer))):
        raise TypeError(f"restarts must be None, 'ipop', 'bipop' or an int >= 0, got {type(restarts).__name__}")
    if isinstance(restarts, str) and restarts not in REGIMES:
        raise ValueError(f"restarts must be None, 'ipop', 'bipop' or an int >= 0, got {restarts!r}")
    if budget is not None:
        budget = check_sample_count("budget", budget)
        if "maxfevals" in options:
            raise ValueError("give budget or maxfevals, not both (budget is the total over all runs)")
    popsize = options.pop("popsize", None)
    options["minimize"] = minimize
    if restarts is None:
        if box is not None:
            raise ValueError("box sets where restarts start: it needs restarts='ipop', 'bipop' or an int")
        if budget is not None:
            options["maxfevals"] = budget
        es = cls(x0, sigma0, popsize=popsize, rng=rng, **options)
        return drive(es, fitness, executor=executor, callback=callback, verbose=verbose)
    regime, max_restarts = (restarts, 9) if isinstance(restarts, str) else ("ipop", restarts)
    start = as_float_array("x0", x0)
    if box is None and options.get("bounds") is not None and start.ndim == 1:
        bounds = Box(options["bounds"], start.size)
        if np.all(np.isfinite(bounds.lower)) and np.all(np.isfinite(bounds.upper)):
            box = (bounds.lower, bounds.upper)
    factory = StrategyFactory(cls, sigma0, popsize, options)
    runner = Restarts(
        factory, x0, regime, box, budget, options.get("ftarget"), check_sample_count("restarts", max_restarts, 0), rng
    )
    return drive(runner, fitness, executor=executor, callback=callback, verbose=verbose)
