r"""Evaluate a population on any ``concurrent.futures`` executor, sending (index, sign) pairs.

One generation of a distributed evolution strategy (Salimans et al. 2017,
algorithm 2) is: draw n samples, evaluate the fitness of each somewhere else,
bring the fitness values back, estimate the gradient here.  With a noise table
(``Normal(mu, sigma, noise=NoiseTable(size, seed))``) a sample is the pair
:math:`(k_i, s_i)` and the worker rebuilds it as

.. math::

    x_i = \mu + s_i\, \sigma \odot T[k_i : k_i + d]

from a table it built (or attached to) once.  So what travels is, per batch of
samples, the table's ``(size, seed)``, the distribution's ``mu`` and ``sigma`` and
the batch's indices and signs; what comes back is the batch's fitness values.

:func:`evaluate` works with any :class:`concurrent.futures.Executor`:

* ``None``: evaluate here, in this process (the reference every other run equals);
* :class:`ProcessPool` (or ``concurrent.futures.ProcessPoolExecutor``): one machine;
* ``dask.distributed.Client(...).get_executor()``: a Dask cluster;
* ``mpi4py.futures.MPIPoolExecutor()``: MPI.

Moving from a laptop to a cluster changes only the ``executor`` argument.

The fitness function
--------------------
``fitness(x)`` takes a batch of samples ``x`` of shape (m, d) and returns one
value per sample: an array of shape (m,), or (m, k) for k behaviour values per
sample (for ``Variance``/``Entropy``).  It must be picklable by the executor
(a module-level function or a ``functools.partial`` of one; Dask also takes
lambdas and closures).  The population's values are identical, sample for
sample, whatever the executor, the number of workers and ``batch_size``, as long
as a row's value depends only on that row (is batch-independent); a per-sample
function ``f`` becomes one with ``lambda x: np.array([f(row) for row in x])``.

Faults
------
* Before the first batch reaches an executor that pickles (a process pool, Dask),
  the fitness is pickled here and unpickled on a worker inside a task, once per
  executor and fitness: one that cannot be pickled (a lambda on a process pool)
  or unpickled there (it needs a module the workers lack) is a ``TypeError``
  chained to that error, in milliseconds; on Dask its batches would otherwise
  wait forever, on a process pool kill the workers.
* An exception raised by the fitness function stops the evaluation and is
  raised here as :class:`FitnessError`, naming the index of the failing sample
  and chained to the original exception, which carries the worker's traceback.
  To find that index, a batch whose call raised is re-run one sample at a time.
  Whatever the executor and the order batches finish in, the failure reported
  is the serial run's: the lowest failing batch's (the batches before a failing
  one are awaited, those after it dropped).
  ``SystemExit`` (a fitness calling ``sys.exit``) counts as such an exception, and
  so does a NaN or infinite fitness value: a ``FitnessError`` naming that sample
  (its cause a ``ValueError`` quoting the value), at once, on every executor.
* A worker process that dies (killed, out of memory, segfault) loses its batch:
  the batch is resubmitted, to another worker, up to ``max_retries`` times, and
  then :class:`WorkerLostError` is raised.  Every sample's value is taken from
  exactly one completed batch: none is lost or counted twice.
  A ``ProcessPoolExecutor`` is unusable once one of its workers dies; pass a
  :class:`ProcessPool` instead, which replaces the broken pool and resubmits.
  Its death fails every batch pending in the pool, and each of them counts it
  as one of its ``max_retries``.
  Dask reschedules a lost task itself (``distributed.scheduler.allowed-failures``
  times) before it reports ``KilledWorker``; then this module's retries start.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import sys
import weakref
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import Callable, NoReturn

import numpy as np

from .._checks import RNGLike, check_sample_count
from ..distributions import Distribution, Normal
from ..noise import EncodedSamples
from ._pool import ProcessPool
from ._worker import Fitness, _EncodedBatch, _Failure, _RowBatch, _run_batch, _unpickles

# Batches per generation when batch_size is not given.
_DEFAULT_BATCHES = 16


@dataclass(frozen=True)
class Evaluation:
    """A generation's population and its fitness values, ready for an estimator.

    ``samples`` is what the distribution drew (``EncodedSamples`` with a noise
    table, else the (n, d) array); ``fitness`` has shape (n,) or (n, k), row i
    belonging to sample i; ``resubmitted`` counts the batches sent again after a
    worker was lost.  ``ng.Mean()(result.fitness, result.samples, p)``.
    """

    samples: EncodedSamples | np.ndarray
    fitness: np.ndarray
    resubmitted: int = 0


class FitnessError(RuntimeError):
    """The fitness function raised; ``index`` is the failing sample (None if only the batch failed)."""

    def __init__(self, message: str, index: int | None, batch: tuple[int, int]):
        super().__init__(message)
        self.index = index
        self.batch = batch


class WorkerLostError(RuntimeError):
    """A batch could not be evaluated because the worker running it died, every time it was tried."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process, as text."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _with_remote_traceback(failure: _Failure) -> BaseException:
    """The failure's exception; raised in another process, with that process's traceback as its cause."""
    exc = failure.exc
    if exc.__traceback__ is None and failure.traceback:  # raised in another process
        exc.__cause__ = RemoteTraceback(failure.traceback)
    return exc


def _raise_failure(failure: _Failure) -> NoReturn:
    exc = _with_remote_traceback(failure)
    where = f"sample {failure.index}" if failure.index is not None else "the batch"
    raise FitnessError(
        f"fitness raised {type(exc).__name__} at {where} (batch of samples [{failure.start}, {failure.stop})): {exc}",
        index=failure.index,
        batch=(failure.start, failure.stop),
    ) from exc


def _is_worker_loss(exc: BaseException) -> bool:
    """Whether ``exc`` (from a future) means the worker process was lost, not that the task failed."""
    if isinstance(exc, BrokenExecutor):
        return True
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        from distributed.comm import CommClosedError

        if isinstance(exc, (distributed.KilledWorker, CommClosedError)):
            return True
    return False


def evaluate(
    fitness: Fitness,
    p: Distribution,
    n: int,
    rng: RNGLike = None,
    executor: Executor | None = None,
    batch_size: int | None = None,
    max_retries: int = 2,
    samples: np.ndarray | EncodedSamples | None = None,
) -> Evaluation:
    r"""Draw n samples from ``p`` and evaluate ``fitness`` on them through ``executor``.

    .. math::

        x_i \sim p,\quad f_i = \mathrm{fitness}(x_i), \qquad i = 0, \dots, n - 1

    Parameters
    ----------
    fitness : callable
        ``fitness(x)`` with x of shape (m, d) returns shape (m,) or (m, k); see
        the module docstring for the batch-independence it needs.
    p : Distribution
        Sampled with ``p.sample(n, rng, encode=True)`` when it is a ``Normal`` or
        ``PairedNormal`` with a noise table (only indices and signs are sent),
        else with ``p.sample(n, rng)`` (the sample rows are sent).
    n : int
        Population size.
    rng : Generator, RandomState, int or None
        The random source of the draw; the same rng gives the same population
        and, for a batch-independent fitness, the same values, on any executor.
    executor : concurrent.futures.Executor or None
        Where to evaluate; ``None`` evaluates in this process.
    batch_size : int or None
        Samples per task; default ``ceil(n / 16)``.
    max_retries : int
        Times a batch lost with its worker is resubmitted before ``WorkerLostError``.
    samples : array (n, d), EncodedSamples or None
        A population already drawn from ``p`` (a strategy's ``es.ask()`` or ``es.ask(encode=True)``),
        evaluated instead of a new draw (``rng`` is then not used).

    Returns
    -------
    Evaluation
        ``samples`` (as drawn), ``fitness`` (n,) or (n, k) and ``resubmitted``.
    """
    if not callable(fitness):
        raise TypeError(f"fitness must be callable, got {type(fitness).__name__}")
    if not isinstance(p, Distribution):
        raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
    n = check_sample_count("n", n)
    size = math.ceil(n / _DEFAULT_BATCHES) if batch_size is None else check_sample_count("batch_size", batch_size)
    retries = check_sample_count("max_retries", max_retries, minimum=0)
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor or None, got {type(executor).__name__}")

    population: EncodedSamples | np.ndarray  # the samples evaluated: given, or drawn here
    make: Callable[[int, int, int], _EncodedBatch | _RowBatch]
    if samples is not None:
        count = samples.indices.shape[0] if isinstance(samples, EncodedSamples) else np.shape(samples)[0]
        if count != n:
            raise ValueError(f"samples must hold n = {n} samples, got {count}")
    if isinstance(p, Normal) and p.noise is not None:
        encoded = p.sample(n, rng, encode=True) if samples is None else samples
        if not isinstance(encoded, EncodedSamples):
            raise TypeError(
                f"samples of a distribution with a noise table must be EncodedSamples, got {type(encoded).__name__}"
            )
        encoded.table.array.shape  # noqa: B018 (build it, in shared memory, before local workers ask for it)
        mu, sigma = p.mu.copy(), p.sigma.copy()  # the parameters as of this draw

        def make(start: int, stop: int, attempt: int) -> _EncodedBatch | _RowBatch:
            return _EncodedBatch(
                fitness,
                start,
                attempt,
                encoded.table,
                mu,
                sigma,
                encoded.indices[start:stop],
                encoded.signs[start:stop],
            )

        population = encoded
    else:
        rows = p.sample(n, rng) if samples is None else samples
        if isinstance(rows, EncodedSamples):
            raise TypeError("samples of a distribution without a noise table must be rows (n, d), got EncodedSamples")

        def make(start: int, stop: int, attempt: int) -> _EncodedBatch | _RowBatch:
            return _RowBatch(fitness, start, attempt, rows[start:stop])

        population = rows

    bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
    if executor is None:
        outcomes: list[np.ndarray] = []
        for start, stop in bounds:
            outcome = _run_batch(make(start, stop, 0))
            if isinstance(outcome, _Failure):
                _raise_failure(outcome)
            outcomes.append(outcome)
        resubmitted = 0
    else:
        _check_fitness_reaches_workers(executor, fitness)
        outcomes, resubmitted = _run_on(executor, make, bounds, retries)
    return Evaluation(samples=population, fitness=_assemble(outcomes, bounds), resubmitted=resubmitted)


# Executors, and the digests of the pickled fitness functions a worker of theirs has unpickled: each
# (executor, fitness) pair is checked once (a weak reference: a dropped executor's entry goes with it).
_CHECKED: weakref.WeakKeyDictionary[Executor, set[bytes]] = weakref.WeakKeyDictionary()


def _pickler(executor: Executor) -> tuple[Callable[[object], bytes], Callable[[bytes], object]] | None:
    """The (dumps, loads) an executor sends tasks with, or None where it sends none (threads) or is unknown.

    Dask pickles with cloudpickle when pickle fails (so lambdas and closures travel); a process
    pool, ``ProcessPool`` included, with the standard pickle.
    """
    if type(executor).__module__.startswith("distributed"):
        from distributed.protocol import pickle as dask_pickle

        return dask_pickle.dumps, dask_pickle.loads
    if isinstance(executor, (ProcessPool, ProcessPoolExecutor)):
        return pickle.dumps, pickle.loads
    return None


_BY_REFERENCE = (
    "; a process pool pickles functions by reference: define the fitness at module level (a lambda or a "
    "closure cannot be sent), or use a Dask executor, which pickles lambdas by value"
)


def _check_fitness_reaches_workers(executor: Executor, fitness: Fitness) -> None:
    """Raise a TypeError, chained to the cause, when ``fitness`` cannot be pickled here or unpickled by a worker.

    The fitness travels once as bytes to a worker that unpickles it inside a task and reports the
    error (``_worker._unpickles``), before any batch is sent: a fitness that a Dask worker cannot
    unpickle (its ``__reduce__`` imports a module the workers lack) would otherwise leave every
    batch queued forever, and on a process pool kill the workers until ``max_retries`` ran out.
    Checked once per executor and pickled fitness.
    """
    codec = _pickler(executor)
    if codec is None:
        return
    dumps, loads = codec
    try:
        blob = dumps(fitness)
    except Exception as exc:
        hint = _BY_REFERENCE if dumps is pickle.dumps else ""
        raise TypeError(
            f"fitness cannot be pickled to send to the {type(executor).__name__}'s workers: "
            f"{type(exc).__name__}: {exc}{hint}"
        ) from exc
    digest = hashlib.blake2b(blob, digest_size=16).digest()
    checked = _CHECKED.setdefault(executor, set())
    if digest in checked:
        return
    try:
        failure = _submit(executor, _unpickles, blob, loads).result()
    except BrokenExecutor as exc:
        raise _unrecoverable(executor, None) from exc
    if failure is not None:
        cause = _with_remote_traceback(failure)
        raise TypeError(
            f"fitness cannot be unpickled on the {type(executor).__name__}'s workers: {type(cause).__name__}: "
            f"{cause}. It pickles here but not there: most often its class, function or __reduce__ needs a "
            "module the workers cannot import (install it on the workers, or define the fitness in a module "
            "they have)"
        ) from cause
    checked.add(digest)


def _submit(executor: Executor, fn: Callable[..., object], *args: object) -> Future:
    """``executor.submit``, with a shut-down executor (or a closed Dask client) reported as such."""
    try:
        return executor.submit(fn, *args)
    except Exception as exc:
        if not _is_shut_down(exc):
            raise
        raise ValueError(
            f"executor ({type(executor).__name__}) has been shut down and accepts no work: pass a running "
            f"executor, or None to evaluate here ({exc})"
        ) from exc


def _is_shut_down(exc: BaseException) -> bool:
    """Whether ``exc`` (from ``submit``) says the executor was shut down (not that a worker died)."""
    if isinstance(exc, BrokenExecutor):
        return False
    if isinstance(exc, RuntimeError) and "shutdown" in str(exc).lower().replace(" ", ""):
        return True  # concurrent.futures: "cannot schedule new futures after shutdown"
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(exc, distributed.client.ClosedClientError)


def _run_on(
    executor: Executor,
    make: Callable[[int, int, int], _EncodedBatch | _RowBatch],
    bounds: list[tuple[int, int]],
    max_retries: int,
) -> tuple[list[np.ndarray], int]:
    """Submit every batch, collect each batch's values exactly once, resubmit batches lost with a worker.

    A failing batch is raised as the serial run raises it: the failure of the lowest failing batch.
    After a batch fails, only the batches before it are still awaited (one of them may fail too);
    those after it are dropped.
    """
    attempts = [0] * len(bounds)
    outcomes: list[np.ndarray | None] = [None] * len(bounds)
    pending: dict[Future, int] = {}
    failures: dict[int, _Failure] = {}
    resubmitted = 0

    def submit(b: int) -> None:
        try:
            pending[_submit(executor, _run_batch, make(*bounds[b], attempts[b]))] = b
        except BrokenExecutor as exc:
            raise _unrecoverable(executor, bounds[b]) from exc

    def awaited(b: int) -> bool:
        return not failures or b < min(failures)

    try:
        for b in range(len(bounds)):
            submit(b)
        while any(awaited(b) for b in pending.values()):
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            lost: list[tuple[int, BaseException]] = []
            for future in done:
                b = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:
                    if not _is_worker_loss(exc):
                        raise _executor_failure(executor, bounds[b], exc) from exc
                    if isinstance(exc, BrokenExecutor) and not isinstance(executor, ProcessPool):
                        raise _unrecoverable(executor, bounds[b]) from exc
                    lost.append((b, exc))
                    continue
                if isinstance(outcome, _Failure):
                    failures[b] = outcome
                    continue
                outcomes[b] = outcome
            for b, loss in lost:
                if not awaited(b):
                    continue  # after a failing batch: not needed
                attempts[b] += 1
                if attempts[b] > max_retries:
                    start, stop = bounds[b]
                    raise WorkerLostError(
                        f"samples [{start}, {stop}) were lost {attempts[b]} times: the worker evaluating "
                        f"them died each time (max_retries={max_retries}); last error: {loss!r}"
                    ) from loss
                resubmitted += 1
                submit(b)
    finally:
        # Stop what has not started.  Not on Dask: cancelling its executor's futures races with
        # their completion and logs InvalidStateError; its leftover tasks just finish unused.
        if not type(executor).__module__.startswith("distributed"):
            for future in pending:
                future.cancel()
    if failures:
        _raise_failure(failures[min(failures)])
    done_outcomes = [o for o in outcomes if o is not None]
    if len(done_outcomes) != len(bounds):  # cannot happen: every batch was collected or raised
        raise RuntimeError(f"{len(bounds) - len(done_outcomes)} batches missing after evaluation")
    return done_outcomes, resubmitted


def _executor_failure(executor: Executor, batch: tuple[int, int], exc: BaseException) -> Exception:
    """The executor failed a batch without running the fitness (the fitness's own errors come back as values)."""
    if "deserializ" in str(exc).lower():  # Dask: "Error during deserialization of the task graph"
        return TypeError(
            f"fitness cannot be unpickled where the {type(executor).__name__} needs it (samples [{batch[0]}, "
            f"{batch[1]})): {exc} Most often the fitness needs a module the Dask scheduler cannot import: install "
            "it there too, or define the fitness in a module every process has"
        )
    return RuntimeError(
        f"the {type(executor).__name__} failed samples [{batch[0]}, {batch[1]}) before the fitness ran: "
        f"{type(exc).__name__}: {exc}. On Dask this is most often a task the scheduler or a worker could not "
        "unpickle (the fitness needs a module it cannot import)"
    )


def _unrecoverable(executor: Executor, batch: tuple[int, int] | None) -> WorkerLostError:
    where = "" if batch is None else f" while samples [{batch[0]}, {batch[1]}) were pending"
    return WorkerLostError(
        f"a worker of the {type(executor).__name__} died{where}, "
        "and the executor is now broken: a ProcessPoolExecutor cannot replace a dead worker. "
        "Pass npevograd.parallel.ProcessPool(max_workers), which restarts its pool, or a Dask executor"
    )


def _assemble(outcomes: list[np.ndarray], bounds: list[tuple[int, int]]) -> np.ndarray:
    """Batch values in sample order, checking they agree on the per-sample shape."""
    shapes = {o.shape[1:] for o in outcomes}
    if len(shapes) > 1:
        raise ValueError(f"fitness returned different per-sample shapes across batches: {sorted(shapes)}")
    values = np.concatenate(outcomes)
    if values.shape[0] != bounds[-1][1]:  # cannot happen: each batch was checked
        raise RuntimeError(f"assembled {values.shape[0]} values for {bounds[-1][1]} samples")
    return values
