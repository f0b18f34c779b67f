"""The CMA-ES small loop (issue 24): the floor of ``benchmarks/peers_small.py`` is npevograd's ``CMAES`` generation
(the same numbers from the same draws), and ``CMAES``'s own fast paths are its general ones."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest

from npevograd.algorithms import CMAES, SepCMAES


def rastrigin(x: np.ndarray) -> np.ndarray:
    return -(10.0 * x.shape[1] + np.sum(x**2 - 10.0 * np.cos(2 * np.pi * x), axis=1))  # maximised


@pytest.fixture
def peers_small(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "benchmarks"))
    return pytest.importorskip("peers_small")


def close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """||a - b|| <= tol ||b|| (both zero: equal)."""
    return bool(np.linalg.norm(a - b) <= tol * np.linalg.norm(b))


@pytest.mark.parametrize("n", [10, 11, 50])
def test_the_floor_is_the_cmaes_generation(peers_small, n: int) -> None:
    """From the same seed, the floor's m, sigma, C, paths and B D follow CMAES's to rounding for 40 generations.

    At d = 10 both eigendecompose every generation; odd n has a zero weight; sigma_0 = 0.01 far from the optimum
    makes ||p_sigma|| long, so h_sigma = 0 (the stalled p_c and the decay that puts its variance back) is met too.
    """
    d, seed = 10, 7
    mu0 = np.random.default_rng(1).uniform(-5, 5, d)
    stalled = 0
    for sigma0 in (3.0, 0.01):
        es = CMAES(mu0, sigma0, popsize=n, rng=seed)
        floor = peers_small.CMAFloor(CMAES(mu0, sigma0, popsize=n), np.random.default_rng(seed))
        for generation in range(40):
            es.tell(rastrigin(es.ask()))
            floor.step(rastrigin)
            ps_squared = es.p_sigma @ es.p_sigma
            stalled += not ps_squared / d < (2 + 4 / (d + 1)) * (1 - (1 - es.c_sigma) ** (2 * es.generation))
            assert floor.g == es.generation
            assert close(floor.m, es.mean, 1e-13), generation
            assert floor.sigma == pytest.approx(es.sigma, rel=1e-13), generation
            for mine, theirs in ((floor.C, es.C), (floor.p_sigma, es.p_sigma), (floor.p_c, es.p_c)):
                assert close(mine, theirs, 1e-12), generation
            assert close(floor.BD, es.distribution.BD, 1e-10), generation
    assert stalled > 5


def test_the_floor_restarts_where_it_began(peers_small) -> None:
    es = CMAES(np.ones(10), 2.0, popsize=10)
    floor = peers_small.CMAFloor(es, np.random.default_rng(0))
    for _ in range(5):
        floor.step(rastrigin)
    floor.reset()
    np.testing.assert_array_equal(floor.m, np.ones(10))
    assert floor.sigma == 2.0 and floor.g == 0
    np.testing.assert_array_equal(floor.C, np.eye(10))
    np.testing.assert_array_equal(floor.p_c, np.zeros(10))


@pytest.mark.parametrize("rng", [np.random.default_rng, np.random.RandomState])
def test_asks_draw_is_the_distributions_sample(rng) -> None:
    """ask's z (the Generator's own call below the threaded size) is npevograd.sampling.standard_normal's, and x is
    es.distribution.sample's, bit for bit; the kept y is B D z."""
    from npevograd.sampling import standard_normal

    es = CMAES(np.linspace(-1, 1, 7), 0.4, popsize=9, rng=rng(5))
    for _ in range(4):
        es.tell(rastrigin(es.ask()))
    p, state, twin = copy.deepcopy(es.distribution), copy.deepcopy(es.rng), copy.deepcopy(es.rng)
    x = es.ask()
    np.testing.assert_array_equal(x, p.sample(9, state))
    z, y = es._zy
    np.testing.assert_array_equal(z, standard_normal(twin, (9, 7), np.float64))
    np.testing.assert_allclose(y, z @ (p.B * p.D).T, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(x, p.params["mu"] + p.sigma * y)


@pytest.mark.parametrize("active", [True, False])
@pytest.mark.parametrize("n", [8, 9])
def test_kept_draws_and_whitened_rows_make_the_same_update(active: bool, n: int) -> None:
    """tell(f) (the kept z, y) and tell(f, x=x) (x whitened again) agree to rounding, whatever the weights' signs."""
    a = CMAES(np.full(6, 1.0), 0.5, popsize=n, rng=3, active=active)
    b = pickle.loads(pickle.dumps(a))
    for _ in range(20):
        x = a.ask()
        b.ask()
        a.tell(rastrigin(x))
        b.tell(rastrigin(x), x=x.copy())
        np.testing.assert_allclose(b.C, a.C, rtol=1e-11)
        np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(b.estimate.grad["mu"], a.estimate.grad["mu"], rtol=1e-9)


def test_the_covariance_update_is_the_formula() -> None:
    """_new_covariance's two BLAS calls: decay C + c_1 p_c p_c^T + sum_i r_i y_i y_i^T, written out in NumPy."""
    es = CMAES(np.zeros(5), 1.0, rng=0)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 5))
    es.C = a @ a.T + np.eye(5)
    before = es.C.copy()
    rates, y, p_c = rng.standard_normal(8), rng.standard_normal((8, 5)), rng.standard_normal(5)
    new = es._new_covariance(0.7, p_c, (rates, y))
    expected = 0.7 * before + es.c_1 * np.outer(p_c, p_c) + (y.T * rates) @ y
    np.testing.assert_allclose(new, expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(es.C, before)  # a new array: C is written only when the update is committed
    assert new.flags.c_contiguous


@pytest.mark.slow
def test_peers_small_cma_table_runs(peers_small) -> None:
    """The CMA-ES table's rows (peers skipped when not installed) and its report's goal lines."""
    row = peers_small.bench_small_cmaes(10, 4, repeats=2, scan_generations=3, block=2)
    assert row["npevograd_asktell_s"] > 0 and row["floor_s"] > 0 and row["floor_over_npevograd_asktell"] > 0
    text = peers_small.report([row])
    assert "ask-tell / floor" in text
    assert ("evosax_jit / ask-tell" in text) == ("evosax_jit_s" in row)


@pytest.mark.parametrize("cls", [CMAES, SepCMAES])
def test_the_estimate_read_late_is_the_generations(cls) -> None:
    """es.estimate, computed when read: J = sum_i w_i f_i and Sigma^{-1} sum_{i<=mu} w_i (x_{i:n} - m) with the
    Sigma that drew x (solved here), the same after a pickle and after a refused tell."""
    es = cls(np.linspace(-1, 1, 5), 0.6, popsize=9, rng=2)
    for _ in range(6):
        es.tell(rastrigin(es.ask()))
    m, sigma = es.mean, es.sigma
    p = es.distribution
    covariance = sigma**2 * (np.diag(p.D**2) if p.B is None else (p.B * p.D**2) @ p.B.T)
    x = es.ask()
    f = rastrigin(x)
    es.tell(f)
    ranks = np.argsort(np.argsort(-f, kind="stable"))
    w = es.weights[ranks]
    positive = np.where(w > 0, w, 0.0)
    twin = pickle.loads(pickle.dumps(es))
    es.ask()
    with pytest.raises(ValueError, match="fitness"):
        es.tell(np.zeros(3))
    for estimate in (es.estimate, twin.estimate):
        np.testing.assert_array_equal(estimate.weights, w)
        assert estimate.value == pytest.approx(float(w @ f), rel=1e-13)
        expected = np.linalg.solve(covariance, positive @ (x - m))
        np.testing.assert_allclose(estimate.grad["mu"], expected, rtol=1e-9)
    assert es.estimate is es.estimate  # computed once


def test_a_pickle_of_the_older_layout_resumes_the_run() -> None:
    """State as CMAES kept it before the kept (z, y) pair (``_z``, ``_y``, ``_used``, ``_negative``, an eager
    ``estimate``, no fixed factors) loads, keeps its estimate, and goes on bit for bit with the run it came from."""
    es = CMAES(np.full(5, 1.0), 0.5, rng=2)
    for _ in range(8):
        es.tell(rastrigin(es.ask()))
    estimate = es.estimate
    state = pickle.loads(pickle.dumps(es)).__dict__
    for name in ("_zy", "_told", "_estimate", "_parent_weights", "_rank_mu_rates", "_negative_rates", "_has_negative"):
        state.pop(name)
    state.update(_z=None, _y=None, _used=np.arange(es.popsize), _negative=es.weights < 0, estimate=estimate)
    old = CMAES.__new__(CMAES)
    old.__setstate__(state)
    assert old.estimate is estimate
    for _ in range(10):
        x = es.ask()
        np.testing.assert_array_equal(old.ask(), x)
        es.tell(rastrigin(x))
        old.tell(rastrigin(x))
    np.testing.assert_array_equal(old.C, es.C)
    np.testing.assert_array_equal(old.estimate.weights, es.estimate.weights)
