"""Block-streamed weighted row sums: equal to the dense sums whatever the block size and thread count."""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng
from npevograd.sampling import _blocks


@pytest.mark.parametrize("block_rows", [1, 3, 7, 50])
def test_weighted_row_sums_equal_the_dense_sums(block_rows, dtype, monkeypatch):
    n, d = 23, 9  # 23 rows: uneven last block for 3 and 7; one block for 50
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", block_rows * d * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(block_rows)
    rows = rng.standard_normal((n, d)).astype(dtype)
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    calls = []

    def fill(start, stop):
        calls.append((start, stop))
        return rows[start:stop].copy()

    sum_a, sum_b = _blocks.weighted_row_sums(fill, n, d, np.dtype(dtype), a, b)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    assert sum_a.dtype == sum_b.dtype == dtype
    np.testing.assert_allclose(sum_a, a.astype(float) @ rows.astype(float), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(sum_b, b.astype(float) @ rows.astype(float) ** 2, rtol=rtol, atol=rtol)
    assert sorted(start for start, _ in calls) == list(range(0, n, block_rows))  # every row once
    assert _blocks.weighted_row_sums(fill, n, d, np.dtype(dtype), a)[1] is None


@pytest.mark.parametrize("sigma", [0.7, np.array([0.5, 2.0, 1.0, 0.1, 3.0])])
def test_learned_sigma_gradient_over_many_blocks_equals_the_score_contraction(sigma, monkeypatch):
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 2 * 5 * 8)  # 2 rows of d = 5 float64 per block
    p = ng.Normal(np.array([1.0, -0.5, 0.25, 3.0, 1e3]), sigma, learn_sigma=True)  # mu 1e3: no cancellation
    x = p.sample(31, rng=5)
    w = np.random.default_rng(6).standard_normal(31)
    ours = p.weighted_score(w, x)
    for name, score in p.score(x).items():
        np.testing.assert_allclose(ours[name], np.tensordot(w, score, axes=(0, 0)), rtol=1e-11)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_x_is_never_copied_whole(threads, monkeypatch):
    """Peak extra memory of the learned-sigma gradient is a block per thread, not the (n, d) matrix."""
    import tracemalloc

    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", threads)
    n, d = 400, 20_000  # x is 64 MB in float64, 16 blocks of 26 rows in 2 groups
    p = ng.Normal(np.zeros(d), 0.5, learn_sigma=True)
    x = p.sample(n, rng=0)
    w = np.full(n, 1 / n)
    tracemalloc.start()
    p.weighted_score(w, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t = int(threads)
    # a block per thread, plus the sums (A and B, d entries each) of the groups running and queued
    budget = t * _blocks.BLOCK_BYTES + (2 * t + 2) * 2 * d * 8 + 8 * d * 8
    assert peak < budget, f"peak {peak / 2**20:.1f} MB vs x {x.nbytes / 2**20:.0f} MB"


@pytest.mark.parametrize("threadpoolctl", ["1", "0"])
def test_weighted_row_sums_same_bits_for_any_thread_count(threadpoolctl, dtype, monkeypatch):
    # groups of 2 blocks of 3 rows: 41 rows are 14 blocks in 7 groups, summed in group order
    n, d = 41, 5
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 3 * d * np.dtype(dtype).itemsize)
    monkeypatch.setattr(_blocks, "GROUP_BLOCKS", 2)
    monkeypatch.setattr(_blocks, "BLAS_THREADED_ENTRIES", 0)  # the blocked path even at this size
    monkeypatch.setenv("NPEVOGRAD_THREADPOOLCTL", threadpoolctl)
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((n, d)).astype(dtype)
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", threads)
        results[threads] = _blocks.weighted_row_sums(lambda i, j: rows[i:j].copy(), n, d, np.dtype(dtype), a, b)
    for threads in ("2", "3"):
        for one, many in zip(results["1"], results[threads]):
            np.testing.assert_array_equal(one, many)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(results["1"][0], a.astype(float) @ rows.astype(float), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(results["1"][1], b.astype(float) @ rows.astype(float) ** 2, rtol=rtol, atol=rtol)


def test_thread_plan_reads_the_environment(monkeypatch):
    for name in _blocks.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "3")
    monkeypatch.setenv("NPEVOGRAD_THREADPOOLCTL", "0")
    assert _blocks.thread_plan() == (3, 1, "none")
    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "100")
    assert _blocks.thread_plan().threads == _blocks.MAX_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _blocks.thread_plan().limiter == "environment"
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", bad)
        with pytest.raises(ValueError, match=f"NPEVOGRAD_NUM_THREADS must be a positive integer, got '{bad}'"):
            _blocks.thread_plan()


def test_products_without_blas_equal_the_blas_products(monkeypatch):
    monkeypatch.setenv("NPEVOGRAD_THREADPOOLCTL", "0")
    for name in _blocks.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    rng = np.random.default_rng(3)
    a, e = rng.standard_normal(7), rng.standard_normal((7, 300))
    with _blocks.blas_in_blocks() as product:
        assert product is _blocks._einsum
        np.testing.assert_allclose(product(a, e), a @ e, rtol=1e-13, atol=1e-13)


def test_blas_is_held_at_one_thread_inside_blocks_and_restored_after(monkeypatch):
    pytest.importorskip("threadpoolctl")
    import threading

    monkeypatch.delenv("NPEVOGRAD_THREADPOOLCTL", raising=False)
    controller = _blocks._controller()  # numpy's BLAS, as npevograd found it
    if controller is None:
        pytest.skip("no BLAS found by threadpoolctl")

    def counts() -> list[int]:
        return [lib.num_threads for lib in controller.lib_controllers]

    plan = _blocks.ThreadPlan(2, 1, "threadpoolctl")
    seen = {}

    def other_thread() -> None:  # not the main thread: OpenBLAS would ignore a limit set here
        with _blocks.blas_in_blocks(plan) as product:
            seen["other"] = product

    with controller.limit(limits=2):  # a known count outside, whatever this machine's default
        outside = counts()
        with _blocks.blas_in_blocks(plan) as product:
            inside = counts()
            with _blocks.blas_in_blocks(plan) as nested:
                inside_nested = counts()
            after_nested = counts()
        after = counts()
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert outside == after == [2] * len(outside)
    assert inside == inside_nested == after_nested == [1] * len(outside)
    assert product is nested is _blocks._matmul
    assert seen["other"] is _blocks._einsum


def test_the_caller_computes_blocks_while_a_helper_is_held_up(monkeypatch):
    """A helper thread the machine does not run (here: one that waits) holds up its own block only."""
    import threading

    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "2")  # one helper beside the caller
    caller = threading.get_ident()
    by_caller, helper_in, released = [], threading.Event(), threading.Event()
    helper_waited = []

    def fn(k: int, start: int, stop: int) -> int:
        if threading.get_ident() == caller:
            helper_in.wait(10)  # the helper has taken a block (however late the machine runs it)
            by_caller.append(k)
            if len(by_caller) == 2:  # every block but the helper's is done: let it go
                released.set()
        else:
            helper_in.set()
            helper_waited.append(released.wait(10))
        return 10 * k + start

    blocks = _blocks.row_blocks(3, 1)
    assert list(_blocks.map_blocks(fn, blocks)) == [0, 11, 22]
    assert len(by_caller) == 2 and helper_waited == [True]  # released by the caller, not by the timeout


def test_an_error_in_a_block_reaches_the_caller_and_no_thread_is_left(monkeypatch):
    import threading

    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "3")
    before = threading.active_count()

    def fn(k: int, start: int, stop: int) -> int:
        if k == 4:
            raise ArithmeticError(f"block {k}")
        return k

    with pytest.raises(ArithmeticError, match="block 4"):
        list(_blocks.map_blocks(fn, _blocks.row_blocks(9, 1)))
    assert threading.active_count() == before
    partial = _blocks.map_blocks(lambda k, start, stop: k, _blocks.row_blocks(9, 1))
    assert next(partial) == 0
    partial.close()  # a consumer that stops early: the helpers are joined
    assert threading.active_count() == before
