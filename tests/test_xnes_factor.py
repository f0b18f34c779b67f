"""XNES with the paper's full factor (issue 24, section 3): A <- s A expm(P) of rank n, ``FactorNormal`` as
``es.distribution`` (the distribution ``ask`` draws from), and old pickles continued with A = L."""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.stats import multivariate_normal

import npevograd as ng
from npevograd.algorithms import XNES
from npevograd.distributions.factor import FactorNormal, lower_factor
from npevograd.sampling import standard_normal


def ellipsoid(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    return -np.sum(np.logspace(0, 2, d) * (x - 0.3) ** 2, axis=1)


def dense_step(mu, A, z, f, lr_mu, lr_sigma, lr_B):
    """The paper's update with scipy's dense expm: mu + eta_mu A G_xi, A e^{eta_s G_s / 2} expm(eta_B G_B / 2)."""
    d = mu.shape[0]
    u = ng.nes_utilities(f)
    g_m = (z * u[:, None]).T @ z - u.sum() * np.eye(d)
    g_sigma = np.trace(g_m) / d
    g_b = g_m - g_sigma * np.eye(d)
    return mu + lr_mu * A @ (u @ z), A @ (math.exp(lr_sigma * g_sigma / 2) * expm(lr_B / 2 * g_b))


def assert_close_to(actual, expected, rtol):
    """Entrywise within rtol of the largest entry (the factor's entries are sums of terms of that size)."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize(("d", "popsize"), [(2, None), (10, None), (40, None), (12, 5), (12, 6), (6, 40)])
def test_update_is_the_dense_paper_update(d, popsize):
    """Each of a few generations: the new mu and A equal the dense reference from the state before it, to 1e-12;
    sigma = |det A|^(1/d) carried along; the condition bound stays above cond(A A^T).  Both forms of expm(P):
    the 2n x 2n block where 2n < d (d = 40, and 12 with n = 5), P itself where 2n >= d (12 with n = 6, 6 with 40)."""
    es = XNES(np.linspace(-1, 1, d), 0.7, popsize=popsize, rng=d, lr_B=0.4, lr_sigma=0.2)
    for _ in range(6):
        mu, A = es.mean, es.distribution.params["factor"].copy()
        x = es.ask()
        z = np.linalg.solve(A, (x - mu).T).T  # the z of the rows, independent of what ask kept
        f = ellipsoid(x)
        expected_mu, expected_A = dense_step(mu, A, z, f, 1.0, 0.2, 0.4)
        es.tell(f)
        assert_close_to(es.mean, expected_mu, 1e-12)
        assert_close_to(es.distribution.params["factor"], expected_A, 1e-12)
    A = es.distribution.params["factor"]
    assert np.abs(np.triu(A, 1)).max() > 1e-3  # the paper's factor, not a triangular one
    assert es.sigma == pytest.approx(abs(np.linalg.det(A)) ** (1 / d), rel=1e-12)
    assert es._log_cond >= 2 * math.log(np.linalg.cond(A)) - 1e-9
    assert es.axis_ratio == pytest.approx(np.linalg.cond(A), rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_distribution_samples_what_ask_returns(dtype):
    """es.distribution.sample(n, a copy of es.rng) is ask()'s population, bit for bit, after the factor turned."""
    es = XNES(np.zeros(7, dtype), 0.5, rng=3, lr_B=0.5)
    for _ in range(4):
        es.tell(ellipsoid(es.ask().astype(np.float64)))
    assert isinstance(es.distribution, FactorNormal)
    drawn = es.distribution.sample(es.popsize, copy.deepcopy(es.rng))
    asked = es.ask()
    assert asked.dtype == dtype
    np.testing.assert_array_equal(drawn, asked)
    atol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(es.distribution.whiten(asked), es._z, rtol=0, atol=atol)


def test_covariance_scale_tril_and_log_prob_are_those_of_a_a_transpose():
    es = XNES(np.ones(6), 0.8, rng=5, lr_B=0.5)
    for _ in range(5):
        es.tell(ellipsoid(es.ask()))
    p = es.distribution
    A = p.params["factor"]
    cov = A @ A.T
    np.testing.assert_array_equal(p.covariance, cov)
    L = p.scale_tril
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L) > 0)
    np.testing.assert_allclose(L, np.linalg.cholesky(cov), rtol=1e-12, atol=1e-14)
    x = es.ask()
    expected = multivariate_normal(es.mean, cov).logpdf(x)
    np.testing.assert_allclose(p.log_prob(x), expected, rtol=1e-12)
    np.testing.assert_allclose(p.log_prob(x), ng.MultivariateNormal(es.mean, L).log_prob(x), rtol=1e-12)


def test_estimate_is_the_mean_estimate_on_the_distribution_that_drew_the_samples():
    es = XNES(np.ones(5), 0.6, rng=2, lr_B=0.5)
    for _ in range(3):
        es.tell(ellipsoid(es.ask()))
    mu, A = es.mean, es.distribution.params["factor"].copy()
    x = es.ask()
    f = ellipsoid(x)
    es.tell(f)
    expected = ng.Mean(shaping=ng.nes_utilities)(f, x, FactorNormal(mu, A))
    assert es.estimate.value == expected.value
    np.testing.assert_array_equal(es.estimate.weights, expected.weights)
    for name in ("mu", "factor"):
        np.testing.assert_array_equal(es.estimate.grad[name], expected.grad[name])
    # the same distribution as the MultivariateNormal of its Cholesky factor: the same value and mean gradient
    told = ng.MultivariateNormal(mu, np.linalg.cholesky(A @ A.T), learn_scale=True)
    same = ng.Mean(shaping=ng.nes_utilities)(f, x, told)
    assert es.estimate.value == pytest.approx(same.value, rel=1e-14)
    np.testing.assert_allclose(es.estimate.grad["mu"], same.grad["mu"], rtol=1e-9)


def test_rows_told_with_x_take_the_same_step_as_the_kept_z():
    """b draws its rows from b.distribution (the general factor: whitened by LU) and tells them with x=."""
    a, b = XNES(np.zeros(6), 1.0, rng=4, lr_B=0.5), XNES(np.zeros(6), 1.0, rng=4, lr_B=0.5)
    for _ in range(3):
        a.tell(ellipsoid(a.ask()))
        b.tell(ellipsoid(b.ask()))
    for _ in range(2):
        a.tell(ellipsoid(a.ask()))
        rows = b.distribution.sample(b.popsize, b.rng)
        b.tell(ellipsoid(rows), x=rows)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-13)
    assert_close_to(b.distribution.params["factor"], a.distribution.params["factor"], 1e-13)


def test_factor_normal_score_is_the_derivative_of_log_prob():
    """Central differences of log p in each entry of mu and A; weighted_score is the contraction of score."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3)) + 2 * np.eye(3)
    p = FactorNormal(np.array([0.5, -1.0, 0.2]), A)
    x = p.sample(4, rng=1)
    score = p.score(x)
    h = 1e-6
    for name in ("mu", "factor"):
        for index in np.ndindex(p.params[name].shape):
            plus, minus = copy.deepcopy(p), copy.deepcopy(p)
            plus.params[name][index] += h
            minus.params[name][index] -= h
            numeric = (plus.log_prob(x) - minus.log_prob(x)) / (2 * h)
            np.testing.assert_allclose(score[name][(slice(None), *index)], numeric, rtol=1e-7, atol=1e-8)
    w = np.array([0.3, -1.2, 0.7, 2.0])
    for name, g in p.weighted_score(w, x).items():
        np.testing.assert_allclose(g, np.tensordot(w, score[name], axes=(0, 0)), rtol=1e-12, atol=1e-13)


def test_factor_normal_natural_gradient_is_the_covariance_step_for_any_rotation():
    """d(A A^T) = g A^T + A g^T of the natural gradient equals sum_i w_i ((x_i - mu)(x_i - mu)^T - Sigma)
    (``MultivariateNormal.natural_weighted_score``), for A and for A Q (the same distribution)."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 4)) + 3 * np.eye(4)
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    mu = np.array([1.0, 0.0, -1.0, 2.0])
    reference = ng.MultivariateNormal(mu, lower_factor(A))
    x = reference.sample(9, rng=2)
    w = rng.standard_normal(9)
    expected = reference.natural_weighted_score(w, x)
    for factor in (A, A @ Q):
        p = FactorNormal(mu, factor)
        natural = p.natural_gradient(p.weighted_score(w, x))
        np.testing.assert_allclose(natural["mu"], expected["mu"], rtol=1e-10)
        moved = natural["factor"] @ factor.T + factor @ natural["factor"].T
        np.testing.assert_allclose(moved, expected["covariance"], rtol=1e-10, atol=1e-10)


def test_factor_normal_rejects_a_singular_or_misshapen_factor():
    with pytest.raises(ValueError, match=r"factor must be nonsingular .*got a pivot 0"):
        FactorNormal(np.zeros(2), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"factor must have shape \(2, 2\) to match mu, got shape \(3, 3\)"):
        FactorNormal(np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match=r"factor must be finite, got 1 non-finite value"):
        FactorNormal(np.zeros(2), np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_scale_tril_of_a_triangular_factor_is_the_factor_itself():
    A = np.array([[2.0, 0.0], [-1.0, 0.5]])
    np.testing.assert_array_equal(FactorNormal(np.zeros(2), A).scale_tril, A)
    flipped = FactorNormal(np.zeros(2), A * [1.0, -1.0])  # a negative diagonal entry: the column's sign flips
    np.testing.assert_array_equal(flipped.scale_tril, A)


def _old_pickle_xnes() -> XNES:
    stored = pickle.loads((Path(__file__).parent / "data" / "pre_wings.pickle").read_bytes())
    return pickle.loads(stored["objects"])["xnes"]


def test_an_old_pickled_xnes_continues_with_the_paper_update():
    """The pre-wings pickle (a MultivariateNormal factor L) loads with A = L and continues three generations as the
    dense reference does from its state (same rng, same fitness as tests/data/generate_pre_wings_pickle.py)."""
    es = _old_pickle_xnes()
    p = es.distribution
    assert isinstance(p, FactorNormal)
    L = p.params["factor"].copy()
    np.testing.assert_array_equal(np.tril(L), L)
    np.testing.assert_array_equal(p.scale_tril, L)
    assert es.sigma == pytest.approx(np.prod(np.diagonal(L)) ** (1 / 3), rel=1e-14)
    rng, mu, A, n = copy.deepcopy(es.rng), es.mean, L, es.popsize
    for _ in range(3):
        z = standard_normal(rng, (n, 3), np.float64)
        x = mu + z @ A.T
        f = -np.sum((x - 0.25) ** 2, axis=1)
        mu, A = dense_step(mu, A, z, f, es.lr_mu, es.lr_sigma, es.lr_B)
        asked = es.ask()
        np.testing.assert_allclose(asked, x, rtol=0, atol=1e-14)
        es.tell(-np.sum((asked - 0.25) ** 2, axis=1))
    assert_close_to(es.mean, mu, 1e-12)
    assert_close_to(es.distribution.params["factor"], A, 1e-12)
    assert es.generation == 6 and es.estimate is not None


def _lower_factor_pickle() -> tuple[dict, dict]:
    """tests/data/xnes_lower_factor.pickle (tests/data/generate_xnes_lower_factor_pickle.py, on the code of L)."""
    stored = pickle.loads((Path(__file__).parent / "data" / "xnes_lower_factor.pickle").read_bytes())
    return pickle.loads(stored["objects"]), stored


def test_an_xnes_pickled_with_a_lower_factor_keeps_its_pending_estimate():
    """The estimate pickled unread (the told MultivariateNormal) is the one the old code read: value, weights and
    the mean gradient (the same in every parametrisation of the distribution)."""
    objects, stored = _lower_factor_pickle()
    assert isinstance(objects["told"].distribution, FactorNormal)
    assert isinstance(objects["separable"].distribution, ng.Normal)
    for name in ("told", "separable"):
        value, weights, grad_mu = stored["estimates"][name]
        estimate = objects[name].estimate
        assert estimate.value == pytest.approx(value, rel=1e-14)
        np.testing.assert_array_equal(estimate.weights, weights)
        np.testing.assert_allclose(estimate.grad["mu"], grad_mu, rtol=1e-10)


def test_an_xnes_pickled_between_ask_and_tell_tells_its_kept_population():
    """The pickled population (its z kept, y recomputed as the old ask's z L^T) takes the paper's step."""
    objects, stored = _lower_factor_pickle()
    es = objects["asked"]
    mu, A = es.mean, es.distribution.params["factor"].copy()
    x = stored["population"]
    f = -np.sum(np.arange(1, 5) * (x - 0.25) ** 2, axis=1)
    z = np.linalg.solve(A, (x - mu).T).T
    expected_mu, expected_A = dense_step(mu, A, z, f, es.lr_mu, es.lr_sigma, es.lr_B)
    es.tell(f)
    assert_close_to(es.mean, expected_mu, 1e-12)
    assert_close_to(es.distribution.params["factor"], expected_A, 1e-12)
    assert es.sigma == pytest.approx(abs(np.linalg.det(expected_A)) ** (1 / 4), rel=1e-12)


def test_sigma_follows_a_factor_replaced_by_hand():
    """params["factor"] may be replaced by an array of the same shape (the params rule): sigma, carried along by
    the updates, is then |det A|^(1/d) of the new factor, and the next update starts from it."""
    es = XNES(np.zeros(3), 1.0, rng=0)
    es.tell(ellipsoid(es.ask()))
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    es.distribution.params["factor"] = 2.0 * rotation
    assert es.sigma == pytest.approx(2.0, rel=1e-14)
    mu, A = es.mean, es.distribution.params["factor"].copy()
    x = es.ask()
    f = ellipsoid(x)
    es.tell(f)
    expected_A = dense_step(mu, A, np.linalg.solve(A, (x - mu).T).T, f, es.lr_mu, es.lr_sigma, es.lr_B)[1]
    assert es.sigma == pytest.approx(abs(np.linalg.det(expected_A)) ** (1 / 3), rel=1e-12)
