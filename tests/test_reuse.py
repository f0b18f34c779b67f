"""Sample reuse: importance ratios in log space, unbiasedness, ESS, the entropy's nested term, the k-generation buffer.

Closed forms as in tests/test_normal.py: f = -||x - a||^2 under x ~ N(mu, sigma^2) has
dE f/dmu = -2 (mu - a) and dE f/dsigma = -2 sigma (diagonal) or -2 d sigma (isotropic).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from scipy.special import logsumexp
from scipy.stats import norm

import npevograd as ng


def _within(estimate: dict, terms: dict, expected: dict, tol: float = 5.0) -> None:
    """estimate == mean of the per-sample terms, and within ``tol`` standard errors of ``expected``."""
    for name, t in terms.items():
        np.testing.assert_allclose(estimate[name], t.mean(axis=0), rtol=1e-10, atol=1e-12)
        standard_error = t.std(axis=0, ddof=1) / np.sqrt(len(t))
        assert np.all(np.abs(estimate[name] - expected[name]) < tol * standard_error), (
            name, estimate[name], expected[name], standard_error)


def _terms(f: np.ndarray, rho: np.ndarray, p: ng.Distribution, x: np.ndarray) -> dict:
    """rho_i f_i score(x_i): the iid per-sample terms of the plain reuse estimator."""
    return {k: (rho * f).reshape(-1, *[1] * (s.ndim - 1)) * s for k, s in p.score(x).items()}


@pytest.mark.parametrize("diagonal", [False, True])
def test_plain_reuse_estimator_is_unbiased_for_the_quadratic(diagonal):
    d, n = 3, 40_000
    mu, a = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.0, 1.0])
    sigma = np.array([0.3, 0.8, 1.2]) if diagonal else 0.7
    p = ng.Normal(mu, sigma, learn_sigma=True)
    q = ng.Normal(mu + np.array([0.2, -0.3, 0.1]), 1.3 * np.asarray(sigma))  # wider: bounded ratios
    x = q.sample(n, rng=20240601)
    f = -np.sum((x - a) ** 2, axis=1)
    r = ng.Mean()(f, x, p, proposal=q)
    np.testing.assert_allclose(r.ratios, np.exp(p.log_prob(x) - q.log_prob(x)), rtol=1e-13)
    dsigma = -2 * np.asarray(sigma) if diagonal else -2 * d * sigma
    _within(r.grad, _terms(f, r.ratios, p, x), {"mu": -2 * (mu - a), "sigma": dsigma})
    assert abs(r.value - (-np.sum((mu - a) ** 2) - np.sum(np.broadcast_to(sigma, (d,)) ** 2))) < 5 * np.std(
        r.ratios * f, ddof=1) / np.sqrt(n)


def test_plain_reuse_of_pooled_generations_is_unbiased_for_the_sine():
    """f = sin(w x): E f = sin(w mu) exp(-w^2 sigma^2 / 2); samples pooled from three older generations."""
    w, mu, sigma, n = 1.7, 0.4, 0.6, 20_000
    p = ng.Normal(np.array([mu]), sigma, learn_sigma=True)
    buffer = ng.ReuseBuffer(k=3)
    for seed, (shift, count) in enumerate([(-0.3, n), (-0.15, n // 2), (0.0, n)]):  # unequal counts
        old = ng.Normal(np.array([mu + shift]), sigma * 1.1)
        x = old.sample(count, rng=seed)
        buffer.add(x, np.sin(w * x[:, 0]), old)
    x, f = buffer.x, buffer.values
    r = ng.Mean()(f, x, p, log_proposal=buffer.log_proposal)
    damping = np.exp(-(w**2) * sigma**2 / 2)
    expected = {"mu": np.array([w * np.cos(w * mu) * damping]), "sigma": -(w**2) * sigma * np.sin(w * mu) * damping}
    _within(r.grad, _terms(f, r.ratios, p, x), expected)
    assert 0.5 * len(x) < r.ess < len(x)


def test_proposal_and_log_proposal_give_the_same_result():
    p, q = ng.Normal(np.array([0.0, 1.0]), 0.5), ng.Normal(np.array([0.3, 0.8]), 0.7)
    x = q.sample(50, rng=0)
    b = np.random.default_rng(0).standard_normal((50, 2))
    for estimator in (ng.Mean(baseline="loo"), ng.Variance(), ng.Entropy()):
        v = b[:, 0] if isinstance(estimator, ng.Mean) else b
        a, c = estimator(v, x, p, proposal=q), estimator(v, x, p, log_proposal=q.log_prob(x))
        np.testing.assert_array_equal(a.weights, c.weights)
        np.testing.assert_array_equal(a.grad["mu"], c.grad["mu"])


def test_the_proposal_equal_to_p_gives_ratios_one_and_the_plain_estimate(example):
    x = example.sample(12, rng=1)
    v = np.random.default_rng(1).standard_normal(12)
    plain, reused = ng.Mean()(v, x, example), ng.Mean()(v, x, example, proposal=example)
    np.testing.assert_array_equal(reused.ratios, np.ones(12))
    assert reused.ess == plain.ess == 12.0
    for name in example.params:
        np.testing.assert_allclose(reused.grad[name], plain.grad[name], rtol=1e-14, atol=1e-15)


def test_ess_is_the_squared_sum_over_the_sum_of_squares():
    p = ng.Normal(np.zeros(1), 1.0)
    x = p.sample(30, rng=2)
    log_q = p.log_prob(x) + np.linspace(-2, 2, 30)
    r = ng.Mean()(np.ones(30), x, p, log_proposal=log_q)
    rho = np.exp(-np.linspace(-2, 2, 30))
    assert r.ess == pytest.approx(rho.sum() ** 2 / np.sum(rho**2), rel=1e-12)
    assert 1 <= r.ess < 30


def test_float32_ratios_stay_float32():
    p = ng.Normal(np.array([0.0, 1.0], dtype=np.float32), 0.5, learn_sigma=True)
    q = ng.Normal(np.array([0.2, 1.0], dtype=np.float32), 0.6)
    x = q.sample(40, rng=0)
    for estimator in (ng.Mean(ng.zscore), ng.Variance(), ng.Entropy()):
        r = estimator(np.sin(x[:, 0]), x, p, proposal=q)
        assert r.ratios.dtype == r.weights.dtype == np.float32
        assert all(g.dtype == np.float32 for g in r.grad.values())


# ---- the entropy's nested term with ratios ----


def test_entropy_with_ratios_is_the_rho_weighted_kde():
    n, h = 40, 0.9
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(n, rng=3)
    b = np.random.default_rng(4).standard_normal((n, 2))
    log_q = p.log_prob(x) + 0.5 * np.random.default_rng(5).standard_normal(n)
    rho = np.exp(p.log_prob(x) - log_q)
    z = (b - b.mean(0)) / b.std(0, ddof=1)
    kernel = np.exp(-np.sum((z[:, None] - z[None]) ** 2, axis=-1) / h**2)
    density = kernel @ rho / n  # phat_j = (1/n) sum_i K_ij rho_i
    nested = kernel @ (rho / density) / n  # (1/n) sum_j K_ij rho_j / phat_j
    for block in (None, 7):
        r = ng.Entropy(h, block_size=block)(b, x, p, log_proposal=log_q)
        assert r.value == pytest.approx(np.mean(-np.log(density) * rho), rel=1e-13)
        np.testing.assert_allclose(r.weights, rho * (-np.log(density) - nested) / n, rtol=1e-12)


def test_a_sample_whose_ratio_underflows_to_zero_gets_zero_weight_not_nan():
    p = ng.Normal(np.zeros(1), 1.0)
    x = np.array([[0.0], [0.5], [1.0], [40.0]])  # the last: far from every other behaviour
    log_q = p.log_prob(x)
    log_q[3] += 800.0  # rho_3 = exp(-800) = 0 in float64
    b = x[:, 0] ** 1  # its behaviour is far too: phat_3 = 0
    r = ng.Entropy(0.1, standardize=False)(b, x, p, log_proposal=log_q)
    assert r.ratios[3] == 0 and r.weights[3] == 0
    assert np.isfinite(r.value) and np.all(np.isfinite(r.weights))
    rm = ng.Mean(normalize=True)(b, x, p, log_proposal=log_q)
    assert rm.weights[3] == 0 and rm.value == pytest.approx(0.5)


# ---- what shaping does under ratios (docs/reuse.md) ----

N_SHAPING = 200_000
P_SHAPING, Q_SHAPING = ng.Normal(np.array([0.5]), 1.0), ng.Normal(np.array([0.0]), 1.5)


def _reuse_of_linear_fitness(estimator):
    """f(x) = x with x ~ q = N(0, 1.5^2) reweighted to p = N(0.5, 1): grad_mu E_p f = 1."""
    x = Q_SHAPING.sample(N_SHAPING, rng=99)
    r = estimator(x[:, 0], x, P_SHAPING, proposal=Q_SHAPING)
    terms = N_SHAPING * r.weights * P_SHAPING.score(x)["mu"][:, 0]
    return r.grad["mu"][0], terms.std(ddof=1) / np.sqrt(N_SHAPING)


@pytest.mark.parametrize(("estimator", "limit"), [
    (ng.Mean(), 1.0),
    (ng.Mean(baseline="loo"), 1.0),
    (ng.Mean(normalize=True), 1.0),
    (ng.Mean(shaping=ng.zscore), 1 / 1.5),  # affine shaping: 1/std_q(f) times grad E_p f
])
def test_affine_shapings_stay_consistent_under_ratios(estimator, limit):
    grad, standard_error = _reuse_of_linear_fitness(estimator)
    assert abs(grad - limit) < 5 * standard_error


def test_rank_shapings_converge_to_the_ranks_under_the_proposal_not_under_p():
    """centered_ranks(f_i) -> F_q(f_i) - 1/2: the limit is d/dmu E_p[Phi(x / 1.5)] = phi(mu/s)/s, s^2 = 1 + 1.5^2."""
    grad, standard_error = _reuse_of_linear_fitness(ng.Mean(shaping=ng.centered_ranks))
    s = np.sqrt(1 + 1.5**2)
    assert abs(grad - norm.pdf(0.5 / s) / s) < 5 * standard_error
    fresh = norm.pdf(0.0) / np.sqrt(2)  # fresh samples from p: d/dmu E_p[Phi(x - mu0)] at mu0 = mu
    assert abs(grad - fresh) > 20 * standard_error


# ---- the k-generation buffer ----


def test_buffer_log_proposal_is_the_count_weighted_mixture_of_snapshots():
    p = ng.Normal(np.array([0.0, 1.0]), np.array([0.5, 1.0]), learn_sigma=True)
    buffer = ng.ReuseBuffer(k=3)
    snapshots, counts = [], [5, 8, 6, 7]
    for t, m in enumerate(counts):
        x = p.sample(m, rng=t)
        buffer.add(x, x[:, 0], p)
        snapshots.append(ng.Normal(p.mu.copy(), p.sigma.copy(), learn_sigma=True))
        p.params["mu"] += 0.3  # in place, as an optimizer does
        p.params["sigma"] *= 1.1
    assert len(buffer) == 3 and buffer.x.shape == (21, 2) and buffer.values.shape == (21,)
    kept, kept_counts = snapshots[1:], np.array(counts[1:])
    log_p = np.stack([s.log_prob(buffer.x) for s in kept])
    expected = logsumexp(log_p + np.log(kept_counts / kept_counts.sum())[:, None], axis=0)
    np.testing.assert_allclose(buffer.log_proposal, expected, rtol=1e-13)


def test_buffer_with_equal_counts_is_logsumexp_minus_log_k():
    p = ng.Bernoulli(np.array([0.0, 1.0, -1.0]))
    buffer = ng.ReuseBuffer(k=2)
    snapshots = []
    for t in range(2):
        buffer.add(p.sample(10, rng=t), np.arange(10.0), p)
        snapshots.append(ng.Bernoulli(p.logits.copy()))
        p.params["logits"] -= 0.5
    log_p = np.stack([s.log_prob(buffer.x) for s in snapshots])
    np.testing.assert_allclose(buffer.log_proposal, logsumexp(log_p, axis=0) - np.log(2), rtol=1e-13)


def test_buffer_copies_its_inputs_and_memory_is_bounded_by_k(example):
    buffer = ng.ReuseBuffer(k=2)
    for t in range(5):
        x = example.sample(6, rng=t)
        values = np.arange(6.0)
        buffer.add(x, values, example)
        x[...] = 0  # the caller reuses its arrays
        values[...] = -1
    assert len(buffer) == 2 and buffer.x.shape[0] == 12
    assert np.all(buffer.values >= 0)
    np.testing.assert_array_equal(buffer.x[6:], example.sample(6, rng=4))
    assert len(buffer._generations) == 2


def test_reuse_in_a_loop_with_an_estimator():
    p = ng.Normal(np.array([0.0]), 0.5)
    buffer = ng.ReuseBuffer(k=4)
    for t in range(6):
        x = p.sample(20, rng=t)
        buffer.add(x, -((x[:, 0] - 2.0) ** 2), p)
        r = ng.Mean(ng.zscore)(buffer.values, buffer.x, p, log_proposal=buffer.log_proposal, min_ess=10)
        p.params["mu"] += 0.05 * r.grad["mu"]
    assert len(buffer.x) == 80 and 10 <= r.ess <= 80 and p.mu[0] > 0


# ---- errors ----


def test_ratios_that_would_overflow_are_reported():
    p = ng.Normal(np.zeros(1), 1.0)
    x = p.sample(5, rng=0)
    log_q = p.log_prob(x)
    log_q[2] -= 1000.0
    with pytest.raises(ValueError, match=(
        r"importance ratios overflow float64: log p\(x_i\) - log q\(x_i\) = 1000 at sample 2, above the limit "
        r"log\(max/n\) = 708.173; p has moved too far from the proposal")):
        ng.Mean()(np.ones(5), x, p, log_proposal=log_q)


def test_ratios_that_all_underflow_are_reported():
    p = ng.Normal(np.zeros(1, dtype=np.float32), 1.0)
    x = p.sample(5, rng=0)
    with pytest.raises(ValueError, match=r"every importance ratio underflows to 0 in float32"):
        ng.Mean()(np.ones(5), x, p, log_proposal=p.log_prob(x) + 200.0)


def test_min_ess_names_itself():
    p = ng.Normal(np.zeros(1), 1.0)
    x = p.sample(20, rng=0)
    log_q = p.log_prob(x) - np.linspace(0, 8, 20)
    with pytest.raises(ValueError, match=r"effective sample size 4.818 of 20 samples is below min_ess=5: the "
                       r"importance ratios are degenerate"):
        ng.Mean()(np.ones(20), x, p, log_proposal=log_q, min_ess=5)
    with pytest.raises(ValueError, match=r"effective sample size 20 of 20 samples is below min_ess=25"):
        ng.Mean()(np.ones(20), x, p, min_ess=25)  # without a proposal ess = n
    assert ng.Mean()(np.ones(20), x, p, log_proposal=log_q, min_ess=2).ess > 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"proposal": "q"}, TypeError, "proposal must be an npevograd Distribution, got str"),
        ({"log_proposal": np.zeros(3)}, ValueError,
         r"log_proposal has shape \(3,\) but x has 4 samples; expected log_proposal of shape \(4,\)"),
        ({"log_proposal": np.array([0.0, np.nan, 0.0, 0.0])}, ValueError, r"log_proposal must be finite"),
        ({"log_proposal": np.zeros(4), "proposal": ng.Normal(np.zeros(1))}, ValueError,
         "give proposal or log_proposal, not both"),
        ({"log_proposal": np.zeros(4), "min_ess": -1}, ValueError, "min_ess must be a positive number or None, got -1"),
        ({"proposal": ng.Normal(np.zeros(2))}, ValueError, r"x must have shape \(n, 2\)"),
        ({"log_proposal": np.zeros(4), "values": np.ones(3)}, ValueError,
         r"values has shape \(3,\) but x has 4 samples; expected values of shape \(4, ...\)"),
    ],
)
def test_reuse_errors(kwargs, error, message):
    p = ng.Normal(np.zeros(1), 1.0)
    x = p.sample(4, rng=0)
    values = kwargs.pop("values", np.arange(4.0))
    with pytest.raises(error, match=message):
        ng.Mean()(values, x, p, **kwargs)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda b, p, x: ng.ReuseBuffer(k=0), ValueError, "k must be >= 1, got 0"),
        (lambda b, p, x: b.log_proposal, ValueError, r"ReuseBuffer is empty: add\(x, values, p\) a generation first"),
        (lambda b, p, x: b.add(x, np.ones(3), p), ValueError,
         r"values has shape \(3,\) but x has 4 samples; expected values of shape \(4, ...\)"),
        (lambda b, p, x: b.add(x, np.ones(4), "p"), TypeError, "p must be an npevograd Distribution, got str"),
        (lambda b, p, x: (b.add(x, np.ones(4), p), b.add(x, np.ones((4, 2)), p)), ValueError,
         r"generation has x \(1,\) float64 and values \(2,\) per sample, but the buffer holds x \(1,\) float64 "
         r"and values \(\)"),
    ],
)
def test_buffer_errors(call, error, message):
    p = ng.Normal(np.zeros(1), 1.0)
    with pytest.raises(error, match=message):
        call(ng.ReuseBuffer(k=2), p, p.sample(4, rng=0))


def test_buffer_rejects_encoded_samples():
    table = ng.NoiseTable(1000, seed=0)
    p = ng.Normal(np.zeros(3), 1.0, noise=table)
    with pytest.raises(TypeError, match=r"ReuseBuffer stores sample arrays: pass p.decode\(x\)"):
        ng.ReuseBuffer(k=2).add(p.sample(4, rng=0, encode=True), np.ones(4), p)


def test_registry_distributions_all_reuse(example):
    """Every registered distribution takes a proposal (its own snapshot after a parameter change)."""
    old = ng.reuse.snapshot(example)
    x = old.sample(10, rng=0)
    for value in example.params.values():
        value += 0.05  # in place: the snapshot must not follow
    r = ng.Mean()(np.arange(10.0), x, example, proposal=old)
    assert np.all(r.ratios != 1.0) or isinstance(example, ng.Categorical)
    np.testing.assert_allclose(np.log(r.ratios), example.log_prob(x) - old.log_prob(x), rtol=1e-12, atol=1e-12)
    assert sorted(EXAMPLES)  # the registry drives this test
