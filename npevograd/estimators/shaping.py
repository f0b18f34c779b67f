"""Fitness shaping: maps raw fitness values to the values an estimator weights.

All three act along axis 0 (the sample axis), keep the input's shape and dtype,
and are invariant to adding a constant to the fitness; the two rank-based ones
are invariant to any strictly increasing transform of it.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Callable

import numpy as np

from .._checks import SMALL_SIZE, all_true, as_float_array


def standardize(name: str, arr: np.ndarray) -> np.ndarray:
    """(v - mean) / std(ddof=1) along axis 0 of a validated float array, with errors that name ``name``.

    The z-scores do not depend on the scale, so each column is first divided by its
    largest magnitude: the sums and squares then stay in [0, 4n] whatever the input's
    scale (1e-300 or 1e300), never underflowing or overflowing.
    """
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples along axis 0 to z-score, got shape {arr.shape}")
    peak = np.maximum.reduce(np.abs(arr), axis=0)
    if arr.ndim == 1:  # one column: its peak is a scalar, no np.where needed
        unit = arr / (peak if peak > 0 else 1)
    else:  # |unit| <= 1; an all-zero column stays 0 (and is constant); np.where only if there is one
        positive = peak > 0
        unit = arr / (peak if all_true(positive) else np.where(positive, peak, 1))
    mean = np.add.reduce(unit, axis=0) / arr.shape[0]
    centred = unit - mean
    std = np.sqrt(np.add.reduce(np.square(centred), axis=0) / (arr.shape[0] - 1))  # ddof=1, pairwise sums
    # A constant column's computed std is rounding noise (at most about 71 eps |mean| for
    # pairwise sums), not always 0; where std is that small, max == min decides exactly.
    rounding_level = std <= _rounding_scale(arr.dtype) * abs(mean)  # abs: np.abs without a ufunc call on a scalar
    if rounding_level if arr.ndim == 1 else np.count_nonzero(rounding_level):  # one column: a NumPy bool
        constant = np.atleast_1d(rounding_level & (arr.max(axis=0) == arr.min(axis=0)))
        if constant.any():
            where = "" if std.ndim == 0 else f" in column(s) {np.flatnonzero(constant).tolist()}"
            raise ValueError(f"{name} is constant{where} (zero standard deviation); cannot z-score")
    centred /= std
    return centred


@functools.cache
def _rounding_scale(dtype: np.dtype) -> np.floating:
    """128 eps in ``dtype`` (cached: ``np.finfo`` costs as much as the z-scoring of a fitness vector)."""
    return 128 * np.finfo(dtype).eps


def zscore(f: object) -> np.ndarray:
    r"""z-score along axis 0: :math:`(f - \bar f) / s`, s the sample std with ddof=1.

    ddof=1 matches ``torch.std``'s default, which is what EvoGrad's demos use.
    """
    return _zscore(as_float_array("f", f))


def _zscore(arr: np.ndarray) -> np.ndarray:
    return standardize("f", arr)


def _ranks(name: str, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The array (validated by the caller) and each entry's lowest and highest 0-based rank along axis 0.

    Tied entries span ranks lo .. hi; their average rank (lo + hi) / 2 is
    ``scipy.stats.rankdata(method="average") - 1`` exactly, from one argsort.
    """
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples along axis 0 to rank, got shape {arr.shape}")
    if arr.ndim == 1:  # the usual fitness vector: plain 1-D indexing, fewer NumPy calls
        return (arr, *_vector_rank_bounds(arr))
    lo, hi = _rank_bounds(arr.reshape(arr.shape[0], -1))
    return arr, lo.reshape(arr.shape), hi.reshape(arr.shape)


def _rank_bounds(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest 0-based rank of every entry of each column of an (n, m) array.

    Tied entries of a column share their bounds.
    """
    n, m = columns.shape
    order = np.argsort(columns, axis=0)
    col = np.arange(m)
    opens = _run_starts(columns[order, col])
    run_lo, run_hi = _run_bounds(opens, np.arange(n)[:, None])
    lo = np.empty((n, m), dtype=np.intp)
    hi = np.empty((n, m), dtype=np.intp)
    lo[order, col] = run_lo
    hi[order, col] = run_hi
    return lo, hi


def _vector_rank_bounds(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_rank_bounds`` of one column, as 1-D arrays (the same object when nothing ties)."""
    order, in_order = _sorted(v)
    lo = np.empty(v.shape[0], dtype=np.intp)
    if _untied(in_order):  # each entry's rank is its sorted position
        lo[order] = np.arange(v.shape[0])
        return lo, lo
    return _tied_rank_bounds(order, in_order, lo)


def _sorted(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The argsort of a 1-D array and the array in that order."""
    order = v.argsort()  # the method: np.argsort's dispatch costs as much as the sort at n = 50
    return order, v[order]


def _untied(in_order: np.ndarray) -> bool:
    """No two neighbours of a sorted 1-D array are equal (NaN equals nothing, as in NumPy)."""
    if in_order.shape[0] <= SMALL_SIZE:  # on Python floats: cheaper than three NumPy calls
        values = in_order.tolist()
        return not any(map(operator.eq, values, values[1:]))
    return np.count_nonzero(in_order[1:] == in_order[:-1]) == 0


def _tied_rank_bounds(order: np.ndarray, in_order: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank bounds of a 1-D array from its argsort ``order`` and sorted values (``lo`` is filled)."""
    run_lo, run_hi = _run_bounds(_run_starts(in_order), np.arange(order.shape[0]))
    hi = np.empty_like(lo)
    lo[order] = run_lo
    hi[order] = run_hi
    return lo, hi


def _run_starts(in_order: np.ndarray) -> np.ndarray:
    """True where a sorted position differs from the one before it: a run of equal values starts."""
    opens = np.empty(in_order.shape, dtype=bool)
    opens[0] = True
    np.not_equal(in_order[1:], in_order[:-1], out=opens[1:])
    return opens


def _run_bounds(opens: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted positions along axis 0, the first and last position of the run each is in.

    ``opens`` marks the positions that differ from the one before; a run closes where
    the next position opens one.
    """
    n = opens.shape[0]
    closes = np.empty_like(opens)
    closes[-1] = True
    closes[:-1] = opens[1:]
    run_lo = np.maximum.accumulate(np.where(opens, position, 0), axis=0)
    run_hi = np.minimum.accumulate(np.where(closes, position, n - 1)[::-1], axis=0)[::-1]
    return run_lo, run_hi


def centered_ranks(f: object) -> np.ndarray:
    r"""Ranks mapped linearly to [-0.5, 0.5]: :math:`\mathrm{rank}_i / (n - 1) - 1/2`.

    Salimans et al. 2017, section 2.2 (their ``compute_centered_ranks``).  The lowest
    fitness gets -0.5, the highest +0.5; tied values share the average of their
    ranks, so equal fitness always gets equal weight, whatever the sample order.
    """
    return _centered_ranks(as_float_array("f", f))


def _centered_ranks(arr: np.ndarray) -> np.ndarray:
    arr, lo, hi = _ranks("f", arr)
    if lo is hi:  # no ties: each rank's value from a table
        return _centered_rank_table(arr.shape[0])[lo].astype(arr.dtype, copy=False)
    ranks = (lo + hi) / 2  # 0 .. n-1, ties share their mean rank
    return (ranks / (arr.shape[0] - 1) - 0.5).astype(arr.dtype, copy=False)


def nes_utilities(f: object) -> np.ndarray:
    r"""Rank-based utilities of Wierstra et al. 2014 (JMLR 15, section 3.1).

    With rank k = 1 for the best of n samples,

    .. math::

        u_k = \frac{\max(0, \log(n/2 + 1) - \log k)}{\sum_{j=1}^n \max(0, \log(n/2 + 1) - \log j)} - \frac1n

    so the utilities sum to zero and only the better half gets positive weight.
    Tied values share the mean utility of the ranks they span.
    """
    return _nes_utilities(as_float_array("f", f))


def _nes_utilities(arr: np.ndarray) -> np.ndarray:
    arr, lo, hi = _ranks("f", arr)
    n = arr.shape[0]
    if lo is hi:  # no ties: each rank's utility from a table
        return _utility_table(n)[lo].astype(arr.dtype, copy=False)
    cumulative = _cumulative_utilities(n)
    first, last = (n - 1) - hi, (n - 1) - lo  # ranks counted from the best, 0-based
    mean_utility = cumulative[last + 1] - cumulative[first]
    mean_utility /= _tie_counts(lo, hi)  # some ties: divide by the run lengths
    return mean_utility.astype(arr.dtype, copy=False)


def nes_utilities_of_ranked(f: np.ndarray, order: np.ndarray, ordered_costs: np.ndarray) -> np.ndarray:
    """``nes_utilities(f)`` for a finite 1-D float array, from a ranking its caller already made: bit for bit.

    ``order`` is the argsort of the costs -f (best first) and ``ordered_costs`` the costs in that order
    (a strategy ranks its costs once per generation, for its stop record too).  Without ties each entry
    takes the cached utility of its rank (``_utility_table``) in one scatter, rounded to f's dtype as there.
    """
    if not _untied(ordered_costs):
        return _nes_utilities(f)
    u = np.empty_like(f)
    u[order] = _utility_table(f.shape[0])[::-1]  # the table is lowest f first; order is best (highest f) first
    return u


@functools.lru_cache(maxsize=16)
def _cumulative_utilities(n: int) -> np.ndarray:
    """[0, u_1, u_1 + u_2, ...]: sums of the utilities of the best k ranks, k = 0 .. n (read-only)."""
    k = np.arange(1, n + 1)
    raw = np.maximum(0.0, np.log(n / 2 + 1) - np.log(k))
    utility_of_rank = raw / raw.sum() - 1 / n  # indexed by k - 1, best first
    # a tie spanning best-first ranks [first, last] gets the mean of utility_of_rank[first..last]
    cumulative = np.concatenate([[0.0], np.cumsum(utility_of_rank)])
    cumulative.flags.writeable = False
    return cumulative


@functools.lru_cache(maxsize=16)
def _centered_rank_table(n: int) -> np.ndarray:
    """rank / (n - 1) - 1/2 for ranks 0 .. n - 1 (read-only): ``_centered_ranks`` without ties."""
    table = np.arange(n) / (n - 1) - 0.5
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=16)
def _utility_table(n: int) -> np.ndarray:
    """The utility of ranks 0 .. n - 1, lowest first (read-only): ``_nes_utilities`` without ties.

    The same differences of ``_cumulative_utilities`` as there, bit for bit.
    """
    cumulative = _cumulative_utilities(n)
    table = (cumulative[1:] - cumulative[:-1])[::-1].copy()  # best-first rank k is rank n - 1 - k
    table.flags.writeable = False
    return table


def _tie_counts(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many entries along axis 0 share each entry's value, from its rank bounds."""
    return hi - lo + 1


def on_validated(shaping: object) -> Callable[[np.ndarray], np.ndarray] | None:
    """The built-in ``shaping``'s body, for a float array its caller has just validated (else None).

    ``zscore(f)`` is ``as_float_array("f", f)`` then this body, and ``as_float_array``
    returns a validated float array unchanged: the same result, without the second scan.
    A body returns a finite array of f's shape and dtype (ranks and utilities are bounded
    by 1, z-scores by sqrt(n)), so its result needs no check either.
    """
    return _BODIES.get(id(shaping))


# keyed by id: a user's shaping need not be hashable, and these functions live as long as the module
_BODIES = {id(zscore): _zscore, id(centered_ranks): _centered_ranks, id(nes_utilities): _nes_utilities}


def cma_weights(f: object, dim: int | None = None) -> np.ndarray:
    r"""The recombination weights of CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772,
    table 1) by rank, times n: ``Mean(shaping=cma_weights)`` has the weights :math:`w_{\mathrm{rank}(i)}` themselves.

    With n samples, :math:`\mu = \lfloor n/2 \rfloor` and rank k = 1 for the highest fitness,

    .. math::

        w'_k = \ln\frac{n + 1}{2} - \ln k, \qquad
        w_k = \frac{w'_k}{\sum_{j \le \mu} w'_j} \quad (k \le \mu)

    so the positive weights sum to 1.  ``dim=None``: the other weights are 0 (the positive-weights
    variant).  ``dim=d``: the negative weights of active CMA, scaled to the sum

    .. math::

        \sum_{k > \mu} |w_k| = \min\Big(1 + \frac{c_1}{c_\mu},\;
            1 + \frac{2\mu^-_{\mathrm{eff}}}{\mu_{\mathrm{eff}} + 2},\;
            \frac{1 - c_1 - c_\mu}{d\, c_\mu}\Big)

    with the tutorial's default :math:`c_1, c_\mu` at dimension d (``functools.partial(cma_weights, dim=d)``
    as a shaping).  Tied values share the mean weight of the ranks they span.  Returns n w, f's shape and dtype.
    """
    arr = as_float_array("f", f)
    if arr.ndim != 1:
        raise ValueError(f"f must be a 1-D array of fitness values, got shape {arr.shape}")
    if dim is not None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be None or an int >= 1, got {dim!r}")
        dim = int(dim)
    arr, lo, hi = _ranks("f", arr)
    n = arr.shape[0]
    best_first = cma_recombination_weights(n, dim)
    lowest_first = n * best_first[::-1]
    if lo is hi:
        return lowest_first[lo].astype(arr.dtype, copy=False)
    cumulative = np.concatenate([[0.0], np.cumsum(lowest_first)])
    return ((cumulative[hi + 1] - cumulative[lo]) / _tie_counts(lo, hi)).astype(arr.dtype, copy=False)


def cma_learning_rates(dim: int, mueff: float) -> tuple[float, float]:
    r"""The tutorial's (table 1, v2; pycma 4's too) learning rates of the rank-one and rank-mu updates, alpha_cov = 2.

    .. math::

        c_1 = \frac{2}{(d + 1.3)^2 + \mu_{\mathrm{eff}}}, \qquad
        c_\mu = \min\Big(1 - c_1,
            \frac{2 (1/4 + \mu_{\mathrm{eff}} - 2 + 1/\mu_{\mathrm{eff}})}{(d + 2)^2 + \mu_{\mathrm{eff}}}\Big)
    """
    c1 = 2 / ((dim + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (0.25 + mueff - 2 + 1 / mueff) / ((dim + 2) ** 2 + mueff))
    return c1, cmu


def effective_mu(w: np.ndarray) -> float:
    """mu_eff = (sum w)^2 / sum w^2 of a set of weights of one sign."""
    return float(w.sum() ** 2 / (w**2).sum())


@functools.lru_cache(maxsize=64)
def cma_recombination_weights(
    n: int, dim: int | None = None, c1: float | None = None, cmu: float | None = None
) -> np.ndarray:
    """The weights w_1 .. w_n, best first (read-only): ``cma_weights``' table; ``dim`` gives the negative ones.

    ``c1``, ``cmu``: the learning rates the negative weights are scaled with (default: ``cma_learning_rates``).
    """
    mu = n // 2
    raw = math.log((n + 1) / 2) - np.log(np.arange(1, n + 1))
    positive, negative = raw[:mu], raw[mu:]
    w = np.zeros(n)
    w[:mu] = positive / positive.sum()
    if dim is not None and negative.size and negative.min() < 0:
        mueff = effective_mu(positive)
        default_c1, default_cmu = cma_learning_rates(dim, mueff)
        c1 = default_c1 if c1 is None else c1
        cmu = default_cmu if cmu is None else cmu
        alpha_mu = 1 + c1 / cmu
        negative = np.minimum(negative, 0.0)  # w'_k of the ranks past mu are <= 0 (0 only at k = (n + 1) / 2)
        alpha_mueff = 1 + 2 * effective_mu(negative) / (mueff + 2)
        alpha_posdef = (1 - c1 - cmu) / (dim * cmu)
        w[mu:] = min(alpha_mu, alpha_mueff, alpha_posdef) * negative / -negative.sum()
    w.flags.writeable = False
    return w
