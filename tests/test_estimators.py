"""Estimators: each gradient against a finite difference of its objective J(r(theta)).

J is written here directly in the ratios r_i = p_theta(x_i) / p_theta0(x_i), as in
docs/derivations.md, and differentiated numerically in theta: an independent check
of both the weights w_i and the distribution's weighted_score.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from scipy.spatial.distance import cdist

import npevograd as ng


def _zscore(b: np.ndarray) -> np.ndarray:
    b = b.reshape(len(b), -1)
    return (b - b.mean(0)) / b.std(0, ddof=1)


def _kernel(b: np.ndarray, h: float) -> np.ndarray:
    z = _zscore(b)
    return np.exp(-cdist(z, z, "sqeuclidean") / h**2)


OBJECTIVES = {  # name -> (estimator, J(values, r))
    "mean": (ng.Mean(), lambda v, r: np.mean(v * r)),
    "mean-zscored": (ng.Mean(shaping=ng.zscore), lambda v, r: np.mean(_zscore(v)[:, 0] * r)),
    "variance": (ng.Variance(), lambda v, r: np.mean(np.sum(_zscore(v) ** 2, axis=1) * r)),
    "entropy": (ng.Entropy(0.8), lambda v, r: np.mean(-np.log(np.mean(_kernel(v, 0.8) * r[:, None], 0)) * r)),
    "entropy-blocked": (
        ng.Entropy(0.8, block_size=7),
        lambda v, r: np.mean(-np.log(np.mean(_kernel(v, 0.8) * r[:, None], 0)) * r),
    ),
}


def _finite_difference(p: ng.Distribution, x: np.ndarray, objective, step: float = 1e-6) -> dict:
    log_p0 = p.log_prob(x)
    grad = {}
    for name, param in p.params.items():
        grad[name] = np.zeros(param.shape)
        for idx in np.ndindex(param.shape):
            original = param[idx]
            values = []
            for delta in (step, -step):
                param[idx] = original + delta
                values.append(objective(np.exp(p.log_prob(x) - log_p0)))
            param[idx] = original
            grad[name][idx] = (values[0] - values[1]) / (2 * step)
    return grad


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_gradient_matches_finite_difference_of_the_ratio_objective(example, objective):
    estimator, formula = OBJECTIVES[objective]
    x = example.sample(24, rng=17)
    rng = np.random.default_rng(2)
    values = rng.standard_normal(24) if objective.startswith("mean") else rng.standard_normal((24, 2))
    result = estimator(values, x, example)
    assert result.value == pytest.approx(formula(values, np.ones(24)), rel=1e-12)
    expected = _finite_difference(example, x, lambda r: formula(values, r))
    for name in example.params:
        np.testing.assert_allclose(result.grad[name], expected[name], rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_reuse_gradient_matches_finite_difference_of_the_ratio_objective(example, objective):
    """Samples from q: r_i(theta) = rho_i p_theta(x_i) / p_theta0(x_i), rho_i = p_theta0(x_i) / q(x_i)."""
    estimator, formula = OBJECTIVES[objective]
    x = example.sample(24, rng=17)
    rng = np.random.default_rng(2)
    values = rng.standard_normal(24) if objective.startswith("mean") else rng.standard_normal((24, 2))
    log_q = example.log_prob(x) + 0.5 * rng.standard_normal(24)
    result = estimator(values, x, example, log_proposal=log_q)
    rho = np.exp(example.log_prob(x) - log_q)
    assert result.value == pytest.approx(formula(values, rho), rel=1e-12)
    expected = _finite_difference(example, x, lambda r: formula(values, rho * r))
    for name in example.params:
        np.testing.assert_allclose(result.grad[name], expected[name], rtol=1e-6, atol=1e-8, err_msg=name)


def test_expectation_jacobian_matches_finite_difference(example):
    x = example.sample(10, rng=4)
    values = np.random.default_rng(0).standard_normal((10, 3))
    result = ng.expectation(values, x, example)
    np.testing.assert_allclose(result.value, values.mean(0), rtol=1e-14)
    for m in range(3):
        expected = _finite_difference(example, x, lambda r, m=m: np.mean(values[:, m] * r))
        for name in example.params:
            np.testing.assert_allclose(result.grad[name][m], expected[name], rtol=1e-6, atol=1e-8)


def test_expectation_of_a_vector_equals_mean_estimator():
    p = ng.Normal(np.array([0.2, 0.4]), 0.5, learn_sigma=True)
    x = p.sample(30, rng=1)
    f = np.random.default_rng(5).standard_normal(30)
    a, b = ng.expectation(f, x, p), ng.Mean()(f, x, p)
    assert a.value == b.value
    for name in p.params:
        np.testing.assert_array_equal(a.grad[name], b.grad[name])


def test_evograd_kde_entropy_composition():
    """EvoGrad's two nested expectation() calls give the Entropy estimator's gradient."""
    p = ng.Normal(np.array([1.0]), 0.5)
    x = p.sample(50, rng=3)
    b = 5 * np.sin(0.2 * x) * np.sin(20 * x)
    kernel = _kernel(b, 1.0)
    density = ng.expectation(kernel, x, p)  # density_j and d density_j / d mu
    outer = ng.expectation(-np.log(density.value), x, p)
    # chain rule through the nested expectation: d(-log density_j)/d mu = -(d density_j/d mu) / density_j
    nested = np.mean(-density.grad["mu"][:, 0] / density.value)
    result = ng.Entropy(1.0)(b, x, p)
    np.testing.assert_allclose(result.grad["mu"], outer.grad["mu"] + nested, rtol=1e-12)
    np.testing.assert_allclose(result.value, outer.value, rtol=1e-14)


def test_entropy_weights_are_the_outer_and_nested_terms():
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(40, rng=8)
    b = np.random.default_rng(1).standard_normal((40, 3))
    n, kernel = 40, _kernel(b, 1.3)
    density = kernel.mean(axis=0)
    expected = (-np.log(density) - kernel @ (1 / density) / n) / n
    np.testing.assert_allclose(ng.Entropy(1.3)(b, x, p).weights, expected, rtol=1e-13)


def test_entropy_blocked_matches_dense_at_n_4000():
    n = 4000
    p = ng.Normal(np.zeros(1), 1.0)
    x = p.sample(n, rng=0)
    b = np.random.default_rng(1).standard_normal((n, 2))
    blocked = ng.Entropy(0.5)(b, x, p)  # n^2 is above the dense limit: automatic blocking
    kernel = _kernel(b, 0.5)
    density = kernel.mean(axis=0)
    dense_weights = (-np.log(density) - kernel @ (1 / density) / n) / n
    np.testing.assert_allclose(blocked.weights, dense_weights, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(blocked.value, np.mean(-np.log(density)), rtol=1e-13)


@pytest.mark.parametrize("estimator", [ng.Mean(), ng.Mean(ng.centered_ranks), ng.Variance(), ng.Entropy()])
def test_grad_is_the_weighted_score_of_the_weights(estimator):
    """The identity every estimator rests on: grad = sum_i w_i score(x_i)."""
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(20, rng=0)
    v = np.random.default_rng(0).standard_normal(20)
    r = estimator(v, x, p)
    np.testing.assert_allclose(r.grad["mu"], p.weighted_score(r.weights, x)["mu"], rtol=1e-14)


def test_constant_fitness_gives_zero_gradient_for_paired_sampling():
    p = ng.PairedNormal(np.array([0.3, 1.0]), 0.5)
    x = p.sample(10, rng=1)
    np.testing.assert_allclose(ng.Mean()(np.full(10, 3.0), x, p).grad["mu"], 0.0, atol=1e-14)


def test_fitness_of_shape_n_by_1_is_accepted():
    p = ng.Normal(np.array([1.0]), 0.5)
    x = p.sample(6, rng=0)
    f = -((x - 5.0) ** 2)  # (n, 1), as EvoGrad's demos pass it
    np.testing.assert_array_equal(ng.Mean(ng.zscore)(f, x, p).grad["mu"], ng.Mean(ng.zscore)(f[:, 0], x, p).grad["mu"])


def test_float32_in_float32_out():
    p = ng.Normal(np.array([1.0, 2.0], dtype=np.float32), 0.5, learn_sigma=True)
    x = p.sample(50, rng=0)
    b = np.sin(x).astype(np.float32)
    for estimator in (ng.Mean(ng.zscore), ng.Variance(), ng.Entropy()):
        r = estimator(b[:, 0], x, p)
        assert r.weights.dtype == np.float32
        assert all(g.dtype == np.float32 for g in r.grad.values())


def test_estimators_do_not_mutate_inputs():
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(12, rng=0)
    b = np.random.default_rng(0).standard_normal((12, 2))
    x0, b0 = x.copy(), b.copy()
    for estimator in (ng.Mean(ng.zscore), ng.Variance(), ng.Entropy()):
        estimator(b[:, 0] if isinstance(estimator, ng.Mean) else b, x, p)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p, x: ng.Mean()(np.ones(9), x, p), ValueError,
         r"values has shape \(9,\) but x has 10 samples; expected values of shape \(10, ...\)"),
        (lambda p, x: ng.Mean()(np.ones((10, 2)), x, p), ValueError,
         r"values must have shape \(10,\) or \(10, 1\), got \(10, 2\)"),
        (lambda p, x: ng.Mean()(np.r_[np.nan, np.ones(9)], x, p), ValueError,
         r"values must be finite, got 1 non-finite value\(s\)"),
        (lambda p, x: ng.Mean(ng.zscore)(np.ones(10), x, p), ValueError,
         r"f is constant \(zero standard deviation\); cannot z-score"),
        (lambda p, x: ng.Variance()(np.c_[np.arange(10.0), np.ones(10)], x, p), ValueError,
         r"behaviours is constant in column\(s\) \[1\] \(zero standard deviation\); cannot z-score"),
        (lambda p, x: ng.Variance()(np.ones((1,)), x[:1], p), ValueError,
         r"behaviours needs at least 2 samples along axis 0 to z-score, got shape \(1, 1\)"),
        (lambda p, x: ng.Entropy()(np.ones((10, 2, 2)), x, p), ValueError,
         r"behaviours must have at most 2 dimension\(s\), got shape \(10, 2, 2\)"),
        (lambda p, x: ng.Entropy(bandwidth=0.0), ValueError, "bandwidth must be a positive scalar, got 0.0"),
        (lambda p, x: ng.Entropy(block_size=0), ValueError, "block_size must be a positive int or None, got 0"),
        (lambda p, x: ng.Mean(shaping="zscore"), TypeError, "shaping must be callable or None, got str"),
        (lambda p, x: ng.Mean()(np.ones(10), x, "p"), TypeError, "p must be an npevograd Distribution, got str"),
        (lambda p, x: ng.expectation(np.ones(10), x, None), TypeError,
         "p must be an npevograd Distribution, got NoneType"),
    ],
)
def test_errors(call, error, message):
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(10, rng=0)
    with pytest.raises(error, match=message):
        call(p, x)


def test_registry_covers_every_distribution():
    kinds = {type(EXAMPLES[k](np.float64)) for k in EXAMPLES}
    assert kinds == {ng.Normal, ng.PairedNormal, ng.MixNormal, ng.Bernoulli, ng.Categorical, ng.MultivariateNormal}
