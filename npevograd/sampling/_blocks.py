r"""Large sample matrices, one block of rows at a time, on every core the process may use.

The gradients with a learned sigma need, per coordinate,

.. math::

    A = \sum_i a_i e_i, \qquad B = \sum_i b_i e_i^2

over rows :math:`e_i` that are deviations :math:`x_i - \mu` or windows of a noise
table.  Building every :math:`e_i` at once would cost an (n, d) temporary.  Here
they are built a block of about ``BLOCK_BYTES`` at a time, and both sums are taken
from the block while it is still in cache, so the samples (or the table) are read
from memory once.

Large fills (``_draws``'s ``normal_rows`` and ``standard_normal_fill``: fresh Gaussian
samples) are split into blocks of rows fixed by the shape alone, each filled from its
own child stream of the caller's Generator, so the samples are the same whatever the
number of threads.  Blocks run in a small thread pool (NumPy releases the GIL in its
fills and ufuncs): ``thread_count()`` threads, the cores this process may run on, or
``NPEVOGRAD_NUM_THREADS`` when set.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

import numpy as np

# One block of rows for the weighted sums: 4 MiB (2**20 float32 or 2**19 float64 entries),
# large enough that a block's BLAS calls amortise their overhead, small enough to stay in cache.
BLOCK_BYTES = 4 << 20
# Threaded fills (sampling) use blocks of FILL_BLOCK_ENTRIES entries, at most MAX_THREADS
# at once; only arrays of at least PARALLEL_MIN_ENTRIES entries are filled in blocks.
FILL_BLOCK_ENTRIES = 1 << 20
MAX_THREADS = 8
PARALLEL_MIN_ENTRIES = 1 << 22
# A fill block is drawn, scaled and shifted in pieces of at most PIECE_ENTRIES entries, which
# stay in a core's L2 cache (1 MiB here) with the Box-Muller work arrays: 256 + 512 KiB in float32.
PIECE_ENTRIES = 1 << 16

Rows = Callable[[int, int], np.ndarray]
T = TypeVar("T")


def thread_count() -> int:
    """Threads for the row blocks: ``NPEVOGRAD_NUM_THREADS`` if set, else the usable cores."""
    setting = os.environ.get("NPEVOGRAD_NUM_THREADS", "").strip()
    if setting:
        try:
            return max(1, int(setting))
        except ValueError:
            raise ValueError(f"NPEVOGRAD_NUM_THREADS must be a positive integer, got {setting!r}") from None
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def row_blocks(n: int, rows: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive blocks of ``rows`` rows covering 0 .. n."""
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def fill_block_rows(row_entries: int) -> int:
    """Rows of ``row_entries`` entries in one fill block (at least one).

    Fixed by the shape, not by the thread count, so what is filled block by block is
    the same whatever the number of threads.
    """
    return max(1, FILL_BLOCK_ENTRIES // max(1, row_entries))


def map_blocks(fn: Callable[[int, int, int], T], blocks: list[tuple[int, int]]) -> Iterator[T]:
    """fn(k, start, stop) for each block k, yielded in block order.

    With more than one core the blocks run in up to ``MAX_THREADS`` threads, one block
    per thread at a time (plus a few queued, not yet started).
    """
    workers = min(thread_count(), MAX_THREADS, len(blocks))
    if workers <= 1:
        for k, (start, stop) in enumerate(blocks):
            yield fn(k, start, stop)
        return
    from concurrent.futures import ThreadPoolExecutor  # only when threads are used: import npevograd stays light

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[T]] = deque()
        for k, (start, stop) in enumerate(blocks):
            pending.append(pool.submit(fn, k, start, stop))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def weighted_row_sums(
    rows_of: Rows, n: int, d: int, dtype: np.dtype, a: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(A, B) above; ``rows_of(start, stop)`` returns rows e_start .. e_stop-1 as a new array.

    The block is squared in place.  B is None when ``b`` is.  Sums are accumulated in ``dtype``.
    Serial: with d = 10^5 a block holds only a few rows, and BLAS's vector-matrix product
    on a few rows, or two of them in threads at once, is slower than one thread on 4 MiB
    blocks (measured, issue 15).
    """
    rows = max(1, BLOCK_BYTES // (d * np.dtype(dtype).itemsize))
    if rows >= n:  # one block (small problems): no running totals to allocate
        e = rows_of(0, n)
        only_a = a @ e
        if b is None:
            return only_a, None
        np.multiply(e, e, out=e)
        return only_a, b @ e
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
