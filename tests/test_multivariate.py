"""MultivariateNormal: against torch.distributions.MultivariateNormal autograd, closed forms, errors."""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng

L3 = np.array([[1.2, 0.0, 0.0], [-0.7, 0.4, 0.0], [0.3, 0.9, 2.0]])
MU3 = np.array([0.5, -1.0, 2.0])


def _mvn(learn_scale: bool = True, dtype: type = np.float64) -> ng.MultivariateNormal:
    return ng.MultivariateNormal(MU3.astype(dtype), L3, learn_scale=learn_scale)


@pytest.mark.parametrize("learn_scale", [False, True])
def test_log_prob_and_score_match_torch(learn_scale):
    pytest.importorskip("torch")
    from npevograd.testing import assert_distribution_close

    p = _mvn(learn_scale)
    x = p.sample(30, rng=0)
    assert_distribution_close(p, x, rtol=1e-9)
    if learn_scale:
        assert np.all(np.triu(p.score(x)["scale_tril"], 1) == 0)  # zeros above the diagonal


@pytest.mark.parametrize(
    "estimator",
    [ng.Mean(), ng.Mean(shaping=ng.centered_ranks), ng.Variance(), ng.Entropy(bandwidth=0.7), ng.expectation],
    ids=["mean", "mean-ranks", "variance", "entropy", "expectation"],
)
def test_every_estimator_gradient_matches_torch(estimator):
    pytest.importorskip("torch")
    from npevograd.testing import assert_gradient_close

    p = _mvn()
    rng = np.random.default_rng(4)
    x = p.sample(40, rng=rng)
    values = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 3.0  # behaviours/fitness with an offset
    if isinstance(estimator, (ng.Variance, ng.Entropy)):
        values = np.stack([values, np.cos(x[:, 2])], axis=1)  # 2-D behaviours
    assert_gradient_close(p, estimator, values, x, rtol=1e-9)


def test_float32_estimator_gradient_matches_torch():
    pytest.importorskip("torch")
    from npevograd.testing import assert_gradient_close

    p = _mvn(dtype=np.float32)
    x = p.sample(50, rng=1)
    result = assert_gradient_close(p, ng.Entropy(), x[:, :2], x)
    assert all(g.dtype == np.float32 for g in result.grad.values())


def test_sample_is_mu_plus_L_times_standard_normal():
    p = _mvn(False)
    x = p.sample(7, rng=3)
    z = np.random.default_rng(3).standard_normal((7, 3))
    np.testing.assert_allclose(x, MU3 + z @ L3.T, rtol=1e-14)
    np.testing.assert_allclose(p.whiten(x), z, rtol=1e-12, atol=1e-13)


def test_sample_moments():
    p = _mvn(False)
    n = 200_000
    x = p.sample(n, rng=5)
    cov = L3 @ L3.T
    # the mean to 4.5 standard errors sqrt(Sigma_jj / n); the covariance to 1%
    assert np.all(np.abs(x.mean(0) - MU3) < 4.5 * np.sqrt(np.diag(cov) / n))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.02 * np.abs(cov).max())
    np.testing.assert_allclose(p.covariance, cov, rtol=1e-15)


def test_log_prob_matches_scipy():
    from scipy.stats import multivariate_normal

    p = _mvn(False)
    x = p.sample(10, rng=2)
    np.testing.assert_allclose(p.log_prob(x), multivariate_normal(MU3, L3 @ L3.T).logpdf(x), rtol=1e-12)


def test_weighted_score_never_builds_the_per_sample_matrix(monkeypatch):
    """weighted_score goes through one (d, d) product, not score's (n, d, d) array."""
    p = _mvn()
    x = p.sample(20, rng=0)
    w = np.linspace(-1, 2, 20)
    want = {k: np.tensordot(w, s, axes=(0, 0)) for k, s in p.score(x).items()}
    monkeypatch.setattr(p, "_score", lambda x: pytest.fail("weighted_score called _score"))
    got = p.weighted_score(w, x)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12)


def test_natural_gradient_closed_form():
    """Diagonal L reduces to Normal's Fisher: sigma^2 g for mu, sigma^2 g / 2 for the diagonal."""
    sigma = np.array([0.5, 2.0, 1.5])
    p = ng.MultivariateNormal(MU3, np.diag(sigma), learn_scale=True)
    g_mu, g_l = np.array([1.0, -2.0, 0.5]), np.diag([0.3, -0.1, 2.0])
    natural = p.natural_gradient({"mu": g_mu, "scale_tril": g_l})
    np.testing.assert_allclose(natural["mu"], sigma**2 * g_mu)
    np.testing.assert_allclose(natural["scale_tril"], np.diag(sigma**2 * np.diag(g_l) / 2))
    # a general L: mu gets L L^T g exactly
    p = _mvn()
    natural = p.natural_gradient({"mu": g_mu, "scale_tril": np.tril(np.ones((3, 3)))})
    np.testing.assert_allclose(natural["mu"], L3 @ L3.T @ g_mu)


def test_natural_gradient_step_follows_the_kl_geometry():
    """A small natural step of size eps changes KL by eps^2/2 g^T F^{-1} g (second order)."""
    p = _mvn()
    x = p.sample(50, rng=7)
    g = p.weighted_score(np.random.default_rng(0).standard_normal(50), x)
    natural = p.natural_gradient(g)
    quad = sum(float(np.sum(g[k] * natural[k])) for k in g)
    eps = 1e-5
    mu1, L1 = MU3 + eps * natural["mu"], L3 + eps * natural["scale_tril"]
    cov0, cov1 = L3 @ L3.T, L1 @ L1.T
    inv1 = np.linalg.inv(cov1)
    log_det_ratio = np.log(np.linalg.det(cov1) / np.linalg.det(cov0))
    kl = 0.5 * (np.trace(inv1 @ cov0) + (mu1 - MU3) @ inv1 @ (mu1 - MU3) - 3 + log_det_ratio)
    # the third-order term is relative O(eps) (1.1e-4 here); a wrong Fisher is off by O(1)
    assert kl == pytest.approx(0.5 * eps**2 * quad, rel=2e-4)


def test_dtype_float32_kept_everywhere():
    p = _mvn(dtype=np.float32)
    x = p.sample(5, rng=0)
    assert x.dtype == np.float32 and p.whiten(x).dtype == np.float32
    g = p.weighted_score(np.ones(5, dtype=np.float32), x)
    assert all(v.dtype == np.float32 for v in p.natural_gradient(g).values())


def test_learned_scale_is_the_live_parameter():
    p = _mvn()
    p.params["scale_tril"][2, 2] = 3.0
    assert p.scale_tril[2, 2] == 3.0
    p.params["scale_tril"][0, 0] = -1.0  # e.g. a too-large gradient step
    with pytest.raises(ValueError, match=r"scale_tril must have a positive diagonal, got scale_tril\[0, 0\] = -1.0"):
        p.sample(2)


@pytest.mark.parametrize(
    "mu, scale, message",
    [
        (np.zeros((2, 2)), np.eye(2), r"mu must be a 1-D array of shape \(d,\) with d >= 1, got shape \(2, 2\)"),
        (np.zeros(2), np.eye(3), r"scale_tril must have shape \(2, 2\) to match mu, got shape \(3, 3\)"),
        (np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), r"must be lower triangular .* scale_tril\[0, 1\] = 0.5"),
        (np.zeros(2), np.diag([1.0, 0.0]), r"scale_tril must have a positive diagonal, got scale_tril\[1, 1\] = 0.0"),
        (np.zeros(2), np.diag([1.0, np.nan]), r"scale_tril must be finite, got 1 non-finite"),
    ],
)
def test_constructor_errors(mu, scale, message):
    with pytest.raises(ValueError, match=message):
        ng.MultivariateNormal(mu, scale)


def test_x_errors():
    p = _mvn()
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\) with n >= 1, got shape \(4, 2\)"):
        p.log_prob(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="x must be finite, got 1 non-finite"):
        p.score(np.array([[0.0, np.inf, 1.0]]))
