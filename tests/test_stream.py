"""Block-streamed weighted row sums: equal to the dense sums whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng
from npevograd import _stream


@pytest.mark.parametrize("block_rows", [1, 3, 7, 50])
def test_weighted_row_sums_equal_the_dense_sums(block_rows, dtype, monkeypatch):
    n, d = 23, 9  # 23 rows: uneven last block for 3 and 7; one block for 50
    monkeypatch.setattr(_stream, "BLOCK_BYTES", block_rows * d * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(block_rows)
    rows = rng.standard_normal((n, d)).astype(dtype)
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    calls = []

    def fill(start, stop):
        calls.append((start, stop))
        return rows[start:stop].copy()

    sum_a, sum_b = _stream.weighted_row_sums(fill, n, d, np.dtype(dtype), a, b)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    assert sum_a.dtype == sum_b.dtype == dtype
    np.testing.assert_allclose(sum_a, a.astype(float) @ rows.astype(float), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(sum_b, b.astype(float) @ rows.astype(float) ** 2, rtol=rtol, atol=rtol)
    assert [start for start, _ in calls] == list(range(0, n, block_rows))  # every row once, in order
    assert _stream.weighted_row_sums(fill, n, d, np.dtype(dtype), a)[1] is None


@pytest.mark.parametrize("sigma", [0.7, np.array([0.5, 2.0, 1.0, 0.1, 3.0])])
def test_learned_sigma_gradient_over_many_blocks_equals_the_score_contraction(sigma, monkeypatch):
    monkeypatch.setattr(_stream, "TILE_ROWS", 2)  # tiles of 2 rows by 2 columns: 16 row blocks, 3 strips
    monkeypatch.setattr(_stream, "TILE_ENTRIES", 4)
    p = ng.Normal(np.array([1.0, -0.5, 0.25, 3.0, 1e3]), sigma, learn_sigma=True)  # mu 1e3: no cancellation
    x = p.sample(31, rng=5)
    w = np.random.default_rng(6).standard_normal(31)
    ours = p.weighted_score(w, x)
    for name, score in p.score(x).items():
        np.testing.assert_allclose(ours[name], np.tensordot(w, score, axes=(0, 0)), rtol=1e-11)


def test_x_is_never_copied_whole(monkeypatch):
    """Peak extra memory of the learned-sigma gradient is one block, not the (n, d) matrix."""
    import tracemalloc

    n, d = 400, 20_000  # x is 64 MB in float64
    p = ng.Normal(np.zeros(d), 0.5, learn_sigma=True)
    x = p.sample(n, rng=0)
    w = np.full(n, 1 / n)
    tracemalloc.start()
    p.weighted_score(w, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < _stream.BLOCK_BYTES + 8 * d * 8, f"peak {peak / 2**20:.1f} MB vs x {x.nbytes / 2**20:.0f} MB"


@pytest.mark.parametrize("tile_rows, tile_entries", [(2, 12), (3, 40), (8, 1000)])  # strips of 6, 13, all columns
def test_weighted_tile_sums_equal_the_dense_sums_for_any_thread_count(tile_rows, tile_entries, dtype, monkeypatch):
    n, d = 23, 19
    monkeypatch.setattr(_stream, "TILE_ROWS", tile_rows)
    monkeypatch.setattr(_stream, "TILE_ENTRIES", tile_entries)
    rng = np.random.default_rng(tile_rows)
    rows = rng.standard_normal((n, d)).astype(dtype)
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    seen = np.zeros((n, d), dtype=int)

    def tile(r0, r1, c0, c1, out):
        seen[r0:r1, c0:c1] += 1
        if out is None:
            return rows[r0:r1, c0:c1].copy()
        out[...] = rows[r0:r1, c0:c1]
        return out

    sums = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", threads)
        sums.append(_stream.weighted_tile_sums(tile, n, d, np.dtype(dtype), a, b))
    assert (seen == 3).all()  # every entry once per call
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    sum_a, sum_b = sums[0]
    assert sum_a.dtype == sum_b.dtype == dtype
    np.testing.assert_allclose(sum_a, a.astype(float) @ rows.astype(float), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(sum_b, b.astype(float) @ rows.astype(float) ** 2, rtol=rtol, atol=rtol)
    for other_a, other_b in sums[1:]:  # a strip is one thread's: the same bits for any thread count
        np.testing.assert_array_equal(other_a, sum_a)
        np.testing.assert_array_equal(other_b, sum_b)
    assert _stream.weighted_tile_sums(tile, n, d, np.dtype(dtype), a)[1] is None


def test_tile_grid_covers_the_columns_in_near_equal_strips():
    rows, strips = _stream.tile_grid(1000, 100_000)
    assert rows == _stream.TILE_ROWS and rows * (strips[0][1] - strips[0][0]) <= _stream.TILE_ENTRIES
    assert strips[0][0] == 0 and strips[-1][1] == 100_000
    assert all(stop == start for (_, stop), (start, _) in zip(strips[:-1], strips[1:]))
    assert max(c1 - c0 for c0, c1 in strips) - min(c1 - c0 for c0, c1 in strips) <= 1
