"""The cheaper forms of the per-call checks (issue 15, second round) decide exactly as the plain ones.

Small arrays are checked as Python floats, larger ones by counting; the built-in shapings
skip re-validating the fitness Mean has just validated; the learned-sigma contraction
divides its blocks in place.  Each must agree with the plain form, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng
from npevograd import _checks
from npevograd._checks import all_finite, all_true, check_sigma
from npevograd.distributions._normal_contraction import _scaled_rows
from npevograd.estimators.shaping import on_validated

SIZES = [0, 1, 2, _checks.SMALL_SIZE, _checks.SMALL_SIZE + 1, 300]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_all_finite_is_isfinite_all(size, bad, dtype):
    rng = np.random.default_rng(size)
    a = (rng.uniform(-1, 1, size) * np.finfo(dtype).max).astype(dtype)  # finite, up to the largest float
    if bad is not None and size:
        a[size // 2] = bad
    views = [a, a[::2], a.reshape(1, -1)] + ([a[:1].reshape(())] if size else [])
    for view in views:
        assert all_finite(view) is bool(np.isfinite(view).all())
        assert all_true(np.isfinite(view)) is bool(np.isfinite(view).all())


@pytest.mark.parametrize("size", [1, _checks.SMALL_SIZE, _checks.SMALL_SIZE + 1])
@pytest.mark.parametrize(
    "bad, message",
    [(0.0, "sigma must be > 0, got minimum 0.0"), (-2.0, "sigma must be > 0, got minimum -2.0"),
     (np.nan, "sigma must be finite, got 1 non-finite"), (np.inf, "sigma must be finite, got 1 non-finite")],
)
def test_check_sigma_small_and_large_give_the_same_errors(size, bad, message):
    sigma = np.full(size, 0.5)
    assert check_sigma(sigma) is sigma
    sigma[-1] = bad
    with pytest.raises(ValueError, match=message):
        check_sigma(sigma)
    if size == 1:
        with pytest.raises(ValueError, match=message):
            check_sigma(sigma.reshape(()))  # isotropic sigma: a 0-d array


@pytest.mark.parametrize("shaping", [ng.zscore, ng.centered_ranks, ng.nes_utilities])
@pytest.mark.parametrize("column", [False, True])
def test_built_in_shapings_on_validated_fitness_are_the_public_ones(shaping, column, dtype):
    assert on_validated(shaping) is not None and on_validated(lambda f: f) is None
    rng = np.random.default_rng(4)
    p = ng.Normal(np.zeros(3, dtype), 0.7, learn_sigma=True)
    x = p.sample(40, rng)
    f = np.round(x.sum(axis=1), 1)  # some ties for the ranks
    values = f[:, None] if column else f
    fast = ng.Mean(shaping=shaping)(values, x, p)
    plain = ng.Mean(shaping=lambda v: shaping(v))(values, x, p)  # not recognised: the public function
    assert fast.value == plain.value
    np.testing.assert_array_equal(fast.weights, plain.weights)
    for name in plain.grad:
        np.testing.assert_array_equal(fast.grad[name], plain.grad[name])
    assert fast.weights.dtype == plain.weights.dtype == dtype


def test_built_in_shaping_errors_are_unchanged():
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(5, np.random.default_rng(0))
    for shaping in (ng.zscore, lambda v: ng.zscore(v)):
        with pytest.raises(ValueError, match="f is constant"):
            ng.Mean(shaping=shaping)(np.ones(5), x, p)
        with pytest.raises(ValueError, match="values must be finite, got 1 non-finite"):
            ng.Mean(shaping=shaping)(np.array([1.0, 2.0, np.nan, 4.0, 5.0]), x, p)


@pytest.mark.parametrize("isotropic", [False, True])
def test_in_place_scaled_rows_are_the_out_of_place_ones(isotropic, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 5)).astype(dtype)
    mu = rng.standard_normal(5).astype(dtype)
    sigma = np.asarray(0.3, dtype) if isotropic else rng.uniform(0.1, 2, 5).astype(dtype)
    root = np.sqrt(sigma)
    block = _scaled_rows(x, mu, sigma, root)(2, 6)
    np.testing.assert_array_equal(block, (x[2:6] - mu) / sigma / root)
    assert block.dtype == dtype


@pytest.mark.parametrize("d", [1, _checks.SMALL_SIZE, _checks.SMALL_SIZE + 1])
def test_shortcut_accuracy_test_small_and_large_agree(d, dtype):
    """The fixed-sigma shortcut's test on Python floats (few coordinates) is the array test."""
    from npevograd.distributions._normal_contraction import _accurate, _floor

    rng = np.random.default_rng(d)
    tiny = np.finfo(dtype).tiny
    cases = [rng.standard_normal(d), np.full(d, 1e-20), np.full(d, 1e-39), np.full(d, 3e-31)]
    for shortcut in cases:
        for shift in (rng.standard_normal(d) * 1e6, np.full(d, 1e-33), np.zeros(d), np.full(d, tiny)):
            for bad in (None, np.nan, np.inf):
                s, h = shortcut.astype(dtype), shift.astype(dtype)
                if bad is not None:
                    s[-1] = bad
                floor = _floor(np.dtype(dtype))
                plain = bool((np.abs(s) >= np.maximum(2.0**-20 * np.abs(h), floor)).all() and np.isfinite(s).all())
                assert _accurate(s, h) is plain


@pytest.mark.parametrize("k", [1, 3])
def test_variance_one_behaviour_is_the_einsum_form(k, dtype):
    """One behaviour: ||z_i||^2 as z_i^2 (the sum of one product), the einsum's bits."""
    rng = np.random.default_rng(k)
    p = ng.Normal(np.zeros(2, dtype), 0.5)
    x = p.sample(30, rng)
    b = rng.standard_normal((30, k)).astype(dtype)
    est = ng.Variance()(b, x, p)
    z = ng.zscore(b)
    np.testing.assert_array_equal(est.weights, np.einsum("ij,ij->i", z, z) / 30)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("bad", [None, np.nan, 0.0, -0.0, -1.0, np.inf, -np.inf])
def test_all_positive_is_greater_than_zero_all(size, bad, dtype):
    from npevograd._checks import all_positive

    a = np.random.default_rng(size).uniform(1e-30, 1, size).astype(dtype)
    if bad is not None and size:
        a[-1] = bad
    for view in [a, a[::2], a.reshape(1, -1)] + ([a[-1:].reshape(())] if size else []):
        assert all_positive(view) is bool((view > 0).all())


def test_all_finite_of_finite_entries_whose_sum_overflows(dtype):
    big = np.full(_checks.SMALL_SIZE, np.finfo(dtype).max, dtype=dtype)  # the sum is inf, every entry finite
    assert all_finite(big) and all_finite(big.reshape(2, -1)) and check_sigma(big) is big


def test_estimator_validates_x_once_and_its_gradient_is_weighted_score():
    class Counting(ng.Normal):
        calls = 0

        def check_x(self, x):
            Counting.calls += 1
            return super().check_x(x)

    p = Counting(np.zeros(3), np.full(3, 0.5), learn_sigma=True)
    x = p.sample(20, np.random.default_rng(0))
    est = ng.Mean(shaping=ng.nes_utilities)(x.sum(axis=1), x, p)
    assert Counting.calls == 1
    for name, value in p.weighted_score(est.weights, x).items():
        np.testing.assert_array_equal(est.grad[name], value)


@pytest.mark.parametrize(
    "values", [np.array([1.0, np.nan, 3.0]), np.array([[1.0], [np.inf], [3.0]]), [1.0, np.nan, 3.0]]
)
def test_fitness_vector_fast_and_general_paths_give_the_same_error(values):
    from npevograd._checks import fitness_vector

    with pytest.raises(ValueError, match=r"^values must be finite, got 1 non-finite value\(s\) \(NaN or inf\)$"):
        fitness_vector("values", values, 3)
    with pytest.raises(ValueError, match=r"values has shape \(3,\) but x has 4 samples"):
        fitness_vector("values", np.ones(3), 4)


@pytest.mark.parametrize("d", [1, _checks.SMALL_SIZE, _checks.SMALL_SIZE + 1])
@pytest.mark.parametrize("scale", [1.0, 1e-160, 1e150])
def test_natural_gradient_on_python_floats_is_the_numpy_form(d, scale):
    """A float64 diagonal sigma of few entries: the products on Python floats, the same bits (subnormals too)."""
    rng = np.random.default_rng(d)
    p = ng.Normal(np.zeros(d), rng.uniform(0.5, 2, d) * scale, learn_sigma=True)
    sigma = p.params["sigma"]
    for grad_dtype in (np.float64, np.float32):
        grad = {name: (rng.standard_normal(d) * 1e-3).astype(grad_dtype) for name in ("mu", "sigma")}
        natural = p.natural_gradient(grad)
        np.testing.assert_array_equal(natural["mu"], sigma * (sigma * grad["mu"]))
        np.testing.assert_array_equal(natural["sigma"], sigma * (sigma * grad["sigma"]) / 2)
        assert natural["mu"].dtype == natural["sigma"].dtype == np.float64


@pytest.mark.parametrize("d", [1, _checks.SMALL_SIZE, _checks.SMALL_SIZE + 1])
def test_natural_gradient_overflow_is_the_same_error_on_both_paths(d):
    p = ng.Normal(np.zeros(d), np.full(d, 1e200))
    message = r"sigma\^2 grad\['mu'\] overflows float64 \(largest \|grad\| 1e-50, largest sigma 1e\+200\)"
    with pytest.raises(ValueError, match=message):
        p.natural_gradient({"mu": np.full(d, 1e-50)})
