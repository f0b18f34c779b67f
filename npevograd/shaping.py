"""Fitness shaping: maps raw fitness values to the values an estimator weights.

All three act along axis 0 (the sample axis), keep the input's shape and dtype,
and are invariant to adding a constant to the fitness; the two rank-based ones
are invariant to any strictly increasing transform of it.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array


def standardize(name: str, arr: np.ndarray) -> np.ndarray:
    """(v - mean) / std(ddof=1) along axis 0 of a validated float array, with errors that name ``name``.

    The z-scores do not depend on the scale, so each column is first divided by its
    largest magnitude: the sums and squares then stay in [0, 4n] whatever the input's
    scale (1e-300 or 1e300), never underflowing or overflowing.
    """
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples along axis 0 to z-score, got shape {arr.shape}")
    peak = np.max(np.abs(arr), axis=0)
    unit = arr / np.where(peak > 0, peak, 1)  # |unit| <= 1; an all-zero column stays 0 (and is constant)
    mean = unit.sum(axis=0) / arr.shape[0]
    centred = unit - mean
    std = np.sqrt(np.square(centred).sum(axis=0) / (arr.shape[0] - 1))  # ddof=1, pairwise sums
    # A constant column's computed std is rounding noise (at most about 71 eps |mean| for
    # pairwise sums), not always 0; where std is that small, max == min decides exactly.
    rounding_level = std <= 128 * np.finfo(arr.dtype).eps * np.abs(mean)
    if rounding_level.any():
        constant = np.atleast_1d(rounding_level & (arr.max(axis=0) == arr.min(axis=0)))
        if constant.any():
            where = "" if std.ndim == 0 else f" in column(s) {np.flatnonzero(constant).tolist()}"
            raise ValueError(f"{name} is constant{where} (zero standard deviation); cannot z-score")
    centred /= std
    return centred


def zscore(f: object) -> np.ndarray:
    r"""z-score along axis 0: :math:`(f - \bar f) / s`, s the sample std with ddof=1.

    ddof=1 matches ``torch.std``'s default, which is what EvoGrad's demos use.
    """
    return standardize("f", as_float_array("f", f))


def _ranks(name: str, f: object) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import rankdata  # scipy.stats takes most of a second to import: only when ranking

    arr = as_float_array(name, f)
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples along axis 0 to rank, got shape {arr.shape}")
    return arr, rankdata(arr, method="average", axis=0) - 1  # 0 .. n-1, ties share their mean rank


def centered_ranks(f: object) -> np.ndarray:
    r"""Ranks mapped linearly to [-0.5, 0.5]: :math:`\mathrm{rank}_i / (n - 1) - 1/2`.

    Salimans et al. 2017, section 2.2 (their ``compute_centered_ranks``).  The lowest
    fitness gets -0.5, the highest +0.5; tied values share the average of their
    ranks, so equal fitness always gets equal weight, whatever the sample order.
    """
    arr, ranks = _ranks("f", f)
    return (ranks / (arr.shape[0] - 1) - 0.5).astype(arr.dtype, copy=False)


def nes_utilities(f: object) -> np.ndarray:
    r"""Rank-based utilities of Wierstra et al. 2014 (JMLR 15, section 3.1).

    With rank k = 1 for the best of n samples,

    .. math::

        u_k = \frac{\max(0, \log(n/2 + 1) - \log k)}{\sum_{j=1}^n \max(0, \log(n/2 + 1) - \log j)} - \frac1n

    so the utilities sum to zero and only the better half gets positive weight.
    Tied values share the mean utility of the ranks they span.
    """
    arr, ranks = _ranks("f", f)
    n = arr.shape[0]
    k = np.arange(1, n + 1)
    raw = np.maximum(0.0, np.log(n / 2 + 1) - np.log(k))
    utility_of_rank = raw / raw.sum() - 1 / n  # indexed by k - 1, best first
    # a tie spanning best-first ranks [lo, hi] gets the mean of utility_of_rank[lo..hi]
    cumulative = np.concatenate([[0.0], np.cumsum(utility_of_rank)])
    best_first = (n - 1) - ranks  # average rank counted from the best, 0-based
    counts = _tie_counts(arr)
    lo = best_first - (counts - 1) / 2
    hi = best_first + (counts - 1) / 2
    mean_utility = (cumulative[np.rint(hi).astype(int) + 1] - cumulative[np.rint(lo).astype(int)]) / counts
    return mean_utility.astype(arr.dtype, copy=False)


def _tie_counts(arr: np.ndarray) -> np.ndarray:
    """How many entries along axis 0 share each entry's value (per column)."""
    from scipy.stats import rankdata

    max_rank = rankdata(arr, method="max", axis=0)
    min_rank = rankdata(arr, method="min", axis=0)
    return max_rank - min_rank + 1
