r"""Weighted sums over the rows of a large sample matrix, one block of rows at a time.

The gradients with a learned sigma need, per coordinate,

.. math::

    A = \sum_i a_i e_i, \qquad B = \sum_i b_i e_i^2

over rows :math:`e_i` that are deviations :math:`x_i - \mu` or windows of a noise
table.  Building every :math:`e_i` at once would cost an (n, d) temporary.  Here
they are built a block of about ``BLOCK_BYTES`` at a time, and both sums are taken
from the block while it is still in cache, so the samples (or the table) are read
from memory once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# One block of rows: 4 MiB (2**20 float32 or 2**19 float64 entries), large enough that
# a block's BLAS calls amortise their overhead, small enough to stay in cache.
BLOCK_BYTES = 4 << 20

Rows = Callable[[int, int], np.ndarray]


def weighted_row_sums(
    rows_of: Rows, n: int, d: int, dtype: np.dtype, a: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(A, B) above; ``rows_of(start, stop)`` returns rows e_start .. e_stop-1 as a new array.

    The block is squared in place.  B is None when ``b`` is.  Sums are accumulated in ``dtype``.
    """
    rows = max(1, BLOCK_BYTES // (d * np.dtype(dtype).itemsize))
    total_a = np.zeros(d, dtype=dtype)
    total_b = None if b is None else np.zeros(d, dtype=dtype)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        e = rows_of(start, stop)
        total_a += a[start:stop] @ e
        if b is not None and total_b is not None:
            np.multiply(e, e, out=e)
            total_b += b[start:stop] @ e
        del e  # before the next block is built: peak extra memory is one block
    return total_a, total_b
