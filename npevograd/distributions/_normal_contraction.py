r"""The contraction of ``Normal``'s score with per-sample weights, on an (n, d) sample array.

.. math::

    \sum_i w_i \frac{x_i - \mu}{\sigma^2} = \frac1\sigma \sum_i w_i\, z_i, \qquad
    \sum_i w_i \Big(\frac{(x_i - \mu)^2}{\sigma^3} - \frac1\sigma\Big)
    = \frac1\sigma\Big(\sum_i w_i z_i^2 - \sum_i w_i\Big)

with :math:`z_i = (x_i - \mu) / \sigma` (isotropic sigma: summed over the coordinates,
and :math:`d \sum_i w_i`).  With a fixed sigma the mu part is one product over x,
``(w @ x - sum(w) mu) / sigma^2`` (one BLAS product), wherever that is accurate; otherwise,
and for a learned sigma, x is read once in blocks of rows in npevograd's threads
(``_blocks.weighted_row_sums``): the sums are taken over the deviations e = x - mu and divided by
sigma (and sigma^2) after, where every product stays far from the subnormal numbers and from
overflow (``_unscaled_fits``), else over the blocks of z.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from .._checks import SMALL_SIZE, all_finite, all_true
from ..sampling._blocks import weighted_row_sums
from ._base import Grad


def weighted_deviations(
    w: np.ndarray, x: np.ndarray, mu: np.ndarray, sigma: np.ndarray, learn_sigma: bool, isotropic: bool
) -> Grad:
    """``sum_i w_i score(x_i)`` for ``Normal(mu, sigma)``: {"mu"} or {"mu", "sigma"}."""
    w_sum = np.add.reduce(w, axis=None)
    n, d = x.shape
    if not learn_sigma:
        # sum_i w_i eps_i / sigma^2 = (w @ x - sum(w) mu) / sigma^2: one pass over x, kept where
        # it is accurate: it loses under 20 bits to cancellation and is clear of under- and overflow.
        # One BLAS matrix-vector product: as fast as the floor when idle, and as robust under load
        # (benchmarks/load.py's floor row) as the blocked sums, which run at half its speed when idle.
        shift = w_sum * mu
        shortcut = w @ x - shift
        if _accurate(shortcut, shift):
            return {"mu": shortcut / sigma / sigma}
    # Otherwise, and for a learned sigma: sum_i w_i z_i (and sum_i w_i z_i^2), z_i = (x_i - mu) / sigma, from
    # blocks of rows, one pass over x.  Where every product w_i e_ij^2 of the deviations e = x - mu stays clear
    # of the dtype's subnormal and overflow ranges (_unscaled_fits), the sums are taken over e and divided by
    # sigma after (d divisions instead of n d); otherwise over z, scaled before the products (as in the encoded
    # form, _normal_table).  Neither cancels against mu.
    dtype = np.result_type(w, x)
    b = w if learn_sigma else None
    w_z, w_z2 = None, None
    if _unscaled_fits(w, sigma, n, dtype):
        w_e, w_e2 = weighted_row_sums(_scaled_rows(x, mu), n, d, dtype, w, b)
        if all_finite(w_e) and (w_e2 is None or all_finite(w_e2)):
            w_z = w_e / sigma
            w_z2 = None if w_e2 is None else w_e2 / sigma / sigma
    if w_z is None:
        w_z, w_z2 = weighted_row_sums(_scaled_rows(x, mu, sigma), n, d, dtype, w, b)
    grad = {"mu": w_z / sigma}
    if w_z2 is None:
        return grad
    if isotropic:
        grad["sigma"] = (w_z2.sum() - d * w_sum) / sigma
    else:
        grad["sigma"] = (w_z2 - w_sum) / sigma
    if not all_finite(grad["sigma"]):  # sum_i w_i z_i^2 overflowed: rows z_i / sqrt(sigma) instead
        root = np.sqrt(sigma)
        w_e, w_e2 = weighted_row_sums(_scaled_rows(x, mu, sigma, root), n, d, np.result_type(w, x), w, w)
        assert w_e2 is not None
        grad = {"mu": w_e / root}  # sum_i w_i z_i / sigma; e_i^2 = z_i^2 / sigma
        grad["sigma"] = w_e2.sum() - d * w_sum / sigma if isotropic else w_e2 - w_sum / sigma
    return grad


def _scaled_rows(x: np.ndarray, mu: np.ndarray, *divisors: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """Blocks ``(x[start:stop] - mu) / divisor / ...``, divided in place (all in one dtype).

    In place, the block is the only new array: a second one of the block's size is fresh
    memory at every block, and its page faults cost ten times the arithmetic (issue 15).
    """

    def rows(start: int, stop: int) -> np.ndarray:
        block = x[start:stop] - mu
        for divisor in divisors:
            block /= divisor
        return block

    return rows


# The unscaled sums keep a margin of 2^UNSCALED_MARGIN above the subnormal numbers and below the largest float.
UNSCALED_MARGIN = 48


def _unscaled_fits(w: np.ndarray, sigma: np.ndarray, n: int, dtype: np.dtype) -> bool:
    """Whether sum_i w_i e_ij and sum_i w_i e_ij^2, e = x - mu, are as accurate as the sums over z = e / sigma.

    Every product there is the product over z times sigma_j (or sigma_j^2), so it is when the
    products stay normal numbers with room to spare: the largest weight times the smallest sigma^2
    at least 2^48 above the smallest subnormal, and n times the largest weight times (64 sigma)^2
    (``SAMPLE_REACH`` rows) at least 2^48 below the largest float.
    """
    if w.size == 0 or dtype not in (np.float32, np.float64):
        return False
    info = np.finfo(dtype)
    largest_w = float(np.max(np.abs(w)))
    lo, hi = float(np.min(sigma)), float(np.max(sigma))
    margin = 2.0**UNSCALED_MARGIN
    return bool(
        largest_w * lo * lo >= float(info.smallest_subnormal) * margin * n
        and n * largest_w * (64.0 * hi) * (64.0 * hi) * margin <= float(info.max)
    )


def _accurate(shortcut: np.ndarray, shift: np.ndarray) -> bool:
    """Every |shortcut_j| >= max(2^-20 |shift_j|, floor) and finite (False for NaN)."""
    floor = _floor(shortcut.dtype)
    if shortcut.size <= SMALL_SIZE:  # a few coordinates: the same comparisons on Python floats
        # 2^-20 |shift_j| is exact in double; where float32 would round it (below 2^-126) floor is larger
        py_floor = float(floor)
        for s, h in zip(shortcut.ravel().tolist(), shift.ravel().tolist()):
            if not (abs(s) >= max(2.0**-20 * abs(h), py_floor) and math.isfinite(s)):
                return False
        return True
    return all_true(np.abs(shortcut) >= np.maximum(2.0**-20 * np.abs(shift), floor)) and all_finite(shortcut)


@functools.cache
def _floor(dtype: np.dtype) -> np.floating:
    """tiny / eps of ``dtype`` (cached: ``np.finfo`` costs as much as the test it feeds)."""
    info = np.finfo(dtype)
    return info.tiny / info.eps
