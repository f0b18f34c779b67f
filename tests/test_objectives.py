"""Every estimator's objective J(values, r) in NumPy: its weights by the complex step, and torch at rho != 1.

The weights w_i = dJ/dr_i (at r = 1, and at r = rho for sample reuse) are checked
against ``objective`` by ``assert_weights_close`` (NumPy only), and the reuse gradient
sum_i rho_i dJ/dr_i score(x_i) against torch autograd of the ratio objective with
r_i = rho_i exp(log p(x_i) - stop_grad(log p(x_i))) for every registered distribution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES

import npevograd as ng
from npevograd.testing import assert_weights_close

SHAPINGS = {"raw": None, "zscore": ng.zscore, "ranks": ng.centered_ranks, "nes": ng.nes_utilities}
MEANS = {
    f"mean-{s}-{b}": ng.Mean(SHAPINGS[s], baseline=b) for s in SHAPINGS for b in (None, "mean", "loo")
} | {f"mean-{s}-normalize": ng.Mean(SHAPINGS[s], normalize=True) for s in SHAPINGS}
NESTED = {
    "variance": ng.Variance(),
    "entropy": ng.Entropy(0.8),
    "entropy-raw": ng.Entropy(1.5, standardize=False),
    "entropy-tiles": ng.Entropy(0.8, block_size=7),
}


class LogMeanExp(ng.Estimator):
    """A user's estimator: J = log((1/n) sum_i exp(f_i) r_i), dJ/dr_i = exp(f_i) / sum_j exp(f_j) r_j."""

    def weights(self, values, n):
        return self.ratio_weights(values, np.ones(n))

    def ratio_weights(self, values, ratios):
        f = np.asarray(values, dtype=float)
        top = f.max()
        scaled = np.exp(f - top)
        total = scaled @ ratios
        return float(top + np.log(total / len(f))), scaled / total

    def objective(self, values, ratios):
        return np.log(np.mean(np.exp(np.asarray(values, dtype=float)) * ratios))

    def torch_objective(self, values, ratio):
        import torch

        return torch.log(torch.mean(torch.exp(values) * ratio))


ALL = MEANS | NESTED | {"user": LogMeanExp()}


def _values(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if name.startswith(("mean", "user")):
        return 3.0 + rng.standard_normal(n)
    return rng.standard_normal((n, 2)) if name != "variance" else rng.standard_normal((n, 3))


def _ratios(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(0.7 * rng.standard_normal(n))


@pytest.mark.parametrize("name", sorted(ALL))
def test_weights_are_the_complex_step_derivative_of_the_objective(name):
    rng = np.random.default_rng(1)
    values = _values(name, 30, rng)
    estimator = ALL[name]
    value, w = assert_weights_close(estimator, values)  # r = 1
    assert value == pytest.approx(float(np.real(estimator.objective(values, np.ones(30)))), rel=1e-12)
    assert_weights_close(estimator, values, _ratios(30, rng))  # r = rho


@pytest.mark.parametrize("name", ["mean-raw-None", "mean-zscore-loo", "mean-ranks-normalize", "variance", "entropy"])
def test_weights_check_in_float32(name):
    rng = np.random.default_rng(2)
    values = _values(name, 20, rng).astype(np.float32)
    value, w = assert_weights_close(ALL[name], values)
    assert w.dtype == np.float32
    assert_weights_close(ALL[name], values, _ratios(20, rng).astype(np.float32))


@pytest.mark.parametrize("name", sorted(ALL))
def test_reuse_gradient_matches_torch_autograd_of_the_ratio_objective(example, name):
    pytest.importorskip("torch")
    from npevograd.testing import assert_gradient_close

    n = 16 if isinstance(example, ng.PairedNormal) else 15
    x = example.sample(n, rng=3)
    rng = np.random.default_rng(4)
    values = _values(name, n, rng)
    log_q = example.log_prob(x) + 0.6 * rng.standard_normal(n)  # rho_i = exp(-0.6 eps_i), spread over e^+-2
    result = assert_gradient_close(example, ALL[name], values, x, log_proposal=log_q)
    assert result.ratios is not None and np.ptp(np.log(result.ratios)) > 1.0


# ---- the failure messages ----


class WrongWeights(ng.Mean):
    def weights(self, values, n):
        value, w = super().weights(values, n)
        w = w.copy()
        w[3] *= 2  # one weight doubled
        return value, w


def test_a_wrong_weight_fails_with_the_pinned_message():
    values = np.arange(1.0, 11.0)
    with pytest.raises(AssertionError) as info:
        assert_weights_close(WrongWeights(), values)
    assert str(info.value) == (
        "WrongWeights at r = 1: 1 of 2 quantities differ from dJ/dr of its objective by the complex step "
        "(rtol=1e-09, atol=0; allowed abs err = atol + rtol * max_i |dJ/dr_i| (value: max(|J|, sum_i |dJ/dr_i|)))\n"
        "  weights: 1 of 10 entries differ; max abs err 0.4, max rel err 1; worst weights[3]: estimator 0.8, "
        "dJ/dr 0.4, allowed abs err 1e-09"
    )


class AbsObjective(ng.Mean):
    """J = (1/n) sum_i f_i |r_i|: not complex-analytic in r (abs drops the imaginary part)."""

    def objective(self, values, ratios):
        return np.sum(np.asarray(values) * np.abs(ratios)) / len(values)


class WrongAbs(AbsObjective, WrongWeights):
    pass


def test_a_non_analytic_objective_falls_back_to_central_differences_and_says_so():
    values = np.arange(1.0, 11.0)
    assert_weights_close(AbsObjective(), values)  # right weights pass under central differences
    with pytest.raises(AssertionError, match=(
        r"WrongAbs at r = 1: 1 of 2 quantities differ from dJ/dr of its objective by central differences "
        r"\(objective is not complex-analytic in r: it returns a real number for complex ratios \(abs, a cast "
        r"or a comparison drops Im\)\) \(rtol=1e-06, atol=0;.*\n  weights: 1 of 10 entries differ"
    )):
        assert_weights_close(WrongAbs(), values)


class VdotObjective(ng.Mean):
    """J = vdot(r, f) / n: np.vdot conjugates r, so Im J(r + ih e_i) has the wrong sign, silently."""

    def objective(self, values, ratios):
        return np.vdot(ratios, np.asarray(values)) / len(values)


class WrongVdot(VdotObjective, WrongWeights):
    pass


def test_a_silent_non_analytic_objective_is_caught_by_the_direction_probe():
    values = np.arange(1.0, 11.0)
    assert_weights_close(VdotObjective(), values)  # right weights: central differences agree
    with pytest.raises(AssertionError, match=r"by central differences \(objective is not complex-analytic in r: "
                       r"its complex-step derivative along a random direction, -?[0-9.]+, disagrees with Cauchy's "
                       r"integral, -?[0-9.e+-]+\)"):
        assert_weights_close(WrongVdot(), values)


def test_an_objective_raising_on_complex_input_falls_back():
    class NeedsReal(ng.Mean):
        def objective(self, values, ratios):
            r = np.asarray(ratios)
            if np.iscomplexobj(r):
                raise TypeError("real ratios only")
            return np.mean(np.asarray(values) * r)

    assert_weights_close(NeedsReal(), np.arange(1.0, 6.0), np.linspace(0.5, 1.5, 5))


# ---- baselines and normalize ----


def test_baseline_weights_are_the_stated_formulas():
    f = np.random.default_rng(0).standard_normal(12) * 3 + 1
    n, fbar = 12, f.mean()
    value, w = ng.Mean(baseline="mean").weights(f, n)
    np.testing.assert_allclose(w, (f - fbar) / n, rtol=1e-14)
    loo = np.array([(f.sum() - f[i]) / (n - 1) for i in range(n)])
    value_loo, w_loo = ng.Mean(baseline="loo").weights(f, n)
    np.testing.assert_allclose(w_loo, (f - loo) / n, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f - loo, n / (n - 1) * (f - fbar), rtol=1e-12, atol=1e-15)
    value_norm, w_norm = ng.Mean(normalize=True).weights(f, n)
    np.testing.assert_array_equal(w_norm, w)  # self-normalised at r = 1: the mean baseline's weights
    assert value == value_loo == value_norm == ng.Mean().weights(f, n)[0]


def test_self_normalised_value_is_the_weighted_mean():
    rng = np.random.default_rng(3)
    f, r = rng.standard_normal(9), _ratios(9, rng)
    value, dj_dr = ng.Mean(normalize=True).ratio_weights(f, r)
    assert value == pytest.approx(np.sum(r * f) / np.sum(r), rel=1e-14)
    np.testing.assert_allclose(dj_dr, (f - value) / r.sum(), rtol=1e-13)


@pytest.mark.parametrize(("baseline", "factor"), [(None, 1.0), ("mean", 0.75), ("loo", 1.0)])
def test_mean_baseline_is_biased_by_n_minus_1_over_n_and_loo_is_unbiased(baseline, factor):
    """f = -(x - a)^2, x ~ N(mu, s^2): dE f/dmu = -2 (mu - a); E[grad] = factor * that at n = 4."""
    n, repeats, mu, a, s = 4, 6000, 0.0, 1.5, 0.5
    p = ng.Normal(np.array([mu]), s)
    x_all = p.sample(n * repeats, rng=11).reshape(repeats, n, 1)
    estimator = ng.Mean(baseline=baseline)
    grads = np.array([estimator(-((x[:, 0] - a) ** 2), x, p).grad["mu"][0] for x in x_all])
    standard_error = grads.std(ddof=1) / np.sqrt(repeats)
    assert abs(grads.mean() - factor * (-2 * (mu - a))) < 5 * standard_error
    if baseline == "mean":  # and the bias is resolved: the unbiased value is far
        assert abs(grads.mean() - (-2 * (mu - a))) > 10 * standard_error


def test_baselines_lower_the_variance_of_the_gradient():
    """Fitness with a large offset: without a baseline the offset multiplies the score's noise."""
    p = ng.Normal(np.zeros(2), 1.0)
    spread = {}
    for baseline in (None, "mean", "loo"):
        estimator = ng.Mean(baseline=baseline)
        grads = []
        for seed in range(300):
            x = p.sample(100, rng=seed)
            grads.append(estimator(100.0 - np.sum((x - 1) ** 2, axis=1), x, p).grad["mu"])
        spread[baseline] = np.var(grads, axis=0, ddof=1).sum()
    assert spread["mean"] < spread[None] / 10 and spread["loo"] < spread[None] / 10
    assert spread["loo"] == pytest.approx(spread["mean"] * (100 / 99) ** 2, rel=1e-9)  # loo = n/(n-1) x mean


# ---- bit-identical without a proposal ----

PRE_REUSE = Path(__file__).parent / "data" / "pre_reuse_outputs.npz"
PRE_ESTIMATORS = {
    "mean": ng.Mean(), "mean-zscore": ng.Mean(ng.zscore), "mean-ranks": ng.Mean(ng.centered_ranks),
    "mean-nes": ng.Mean(ng.nes_utilities), "variance": ng.Variance(), "entropy": ng.Entropy(0.8),
    "entropy-blocked": ng.Entropy(0.8, block_size=7),
}


@pytest.mark.parametrize("name", sorted(PRE_ESTIMATORS))
def test_without_a_proposal_every_result_is_what_it_was_before_reuse(name):
    """Against outputs stored by the code before sample reuse (tests/data/generate_pre_reuse_outputs.py).

    When sample reuse landed these were equal bit for bit.  The hardening that followed
    (issue 13) changed the rounding on purpose: z-scores divide each column by its peak
    before squaring, and a mean is summed from f_i / n.  So each array must now agree
    with the stored one to a few units in the last place of its largest entry.
    """
    stored = np.load(PRE_REUSE)
    keys = [k for k in stored.files if k.split("|")[2] == name and k.endswith("|value")]
    assert len(keys) == 2 * 8  # every example distribution at the time, both dtypes
    for key in keys:
        prefix = key[: -len("|value")]
        example, dtype = prefix.split("|")[:2]
        p = EXAMPLES[example](np.dtype(dtype).type)
        result = PRE_ESTIMATORS[name](stored[prefix + "|values"], stored[prefix + "|x"], p)
        weights = stored[prefix + "|weights"]
        eps = np.finfo(weights.dtype).eps
        _assert_ulps_close(result.weights, weights, eps * np.abs(weights).max(), prefix + "|weights")
        value_scale = max(abs(float(stored[key])), float(np.abs(weights).sum()))  # a sum of n terms
        _assert_ulps_close(result.value, stored[key], eps * value_scale, prefix + "|value")
        scores = p.score(stored[prefix + "|x"])
        for param in p.params:
            # a gradient is a sum of n terms w_i score_i that may cancel: its rounding scales with sum_i |w_i||s_i|
            term_scale = np.tensordot(np.abs(weights), np.abs(scores[param]), axes=(0, 0)).max()
            _assert_ulps_close(result.grad[param], stored[f"{prefix}|grad|{param}"], eps * term_scale, prefix)
        assert result.ratios is None and result.ess == len(result.weights)


def _assert_ulps_close(actual: object, expected: np.ndarray, ulp: float, label: str, ulps: int = 16) -> None:
    """|actual - expected| <= ulps units of ``ulp`` (eps times the scale of the quantity), same dtype."""
    expected = np.asarray(expected)
    assert np.asarray(actual).dtype == expected.dtype, label
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ulps * float(ulp), err_msg=label)


# ---- errors ----


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ng.Mean(baseline="median"), ValueError, "baseline must be None, 'mean' or 'loo', got 'median'"),
        (lambda: ng.Mean(baseline="loo", normalize=True), ValueError,
         r"baseline='loo' with normalize=True: the self-normalised weights"),
        (lambda: ng.Mean(baseline="loo").weights(np.ones(1), 1), ValueError,
         "baseline='loo' needs at least 2 samples, got 1"),
        (lambda: ng.Mean().ratio_weights(np.ones(4), np.ones(3)), ValueError,
         r"ratios has shape \(3,\) but values has 4 samples; expected ratios of shape \(4,\)"),
        (lambda: ng.Mean().objective(np.ones(3), np.array([1.0, -1.0, 1.0])), ValueError,
         "ratios must be >= 0 with at least one > 0, got minimum -1, maximum 1"),
        (lambda: ng.Variance().ratio_weights(np.arange(3.0), np.zeros(3)), ValueError,
         "ratios must be >= 0 with at least one > 0"),
        (lambda: ng.Entropy().objective(np.arange(3.0), np.array([1, np.inf, 1j])), ValueError,
         r"ratios must be a finite array of shape \(3,\), got shape \(3,\)"),
        (lambda: assert_weights_close(object(), np.ones(3)), TypeError,
         "estimator must have a method objective"),
        (lambda: assert_weights_close(ng.Mean(), 1.0), ValueError,
         r"values must have one entry per sample along axis 0, got shape \(\)"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_users_estimator_without_objective_or_ratio_weights_says_what_to_define():
    class Plain(ng.Estimator):
        def weights(self, values, n):
            return 0.0, np.zeros(n)

    p = ng.Normal(np.zeros(1), 1.0)
    x = p.sample(4, rng=0)
    with pytest.raises(TypeError, match=r"Plain has no objective\(values, ratios\): define J"):  # issue 25, 13
        assert_weights_close(Plain(), np.ones(4))
    with pytest.raises(NotImplementedError, match=r"Plain has no ratio_weights\(values, ratios\)"):
        Plain()(np.ones(4), x, p, log_proposal=p.log_prob(x))
    assert Plain()(np.ones(4), x, p).ess == 4.0  # without a proposal nothing new is needed
