"""XNES after issue 25 (kept z, converged runs end by stop criteria, memory, separable) and issue 24 section 3
(the O(n d^2) exponential, log det and the condition bound carried along)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

import npevograd as ng
from npevograd.algorithms import XNES, xnes

NAMED = {"tolx", "tolconditioncov", "noeffectcoord", "tolfun", "tolfunhist", "tolstagnation", "tolflatfitness"}


def run_until_stop(es: XNES, fitness, limit: int) -> dict[str, float]:
    for _ in range(limit):
        es.tell(fitness(es.ask()))
        if es.stop():
            return es.stop()
    return es.stop()


def run_regardless(es: XNES, fitness, generations: int) -> dict[str, float]:
    """The probe of issue 25: ``generations`` generations whatever stop() says; then the criteria that fired."""
    first: dict[str, float] = {}
    for _ in range(generations):
        es.tell(fitness(es.ask()))
        first = first or es.stop()
    assert np.isfinite(es.distribution.scale_tril).all() and np.all(np.diagonal(es.distribution.scale_tril) > 0)
    return first


def test_sphere_runs_past_generation_757_and_stops_by_name() -> None:
    """Issue 25: the factor was corrupted at generation 757 (z recovered by a solve); now the run goes on, and
    its stop() names what fired (tolfun first; with the function-value criteria off, the width criteria)."""
    sphere = lambda x: -np.sum((x - 1) ** 2, axis=1)  # noqa: E731
    stop = run_regardless(XNES(np.zeros(5), rng=7), sphere, 1500)
    assert stop and set(stop) <= NAMED, stop
    es = XNES(np.zeros(5), rng=7, tolfun=None, tolfunhist=None)
    stop = run_until_stop(es, sphere, 5000)
    assert es.generation > 300 and set(stop) & {"tolx", "noeffectcoord"}, (es.generation, stop)
    assert np.abs(es.mean - 1).max() < 1e-10


def test_float32_mean_runs_past_generation_240() -> None:
    es = XNES(np.zeros(4, np.float32), rng=7)
    stop = run_regardless(es, lambda x: -np.sum((x.astype(np.float64) - 1) ** 2, axis=1), 1000)
    assert stop and set(stop) <= NAMED, stop
    assert es.mean.dtype == np.float32 and np.abs(es.mean - 1).max() < 1e-5


def test_random_fitness_runs_past_generation_1442() -> None:
    """Issue 25: random fitness raised at generation 1,442 (cond(L) 3e36)."""
    gen = np.random.default_rng(0)
    stop = run_regardless(XNES(np.zeros(5), rng=7), lambda x: gen.standard_normal(x.shape[0]), 2000)
    assert "tolconditioncov" in stop  # the random walk of the factor's shape is stopped by name (generation 578)


def test_large_d_is_a_clear_error_before_allocating(monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"XNES at d = 1000000 needs a dense d x d factor of 7450\.6 GiB"):
        XNES(np.zeros(1_000_000))
    monkeypatch.setattr(xnes, "memory_limit", lambda: 2**20)  # 1 MiB: d = 1000 (7.6 MiB) does not fit
    with pytest.raises(ValueError, match=r"d = 1000 needs .* 0\.0 GiB .*use XNES\(\.\.\., separable=True\)"):
        XNES(np.zeros(1000))
    XNES(np.zeros(300))  # 0.7 MiB: fits


def test_separable_stores_only_the_diagonal() -> None:
    es = XNES(np.zeros(200_000), 0.5, rng=0, popsize=4, separable=True)
    es.tell(-np.sum(es.ask() ** 2, axis=1))
    assert isinstance(es.distribution, ng.Normal) and es.distribution.params["sigma"].shape == (200_000,)
    assert es._A.shape == (200_000,)
    with pytest.raises(ValueError, match=r"separable=True keeps a diagonal factor: sigma must be a scalar or of"):
        XNES(np.zeros(3), np.eye(3), separable=True)


@pytest.mark.parametrize("value", ["no", 1, None])
def test_separable_must_be_a_bool(value) -> None:
    with pytest.raises(TypeError, match="separable must be a bool, got"):
        XNES(np.zeros(3), separable=value)


def test_low_rank_exponential_equals_the_dense_one() -> None:
    """A e^{eta_s G_s/2} expm(eta_B G_B/2) with scipy's dense expm, against the rank-n form, after a few steps:
    the same covariance, and scale_tril its lower-triangular factor."""
    d = 6
    es = XNES(np.linspace(0, 1, d), 0.7, rng=3, lr_B=0.3, lr_sigma=0.2)
    fitness = lambda x: -np.sum(np.arange(1, d + 1) * (x - 0.5) ** 2, axis=1)  # noqa: E731
    for _ in range(5):
        es.tell(fitness(es.ask()))
    A, mu = es._A.copy(), es.mean
    x = es.ask()
    f = fitness(x)
    z = es._z.copy()
    u = ng.nes_utilities(f)
    g_m = (z * u[:, None]).T @ z - u.sum() * np.eye(d)
    g_sigma = np.trace(g_m) / d
    g_b = g_m - g_sigma * np.eye(d)
    expected_A = A * math.exp(0.2 * g_sigma / 2) @ expm(0.3 / 2 * g_b)
    es.tell(f)
    L = es.distribution.scale_tril  # lower triangular with L L^T = A A^T of the dense update
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L) > 0)
    np.testing.assert_allclose(L @ L.T, expected_A @ expected_A.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(es.mean, mu + A @ (u @ z), rtol=1e-12)
    # sigma and an upper bound of the condition number carried along
    assert es.sigma == pytest.approx(abs(np.linalg.det(es._A)) ** (1 / d), rel=1e-12)
    assert es._log_cond >= 2 * math.log(np.linalg.cond(es._A)) - 1e-9
    assert es.axis_ratio == pytest.approx(np.linalg.cond(es._A), rel=1e-10)


def test_condition_bound_stays_above_the_truth_and_tolconditioncov_fires() -> None:
    es = XNES(np.ones(3), 1.0, rng=1, tolfun=None, tolfunhist=None, tolx=None)
    scales = np.array([1.0, 1e4, 1e8])
    for _ in range(3000):
        es.tell(-np.sum((scales * es.ask()) ** 2, axis=1))
        assert es._log_cond >= 2 * math.log(np.linalg.cond(es._A)) - 1e-6
        if es.stop():
            break
    assert "tolconditioncov" in es.stop() and np.linalg.cond(es._A) ** 2 > 1e14
