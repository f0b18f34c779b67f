"""Large Gaussian fills (``npevograd.sampling._draws``): the distribution, thread independence, memory, mirroring.

float32 arrays from ``PARALLEL_MIN_ENTRIES`` entries on are Box-Muller normals; the sample
sizes of the distribution tests are chosen from the standard error of each statistic,
with a stated tolerance in standard errors and a fixed seed.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy import stats

import npevograd as ng
from npevograd.sampling import _blocks, _draws

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


@pytest.fixture(scope="module")
def big_float32() -> np.ndarray:
    """2^24 float32 normals through the threaded Box-Muller path (64 MB)."""
    return _draws.normal_rows(np.random.default_rng(2024), (256, 1 << 16), F32).ravel().astype(np.float64)


def test_box_muller_is_its_formula():
    rng = np.random.default_rng(8)
    out = np.empty(7, dtype=np.float32)  # odd: 4 pairs, the last sine unused
    _draws.box_muller(rng, out, *_draws._box_muller_scratch(7))
    again = np.random.default_rng(8)
    k53 = again.random(4)  # k 2^-53
    angle = again.random(4, dtype=np.float32) * np.float32(2 * np.pi)
    radius = np.sqrt(-2 * np.log(1 - k53))
    expected = np.concatenate([radius * np.cos(angle.astype(float)), (radius * np.sin(angle.astype(float)))[:3]])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_moments_are_standard_normal(big_float32):
    z, m = big_float32, big_float32.size
    # E z^k and the standard error sqrt(var(z^k) / m): var z = 1, var z^2 = 2, var z^3 = 15, var z^4 = 96
    for power, mean, var in ((1, 0, 1), (2, 1, 2), (3, 0, 15), (4, 3, 96)):
        assert abs(np.mean(z**power) - mean) < 4 * math.sqrt(var / m), f"E z^{power}"


def test_kolmogorov_smirnov_against_the_normal_cdf(big_float32):
    z = big_float32[: 1 << 20]
    d_stat = stats.kstest(z, "norm").statistic
    assert d_stat < math.sqrt(-0.5 * math.log(1e-4 / 2)) / math.sqrt(z.size)  # the 1e-4 level critical value


@pytest.mark.parametrize("beyond", [3.0, 4.0, 5.0])
def test_tail_frequency_is_the_exact_normal_tail(big_float32, beyond):
    z, m = big_float32, big_float32.size
    p = 2 * stats.norm.sf(beyond)  # P(|Z| > beyond): 4 sigma expects ~1060 of 2^24, 5 sigma ~10
    count = int(np.count_nonzero(np.abs(z) > beyond))
    assert abs(count - m * p) < 4 * math.sqrt(m * p) + 1, f"{count} beyond {beyond}, expected {m * p:.1f}"
    assert np.max(np.abs(z)) <= math.sqrt(106 * math.log(2))  # the documented cap, 8.57


@pytest.fixture
def small_pieces(monkeypatch):
    """The threaded path from 2,000 entries, blocks of 600 entries, pieces of 64 (rows split in columns)."""
    monkeypatch.setattr(_blocks, "PARALLEL_MIN_ENTRIES", 2_000)
    monkeypatch.setattr(_blocks, "FILL_BLOCK_ENTRIES", 600)
    monkeypatch.setattr(_blocks, "PIECE_ENTRIES", 64)


@pytest.mark.parametrize("d", [150, 7])  # rows cut into column pieces; several rows per piece
@pytest.mark.parametrize("dtype", [F32, F64])
def test_same_samples_for_any_thread_count(d, dtype, small_pieces, monkeypatch):
    mu = np.linspace(-1, 1, d).astype(dtype)
    for cls in (ng.Normal, ng.PairedNormal):
        p = cls(mu, np.linspace(0.5, 2, d).astype(dtype))
        draws = []
        for threads in ("1", "2", "3"):
            monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", threads)
            draws.append(p.sample(400, np.random.default_rng(3)))
        for x in draws:
            assert x.dtype == dtype and x.shape == (400, d)
            np.testing.assert_array_equal(x, draws[0])


@pytest.mark.parametrize("dtype", [F32, F64])
def test_scaled_shifted_and_mirrored_exactly(dtype, small_pieces):
    n, d = 60, 150
    mu, sigma = np.linspace(-3, 3, d).astype(dtype), np.linspace(0.1, 4, d).astype(dtype)
    z = _draws.normal_rows(np.random.default_rng(5), (n, d), dtype)
    x = ng.Normal(mu, sigma).sample(n, np.random.default_rng(5))
    np.testing.assert_array_equal(x, z * sigma + mu)
    paired = ng.PairedNormal(mu, sigma).sample(2 * n, np.random.default_rng(5))
    np.testing.assert_array_equal(paired[:n], x)
    np.testing.assert_array_equal(paired[n:], mu - z * sigma)
    np.testing.assert_array_equal(ng.PairedNormal(np.zeros(d, dtype), 1.0).sample(2 * n, 5)[n:], -z)


def test_float64_keeps_the_childrens_ziggurat_stream(small_pieces):
    n, d = 50, 150  # 13 blocks of 4 rows (600 entries): block k from child k of the spawned seed
    z = _draws.normal_rows(np.random.default_rng(9), (n, d), F64)
    rng = np.random.default_rng(9)
    children = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64)).spawn(13)
    rows = [np.random.Generator(np.random.PCG64(s)).standard_normal((4, d)) for s in children]
    np.testing.assert_array_equal(z, np.concatenate(rows)[:n])  # the last block has 2 rows


@pytest.mark.parametrize("cls", [ng.Normal, ng.PairedNormal])
def test_no_temporary_of_the_sample_size(cls):
    n, d = 200, 25_000  # 20 MB of float32 samples, above PARALLEL_MIN_ENTRIES
    p = cls(np.zeros(d, dtype=np.float32), np.full(d, 0.5, dtype=np.float32))
    rng = np.random.default_rng(0)
    p.sample(n, rng)
    tracemalloc.start()
    x = p.sample(n, rng)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    scratch = _blocks.MAX_THREADS * 3 * 4 * _blocks.PIECE_ENTRIES  # Box-Muller work arrays, per block running
    assert peak < x.nbytes + scratch + 2**20, f"peak {peak / 2**20:.1f} MB for {x.nbytes / 2**20:.1f} MB of samples"
