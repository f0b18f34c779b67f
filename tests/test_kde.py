"""The entropy's kernel sums: kept and recomputed tiles against the straightforward dense formula."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

import npevograd as ng
from npevograd.estimators import _kde, _ratio_kde


def dense_reference(z: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """The formula as written: the full n x n kernel in float64, from per-coordinate differences."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    kernel = np.exp(-((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1) / bandwidth**2)
    density = kernel.sum(axis=0) / n
    nested = kernel @ (1 / density) / n
    return density, nested


# float64 must match the dense formula to about 1e-12; float32 to its own rounding
# (exponents and sums rounded to 2**-24, sums of up to a few hundred terms).
RTOL = {np.float64: 1e-12, np.float32: 2e-5}


def behaviours(n: int, k: int, dtype: type, seed: int = 0) -> np.ndarray:
    """Standard normal behaviours, z-scored as the estimator does (when n >= 2)."""
    b = np.random.default_rng(seed).standard_normal((n, k))
    return (ng.zscore(b) if n >= 2 else b).astype(dtype)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_kept_kernel_matches_dense(n, k, dtype):
    z = behaviours(n, k, dtype)
    assert _kde.keeps_kernel(n, dtype)
    density, nested = _kde.kernel_sums(z, 0.8)
    ref_density, ref_nested = dense_reference(z, 0.8)
    assert density.dtype == nested.dtype == dtype
    np.testing.assert_allclose(density, ref_density, rtol=RTOL[dtype], atol=0)
    np.testing.assert_allclose(nested, ref_nested, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("block", [3, 7, 64, 256, 1000])
def test_recomputed_tiles_match_dense(block, k, dtype):
    # n = 300: uneven last tile for 7, 64 and 256 (300 = 42*7 + 6 = 4*64 + 44 = 256 + 44); 1000 > n
    z = behaviours(300, k, dtype, seed=k)
    density, nested = _kde.kernel_sums(z, 1.3, block=block)
    ref_density, ref_nested = dense_reference(z, 1.3)
    assert density.dtype == nested.dtype == dtype
    np.testing.assert_allclose(density, ref_density, rtol=RTOL[dtype], atol=0)
    np.testing.assert_allclose(nested, ref_nested, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("block", [None, 37])
def test_exponents_from_differences_when_the_gemm_form_would_cancel(block, dtype):
    # A far cluster makes max ||c||^2 / h^2 huge: the GEMM form's rounding bound fails,
    # the tiles switch to per-coordinate differences, and the sums stay exact.
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.standard_normal((150, 2)), 1e4 + rng.standard_normal((50, 2))]).astype(dtype)
    assert not _kde._Tiles(z, 0.5).gram
    assert _kde._Tiles(behaviours(200, 2, dtype), 1.0).gram  # the usual case takes the GEMM form
    density, nested = _kde.kernel_sums(z, 0.5, block=block)
    ref_density, ref_nested = dense_reference(z, 0.5)
    np.testing.assert_allclose(density, ref_density, rtol=RTOL[dtype], atol=0)
    np.testing.assert_allclose(nested, ref_nested, rtol=RTOL[dtype], atol=0)


def test_gemm_form_within_1e12_on_heavy_tails_and_small_bandwidth():
    z = ng.zscore(np.random.default_rng(7).standard_t(3, size=(400, 2)))
    for bandwidth in (0.1, 0.3, 1.0, 3.0):
        ref_density, ref_nested = dense_reference(z, bandwidth)
        for block in (None, 64):
            density, nested = _kde.kernel_sums(z, bandwidth, block=block)
            np.testing.assert_allclose(density, ref_density, rtol=1e-12, atol=0)
            np.testing.assert_allclose(nested, ref_nested, rtol=1e-12, atol=0)


def test_gemm_form_in_float32_with_a_small_far_cluster():
    # 1% of the points 10 standard deviations out: max ||c||^2 is near the float32 bound,
    # the GEMM form is still used, and the sums keep float32 accuracy.
    rng = np.random.default_rng(4)
    b = np.concatenate([rng.standard_normal((594, 2)), 10 + 0.3 * rng.standard_normal((6, 2))])
    z = ng.zscore(b).astype(np.float32)
    tiles = _kde._Tiles(z, 1.0)
    assert tiles.gram
    assert 8 * np.finfo(np.float32).eps * float(np.max(np.sum((z - z.mean(0)) ** 2, axis=1))) > 2e-5
    ref_density, ref_nested = dense_reference(z, 1.0)
    for block in (None, 128):
        density, nested = _kde.kernel_sums(z, 1.0, block=block)
        np.testing.assert_allclose(density, ref_density, rtol=RTOL[np.float32], atol=0)
        np.testing.assert_allclose(nested, ref_nested, rtol=RTOL[np.float32], atol=0)


def test_translation_and_scale_of_behaviours_with_bandwidth_leave_sums_unchanged():
    z = behaviours(250, 2, np.float64)
    density, nested = _kde.kernel_sums(z, 1.0, block=50)
    shifted = _kde.kernel_sums(3.0 * z + np.array([100.0, -40.0]), 3.0, block=50)
    np.testing.assert_allclose(shifted[0], density, rtol=1e-12)
    np.testing.assert_allclose(shifted[1], nested, rtol=1e-12)


def count_exponentials(monkeypatch) -> list[int]:
    """Count the kernel exponentials: all go through _kde._exp, whose -inf entries are masked zeros."""
    counts = [0]
    real = _kde._exp

    def counting(tile):
        counts[0] += int(np.count_nonzero(np.isfinite(tile)))
        assert not np.any(np.isnan(tile)) and not np.any(tile == np.inf)
        real(tile)

    monkeypatch.setattr(_kde, "_exp", counting)
    return counts


@pytest.mark.parametrize("n", [2, 65, 500, 1000])
def test_kept_kernel_computes_each_pair_exponential_once(n, monkeypatch):
    counts = count_exponentials(monkeypatch)
    assert _kde.keeps_kernel(n, np.float64)
    _kde.kernel_sums(behaviours(n, 2, np.float64), 1.0)
    assert counts[0] == n * (n - 1) // 2


@pytest.mark.parametrize(("n", "block"), [(300, 64), (301, 256), (100, 1)])
def test_recomputed_kernel_computes_each_pair_exponential_twice(n, block, monkeypatch):
    counts = count_exponentials(monkeypatch)
    _kde.kernel_sums(behaviours(n, 2, np.float64), 1.0, block=block)
    assert counts[0] == n * (n - 1)


def test_kernel_kept_only_while_it_fits():
    assert _kde.keeps_kernel(2048, np.float64) and not _kde.keeps_kernel(2049, np.float64)
    assert _kde.keeps_kernel(2896, np.float32) and not _kde.keeps_kernel(2897, np.float32)


def traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_entropy_at_n4000_peak_memory_is_a_small_fraction_of_the_dense_kernel():
    n = 4000
    b = np.random.default_rng(3).standard_normal((n, 2))
    estimator = ng.Entropy(bandwidth=1.0)
    peak = traced_peak(lambda: estimator(b, b, ng.Normal(np.zeros(2), 1.0)))
    dense_kernel = n * n * 8  # 128 MB
    assert peak < dense_kernel / 2
    # what the tiles need: one 256 x 256 tile, O(n k) vectors; a few MB at most
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MB"


def test_kept_kernel_memory_is_the_upper_triangle():
    n = 2000
    z = behaviours(n, 2, np.float64)
    peak = traced_peak(lambda: _kde.kernel_sums(z, 1.0))
    upper = n * (n - 1) // 2 * 8
    assert upper <= peak < upper + 2**20  # the triangle plus O(n) vectors, not n^2


def test_estimator_weights_do_not_depend_on_block_size(dtype):
    b = np.random.default_rng(11).standard_normal((257, 3)).astype(dtype)
    x = np.zeros((257, 1), dtype=dtype)
    p = ng.Normal(np.zeros(1, dtype=dtype), 1.0)
    reference = ng.Entropy(bandwidth=0.7)(b, x, p)
    for block in (16, 100):
        blocked = ng.Entropy(bandwidth=0.7, block_size=block)(b, x, p)
        scale = np.max(np.abs(reference.weights))
        np.testing.assert_allclose(blocked.weights, reference.weights, rtol=0, atol=RTOL[dtype] * scale)
        assert blocked.weights.dtype == dtype


def test_recomputed_tiles_are_small_gemms_about_square():
    # rows x cols x (k + 2) multiply-adds at most TILE_MADDS (OpenBLAS keeps such a GEMM on the
    # calling thread), cols >= rows (the diagonal head fits in the first tile), 256 x 256 for k = 2
    for k in (1, 2, 3, 5, 10):
        strips = _kde._Strips(_kde._Tiles(behaviours(3000, k, np.float64), 1.0))
        rows = strips.bounds[0][1] - strips.bounds[0][0]
        assert rows <= strips.cols <= rows + 1
        assert rows * strips.cols * (k + 2) <= _kde.TILE_MADDS
        assert (rows, strips.cols) == ((256, 256) if k == 2 else (rows, strips.cols))
        assert _kde.TILE_MADDS - rows * strips.cols * (k + 2) < 2 * rows * (k + 2)  # as large as allowed


def strip_threads(monkeypatch) -> list[set[int]]:
    """Per pass over the strips (``_Strips.sums``), the ids of the threads that computed them."""
    passes: list[set[int]] = []
    real_sums, real_strip = _kde._Strips.sums, _kde._Strips._strip

    def sums(self, u):
        passes.append(set())
        return real_sums(self, u)

    def strip(self, k, i0, i1, u):
        passes[-1].add(threading.get_ident())
        if k == 0:  # the caller takes blocks too: hold the first strip so that a helper surely takes one
            time.sleep(0.02)
        return real_strip(self, k, i0, i1, u)

    monkeypatch.setattr(_kde._Strips, "sums", sums)
    monkeypatch.setattr(_kde._Strips, "_strip", strip)
    return passes


@pytest.mark.parametrize("block", [None, 40])
def test_sums_identical_whatever_the_number_of_threads(block, dtype, monkeypatch):
    # strips in threads, their sums added in strip order: bit for bit the same as one thread
    monkeypatch.setattr(_kde, "PARALLEL_MIN_PAIRS", 0)  # threads even for this small n
    z = behaviours(700, 2, dtype, seed=3)
    r = np.random.default_rng(8).exponential(size=700).astype(dtype)
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", threads)
        passes = strip_threads(monkeypatch)
        results[threads] = _kde.kernel_sums(z, 0.9, block=block) + _ratio_kde.weighted_kernel_sums(z, 0.9, r, block)
        monkeypatch.undo()  # restores _strip (and the thread count) before the next round
        monkeypatch.setattr(_kde, "PARALLEL_MIN_PAIRS", 0)
        used = [len(seen) for seen in passes]  # four passes: kernel_sums' two, then weighted_kernel_sums'
        assert len(used) == 4 and max(used) <= int(threads)
        assert used == [1] * 4 if threads == "1" else max(used) > 1  # the strips really ran in threads
    for threads in ("2", "3"):
        for one, many in zip(results["1"], results[threads]):
            assert one.dtype == many.dtype == dtype
            np.testing.assert_array_equal(many, one)
    ref_density, ref_nested = dense_reference(z, 0.9)
    np.testing.assert_allclose(results["2"][0], ref_density, rtol=RTOL[dtype], atol=0)
    np.testing.assert_allclose(results["2"][1], ref_nested, rtol=RTOL[dtype], atol=0)


def test_threads_only_for_large_kernels():
    # from PARALLEL_MIN_PAIRS = 2**24 pairs on: n = 5794 (5793 * 5792 / 2 = 2**24 - 688)
    assert not _kde._Strips(_kde._Tiles(behaviours(5793, 1, np.float32), 1.0)).threaded
    assert _kde._Strips(_kde._Tiles(behaviours(5794, 1, np.float32), 1.0)).threaded
