"""The fast paths of issue 15 give the same numbers as the plain ones.

Large Gaussian fills run in threaded row blocks: the samples must not depend on the
number of threads, a RandomState must keep its exact legacy stream, and sampling must
not build temporaries of the sample matrix's size.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import npevograd as ng
from npevograd.sampling import _blocks, standard_normal


@pytest.fixture
def small_blocks(monkeypatch):
    """The threaded path from 2,000 entries on, in blocks of 300 entries (uneven last block)."""
    monkeypatch.setattr(_blocks, "PARALLEL_MIN_ENTRIES", 2_000)
    monkeypatch.setattr(_blocks, "FILL_BLOCK_ENTRIES", 300)


@pytest.mark.parametrize("shape", [(97, 31), (41, 3, 17)])
def test_generator_fill_is_the_same_for_any_thread_count(shape, dtype, small_blocks, monkeypatch):
    draws = []
    for threads in ("1", "2", "5"):
        monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", threads)
        draws.append(standard_normal(np.random.default_rng(7), shape, dtype))
    for z in draws:
        assert z.shape == shape and z.dtype == dtype
        np.testing.assert_array_equal(z, draws[0])


def test_generator_fill_is_standard_normal_and_blocks_are_independent(small_blocks):
    z = standard_normal(np.random.default_rng(3), (400, 50), np.float64)  # 67 blocks of 6 rows
    m = z.size
    assert abs(z.mean()) < 4 / np.sqrt(m)  # mean 0, within 4 standard errors
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / m)  # variance 1: var of z^2 is 2
    first, second = z[:6].ravel(), z[6:12].ravel()  # two blocks: different child streams
    assert abs(np.corrcoef(first, second)[0, 1]) < 4 / np.sqrt(first.size)


def test_generator_fill_advances_the_rng(small_blocks):
    rng = np.random.default_rng(11)
    a = standard_normal(rng, (100, 30), np.float32)
    b = standard_normal(rng, (100, 30), np.float32)
    assert not np.array_equal(a, b)


def test_small_generator_draws_are_unchanged():
    shape = (50, 10)  # below PARALLEL_MIN_ENTRIES: exactly rng.standard_normal
    for dtype in (np.float32, np.float64):
        np.testing.assert_array_equal(
            standard_normal(np.random.default_rng(5), shape, dtype),
            np.random.default_rng(5).standard_normal(shape, dtype=dtype),
        )


@pytest.mark.parametrize("shape", [(97, 31), (5,), (0, 4)])
def test_random_state_keeps_its_legacy_stream(shape, dtype, small_blocks):
    ours = standard_normal(np.random.RandomState(9), shape, dtype)
    expected = np.random.RandomState(9).standard_normal(shape).astype(dtype)
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("sigma", [0.3, np.array([0.5, 2.0, 1.5])])
def test_normal_sample_in_place_equals_mu_plus_sigma_eps(sigma, dtype):
    mu = np.array([1.0, -2.0, 0.25], dtype=dtype)
    p = ng.Normal(mu, np.asarray(sigma, dtype=dtype))
    eps = np.random.RandomState(4).standard_normal((8, 3)).astype(dtype)
    np.testing.assert_array_equal(p.sample(8, np.random.RandomState(4)), p.mu + p.sigma * eps)
    paired = ng.PairedNormal(mu, np.asarray(sigma, dtype=dtype)).sample(8, np.random.RandomState(4))
    half = np.random.RandomState(4).standard_normal((4, 3)).astype(dtype)
    np.testing.assert_array_equal(paired, np.concatenate([p.mu + p.sigma * half, p.mu + p.sigma * -half]))


def test_sampling_builds_no_temporary_of_the_sample_size():
    n, d = 200, 25_000  # 20 MB of float32 samples, above PARALLEL_MIN_ENTRIES
    p = ng.Normal(np.zeros(d, dtype=np.float32), np.full(d, 0.5, dtype=np.float32))
    for rng in (np.random.default_rng(0), np.random.RandomState(0)):
        p.sample(n, rng)
        tracemalloc.start()
        x = p.sample(n, rng)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        block = 8 * _blocks.FILL_BLOCK_ENTRIES  # a RandomState's float64 block before its cast
        assert peak < x.nbytes + block + 2**20, f"peak {peak / 2**20:.1f} MB for {x.nbytes / 2**20:.1f} MB of samples"


def test_thread_count_setting_is_validated(monkeypatch):
    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "3")
    assert _blocks.thread_count() == 3
    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="NPEVOGRAD_NUM_THREADS must be a positive integer, got 'two'"):
        _blocks.thread_count()
