"""Bernoulli and Categorical: closed-form unbiasedness, densities, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax

import npevograd as ng


def test_bernoulli_linear_fitness_gradient_is_unbiased():
    """f = c.x: E f = c.s, dE/dlogit_j = c_j s_j (1 - s_j)."""
    logits, c, n = np.array([-1.0, 0.0, 0.7, 2.5]), np.array([1.0, -2.0, 0.5, 3.0]), 40_000
    p = ng.Bernoulli(logits)
    x = p.sample(n, rng=31)
    f = x @ c
    grad = ng.Mean()(f, x, p).grad["logits"]
    terms = f[:, None] * p.score(x)["logits"]
    np.testing.assert_allclose(grad, terms.mean(axis=0), rtol=1e-10)
    s = expit(logits)
    standard_error = terms.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(grad - c * s * (1 - s)) < 4.5 * standard_error)


def test_categorical_table_fitness_gradient_is_unbiased():
    """f = sum_j c[j, x_j]: E f = sum_j c_j . pi_j, dE/dlogits_j = pi_j (c_j - c_j . pi_j)."""
    logits = np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]])
    c = np.array([[1.0, -1.0, 2.0], [0.5, 3.0, -2.0]])
    n = 40_000
    p = ng.Categorical(logits)
    x = p.sample(n, rng=5)
    f = c[np.arange(2), x].sum(axis=1)
    grad = ng.Mean()(f, x, p).grad["logits"]
    terms = f[:, None, None] * p.score(x)["logits"]
    np.testing.assert_allclose(grad, terms.mean(axis=0), rtol=1e-10)
    pi = softmax(logits, axis=1)
    expected = pi * (c - np.sum(c * pi, axis=1, keepdims=True))
    standard_error = terms.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(grad - expected) < 4.5 * standard_error)


def test_categorical_frequencies_and_log_prob():
    logits = np.array([[0.0, 1.0, -1.0, 0.3]])
    p = ng.Categorical(logits)
    x = p.sample(50_000, rng=2)
    pi = softmax(logits[0])
    freq = np.bincount(x[:, 0], minlength=4) / 50_000
    assert np.all(np.abs(freq - pi) < 4.5 * np.sqrt(pi * (1 - pi) / 50_000))
    np.testing.assert_allclose(p.log_prob(np.array([[0], [3]])), np.log(pi[[0, 3]]), rtol=1e-14)


def test_bernoulli_log_prob_and_extreme_logits():
    p = ng.Bernoulli(np.array([800.0, -800.0, 0.0]))
    x = np.array([[1.0, 0.0, 1.0]])
    np.testing.assert_allclose(p.log_prob(x), [np.log(0.5)])
    np.testing.assert_allclose(p.score(x)["logits"], [[0.0, 0.0, 0.5]])


def test_input_errors():
    with pytest.raises(ValueError, match=r"logits must have shape \(d,\) with d >= 1, got shape \(2, 2\)"):
        ng.Bernoulli(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"logits must have shape \(d, m\) with d, m >= 1, got shape \(3,\)"):
        ng.Categorical(np.zeros(3))
    with pytest.raises(ValueError, match="x must hold only 0 and 1 for Bernoulli, got other values"):
        ng.Bernoulli(np.zeros(2)).score(np.array([[0.0, 2.0]]))
    cat = ng.Categorical(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x must hold categories in \[0, 2\], got range \[0, 3\]"):
        cat.score(np.array([[0, 3]]))
    with pytest.raises(TypeError, match="x must hold integer category indices, got dtype float64"):
        cat.score(np.array([[0.0, 1.0]]))
