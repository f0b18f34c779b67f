"""The generation loop of ``optimize`` and ``restart``: evaluate, tell, report progress, call back, stop.

One loop drives a ``Strategy`` or a ``Restarts`` (both answer ``tell(f, x=...)``, ``stop()`` and
``result``).  Each generation is drawn and evaluated by ``npevograd.parallel.evaluate`` on the
current strategy's distribution and generator (in this process when ``executor`` is None), so a
run's trajectory is the same on every executor, and told back with its samples.  The fitness is
wrapped in ``PopulationFitness`` (picklable): it repairs the rows into the strategy's box and
returns each value with a flag for a non-finite one, so a failed evaluation reaches the strategy
(``nan_policy``) instead of stopping the evaluation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._bounds import Box
from ._strategy import Result, Strategy

VERBOSE_EVERY = 100  # verbose=True: a progress line every 100 generations (pycma's verb_disp)


@dataclass(frozen=True)
class PopulationFitness:
    """``fitness`` on a population (m, d), its rows repaired into ``box`` as ``ask`` does: (value, failed)."""

    fitness: Callable[[np.ndarray], object]
    box: Box | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.box is not None:
            x = self.box.repair(x)
        values = np.asarray(self.fitness(x))
        if values.shape != (x.shape[0],) or values.dtype.kind not in "biuf":
            raise ValueError(
                f"fitness must return one real value per row, shape ({x.shape[0]},), for a population of shape "
                f"{x.shape}; got {values.dtype} of shape {values.shape} (wrap a row-wise f as "
                "lambda x: np.array([f(row) for row in x]))"
            )
        values = values.astype(np.float64)
        failed = ~np.isfinite(values)
        return np.column_stack([np.where(failed, 0.0, values), failed])


def check_verbose(verbose: object) -> int:
    """verbose as generations between progress lines: False/0 none, True 100, an int k >= 1 every k."""
    if isinstance(verbose, bool):
        return VERBOSE_EVERY if verbose else 0
    if not isinstance(verbose, (int, np.integer)) or verbose < 0:
        raise ValueError(f"verbose must be a bool or an int >= 0 (generations between lines), got {verbose!r}")
    return int(verbose)


def axis_ratio(es: Strategy) -> float | None:
    """The ratio of the longest to the shortest principal axis of a full covariance (pycma's axis ratio), else None."""
    own = getattr(es, "axis_ratio", None)
    if own is not None:
        return float(own)
    factor = es.distribution.params.get("scale_tril")
    if factor is None:
        return None
    s = np.linalg.svd(factor, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else math.inf


class Progress:
    """pycma-style ``disp()`` lines: generation, evaluations, best f, axis ratio, sigma, min and max width, time.

    A generation with failed evaluations ranked worst (``nan_policy="worst"``) ends its line with their count.
    """

    HEADER = "Iterat #Fevals   function value  axis ratio  sigma  min&max std  t[m:s]"

    def __init__(self, every: int) -> None:
        self.every, self.start, self.shown = every, time.perf_counter(), None

    def line(self, es: Strategy, runner: Any, last: bool = False) -> None:
        """Strategy ``es``'s line after its latest generation, if due (``runner``: the Strategy or its Restarts)."""
        if not self.every or not (es.generation == 1 or es.generation % self.every == 0 or last):
            return
        evaluations = runner.result.evaluations  # a Restarts' next run has none yet
        if self.shown is not es:  # a new run: its header first
            print(f"{type(es).__name__} (popsize {es.popsize}, d {es.dim}):", flush=True)
            print(self.HEADER, flush=True)
            self.shown = es
        ratio = axis_ratio(es)
        sigma = es.sigma
        widths = es._widths()
        seconds = time.perf_counter() - self.start
        print(
            f"{es.generation:6d} {evaluations:7d} {es.result.fbest:+.9e} "
            f"{'-' if ratio is None else f'{ratio:.1e}':>7s} {float(np.max(sigma)):.2e} "
            f"{float(np.min(widths)):.0e} {float(np.max(widths)):.0e} "
            f"{int(seconds // 60)}:{seconds % 60:04.1f}" + (f"  {es.failed_last} failed" if es.failed_last else ""),
            flush=True,
        )


def drive(
    runner: Any,
    fitness: Callable[[np.ndarray], object],
    *,
    executor: Any = None,
    callback: Callable[[Strategy], object] | None = None,
    verbose: object = False,
) -> Result:
    """Run ``runner`` (a Strategy or Restarts) on ``fitness`` until ``stop()`` fires or ``callback`` returns True."""
    from ..parallel import evaluate

    if not callable(fitness):
        raise TypeError(f"fitness must be callable as fitness(x) with x of shape (m, d), got {type(fitness).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(es) or None, got {type(callback).__name__}")
    progress = Progress(check_verbose(verbose))
    stopped_by_callback = False
    while True:
        es: Strategy = getattr(runner, "strategy", runner)  # the current run of a Restarts
        encode = getattr(es.distribution, "noise", None) is not None  # workers rebuild the rows from the table
        population = es.ask(encode=encode)  # the ask/tell loop's own draw (with bounds: repaired into the box)
        wrapped = PopulationFitness(fitness, es.bounds)
        batch = None if executor is not None else es.popsize  # in this process: one call per generation
        evaluation = evaluate(wrapped, es.distribution, es.popsize, None, executor, batch, samples=population)
        values, failed = evaluation.fitness[:, 0], evaluation.fitness[:, 1] > 0
        runner.tell(np.where(failed, np.nan, values))
        finished = bool(runner.stop())
        progress.line(es, runner, last=finished or getattr(runner, "strategy", es) is not es)
        if callback is not None and callback(es) is True:
            stopped_by_callback = True
            break
        if finished:
            break
    result = runner.result
    if stopped_by_callback:  # the reason joins the result's (a Restarts' stop() keeps it too)
        if hasattr(runner, "halt"):
            runner.halt("callback")
        result = dataclasses.replace(result, stop={**result.stop, "callback": 1.0})
    if progress.every:
        print(f"stop: {result.stop}; best f {result.fbest:.10g} after {result.evaluations} evaluations", flush=True)
    return result
