"""npevograd.testing itself: its torch mapping, its reference gradients, and its assertions.

The helper is checked against closed forms written here (not against npevograd), and
its assertions are checked to fail, readably, on gradients that are wrong.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import expit, softmax

import npevograd as ng
from npevograd import testing


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_importing_the_helper_does_not_import_torch():
    code = "import sys, npevograd, npevograd.testing; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_tolerance_depends_on_dtype():
    assert testing.default_tolerance(np.float32) == (1e-4, 0.0)
    assert testing.default_tolerance(np.float64) == (1e-9, 0.0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got int64"):
        testing.default_tolerance(np.int64)


# --------------------------------------------------------------------------- the torch side, vs closed forms


def _normal_case(learn_sigma: bool, diagonal: bool, n: int = 30):
    rng = np.random.default_rng(3)
    sigma = np.array([0.5, 1.5, 0.8]) if diagonal else 0.7
    p = ng.Normal(np.array([0.2, -1.0, 2.0]), sigma, learn_sigma=learn_sigma)
    return p, p.sample(n, rng=rng), rng


@pytest.mark.parametrize("diagonal", [False, True], ids=["isotropic", "diagonal"])
def test_torch_score_of_normal_is_the_closed_form(torch, diagonal):
    p, x, _ = _normal_case(learn_sigma=True, diagonal=diagonal)
    sigma, eps = p.sigma, x - p.mu
    score = testing.torch_score(p, x)
    np.testing.assert_allclose(score["mu"], eps / sigma**2, rtol=1e-12)
    expected_sigma = eps**2 / sigma**3 - 1 / sigma if diagonal else (eps**2).sum(1) / sigma**3 - 3 / sigma
    np.testing.assert_allclose(score["sigma"], expected_sigma, rtol=1e-12)
    log_p = -0.5 * ((eps / sigma) ** 2).sum(1) - np.broadcast_to(np.log(sigma), (3,)).sum() - 1.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(testing.torch_log_prob(p, x), log_p, rtol=1e-12)


def test_torch_score_of_discrete_and_mixture_distributions_is_the_closed_form(torch):
    rng = np.random.default_rng(4)
    logits = rng.normal(size=5)
    p = ng.Bernoulli(logits)
    x = p.sample(20, rng=rng)
    np.testing.assert_allclose(testing.torch_score(p, x)["logits"], x - expit(logits), rtol=1e-12, atol=1e-15)

    logits = rng.normal(size=(2, 4))
    p = ng.Categorical(logits)
    x = p.sample(20, rng=rng)
    onehot = np.eye(4)[x]
    np.testing.assert_allclose(testing.torch_score(p, x)["logits"], onehot - softmax(logits, axis=1), atol=1e-14)

    mus, sigma = rng.normal(size=(3, 2)), 0.6
    p = ng.MixNormal(mus, sigma)
    x = p.sample(20, rng=rng)
    eps = x[:, None, :] - mus[None]  # (n, K, d)
    gamma = softmax(-0.5 * (eps**2).sum(2) / sigma**2, axis=1)
    np.testing.assert_allclose(testing.torch_score(p, x)["mus"], gamma[:, :, None] * eps / sigma**2, atol=1e-12)


def test_per_sample_scores_fall_back_to_one_backward_per_sample(torch, monkeypatch):
    """Without a vmap batching rule (a user's exotic distribution) the scores are the same."""
    p, x, _ = _normal_case(learn_sigma=True, diagonal=True, n=300)  # more than one chunk of 256
    expected = testing.torch_score(p, x)
    original = torch.autograd.grad

    def without_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", without_batching)
    got = testing.torch_score(p, x)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-14)
    np.testing.assert_allclose(expected["mu"], (x - p.mu) / p.sigma**2, rtol=1e-12)


def test_torch_gradient_of_the_mean_is_the_closed_form(torch):
    p, x, rng = _normal_case(learn_sigma=True, diagonal=True)
    f = rng.normal(size=len(x)) + 4.0
    eps = x - p.mu
    grad = testing.torch_gradient(p, ng.Mean(), f, x)
    np.testing.assert_allclose(grad["mu"], (f[:, None] * eps).mean(0) / p.sigma**2, rtol=1e-12)
    np.testing.assert_allclose(grad["sigma"], (f[:, None] * (eps**2 / p.sigma**3 - 1 / p.sigma)).mean(0), rtol=1e-12)


def test_expectation_reference_is_a_jacobian(torch):
    p, x, rng = _normal_case(learn_sigma=False, diagonal=False)
    values = rng.normal(size=(len(x), 2, 4))
    ref = testing.torch_estimate(p, ng.expectation, values, x)
    expected = np.einsum("iab,ij->abj", values, (x - p.mu) / p.sigma**2) / len(x)
    assert ref.grad["mu"].shape == (2, 4, 3) and ref.weights.shape == (len(x), 2, 4)
    np.testing.assert_allclose(ref.grad["mu"], expected, rtol=1e-12)
    np.testing.assert_allclose(ref.value, values.mean(0), rtol=1e-12)
    testing.assert_gradient_close(p, ng.expectation, values, x)


def test_reference_weights_and_term_scale(torch):
    """weights = dJ/dr (here npevograd's hand-derived entropy weights), scale = sum_i |w_i||s_i| >= |grad|."""
    p, x, rng = _normal_case(learn_sigma=True, diagonal=False, n=50)
    b = rng.normal(size=(len(x), 2))
    ref = testing.torch_estimate(p, ng.Entropy(0.9), b, x)
    np.testing.assert_allclose(ref.weights, ng.Entropy(0.9)(b, x, p).weights, rtol=1e-12)
    score = testing.torch_score(p, x)
    for name in p.params:
        np.testing.assert_allclose(ref.scale[name], np.tensordot(np.abs(ref.weights), np.abs(score[name]), 1),
                                   rtol=1e-12)
        assert np.all(ref.scale[name] >= np.abs(ref.grad[name]))


# --------------------------------------------------------------------------- assertions that must fail


class EntropyWithoutNestedTerm(ng.Entropy):
    """A classic mistake: only the outer term -log(phat_i)/n, the nested KDE term dropped."""

    def weights(self, values, n):
        b = np.asarray(values, dtype=float).reshape(n, -1)
        z = (b - b.mean(0)) / b.std(0, ddof=1)
        kernel = np.exp(-((z[:, None] - z[None]) ** 2).sum(-1) / self.bandwidth**2)
        neg_log_density = -np.log(kernel.mean(0))
        return float(neg_log_density.mean()), neg_log_density / n


def test_a_wrong_gradient_fails_naming_each_parameter_with_its_errors(torch):
    p, x, rng = _normal_case(learn_sigma=True, diagonal=False)
    b = rng.normal(size=(len(x), 2))
    objective = testing.torch_objective(ng.Entropy(0.8))
    with pytest.raises(AssertionError) as info:
        testing.assert_gradient_close(p, EntropyWithoutNestedTerm(0.8), b, x, objective=objective)
    message = str(info.value)
    assert "EntropyWithoutNestedTerm on Normal(mu: (3,), sigma: ()" in message
    assert "2 of 3 quantities differ from torch autograd (rtol=1e-09, atol=0" in message
    for name in ("mu", "sigma"):
        assert f"grad['{name}']: " in message
    lines = [s.strip() for s in message.splitlines()]
    assert not any(s.startswith("value:") for s in lines)  # the value is right, only the gradient is wrong
    line = next(s for s in lines if s.startswith("grad['mu']"))
    assert "max abs err" in line and "max rel err" in line and "npevograd" in line and "torch" in line


class SigmaGradientOff(ng.Normal):
    """A Normal whose sigma gradient is off by one part in a million."""

    def _weighted_score(self, w, x):
        grad = super()._weighted_score(w, x)
        grad["sigma"] = grad["sigma"] * (1 + 1e-6)
        return grad


def test_only_the_wrong_parameter_is_listed_and_float64_catches_one_part_in_a_million(torch):
    p = SigmaGradientOff(np.array([0.5, -0.5]), np.array([0.7, 1.2]), learn_sigma=True)
    x = p.sample(40, rng=5)
    f = np.random.default_rng(5).normal(size=40)
    with pytest.raises(AssertionError, match=r"1 of 3 quantities differ") as info:
        testing.assert_gradient_close(p, ng.Mean(), f, x)
    assert "grad['sigma']: 2 of 2 entries differ; max abs err" in str(info.value)
    assert "grad['mu']" not in str(info.value)
    testing.assert_gradient_close(p, ng.Mean(), f, x, rtol=1e-5)  # a looser rtol lets it pass


def test_default_tolerance_follows_the_dtype_of_the_result(torch):
    p = ng.Normal(np.array([0.3, -1.2, 2.0], dtype=np.float32), 0.7, learn_sigma=True)
    x = p.sample(200, rng=6)
    b = np.random.default_rng(6).normal(size=(200, 2)).astype(np.float32)
    result = testing.assert_gradient_close(p, ng.Entropy(1.0), b, x)  # float32: rtol 1e-4
    assert result.grad["mu"].dtype == np.float32
    with pytest.raises(AssertionError, match=r"rtol=1e-09"):  # float32 rounding is far above 1e-9
        testing.assert_gradient_close(p, ng.Entropy(1.0), b, x, rtol=1e-9)


def test_a_wrong_value_is_reported_and_can_be_left_unchecked(torch):
    class MeanReportingTheSum(ng.Mean):
        def weights(self, values, n):
            value, w = super().weights(values, n)
            return value * n, w

    p, x, rng = _normal_case(learn_sigma=False, diagonal=False)
    f = rng.normal(size=len(x)) + 1.0
    objective = testing.torch_objective(ng.Mean())
    with pytest.raises(AssertionError, match=r"1 of 2 quantities differ[\s\S]*value: 1 of 1 entries differ"):
        testing.assert_gradient_close(p, MeanReportingTheSum(), f, x, objective=objective)
    testing.assert_gradient_close(p, MeanReportingTheSum(), f, x, objective=objective, check_value=False)


# --------------------------------------------------------------------------- a user's own estimator and distribution


class LogMeanExp(ng.Estimator):
    r"""J = log((1/n) sum_i exp(f_i) r_i), w_i = exp(f_i) / sum_j exp(f_j) (a softmax)."""

    def weights(self, values, n):
        f = np.asarray(values, dtype=float).reshape(n)
        w = softmax(f)
        return float(np.log(np.mean(np.exp(f)))), w

    def torch_objective(self, values, ratio):
        import torch

        return torch.log(torch.mean(torch.exp(values) * ratio))


class LogMeanExpWrong(LogMeanExp):
    def weights(self, values, n):
        value, w = super().weights(values, n)
        return value, w / n  # a wrong normalisation


def test_users_estimator_with_a_torch_objective_method(torch):
    p, x, rng = _normal_case(learn_sigma=True, diagonal=True)
    f = rng.normal(size=len(x))
    testing.assert_gradient_close(p, LogMeanExp(), f, x)
    with pytest.raises(AssertionError, match=r"LogMeanExpWrong on Normal[\s\S]*grad\['mu'\]"):
        testing.assert_gradient_close(p, LogMeanExpWrong(), f, x)


def test_users_estimator_needs_a_torch_form(torch):
    class Plain(ng.Estimator):
        def weights(self, values, n):
            return 0.0, np.zeros(n)

    p, x, rng = _normal_case(learn_sigma=False, diagonal=False)
    f = rng.normal(size=len(x))
    with pytest.raises(TypeError, match=r"no torch form is known for the estimator Plain: give it a method "
                                        r"torch_objective\(self, values, ratio\)"):
        testing.assert_gradient_close(p, Plain(), f, x)
    # passed as an argument, the objective J = 0 gives a zero gradient, which is right
    testing.assert_gradient_close(p, Plain(), f, x, objective=lambda v, r: 0 * r.sum())

    class RenamedMean(ng.Mean):  # keeps Mean's weights: Mean's torch form applies
        pass

    testing.assert_gradient_close(p, RenamedMean(shaping=ng.centered_ranks), f, x)
    with pytest.raises(TypeError, match="estimator LogMeanExpNoTorch"):

        class LogMeanExpNoTorch(ng.Mean):  # changes the weights: Mean's torch form no longer applies
            def weights(self, values, n):
                return LogMeanExp.weights(self, values, n)

        testing.torch_gradient(p, LogMeanExpNoTorch(), f, x)


class Laplace(ng.Distribution):
    r"""Independent Laplace(loc_j, b): log p = -sum_j |x_j - loc_j| / b - d log 2b; score sign(x - loc)/b."""

    def __init__(self, loc, b, wrong_score=False):
        self.params = {"loc": np.array(loc, dtype=float)}
        self.b, self.wrong_score = b, wrong_score

    def check_x(self, x):
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.params["loc"].shape[0]:
            raise ValueError(f"x must have shape (n, {self.params['loc'].shape[0]}), got {x.shape}")
        return x

    def _sample(self, n, rng):
        return self.params["loc"] + np.random.default_rng(rng).laplace(0, self.b, (n, len(self.params["loc"])))

    def _log_prob(self, x):
        return (-np.abs(x - self.params["loc"]) / self.b - np.log(2 * self.b)).sum(1)

    def _score(self, x):
        return {"loc": np.sign(x - self.params["loc"]) / (1 if self.wrong_score else self.b)}


def test_users_distribution_with_a_torch_factory(torch):
    def laplace(params):
        return torch.distributions.Independent(torch.distributions.Laplace(params["loc"], 0.5), 1)

    p = Laplace([0.0, 1.0], 0.5)
    x = p.sample(40, rng=8)
    f = np.random.default_rng(8).normal(size=40)
    with pytest.raises(TypeError, match="no torch.distributions equivalent is known for Laplace; pass distribution="):
        testing.assert_gradient_close(p, ng.Mean(), f, x)
    testing.assert_distribution_close(p, x, distribution=laplace)
    testing.assert_gradient_close(p, ng.Mean(), f, x, distribution=laplace)
    testing.assert_gradient_close(p, ng.Variance(), np.c_[f, f**2], x, distribution=laplace)

    wrong = Laplace([0.0, 1.0], 0.5, wrong_score=True)
    with pytest.raises(AssertionError, match=r"1 of 2 quantities differ[\s\S]*score\['loc'\]: 80 of 80 entries"):
        testing.assert_distribution_close(wrong, x, distribution=laplace)


# --------------------------------------------------------------------------- inputs


def test_inputs_are_not_mutated(torch):
    p, x, rng = _normal_case(learn_sigma=True, diagonal=True)
    b = rng.normal(size=(len(x), 2))
    before = ({k: v.copy() for k, v in p.params.items()}, x.copy(), b.copy())
    testing.assert_gradient_close(p, ng.Entropy(1.0), b, x)
    for name, value in before[0].items():
        np.testing.assert_array_equal(p.params[name], value)
    np.testing.assert_array_equal(x, before[1])
    np.testing.assert_array_equal(b, before[2])


def test_bad_inputs_get_clear_errors(torch):
    p, x, rng = _normal_case(learn_sigma=False, diagonal=False)
    with pytest.raises(ValueError, match=r"values has shape \(29,\) but x has 30 samples; expected values of shape"):
        testing.torch_gradient(p, ng.Mean(), np.zeros(29), x)
    with pytest.raises(TypeError, match="p must be an npevograd Distribution, got dict"):
        testing.torch_gradient({"mu": 0}, ng.Mean(), np.zeros(30), x)
    with pytest.raises(TypeError, match="objective must return a torch tensor, got float"):
        testing.torch_gradient(p, ng.Mean(), np.zeros(30), x, objective=lambda v, r: 1.0)
    with pytest.raises(TypeError, match=r"objective must be callable\(values, ratio\) or None, got int"):
        testing.torch_gradient(p, ng.Mean(), np.zeros(30), x, objective=3)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        testing.torch_gradient(p, ng.Mean(), np.zeros(30), x[:, :2])
