"""MixNormal: responsibilities through log-sum-exp, unbiasedness, far-apart components."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import npevograd as ng


def test_log_prob_is_the_equal_weight_mixture_density():
    mus, sigma = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]]), 0.7
    p = ng.MixNormal(mus, sigma)
    x = p.sample(6, rng=4)
    density = np.mean([multivariate_normal(m, sigma**2 * np.eye(2)).pdf(x) for m in mus], axis=0)
    np.testing.assert_allclose(p.log_prob(x), np.log(density), rtol=1e-13)


def test_quadratic_fitness_gradient_is_unbiased():
    """f = -||x - a||^2: E f = (1/K) sum_k -(||mu_k - a||^2 + d sigma^2), dE/dmu_k = -(2/K)(mu_k - a)."""
    mus, a, n = np.array([[0.0, 1.0], [2.0, -1.0], [-1.0, 0.5]]), np.array([1.0, 1.0]), 60_000
    p = ng.MixNormal(mus, 0.9)
    x = p.sample(n, rng=123)
    f = -np.sum((x - a) ** 2, axis=1)
    grad = ng.Mean()(f, x, p).grad["mus"]
    terms = f[:, None, None] * p.score(x)["mus"]
    np.testing.assert_allclose(grad, terms.mean(axis=0), rtol=1e-10)
    standard_error = terms.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(grad - (-2 / 3) * (mus - a)) < 4.5 * standard_error)


def test_components_are_drawn_equally_often():
    p = ng.MixNormal(np.array([[-100.0], [0.0], [100.0]]), 1.0)
    x = p.sample(30_000, rng=0)
    counts = np.array([(x < -50).sum(), (np.abs(x) < 50).sum(), (x > 50).sum()])
    standard_error = np.sqrt(30_000 * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - 10_000) < 4.5 * standard_error)


def test_far_apart_components_stay_finite_and_exact():
    """Components 1e3 apart at sigma 0.01: plain densities underflow, log-sum-exp does not."""
    mus = np.array([[0.0, 0.0], [1e3, 0.0], [0.0, 1e3]])
    p = ng.MixNormal(mus, 0.01)
    x = np.array([[500.0, 0.0], [1e3 + 0.01, 0.02], [0.003, 999.99]])
    score = p.score(x)["mus"]
    assert np.all(np.isfinite(score)) and np.all(np.isfinite(p.log_prob(x)))
    # halfway between components 0 and 1: responsibilities 1/2 each, the third ~0
    np.testing.assert_allclose(score[0, 0], 0.5 * (x[0] - mus[0]) / 0.01**2)
    np.testing.assert_allclose(score[0, 1], 0.5 * (x[0] - mus[1]) / 0.01**2)
    np.testing.assert_array_equal(score[0, 2], 0.0)
    # next to a component: its score is the plain Normal score
    np.testing.assert_allclose(score[1, 1], (x[1] - mus[1]) / 0.01**2, rtol=1e-12)
    np.testing.assert_allclose(p.weighted_score(np.ones(3), x)["mus"], score.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize(
    ("mus", "sigma", "message"),
    [
        (np.zeros(3), 1.0, r"mus must have shape \(K, d\) with K, d >= 1, got shape \(3,\)"),
        (np.zeros((2, 3)), np.ones(3), r"sigma must be a scalar \(shared isotropic sigma\), got shape \(3,\)"),
        (np.zeros((2, 3)), -1.0, "sigma must be > 0, got minimum -1.0"),
    ],
)
def test_constructor_errors(mus, sigma, message):
    with pytest.raises(ValueError, match=message):
        ng.MixNormal(mus, sigma)
