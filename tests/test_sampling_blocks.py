"""Block-streamed weighted row sums: equal to the dense sums whatever the block size."""

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
    assert [start for start, _ in calls] == list(range(0, n, block_rows))  # every row once, in order
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
    assert peak < _blocks.BLOCK_BYTES + 8 * d * 8, f"peak {peak / 2**20:.1f} MB vs x {x.nbytes / 2**20:.0f} MB"
