"""Normal and PairedNormal: closed-form unbiasedness, antithetic order, Fisher, errors."""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng


def _assert_unbiased(estimate: dict, per_sample: dict, expected: dict, groups: int = 1, tol: float = 4.5):
    """estimate == mean of the per-sample terms, and within ``tol`` standard errors of ``expected``.

    ``groups`` > 1 averages consecutive blocks first (PairedNormal: a pair is the iid unit).
    """
    for name, terms in per_sample.items():
        np.testing.assert_allclose(estimate[name], terms.mean(axis=0), rtol=1e-10, atol=1e-12)
        if groups > 1:  # antithetic halves: term i pairs with term i + n/2
            terms = 0.5 * (terms[: len(terms) // 2] + terms[len(terms) // 2 :])
        standard_error = terms.std(axis=0, ddof=1) / np.sqrt(len(terms))
        assert np.all(np.abs(estimate[name] - expected[name]) < tol * standard_error), (
            name, estimate[name], expected[name], standard_error)


@pytest.mark.parametrize("cls", [ng.Normal, ng.PairedNormal])
@pytest.mark.parametrize("diagonal", [False, True])
def test_quadratic_fitness_gradient_is_unbiased(cls, diagonal):
    """f = -||x - a||^2: E f = -||mu - a||^2 - sum sigma^2, so dE/dmu = -2(mu - a), dE/dsigma = -2 sigma."""
    d, n = 3, 40_000
    mu, a = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.0, 1.0])
    sigma = np.array([0.3, 0.8, 1.2]) if diagonal else 0.7
    p = cls(mu, sigma, learn_sigma=True)
    x = p.sample(n, rng=20240601)
    f = -np.sum((x - a) ** 2, axis=1)
    estimate = ng.Mean()(f, x, p).grad
    per_sample = {k: f.reshape(-1, *[1] * (s.ndim - 1)) * s for k, s in p.score(x).items()}
    dsigma = -2 * np.asarray(sigma) if diagonal else -2 * d * sigma
    _assert_unbiased(estimate, per_sample, {"mu": -2 * (mu - a), "sigma": dsigma},
                     groups=2 if cls is ng.PairedNormal else 1)


def test_sine_fitness_gradient_is_unbiased():
    """f = sin(w x): E f = sin(w mu) exp(-w^2 sigma^2 / 2), differentiated in mu and sigma."""
    w, mu, sigma, n = 1.7, 0.4, 0.6, 50_000
    p = ng.Normal(np.array([mu]), sigma, learn_sigma=True)
    x = p.sample(n, rng=7)
    f = np.sin(w * x[:, 0])
    damping = np.exp(-(w**2) * sigma**2 / 2)
    expected = {"mu": np.array([w * np.cos(w * mu) * damping]),
                "sigma": -(w**2) * sigma * np.sin(w * mu) * damping}
    r = ng.Mean()(f, x, p)
    per_sample = {"mu": f[:, None] * p.score(x)["mu"], "sigma": f * p.score(x)["sigma"]}
    _assert_unbiased(r.grad, per_sample, expected)
    standard_error = f.std(ddof=1) / np.sqrt(n)
    assert abs(r.value - np.sin(w * mu) * damping) < 4.5 * standard_error


def test_paired_sample_order_matches_evograd():
    p = ng.PairedNormal(np.array([1.0, -2.0]), np.array([0.5, 3.0]))
    x = p.sample(6, rng=3)
    eps = (x[:3] - p.mu) / p.sigma
    np.testing.assert_allclose(x[3:], p.mu - p.sigma * eps, rtol=1e-15)
    np.testing.assert_allclose(eps, np.random.default_rng(3).standard_normal((3, 2)), rtol=1e-12)


def test_sample_is_mu_plus_sigma_times_standard_normal():
    p = ng.Normal(np.array([1.0, 2.0]), np.array([0.5, 0.25]))
    eps = np.random.RandomState(9).standard_normal((4, 2))
    np.testing.assert_allclose(p.sample(4, rng=np.random.RandomState(9)), p.mu + p.sigma * eps, rtol=1e-15)


@pytest.mark.parametrize("sigma", [0.5, np.array([0.5, 2.0, 1.0])])
def test_natural_gradient_closed_form(sigma):
    p = ng.Normal(np.zeros(3), sigma, learn_sigma=True)
    g = {"mu": np.array([1.0, -2.0, 3.0]), "sigma": np.ones_like(p.params["sigma"])}
    natural = p.natural_gradient(g)
    np.testing.assert_allclose(natural["mu"], np.asarray(sigma) ** 2 * g["mu"])
    divisor = 2 * 3 if np.ndim(sigma) == 0 else 2
    np.testing.assert_allclose(natural["sigma"], np.asarray(sigma) ** 2 * g["sigma"] / divisor)


def test_log_prob_matches_scipy():
    from scipy.stats import multivariate_normal

    mu, sigma = np.array([0.1, -0.4]), np.array([0.3, 1.7])
    p = ng.Normal(mu, sigma)
    x = p.sample(5, rng=1)
    np.testing.assert_allclose(p.log_prob(x), multivariate_normal(mu, np.diag(sigma**2)).logpdf(x), rtol=1e-13)


def test_learned_sigma_is_the_live_parameter():
    p = ng.Normal(np.zeros(2), 1.0, learn_sigma=True)
    p.params["sigma"] *= 0.5
    assert p.sigma == 0.5
    x = p.sample(20_000, rng=0)
    assert abs(x.std() - 0.5) < 4.5 * 0.5 / np.sqrt(2 * 40_000)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mu": np.zeros((2, 2))}, ValueError,
         r"mu must be a 1-D array of shape \(d,\) with d >= 1, got shape \(2, 2\)"),
        ({"mu": 1.0}, ValueError, r"mu must be a 1-D array of shape \(d,\) with d >= 1, got shape \(\)"),
        ({"mu": np.zeros(2), "sigma": 0.0}, ValueError, "sigma must be > 0, got minimum 0.0"),
        ({"mu": np.zeros(2), "sigma": np.ones(3)}, ValueError,
         r"sigma must be a scalar or have shape \(2,\) to match mu, got shape \(3,\)"),
        ({"mu": [np.nan, 1.0]}, ValueError, r"mu must be finite, got 1 non-finite value\(s\)"),
        ({"mu": ["a"]}, TypeError, "mu must hold real numbers, got dtype <U1"),
    ],
)
def test_constructor_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        ng.Normal(**kwargs)


def test_sample_errors():
    with pytest.raises(ValueError, match="n must be even for PairedNormal .antithetic pairs., got 5"):
        ng.PairedNormal(np.zeros(2), 1.0).sample(5)
    p = ng.Normal(np.zeros(2), 1.0, learn_sigma=True)
    p.params["sigma"][...] = -1.0
    with pytest.raises(ValueError, match="sigma must be > 0, got minimum -1.0"):
        p.sample(3)


def test_x_errors():
    p = ng.Normal(np.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\) with n >= 1, got shape \(3,\)"):
        p.score(np.zeros(3))
    with pytest.raises(ValueError, match=r"x must be finite, got 1 non-finite value\(s\)"):
        p.weighted_score(np.ones(2), np.array([[0.0, np.inf], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="x must be finite"):
        p.log_prob(np.array([[np.nan, 0.0]]))
