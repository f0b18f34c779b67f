"""When to stop a run: pycma's termination criteria, with its names and default thresholds.

Every strategy keeps one ``Stopping``.  ``record`` takes each generation's costs (the
fitness in the minimisation sense, bound penalties included, as pycma's ``fit.fit``);
``check`` returns the criteria that fired as ``{name: threshold}``, empty while the run
should go on.  The generic criteria only need the strategy's per-coordinate search widths
(``Strategy._widths()``: the standard deviation of the search distribution along each
coordinate) and its mean; a strategy adds its own in ``Strategy._own_stop()``.

========================  =====================================================  ===================================
name                      fires when                                             default threshold
========================  =====================================================  ===================================
``ftarget``               the best fitness reached the target (user's sign)      None (off)
``maxfevals``             evaluations >= maxfevals                               None (off)
``maxiter``               generations >= maxiter                                 100 + 150 (d + 3)^2 / sqrt(popsize)
``tolfun``                range of this generation's costs and of the recent     1e-11
                          best costs (10 + 30 d / popsize generations) < tolfun
``tolfunhist``            range of the recent best costs < tolfunhist            1e-12
                          (at least 10 generations)
``tolx``                  every coordinate's search width < tolx                 1e-11
``tolupsigma``            the largest width grew by tolupsigma against the       1e20
                          largest initial width (typically a sign mistake)
``tolstagnation``         over the last tolstagnation generations the median     100 + 100 d^1.5 / popsize
                          of the recent best and median costs did not improve
``tolflatfitness``        more than tolflatfitness generations in a row whose    1
                          best cost equals the cost at rank 0.75 popsize
``noeffectcoord``         adding 0.2 width to a coordinate of the mean leaves    (on)
                          it unchanged in floating point
========================  =====================================================  ===================================

pycma (Hansen et al., ``cma.CMAEvolutionStrategy.stop``, ``cma.CMAOptions``) is the
reference for every rule and default; ``tolstagnation`` samples its histories every
fifth generation as pycma does.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from .._checks import check_sample_count

_STAGNATION_HISTORY = 20_000  # sampled generations kept for tolstagnation (pycma: 2e4)


def _threshold(name: str, value: object, *, integer: bool = False) -> float | int | None:
    """A criterion's threshold: None (off) or a number > 0 (an int >= 0 for generation counts)."""
    if value is None:
        return None
    if integer:
        return check_sample_count(name, value, minimum=0)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number or None, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or v <= 0:
        raise ValueError(f"{name} must be a number > 0 or None, got {value!r}")
    return v


def _target(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"ftarget must be a real number or None, got {type(value).__name__}")
    if math.isnan(float(value)):
        raise ValueError("ftarget must be a number or None, got nan")
    return float(value)


class Stopping:
    """The thresholds of every criterion and the histories they read."""

    def __init__(self, dim: int, popsize: int, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(STOP_DEFAULTS))
        if unknown:
            raise TypeError(f"unknown stop criteria {unknown}; the criteria are {sorted(STOP_DEFAULTS)}")
        opts = {**STOP_DEFAULTS, **options}
        self.ftarget = _target(opts["ftarget"])
        self.maxfevals = _threshold("maxfevals", opts["maxfevals"], integer=True)
        default = {
            "maxiter": int(100 + 150 * (dim + 3) ** 2 // math.sqrt(popsize)),
            "tolstagnation": int(100 + 100 * dim**1.5 / popsize),
        }
        opts.update({name: default[name] for name in default if opts[name] == "default"})
        self.maxiter = _threshold("maxiter", opts["maxiter"], integer=True)
        self.tolfun = _threshold("tolfun", opts["tolfun"])
        self.tolfunhist = _threshold("tolfunhist", opts["tolfunhist"])
        self.tolx = _threshold("tolx", opts["tolx"])
        self.tolupsigma = _threshold("tolupsigma", opts["tolupsigma"])
        self.tolstagnation = _threshold("tolstagnation", opts["tolstagnation"], integer=True)
        self.tolflatfitness = _threshold("tolflatfitness", opts["tolflatfitness"], integer=True)
        self.recent_best: deque[float] = deque(maxlen=int(10 + 30 * dim / popsize) + 1)  # pycma's fit.hist
        self.best_history: deque[float] = deque(maxlen=_STAGNATION_HISTORY)  # newest first, every 5th generation
        self.median_history: deque[float] = deque(maxlen=_STAGNATION_HISTORY)
        self.cost_range = math.inf
        self.flat_generations = 0
        self.best_generation = 0  # the generation that found the best cost so far
        self.best_cost = math.inf

    def record(self, ordered: np.ndarray, generation: int) -> None:
        """Take the costs of generation ``generation`` (1 for the first tell), sorted; finite, lower is better."""
        # the best, the cost at rank 0.75 popsize and the worst, as Python floats: the range of costs
        # near +-1.7e308 is inf without a warning (wide, as it should read)
        best, quartile, worst = ordered.item(0), ordered.item(int(0.75 * len(ordered))), ordered.item(-1)
        self.cost_range = worst - best
        self.recent_best.appendleft(best)
        if generation % 5 == 0:
            self.best_history.appendleft(best)
            self.median_history.appendleft(_sorted_median(ordered))
        flat = not best < quartile
        self.flat_generations = self.flat_generations + 1 if flat else 0
        if best < self.best_cost:
            self.best_cost, self.best_generation = best, generation

    def check(self, es: Any) -> dict[str, float]:
        """The criteria that fired for strategy ``es`` after its last tell."""
        fired: dict[str, float] = {}
        if es.generation == 0:
            return fired
        if self.ftarget is not None and es.best is not None:
            reached = es.best.fitness <= self.ftarget if es.minimize else es.best.fitness >= self.ftarget
            if reached:
                fired["ftarget"] = self.ftarget
        if self.maxfevals is not None and es.evaluations >= self.maxfevals:
            fired["maxfevals"] = self.maxfevals
        if self.maxiter is not None and es.generation >= self.maxiter:
            fired["maxiter"] = self.maxiter
        recent_range = float(max(self.recent_best)) - float(min(self.recent_best))  # Python floats: inf, no warning
        if self.tolfun is not None and self.cost_range < self.tolfun and recent_range < self.tolfun:
            fired["tolfun"] = self.tolfun
        if self.tolfunhist is not None and len(self.recent_best) > 9 and recent_range < self.tolfunhist:
            fired["tolfunhist"] = self.tolfunhist
        widths = es._widths()
        if self.tolx is not None and np.all(widths < self.tolx):
            fired["tolx"] = self.tolx
        if self.tolupsigma is not None and float(widths.max()) > self.tolupsigma * es._initial_width:
            fired["tolupsigma"] = self.tolupsigma
        if self._stagnated(es):
            fired["tolstagnation"] = self.tolstagnation
        if self.tolflatfitness is not None and self.flat_generations > self.tolflatfitness:
            fired["tolflatfitness"] = self.tolflatfitness
        mean = es.mean  # a copy; XNES refreshes its distribution view only when asked for it
        if np.any(mean == mean + 0.2 * widths):
            fired["noeffectcoord"] = 0.2
        return {name: float(threshold) for name, threshold in fired.items()}

    def _stagnated(self, es: Any) -> bool:
        """pycma's tolstagnation: the newer part of the sampled histories is no better than the older part."""
        if self.tolstagnation is None or self.tolstagnation == 0:
            return False
        d, n = es.dim, es.popsize
        k = int(max(self.tolstagnation / 5 / 2, len(self.best_history) / 10))
        if not (
            es.generation > d * (5 + 100 / n)
            and es.generation - self.best_generation > self.tolstagnation / 2
            and len(self.best_history) > 100
            and 2 * k < len(self.best_history)
        ):
            return False
        best, median = list(self.best_history), list(self.median_history)
        newer, older = median[:k], median[k : 2 * k]
        return _median(newer) >= _median(older) and _median(best[:k]) >= _median(best[k : 2 * k])


def _median(values: Any) -> float:
    """np.median's value, also where the middle pair's sum would overflow (costs near 1.8e308)."""
    return _sorted_median(np.sort(np.asarray(values, dtype=np.float64)))


def _sorted_median(ordered: np.ndarray) -> float:
    """``np.median`` of an already sorted 1-D array, without its sort and NaN scan; halves added, so no overflow."""
    m = len(ordered)
    middle = ordered[(m - 1) // 2 : m // 2 + 1]
    return float(middle[0]) if m % 2 else float(middle[0] / 2 + middle[1] / 2)


# Every criterion's default (pycma's CMAOptions); "default" marks a default that depends on d and popsize.
STOP_DEFAULTS: dict[str, Any] = {
    "ftarget": None,
    "maxfevals": None,
    "maxiter": "default",
    "tolfun": 1e-11,
    "tolfunhist": 1e-12,
    "tolx": 1e-11,
    "tolupsigma": 1e20,
    "tolstagnation": "default",
    "tolflatfitness": 1,
}
