"""The worker side of ``npevograd.parallel.evaluate``: a batch of samples, and running it.

A batch travels as table windows (``_EncodedBatch``: the table, mu, sigma, indices and
signs) or as rows (``_RowBatch``); the worker rebuilds its samples, evaluates the
fitness and sends back the values, or a ``_Failure`` naming the failing sample.
"""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._checks import as_float_array
from ..distributions.normal import decode_windows
from ..noise import EncodedSamples, NoiseTable

Fitness = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class _EncodedBatch:
    """Samples [start, stop) as table windows: what a worker needs to rebuild them."""

    fitness: Fitness
    start: int
    attempt: int  # part of the payload so a resubmission is a new task (Dask hashes pure tasks)
    table: NoiseTable
    mu: np.ndarray
    sigma: np.ndarray
    indices: np.ndarray
    signs: np.ndarray

    @property
    def stop(self) -> int:
        return self.start + self.indices.shape[0]

    def samples(self) -> np.ndarray:
        encoded = EncodedSamples(self.indices, self.signs, self.mu.shape[0], self.table)
        return decode_windows(self.mu, self.sigma, encoded)


@dataclass(frozen=True)
class _RowBatch:
    """Samples [start, stop) sent as rows (distributions without a noise table)."""

    fitness: Fitness
    start: int
    attempt: int
    rows: np.ndarray

    @property
    def stop(self) -> int:
        return self.start + self.rows.shape[0]

    def samples(self) -> np.ndarray:
        return self.rows


@dataclass
class _Failure:
    """The fitness function raised on sample ``index`` (None: on the batch only)."""

    index: int | None
    start: int
    stop: int
    exc: BaseException
    traceback: str

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        exc = self.exc
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc} (the exception itself could not be pickled)")
        return (_Failure, (self.index, self.start, self.stop, exc, self.traceback))


# What a fitness may raise that becomes a FitnessError: every Exception, and SystemExit (a fitness
# calling sys.exit would otherwise end this process, or a worker and with it the batch).
# KeyboardInterrupt and GeneratorExit still propagate.
_FITNESS_ERRORS = (Exception, SystemExit)


def _failure(index: int | None, batch: _EncodedBatch | _RowBatch, exc: BaseException) -> _Failure:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return _Failure(index, batch.start, batch.stop, exc, text)


def _run_batch(batch: _EncodedBatch | _RowBatch) -> np.ndarray | _Failure:
    """Worker side: rebuild the batch's samples, evaluate them, return the values or the failure."""
    x = batch.samples()
    m = x.shape[0]
    try:
        values = batch.fitness(x)
    except _FITNESS_ERRORS as exc:
        if m > 1:  # name the failing sample: re-run the batch one sample at a time
            for j in range(m):
                try:
                    batch.fitness(x[j : j + 1])
                except _FITNESS_ERRORS as single_exc:
                    return _failure(batch.start + j, batch, single_exc)
        return _failure(batch.start if m == 1 else None, batch, exc)
    try:
        arr = as_float_array("fitness(x)", values, finite=False)
        if arr.ndim == 0 or arr.shape[0] != m:
            raise ValueError(
                f"fitness must return one value per sample, shape ({m},) or ({m}, k), "
                f"for a batch x of shape {x.shape}; got shape {arr.shape}"
            )
    except (TypeError, ValueError) as exc:
        return _failure(None, batch, exc)
    finite = np.isfinite(arr.reshape(m, -1)).all(axis=1)
    if not finite.all():  # the estimators would reject it later, without the sample's index
        j = int(np.argmin(finite))
        bad = ValueError(f"fitness returned a non-finite value for sample {batch.start + j}: {arr[j].tolist()}")
        return _failure(batch.start + j, batch, bad)
    return arr


def _unpickles(blob: bytes, loads: Callable[[bytes], Any] = pickle.loads) -> _Failure | None:
    """Worker side of the fitness check: unpickle the fitness sent as bytes; its failure, if any, comes back.

    Sent as bytes, the fitness is unpickled here, inside the task, where an error is caught and
    returned: unpickled by the executor itself it would kill a pool worker (``BrokenProcessPool``) or
    a Dask worker's connection (its tasks then wait forever).
    """
    try:
        fitness = loads(blob)
    except _FITNESS_ERRORS as exc:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return _Failure(None, 0, 0, exc, text)
    if not callable(fitness):
        return _Failure(None, 0, 0, TypeError(f"the fitness unpickled as a {type(fitness).__name__}"), "")
    return None
