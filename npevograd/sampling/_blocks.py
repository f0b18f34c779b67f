r"""Large sample matrices, one block of rows at a time, on every core the process may use.

The gradients with a learned sigma need, per coordinate,

.. math::

    A = \sum_i a_i e_i, \qquad B = \sum_i b_i e_i^2

over rows :math:`e_i` that are deviations :math:`x_i - \mu` or windows of a noise
table.  Building every :math:`e_i` at once would cost an (n, d) temporary.  Here
they are built a block of about ``BLOCK_BYTES`` at a time, and both sums are taken
from the block while it is still in cache, so the samples (or the table) are read
from memory once.  Consecutive blocks form groups fixed by the shape; the groups run
in threads and their sums are added in group order, so A and B are the same bits
whatever the number of threads.

Large fills (``_draws``'s ``normal_rows`` and ``standard_normal_fill``: fresh Gaussian
samples) are split into blocks of rows fixed by the shape alone, each filled from its
own child stream of the caller's Generator, so the samples are the same whatever the
number of threads.

Threads: decided here, in one place (``thread_plan``).  Blocks run on the calling thread
and ``thread_plan().threads - 1`` helper threads (NumPy releases the GIL in its fills, ufuncs
and BLAS calls), each taking the next block nobody has taken (``map_blocks``):
``NPEVOGRAD_NUM_THREADS`` threads when set, else the cores this process may run on, at most
``MAX_THREADS``.  Inside a block BLAS gets one thread: a block's product is a few
microseconds of work, and a BLAS that wakes its own threads for each of hundreds of such
calls waits, at every call, for threads that a busy machine has not scheduled (measured,
issue 24: the learned-sigma gradient 13-18x slower than on one thread while other processes
kept every core busy).  When ``threadpoolctl`` is installed (the ``fast`` extra) it holds BLAS
at one thread while blocks run (``blas_in_blocks``) and the block products are BLAS calls;
without it, or with ``NPEVOGRAD_THREADPOOLCTL=0``, they are NumPy's own ``einsum`` loop, which
starts no thread, unless ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``)
is 1.  BLAS's own threads (``OPENBLAS_NUM_THREADS``, ...) then serve only npevograd's single
large products, such as the fixed-sigma ``w @ x``.

After a multi-threaded BLAS call (the fixed-sigma ``w @ x``, or any of the user's) OpenBLAS's idle
threads spin for about 0.1 s (``OPENBLAS_THREAD_TIMEOUT``: 2^28 cycles by default) before they sleep,
and a threaded call made in that time shares the cores with them: measured on 2 cores (quiet), the
learned-sigma gradient (n = 1,000, d = 100,000) took 42 ms right after a ``w @ x`` against 21 ms alone.
A loop that alternates the two can set ``OPENBLAS_THREAD_TIMEOUT=4`` (threads sleep at once; measured
19 ms after ``w @ x``) or ``OPENBLAS_NUM_THREADS=1`` before NumPy loads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, NamedTuple, TypeVar

import numpy as np

# One block of rows for the weighted sums: 4 MiB (2**20 float32 or 2**19 float64 entries),
# large enough that a block's product amortises its call overhead, small enough to stay in cache.
BLOCK_BYTES = 4 << 20
# Consecutive blocks of the weighted sums summed by one thread before their total is handed back:
# 32 MiB of samples per task, so a gradient over 400 MB of samples is 13 tasks.
GROUP_BLOCKS = 8
# Threaded fills (sampling) use blocks of FILL_BLOCK_ENTRIES entries, at most MAX_THREADS
# at once; only arrays of at least PARALLEL_MIN_ENTRIES entries are filled in blocks.
FILL_BLOCK_ENTRIES = 1 << 20
MAX_THREADS = 8
PARALLEL_MIN_ENTRIES = 1 << 22
# A fill block is drawn, scaled and shifted in pieces of at most PIECE_ENTRIES entries, which
# stay in a core's L2 cache (1 MiB here) with the Box-Muller work arrays: 256 + 512 KiB in float32.
PIECE_ENTRIES = 1 << 16
# Products of fewer entries than this run on the calling thread in OpenBLAS (its threshold for a
# matrix-vector product is 9216 entries): below it a block needs no limit on BLAS.
BLAS_THREADED_ENTRIES = 9216
# The variables that fix a BLAS's thread count when the library loads.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")

Rows = Callable[[int, int], np.ndarray]
Product = Callable[[np.ndarray, np.ndarray], np.ndarray]
T = TypeVar("T")


class ThreadPlan(NamedTuple):
    """How many threads npevograd runs its blocks on, and how BLAS behaves inside a block.

    - ``threads``: ``NPEVOGRAD_NUM_THREADS`` if set, else the usable cores, at most ``MAX_THREADS``.
    - ``blas_threads``: BLAS threads inside a block: always 1 (a block's product is too small to
      share, and the block's cores are npevograd's threads).
    - ``limiter``: ``"threadpoolctl"`` when it holds BLAS at ``blas_threads`` while blocks run;
      ``"environment"`` when a BLAS variable already set it to 1; ``"none"``: block products avoid
      BLAS (NumPy's ``einsum`` loop).
    """

    threads: int
    blas_threads: int
    limiter: str


def thread_count() -> int:
    """Threads for the row blocks: ``NPEVOGRAD_NUM_THREADS`` if set, else the usable cores."""
    setting = os.environ.get("NPEVOGRAD_NUM_THREADS", "").strip()
    if setting:
        try:
            count = int(setting)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"NPEVOGRAD_NUM_THREADS must be a positive integer, got {setting!r}")
        return count
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_plan() -> ThreadPlan:
    """The plan for the next threaded call, read from the environment at each call (cheap)."""
    if _controller() is not None:
        limiter = "threadpoolctl"
    elif any(os.environ.get(name, "").strip() == "1" for name in BLAS_THREAD_VARIABLES):
        limiter = "environment"
    else:
        limiter = "none"
    return ThreadPlan(min(thread_count(), MAX_THREADS), 1, limiter)


_CONTROLLER: list[Any] = []  # [ThreadpoolController or None], built at the first use


def _controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS, or None (not installed, disabled, or no BLAS found)."""
    if os.environ.get("NPEVOGRAD_THREADPOOLCTL", "").strip() == "0":
        return None
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            blas = ThreadpoolController().select(user_api="blas")
            _CONTROLLER.append(blas if blas.lib_controllers else None)
    return _CONTROLLER[0]


@contextmanager
def blas_in_blocks(plan: ThreadPlan | None = None) -> Iterator[Product]:
    """While blocks run: BLAS held at ``plan.blas_threads``; yields the product ``a @ e`` blocks use.

    With threadpoolctl, on the main thread, the limit is set on entry and the previous
    count restored on exit, and the product is BLAS's ``a @ e``.  OpenBLAS takes a thread
    count only from the main thread (measured: from another thread the call is ignored), so
    a call from another thread, like one without threadpoolctl, gets
    ``einsum("i,ij->j", a, e)``, NumPy's own loop, which starts no thread; unless a BLAS
    variable is 1, in which case ``a @ e`` is already on one thread.
    """
    plan = plan or thread_plan()
    if plan.limiter != "threadpoolctl" or threading.current_thread() is not threading.main_thread():
        yield _matmul if plan.limiter == "environment" else _einsum
        return
    with _controller().limit(limits=plan.blas_threads):
        yield _matmul


def _matmul(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    return a @ e


def _einsum(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.einsum("i,ij->j", a, e)


def row_blocks(n: int, rows: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive blocks of ``rows`` rows covering 0 .. n."""
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def fill_block_rows(row_entries: int) -> int:
    """Rows of ``row_entries`` entries in one fill block (at least one).

    Fixed by the shape, not by the thread count, so what is filled block by block is
    the same whatever the number of threads.
    """
    return max(1, FILL_BLOCK_ENTRIES // max(1, row_entries))


def map_blocks(
    fn: Callable[[int, int, int], T], blocks: list[tuple[int, int]], plan: ThreadPlan | None = None
) -> Iterator[T]:
    """fn(k, start, stop) for each block k, yielded in block order.

    With more than one thread in the plan, ``plan.threads - 1`` helper threads and the
    calling thread take the blocks in turn, each the next one nobody has taken, at most
    ``2 * plan.threads`` blocks ahead of the one the caller yields next (the peak memory of
    the results in flight).  The caller computes blocks too while it waits: on a machine
    whose cores are all busy, a helper the scheduler has not run holds up the one block it
    took, never the rest, and with no helper running the call takes its one-thread time.
    """
    workers = min((plan or thread_plan()).threads, len(blocks))
    if workers <= 1:
        for k, (start, stop) in enumerate(blocks):
            yield fn(k, start, stop)
        return
    shared = _SharedBlocks(fn, blocks, window=2 * workers)
    helpers = [threading.Thread(target=shared.help, daemon=True) for _ in range(workers - 1)]
    for helper in helpers:
        helper.start()
    try:
        for k in range(len(blocks)):
            yield shared.result(k)
    finally:
        shared.close()
        for helper in helpers:
            helper.join()


class _SharedBlocks:
    """The blocks of one ``map_blocks`` call: which are taken, which are done, and their results."""

    def __init__(self, fn: Callable[[int, int, int], Any], blocks: list[tuple[int, int]], window: int):
        self.fn, self.blocks, self.window = fn, blocks, window
        self.cond = threading.Condition()
        self.next = 0  # the next block nobody has taken
        self.consumed = 0  # blocks the caller has yielded
        self.done: dict[int, tuple[bool, Any]] = {}  # k -> (fn returned, its value or exception)
        self.closed = False

    def _take(self) -> int | None:
        """The next untaken block within the window, or None (call with ``cond`` held)."""
        if self.closed or self.next >= len(self.blocks) or self.next >= self.consumed + self.window:
            return None
        self.next += 1
        return self.next - 1

    def _run(self, k: int) -> None:
        start, stop = self.blocks[k]
        try:
            outcome: tuple[bool, Any] = (True, self.fn(k, start, stop))
        except BaseException as exc:  # handed to the caller, raised there
            outcome = (False, exc)
        with self.cond:
            self.done[k] = outcome
            self.cond.notify_all()

    def help(self) -> None:
        """A helper thread: take and run blocks until none is left (or the call is closed)."""
        while True:
            with self.cond:
                k = self._take()
                while k is None:
                    if self.closed or self.next >= len(self.blocks):
                        return
                    self.cond.wait()
                    k = self._take()
            self._run(k)

    def result(self, k: int) -> Any:
        """Block k's value, computing other blocks on the calling thread while it is not done."""
        while True:
            with self.cond:
                if k in self.done:
                    returned, value = self.done.pop(k)
                    self.consumed = k + 1
                    self.cond.notify_all()  # the window moved: helpers may take more
                    break
                mine = self._take()
                if mine is None:
                    self.cond.wait()
                    continue
            self._run(mine)
        if not returned:
            raise value
        return value

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def weighted_row_sums(
    rows_of: Rows, n: int, d: int, dtype: np.dtype, a: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(A, B) above; ``rows_of(start, stop)`` returns rows e_start .. e_stop-1 as a new array.

    The block is squared in place.  B is None when ``b`` is.  Sums are accumulated in ``dtype``:
    within a group of ``GROUP_BLOCKS`` blocks in block order, then the groups' sums in group
    order, so the result does not depend on the number of threads.  Peak extra memory: one
    block per thread, and the sums of the groups in flight.
    """
    rows = max(1, BLOCK_BYTES // (d * np.dtype(dtype).itemsize))
    if rows >= n and n * d < BLAS_THREADED_ENTRIES:  # small problems: one block, BLAS on this thread
        return _block_sums(rows_of, 0, n, a, b, _matmul)
    plan = thread_plan()
    blocks = row_blocks(n, rows)
    groups = row_blocks(len(blocks), GROUP_BLOCKS)
    with blas_in_blocks(plan) as product:

        def group_sums(_: int, first: int, last: int) -> tuple[np.ndarray, np.ndarray | None]:
            # an overflow is the caller's to check (its sums are scanned): no warning from any thread, whose
            # np.errstate is its own (a helper thread does not inherit the caller's)
            with np.errstate(over="ignore", invalid="ignore"):
                sum_a, sum_b = _block_sums(rows_of, *blocks[first], a, b, product)
                for start, stop in blocks[first + 1 : last]:
                    more_a, more_b = _block_sums(rows_of, start, stop, a, b, product)
                    sum_a += more_a
                    if sum_b is not None and more_b is not None:
                        sum_b += more_b
            return sum_a, sum_b

        sums = map_blocks(group_sums, groups, plan)
        total_a, total_b = next(sums)
        for more_a, more_b in sums:
            total_a += more_a
            if total_b is not None and more_b is not None:
                total_b += more_b
    return total_a, total_b


def _block_sums(
    rows_of: Rows, start: int, stop: int, a: np.ndarray, b: np.ndarray | None, product: Product
) -> tuple[np.ndarray, np.ndarray | None]:
    """(sum_i a_i e_i, sum_i b_i e_i^2) over rows start .. stop-1, from one block, squared in place."""
    e = rows_of(start, stop)
    sum_a = product(a[start:stop], e)
    if b is None:
        return sum_a, None
    np.multiply(e, e, out=e)
    return sum_a, product(b[start:stop], e)
