"""Issue 13: extreme but valid inputs, and parameters changed between calls.

Each test is one row of the issue's table: a call that used to come back wrong without an
error (or with an unclear one), pinned to its fixed behaviour: a finite result that agrees
with a closed form or a rescaled reference, or a ValueError/TypeError naming the argument.
"""

from __future__ import annotations

import sys
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import test_parallel

import npevograd as ng
from npevograd.optim import SGD, Adam
from npevograd.parallel import FitnessError, evaluate
from npevograd.testing import assert_weights_close

RNG = 20261201
F8 = np.array([0.3, -1.2, 2.5, 0.0, 1.1, -0.4, 0.9, 3.0])  # eight ordinary fitness values


def every_distribution(dt=np.float64) -> dict[str, ng.Distribution]:
    return {
        "normal": ng.Normal(np.array([0.5, -1.0], dtype=dt), 0.7),
        "normal-learn": ng.Normal(np.array([0.5, -1.0], dtype=dt), np.array([0.7, 1.2]), learn_sigma=True),
        "paired": ng.PairedNormal(np.array([0.5, -1.0], dtype=dt), 0.7, learn_sigma=True),
        "mix": ng.MixNormal(np.array([[0.0, 1.0], [1.0, -1.0]], dtype=dt), 0.8),
        "bernoulli": ng.Bernoulli(np.array([0.5, -1.0], dtype=dt)),
        "categorical": ng.Categorical(np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]], dtype=dt)),
    }


def public_calls(p: ng.Distribution, x: np.ndarray) -> dict:
    """Every public call that uses p's parameters, as thunks."""
    f = np.linspace(-1.0, 2.0, x.shape[0])
    grad = {name: np.ones_like(v) for name, v in p.params.items()}
    calls = {
        "sample": lambda: p.sample(4, RNG),
        "log_prob": lambda: p.log_prob(x),
        "score": lambda: p.score(x),
        "weighted_score": lambda: p.weighted_score(f, x),
        "Mean": lambda: ng.Mean()(f, x, p),
        "Mean-zscore": lambda: ng.Mean(shaping=ng.zscore)(f, x, p),
        "Variance": lambda: ng.Variance()(f, x, p),
        "Entropy": lambda: ng.Entropy()(f, x, p),
        "expectation": lambda: ng.expectation(f, x, p),
    }
    if not isinstance(p, ng.MixNormal):
        calls["natural_gradient"] = lambda: p.natural_gradient(grad)
    return calls


# --- a NaN parameter: sample too -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(every_distribution()))
def test_nan_parameter_is_an_error_in_sample_and_every_call(name):
    p = every_distribution()[name]
    x = p.sample(4, RNG)
    first = next(iter(p.params))
    p.params[first].flat[0] = np.nan  # changed in place after construction
    for call, thunk in public_calls(p, x).items():
        with pytest.raises(ValueError, match=rf"params\['{first}'\] must be finite, got 1 non-finite"):
            thunk()
        assert call  # every call raised


# --- a fixed sigma changed in place: the sigma error wherever sigma is used ------------------------


@pytest.mark.parametrize("bad", [-1.0, 0.0, np.nan, np.inf])
@pytest.mark.parametrize("name", ["normal", "normal-learn", "paired", "mix"])
def test_sigma_changed_in_place_is_the_sigma_error_everywhere(name, bad):
    p = every_distribution()[name]
    x = p.sample(4, RNG)
    p.sigma[...] = bad  # the live array: fixed (p.sigma) or learned (p.params["sigma"], the same array)
    message = "sigma must be > 0, got minimum" if np.isfinite(bad) else r"sigma('\])? must be finite"
    for thunk in public_calls(p, x).values():
        with pytest.raises(ValueError, match=message):
            thunk()


# --- checked after the float32 cast ----------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1e39, 1e-46])
def test_sigma_is_checked_in_the_parameters_dtype(sigma):
    for make in (
        lambda s: ng.Normal(np.zeros(2, np.float32), s),
        lambda s: ng.Normal(np.zeros(2, np.float32), np.array([1.0, s]), learn_sigma=True),
        lambda s: ng.MixNormal(np.zeros((2, 2), np.float32), s),
    ):
        with pytest.raises(ValueError, match=r"sigma must be finite and > 0 in float32, the parameters' dtype"):
            make(sigma)
    # float64 holds both: accepted, sigma kept exactly
    assert ng.Normal(np.zeros(2), sigma).sigma == sigma
    assert ng.MixNormal(np.zeros((2, 2)), sigma).sigma == sigma


# --- learn_sigma must be a bool -----------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["False", 1, None, np.array([True, False])])
def test_learn_sigma_must_be_a_bool(flag):
    with pytest.raises(TypeError, match="learn_sigma must be a bool, got"):
        ng.Normal(np.zeros(2), 1.0, learn_sigma=flag)


def test_numpy_bools_are_bools():
    assert ng.Normal(np.zeros(2), 1.0, learn_sigma=np.bool_(True)).learn_sigma is True
    assert "sigma" not in ng.Normal(np.zeros(2), 1.0, learn_sigma=np.False_).params


# --- n too large, a negative seed ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(every_distribution()))
def test_too_many_samples_and_negative_seed_name_the_argument(name):
    p = every_distribution()[name]
    with pytest.raises(ValueError, match=r"n must be <= 9223372036854775807 .*got 1000000000000000000000"):
        p.sample(10**21, RNG)
    with pytest.raises(ValueError, match=r"n=2305843009213693952 samples need about .* bytes, more than one"):
        p.sample(2**61, RNG)  # countable, but not as one array
    for seed in (-1, np.int64(-5)):
        with pytest.raises(ValueError, match=rf"rng as an int seed must be >= 0, got {int(seed)}"):
            p.sample(2, seed)


# --- NoiseTable arguments of any integer type -------------------------------------------------------------


INTEGER_TYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64, int]


@pytest.mark.parametrize("kind", INTEGER_TYPES)
def test_noise_table_takes_every_integer_type(kind):
    table = ng.NoiseTable(1000, 3, shared=False)
    dim, last = kind(4), 996  # 996 = size - dim: the last valid window
    expected = table.array[last : last + 4]
    np.testing.assert_array_equal(table.get(last, dim), expected)
    index_type = np.int16 if kind in (np.uint8, np.int8) else kind  # a type that holds 996
    indices = np.array([0, last], dtype=index_type)
    np.testing.assert_array_equal(table.rows(indices, dim)[1], expected)
    a, b = table.contract(indices, dim, [0.0, 1.0], [0.0, 2.0])
    np.testing.assert_allclose(a, expected)
    np.testing.assert_allclose(b, 2 * expected.astype(np.float64) ** 2, rtol=1e-6)
    drawn = table.sample_index(np.random.default_rng(1), dim, kind(5))
    assert drawn.shape == (5,) and drawn.max() <= last
    np.testing.assert_array_equal(drawn, table.sample_index(np.random.default_rng(1), 4, 5))
    encoded = ng.EncodedSamples(indices, np.array([1, -1]), dim, table)
    assert encoded.dim == 4 and encoded.indices.dtype == np.int64
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 996\] .* got range \[0, 997\]"):
        table.rows(np.array([0, 997], dtype=index_type), dim)


# --- params: one rule for replacing and updating -------------------------------------------------------


def test_replacing_a_learned_sigma_is_used_like_replacing_mu():
    p = ng.Normal(np.zeros(3), 1.0, learn_sigma=True)
    p.params["sigma"] = np.array(100.0)
    p.params["mu"] = np.full(3, 5.0)
    assert p.sigma == 100.0 and p.mu[0] == 5.0
    x = p.sample(4000, RNG)
    assert abs(x.std() / 100.0 - 1) < 0.05 and abs(x.mean() - 5.0) < 5 * 100 / np.sqrt(x.size)
    z = np.full((1, 3), 105.0)  # one sigma above mu: score_sigma = (||eps||^2/sigma^2 - d)/sigma = 0
    np.testing.assert_allclose(p.score(z)["sigma"], [0.0], atol=1e-15)
    np.testing.assert_allclose(p.score(z)["mu"], [[0.01, 0.01, 0.01]])


def test_replacing_an_entry_by_something_else_is_an_error():
    p = ng.Normal(np.zeros(3, np.float32), 1.0, learn_sigma=True)
    x = np.zeros((2, 3), np.float32)
    cases = {
        "mu": (np.zeros(4, np.float32), r"params\['mu'\] was replaced by a float32 array of shape \(4,\); "
               r"expected a float32 array of shape \(3,\)"),
        "sigma": (np.array(1.0), r"params\['sigma'\] was replaced by a float64 array of shape \(\); "
                  "expected a float32 array"),
    }
    for name, (value, message) in cases.items():
        kept = p.params[name]
        p.params[name] = value
        for thunk in (lambda: p.sample(2, RNG), lambda: p.score(x), lambda: ng.Mean()([1.0, 2.0], x, p)):
            with pytest.raises(ValueError, match=message):
                thunk()
        p.params[name] = kept
    p.params["mu"] = [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"params\['mu'\] was replaced by a list"):
        p.log_prob(x)


def test_adding_a_params_entry_is_an_error():
    """A fixed sigma is not a parameter: putting one into params cannot work, so it raises."""
    p = ng.Normal(np.zeros(2), 1.0)
    p.params["sigma"] = np.array(100.0)
    with pytest.raises(ValueError, match=r"params must keep the keys \['mu'\], got \['mu', 'sigma'\]"):
        p.sample(2, RNG)


def test_optimizer_follows_replaced_entries_and_rejects_a_replaced_dict():
    p = ng.Normal(np.zeros(2), 1.0, learn_sigma=True)
    opt = SGD(p, lr=0.5)
    p.params["mu"] = np.array([1.0, 2.0])  # replaced: the optimizer reads the dict at every step
    opt.step({"mu": np.ones(2), "sigma": np.array(0.0)})
    np.testing.assert_array_equal(p.mu, [1.5, 2.5])
    p.params["mu"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"params\['mu'\] has shape \(3,\), expected \(2,\)"):
        opt.step({"mu": np.ones(3), "sigma": np.array(0.0)})
    p.params = {"mu": np.zeros(2), "sigma": np.array(1.0)}
    with pytest.raises(ValueError, match="p.params was replaced by a new dict after the optimizer was built"):
        opt.step({"mu": np.ones(2), "sigma": np.array(0.0)})


# --- optimizers at extreme gradients -------------------------------------------------------------------------


def test_adam_step_is_about_lr_for_a_huge_gradient_entry():
    theta = np.zeros(3)
    opt = Adam({"theta": theta}, lr=0.01)
    update = opt.step({"theta": np.array([1e160, -1e300, 1.0])})["theta"]
    np.testing.assert_allclose(update, [0.01, -0.01, 0.01], rtol=1e-7)  # first step: lr * g / (|g| + eps)


def test_adam_is_scale_free_up_to_eps_even_where_squares_overflow():
    gradients = np.random.default_rng(RNG).normal(size=(6, 4))
    steps = {}
    for scale in (1e10, 1e160):
        opt = Adam({"theta": np.zeros(4)}, lr=0.1)
        steps[scale] = [opt.step({"theta": scale * g})["theta"] for g in gradients]
    np.testing.assert_allclose(steps[1e160], steps[1e10], rtol=1e-12)
    assert np.isfinite(opt.v["theta"]).sum() == 0  # the squares themselves overflow; only sqrt(v) is kept


def test_a_step_to_a_non_finite_parameter_changes_nothing():
    theta = np.array([1.0, 2.0])
    opt = SGD({"theta": theta}, lr=1e300, momentum=0.5)
    opt.step({"theta": np.array([0.0, 1e-300])})
    before, velocity = theta.copy(), opt.velocity["theta"].copy()
    with pytest.raises(ValueError, match=r"params\['theta'\]: this step .* would make it non-finite in float64; "
                                         "nothing was changed"):
        opt.step({"theta": np.array([1e300, 0.0])})
    np.testing.assert_array_equal(theta, before)
    np.testing.assert_array_equal(opt.velocity["theta"], velocity)
    assert opt.t == 1


def test_sigma_driven_below_zero_by_a_step_is_the_sigma_error_at_next_use():
    p = ng.Normal(np.zeros(2), 1.0, learn_sigma=True)
    SGD(p, lr=1.0).step({"mu": np.zeros(2), "sigma": np.array(-3.0)})
    with pytest.raises(ValueError, match="sigma must be > 0, got minimum -2.0"):
        p.sample(2, RNG)


# --- statistics that scale before they square ------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-200, 1e-300, 1e200, 1e300])
def test_zscore_is_scale_free(scale):
    np.testing.assert_allclose(ng.zscore(scale * F8), ng.zscore(F8), rtol=1e-13)
    f32 = F8.astype(np.float32)
    scale32 = np.float32(1e-30 if scale < 1 else 1e30)  # the same extremes, in float32's range
    assert ng.zscore(scale32 * f32).dtype == np.float32
    np.testing.assert_allclose(ng.zscore(scale32 * f32), ng.zscore(f32), rtol=1e-5)
    p = ng.Normal(np.zeros(2), 1.0, learn_sigma=True)
    x = p.sample(8, RNG)
    for estimator in (ng.Mean(shaping=ng.zscore), ng.Variance(), ng.Entropy()):
        scaled, plain = estimator(scale * F8, x, p), estimator(F8, x, p)
        np.testing.assert_allclose(scaled.weights, plain.weights, rtol=1e-12)
        for name in plain.grad:
            np.testing.assert_allclose(scaled.grad[name], plain.grad[name], rtol=1e-12)


def test_variance_of_one_huge_behaviour_has_the_right_gradient():
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(10, RNG)
    huge, unit = ng.Variance()(np.r_[1e300, np.zeros(9)], x, p), ng.Variance()(np.r_[1.0, np.zeros(9)], x, p)
    # b = (1, 0, ..., 0): mean 0.1 and ddof=1 variance 0.1, so ||z_i||^2 = (b_i - 0.1)^2 / 0.1
    expected_w = (np.r_[1.0, np.zeros(9)] - 0.1) ** 2 / 0.1 / 10
    np.testing.assert_allclose(huge.weights, expected_w, rtol=1e-14)
    np.testing.assert_allclose(huge.grad["mu"], unit.grad["mu"], rtol=1e-14)
    assert np.abs(huge.grad["mu"]).min() > 0


def test_mean_value_is_finite_for_finite_fitness():
    p = ng.Normal(np.zeros(2), 1.0)
    x = np.full((10, 2), 0.1)
    r = ng.Mean()(np.full(10, 1e308), x, p)
    assert r.value == pytest.approx(1e308, rel=1e-15)
    np.testing.assert_allclose(r.grad["mu"], [1e307, 1e307], rtol=1e-14)  # sum_i (f_i / n) x_i / sigma^2
    values = np.r_[np.full(5, 1.7e308), np.full(5, -1.7e308), 1e300]
    assert ng.expectation(values, np.zeros((11, 2)), p).value == pytest.approx(1e300 / 11, rel=1e-10)


# --- Bernoulli's natural gradient at saturated logits --------------------------------------------------------


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_bernoulli_natural_gradient_at_saturated_logits_is_the_documented_clamp(dt):
    p = ng.Bernoulli(np.array([1e4, -1e4, 2.0], dtype=dt))
    x = p.sample(8, RNG)
    g = ng.Mean()(F8, x, p).grad
    natural = p.natural_gradient(g)["logits"]
    assert natural.dtype == dt and np.isfinite(natural).all()
    eps = np.finfo(dt).eps
    np.testing.assert_allclose(natural[:2], g["logits"][:2] / eps, rtol=1e-6)  # F clamped at eps
    s = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(natural[2], g["logits"][2] / (s * (1 - s)), rtol=1e-5)  # unclamped closed form


def test_categorical_natural_gradient_at_an_underflowed_probability():
    p = ng.Categorical(np.array([[0.0, -1e4, 1.0]]))
    x = p.sample(8, RNG)
    natural = p.natural_gradient(ng.Mean()(F8, x, p).grad)["logits"]
    assert np.isfinite(natural).all()


# --- Entropy: tiny bandwidth, block larger than n ---------------------------------------------------------


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_entropy_tiny_bandwidth_is_the_identity_kernel_or_a_bandwidth_error(dt):
    with pytest.raises(ValueError, match=r"bandwidth must be in \[1.49e-154, 1.34e\+154\] .*got 1e-200"):
        ng.Entropy(bandwidth=1e-200)
    with pytest.raises(ValueError, match=r"bandwidth must be in .*got 1e\+200"):
        ng.Entropy(bandwidth=1e200)
    p = ng.Normal(np.zeros(2, dtype=dt), 1.0)
    x = p.sample(8, RNG)
    b = np.array([0.0, 1.0, 1.0, 2.0, 5.0, 5.0, 5.0, 7.0], dtype=dt)  # ties: K = 1 between equal behaviours
    count = np.array([1, 2, 2, 1, 3, 3, 3, 1])
    for h in (1e-150, 1e-30):
        r = ng.Entropy(bandwidth=h)(b, x, p)
        # K_ij = [b_i == b_j]: density_i = c_i / n, nested_i = (1/n) c_i (n / c_i) = 1
        np.testing.assert_allclose(r.weights, (np.log(8 / count) - 1) / 8, rtol=1e-6)
        assert r.value == pytest.approx(np.mean(np.log(8 / count)), rel=1e-6)
        assert r.weights.dtype == dt and r.grad["mu"].dtype == dt


def test_entropy_block_larger_than_n_uses_tiles_no_larger_than_n():
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(8, RNG)
    b = np.random.default_rng(RNG).normal(size=(8, 2))
    reference = ng.Entropy()(b, x, p)
    for block in (20_000, 100_000):
        tracemalloc.start()
        r = ng.Entropy(block_size=block)(b, x, p)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**20, peak  # an 8 x 8 tile, not block x block (3 GiB for 20000)
        np.testing.assert_allclose(r.weights, reference.weights, rtol=1e-12)


# --- float32 parameters, float64 samples ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(every_distribution()))
def test_results_are_in_the_parameters_dtype(name):
    p = every_distribution(np.float32)[name]
    x = p.sample(6, RNG)
    if x.dtype == np.float32:
        x = x.astype(np.float64)  # float64 samples for float32 parameters
    for call, thunk in public_calls(p, x).items():
        out = thunk()
        arrays = out if isinstance(out, dict) else getattr(out, "grad", {"out": out})
        for value in arrays.values():
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                assert np.asarray(value).dtype == np.float32, (call, value.dtype)


def test_float64_samples_beyond_float32_are_an_x_error():
    p = ng.Normal(np.zeros(2, np.float32), 1.0)
    with pytest.raises(ValueError, match=r"x has values beyond the range of float32, the parameters' dtype"):
        p.score(np.array([[1e300, 0.0]]))
    p = ng.MixNormal(np.zeros((2, 2), np.float32), 1.0)
    with pytest.raises(ValueError, match=r"x has values beyond the range of float32"):
        ng.Mean()([1.0], np.array([[1e300, 0.0]]), p)


# --- parallel.evaluate: NaN/inf fitness and SystemExit -------------------------------------------------------


def nan_at_three(x: np.ndarray) -> np.ndarray:
    out = -np.sum(x**2, axis=1)
    out[x[:, 0] == NAN_ROW] = np.nan
    return out


def inf_behaviour(x: np.ndarray) -> np.ndarray:
    out = np.stack([x[:, 0], x[:, 1]], axis=1)
    out[x[:, 0] == NAN_ROW, 1] = -np.inf
    return out


def exits(x: np.ndarray) -> np.ndarray:
    if np.any(x[:, 0] == NAN_ROW):
        sys.exit(3)
    return x[:, 0]


P = ng.Normal(np.array([0.2, -0.4, 1.0]), 0.5)
NAN_ROW = float(P.sample(8, RNG)[3, 0])  # the first coordinate of sample 3 of the draw below


# the fixtures of tests/test_parallel.py: one recipe for the start method and the Dask cluster
mp_context, dask_client = test_parallel.mp_context, test_parallel.dask_client


@pytest.fixture(scope="module")
def process_pool(mp_context):
    """A plain ProcessPoolExecutor: a SystemExit in its worker used to escape from future.result()."""
    with ProcessPoolExecutor(2, mp_context=mp_context) as executor:
        yield executor


@pytest.mark.parametrize("fitness, cause", [(nan_at_three, "ValueError"), (inf_behaviour, "ValueError"),
                                            (exits, "SystemExit")])
@pytest.mark.parametrize("where", ["serial", "process-pool", "dask"])
def test_bad_fitness_is_a_fitness_error_naming_the_sample(fitness, cause, where, request):
    executor = {
        "serial": lambda: None,
        "process-pool": lambda: request.getfixturevalue("process_pool"),
        "dask": lambda: request.getfixturevalue("dask_client").get_executor(),
    }[where]()
    workers = None if where != "dask" else set(request.getfixturevalue("dask_client").scheduler_info()["workers"])
    with pytest.raises(FitnessError, match=rf"{cause} at sample 3 \(batch of samples \[2, 4\)\)") as info:
        evaluate(fitness, P, 8, RNG, executor=executor, batch_size=2)
    assert info.value.index == 3 and type(info.value.__cause__).__name__ == cause
    if cause == "ValueError":
        assert "non-finite value for sample 3" in str(info.value)
    if workers is not None:  # the worker was not lost: the error came back as the task's result
        assert set(request.getfixturevalue("dask_client").scheduler_info()["workers"]) == workers


# --- found by tests/test_fuzz.py --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("name", sorted(set(every_distribution()) - {"bernoulli", "categorical"}))
def test_non_finite_x_is_an_x_error_without_a_warning(name, bad):
    p = every_distribution()[name]
    x = np.zeros((2, 2))
    x[0, 1] = bad
    for call in (p.log_prob, p.score, lambda x: p.weighted_score([1.0, 2.0], x)):
        with pytest.raises(ValueError, match="x must be finite, got 1 non-finite"):
            call(x)  # the pyproject filter turns any RuntimeWarning on the way into an error


def test_tiny_float32_sigma_does_not_underflow_its_square():
    normal = ng.Normal(np.zeros(1, np.float32), 1e-30, learn_sigma=True)
    for p in (normal, ng.MixNormal(np.zeros((1, 1), np.float32), 1e-30)):
        x = np.array([[1e-30], [-2e-30]], np.float32)  # z = +1, -2
        score = p.score(x)
        np.testing.assert_allclose(score[next(iter(score))].reshape(2), [1e30, -2e30], rtol=1e-6)
        if "sigma" in score:
            np.testing.assert_allclose(score["sigma"], [0.0, 3e30], rtol=1e-6, atol=1e24)  # (z^2 - 1) / sigma


def test_mixture_far_from_every_component_keeps_its_responsibilities():
    p = ng.MixNormal(np.array([[0.0], [1e190]]), 1.0)
    x = np.array([[1e200]])  # ||z||^2 near 1e400 for both components: all responsibility on the nearer
    np.testing.assert_allclose(p.score(x)["mus"], [[[0.0], [1e200 - 1e190]]], rtol=1e-15)
    with pytest.raises(ValueError, match=r"inputs are finite but \['log_prob'\] overflowed"):
        p.log_prob(x)  # -1e400 / 2 is not a float64
    far = ng.MixNormal(np.array([[0.0], [1e8]], np.float32), 2.5e-31)
    np.testing.assert_array_equal(far.score(np.zeros((1, 1), np.float32))["mus"], np.zeros((1, 2, 1)))


def test_float64_values_beyond_float32_name_the_argument():
    table = ng.NoiseTable(100, 1, shared=False)
    with pytest.raises(ValueError, match="b has values beyond the range of float32"):
        table.contract([0, 1], 3, np.zeros(2, np.float32), np.array([0.0, 1e100]))


def test_natural_gradient_overflow_names_grad():
    p = ng.Normal(np.zeros(1), 1e200, learn_sigma=True)
    with pytest.raises(ValueError, match=r"natural gradient sigma\^2 grad\['mu'\] overflows float64"):
        p.natural_gradient({"mu": np.ones(1), "sigma": np.array(0.0)})


def test_fixed_sigma_weighted_score_scales_before_it_multiplies():
    p = ng.Normal(np.zeros(1), 1e-300)
    x = np.array([[1e-30]])
    grad = p.weighted_score([1.26e-301], x)["mu"]  # w x underflows; (w x / sigma) / sigma = 1.26e269
    np.testing.assert_allclose(grad, [1.26e269], rtol=1e-14)
    q = ng.Normal(np.full(1, 1e300), 1.0)
    x = np.full((3, 1), 1e300)  # x - mu = 0 exactly: the gradient is 0, not rounding of w @ x - sum(w) mu
    np.testing.assert_array_equal(q.weighted_score([0.1, 0.7, 0.3], x)["mu"], [0.0])


def test_expectation_of_vector_values_overflow_names_values():
    p = ng.Normal(np.zeros(1), 1.0)
    with pytest.raises(ValueError, match="values: their mean or its gradient overflows"):
        ng.expectation(np.full((2, 2), 1e300), np.full((2, 1), 1e10), p)  # 2 (1e300 / 2) 1e10
    r = ng.expectation(np.full((2, 2), 1.7e308), np.full((2, 1), 0.5), p)
    np.testing.assert_allclose(r.value, np.full(2, 1.7e308), rtol=1e-15)  # no overflow in the mean


def test_mixture_responsibility_that_underflows_still_scores():
    """gamma = exp(-815) underflows, but gamma z / sigma (sigma = 1.1e-301) is 1e-52: from logs, not 0."""
    sigma = 1.09375e-301
    p = ng.MixNormal(np.array([[0.0, 0.0], [2e-300, 4e-300]]), sigma)
    x = np.array([[-1.44489694e-302, 7.00462274e-302]])
    z = (x - p.mus) / sigma
    log_k = -0.5 * (z**2).sum(axis=1)
    gamma_far = np.exp(np.longdouble(log_k[1] - np.logaddexp(log_k[0], log_k[1])))  # ~1e-354 in longdouble
    expected = (gamma_far * z[1].astype(np.longdouble) / np.longdouble(sigma)).astype(np.float64)
    assert np.all(expected != 0)
    np.testing.assert_allclose(p.score(x)["mus"][0, 1], expected, rtol=1e-12)
    np.testing.assert_allclose(p.weighted_score([2.0], x)["mus"][1], 2 * expected, rtol=1e-12)


def test_mixture_responsibilities_far_from_close_components():
    """x 2e108 sigma away from components 1e92 sigma apart: the squared norms agree to 5e-17, their
    difference 2e200 does not vanish, so all responsibility goes to the nearer component."""
    p = ng.MixNormal(np.array([[0.0, 0.0], [1e-8, 0.0]]), 1e-100)
    x = np.array([[2e8, 0.0]])
    np.testing.assert_array_equal(p.score(x)["mus"][0, 0], [0.0, 0.0])
    np.testing.assert_allclose(p.score(x)["mus"][0, 1], [(2e8 - 1e-8) / 1e-200, 0.0], rtol=1e-15)
    q = ng.MixNormal(np.array([[1e-8, 0.0], [0.0, 0.0]]), 0.5)  # Delta = 1e-8 (4e8) / (2 sigma^2) = 8: gamma finite
    gamma = 1 / (1 + np.exp(-8.0 * (1 - 1e-8 / 4e8)))
    np.testing.assert_allclose(q.score(x)["mus"][0, :, 0], [gamma * (2e8 - 1e-8) / 0.25,
                                                            (1 - gamma) * 2e8 / 0.25], rtol=1e-7)


def test_mixture_weighted_score_weights_each_score_not_the_responsibility():
    """w gamma / sigma = 1.9e8 / 1e-300 overflows, but the one sample's score is 0 (x = mu exactly)."""
    p = ng.MixNormal(np.array([[1e-200]]), 1e-300)
    np.testing.assert_array_equal(p.weighted_score([1.9435099e8], np.array([[1e-200]]))["mus"], [[0.0]])


def test_fixed_sigma_shortcut_that_overflows_falls_back():
    """sum(w) mu = 1e8 * 4e30 overflows float32; sum_i w_i (x_i - mu) / sigma^2 = -4e22 does not."""
    p = ng.Normal(np.array([4e30], np.float32), 1e8)
    grad = p.weighted_score(np.array([0.0, 1e8], np.float32), np.zeros((2, 1), np.float32))["mu"]
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [-4e22], rtol=1e-6)


def test_mixture_weighted_score_keeps_a_subnormal_score_out_of_the_product():
    """The one score, -3.9e86 / 1e400 = -3.9e-314, is subnormal; times w = 4e30 it is -1.55e-283, to full precision."""
    p = ng.MixNormal(np.array([[3.88310893e86]]), 1e200)
    grad = p.weighted_score(np.array([4e30], np.float32), np.zeros((1, 1)))["mus"]
    expected = float(np.longdouble(np.float32(4e30)) * np.longdouble(-3.88310893e86) / np.longdouble(1e200) ** 2)
    np.testing.assert_allclose(grad, [[expected]], rtol=1e-14)


def test_learned_sigma_score_where_z_squared_overflows():
    """z = 1e200, sigma = 1e100: z^2 = 1e400 overflows, the sigma score z^2/sigma - 1/sigma = 1e300 does not."""
    for sigma in (1e100, np.array([1e100])):  # isotropic, diagonal
        p = ng.Normal(np.zeros(1), sigma, learn_sigma=True)
        x = np.array([[1e300]])
        np.testing.assert_allclose(p.score(x)["sigma"].ravel(), [1e300], rtol=1e-14)
        np.testing.assert_allclose(np.ravel(p.weighted_score([0.5], x)["sigma"]), [0.5e300], rtol=1e-14)
        np.testing.assert_allclose(np.ravel(p.weighted_score([0.5], x)["mu"]), [0.5e100], rtol=1e-14)


def test_mixture_subnormal_responsibility_is_taken_from_logs():
    """gamma = exp(-710) = 4e-309 is subnormal (few bits); gamma z / sigma = 2e-6 at sigma = 1e-301 is not."""
    sigma = 1e-301
    p = ng.MixNormal(np.array([[0.0], [-sigma * np.sqrt(2 * 710.0)]]), sigma)  # Delta = 710 at x = 0
    x = np.zeros((1, 1))
    z = (x - p.mus)[:, 0].astype(np.longdouble) / np.longdouble(sigma)
    log_k = -0.5 * z**2
    gamma = np.exp(log_k - np.log(np.exp(log_k).sum()))
    expected = (gamma * z / np.longdouble(sigma)).astype(np.float64)
    assert 0 < gamma[1] < np.finfo(np.float64).tiny
    np.testing.assert_allclose(p.score(x)["mus"][0, :, 0], expected, rtol=1e-10)


# --- fuzzing the sample-reuse API, MultivariateNormal and the algorithms (f1) ------------------------------
# Each test is a defect the fuzzing in tests/test_fuzz.py found in the API merged after issue 13.


def _mvn(dt=np.float64, learn=True) -> ng.MultivariateNormal:
    tril = np.array([[1.0, 0.0], [0.5, 2.0]])
    return ng.MultivariateNormal(np.array([0.5, -1.0], dtype=dt), tril, learn_scale=learn)


@pytest.mark.parametrize("learn", [False, True])
def test_multivariate_params_checked_at_every_use(learn):
    """params["mu"][0] = nan used to reach log_prob and score unchecked (a NaN result or "overflowed")."""
    x = np.zeros((3, 2))
    for name in (["mu", "scale_tril"] if learn else ["mu"]):
        p = _mvn(learn=learn)
        p.params[name].flat[0] = np.nan
        for call in (p.log_prob, p.score, lambda x: p.sample(2, RNG)):  # noqa: B023 (run at once)
            with pytest.raises(ValueError, match=rf"params\['{name}'\] must be finite|scale_tril must be finite"):
                call(x)
        p = _mvn(learn=learn)
        p.params[name] = np.zeros(3)
        with pytest.raises(ValueError, match=rf"params\['{name}'\] was replaced by a float64 array of shape \(3,\)"):
            p.log_prob(x)


def test_multivariate_replaced_scale_is_used():
    """params["scale_tril"] = new array (the params rule allows it) used to be silently ignored."""
    p = _mvn()
    p.params["scale_tril"] = np.array([[3.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(p.scale_tril, [[3.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(p.log_prob(np.zeros((1, 2)) + [0.5, -1.0]), [-np.log(3.0) - np.log(2 * np.pi)])


def test_multivariate_learn_scale_must_be_a_bool():
    with pytest.raises(TypeError, match="learn_scale must be a bool, got str 'False'"):
        ng.MultivariateNormal(np.zeros(2), np.eye(2), learn_scale="False")


@pytest.mark.parametrize("scale, message", [
    (1e39, r"scale_tril has values beyond the range of float32"),  # inf after the cast
    (1e-46, r"scale_tril must have a positive diagonal, got scale_tril\[0, 0\] = 0.0"),  # 0 after the cast
])
def test_multivariate_scale_checked_after_the_float32_cast(scale, message):
    with pytest.raises(ValueError, match=message):
        ng.MultivariateNormal(np.zeros(2, np.float32), scale * np.eye(2))


def test_multivariate_subnormal_diagonal_is_rejected():
    """L_00 = 1e-320: 1 / L_00 overflows, so every score was inf or NaN ("overflowed; rescale x")."""
    with pytest.raises(ValueError, match=r"diagonal of normal float64 numbers .* scale_tril\[0, 0\] = 1e-320"):
        ng.MultivariateNormal(np.zeros(2), np.diag([1e-320, 1.0]))


def test_multivariate_x_beyond_float32_is_named():
    p = _mvn(np.float32)
    with pytest.raises(ValueError, match="x has values beyond the range of float32"):
        p.log_prob(np.array([[1e39, 0.0]]))
    assert p.log_prob(np.zeros((1, 2))).dtype == np.float32


def test_multivariate_weighted_scale_gradient_does_not_overflow_in_c():
    """L = 1e200 I, x = 1e300 e_0, w = 1e200: C = w u u^T = 1e400 overflowed; L^{-T} C = 1e200 does not."""
    p = ng.MultivariateNormal(np.zeros(2), 1e200 * np.eye(2), learn_scale=True)
    x, w = np.array([[1e300, 0.0]]), np.array([1e200])
    grad = p.weighted_score(w, x)
    # u = 1e100 (the whitened sample); tril(L^{-T} C) - sum(w) diag(1/L): w u^2 / 1e200 - w / 1e200 = 1e200 - 1
    np.testing.assert_allclose(grad["scale_tril"], [[1e200, 0.0], [0.0, -1.0]], rtol=1e-14)
    np.testing.assert_allclose(grad["mu"], [1e100, 0.0], rtol=1e-14)  # L^{-T} w u = 1e200 * 1e100 / 1e200


def test_multivariate_natural_gradient_overflow_is_named():
    """L L^T g overflowing used to raise a RuntimeWarning (an error under the pyproject filter)."""
    p = ng.MultivariateNormal(np.zeros(1), np.array([[1e200]]))
    with pytest.raises(ValueError, match=r"the natural gradient of grad\['mu'\] overflows float64"):
        p.natural_gradient({"mu": np.array([1e10])})


def test_gradient_stderr_squares_are_scaled():
    """Terms t_i = n w_i s_i of 1e200: (t_i - g)^2 overflowed float64 (a RuntimeWarning, or inf)."""
    p = ng.Normal(np.zeros(1), 1.0)
    x = np.array([[1.0], [-1.0], [2.0]])
    f = np.array([1e200, 2e200, -1e200])
    estimate = ng.Mean()(f, x, p)
    t = (f * x[:, 0]).astype(np.longdouble)  # n w_i s_i with w_i = f_i / n, s_i = x_i
    expected = np.sqrt(((t - t.mean()) ** 2).sum() / (3 * 2))
    np.testing.assert_allclose(ng.gradient_stderr(estimate, x, p)["mu"], [float(expected)], rtol=1e-13)


def test_gradient_stderr_float32_overflow_is_named():
    p = ng.Normal(np.zeros(1, np.float32), 0.5)
    x = np.array([[1.0], [-1.0]], np.float32)
    estimate = ng.Mean()(np.array([3e38, 3e38]), x, p)  # grad 0; the terms n w_i s_i = +-1.2e39
    with pytest.raises(ValueError, match=r"the standard error of grad\['mu'\] overflows float32"):
        ng.gradient_stderr(estimate, x, p)


def test_reuse_buffer_failed_add_changes_nothing():
    """k = 1: the oldest generation was dropped before the new one's log-density overflowed."""
    p = ng.Normal(np.zeros(1, np.float32), 1e-3)
    buffer = ng.ReuseBuffer(1)
    x = np.zeros((2, 1), np.float32)
    buffer.add(x, np.ones(2), p)
    log_q = buffer.log_proposal.copy()
    with pytest.raises(ValueError, match="overflowed; rescale x"):
        buffer.add(np.full((2, 1), 1e30, np.float32), np.ones(2), p)
    assert len(buffer) == 1
    np.testing.assert_array_equal(buffer.x, x)
    np.testing.assert_array_equal(buffer.log_proposal, log_q)


def test_assert_weights_close_keeps_the_ratios_non_negative():
    """Ratios of 1.6e5: the probe stepped r - 0.97 z below 0 and the objective raised "ratios must be >= 0"."""
    p = ng.Normal(np.zeros(2, np.float32), 1e-3)
    x = np.zeros((3, 2), np.float32)
    values = np.array([0.0, 1.0, -3.0])
    estimate = ng.Mean()(values, x, p, log_proposal=np.zeros(3))
    assert estimate.ratios.min() > 1e5
    value, w = assert_weights_close(ng.Mean(), values, estimate.ratios)
    np.testing.assert_allclose(w, values / 3)
    for ratios in (np.array([0.0, 1e-12, 2.0]), np.array([0.0, 0.0, 1.0])):  # central differences near 0
        assert_weights_close(ng.Mean(shaping=ng.centered_ranks), values, ratios)


def test_assert_weights_close_on_tiny_derivatives():
    """dJ/dr_i ~ 1e-300: h dJ/dr_i with h = 1e-20 is subnormal (or 0), so the complex step lost every bit."""
    assert_weights_close(ng.Mean(), np.array([0.0, 0.0, 1e-300]), np.full(3, 1.6e5))
    assert_weights_close(ng.Mean(normalize=True), np.array([0.0, 0.0, 1e-300]), np.full(3, 1.6e5))
    assert_weights_close(ng.Mean(normalize=True), np.array([1e-200]), np.array([1.6e5]))  # dJ/dr = 0


def test_assert_weights_close_float32_ratios_get_float32_tolerances():
    """float32 ratios (float32 parameters) make float32 sums: the float64 rtol 1e-9 failed a correct Mean."""
    ratios = np.array([159154.94, 159154.94, 159154.94], np.float32)
    assert_weights_close(ng.Mean(normalize=True), np.array([0.0, 0.0, 1e-300]), ratios)


def test_entropy_objective_at_a_zero_ratio_with_zero_density():
    """-log(phat_j) r_j at r_j = 0 with phat_j = 0 was 0 * inf (NaN); its limit is 0, since phat_j >= r_j / n."""
    e = ng.Entropy(bandwidth=0.1, standardize=False)
    b, r = np.array([[0.0], [100.0]]), np.array([1.0, 0.0])
    value, _ = e.ratio_weights(b, r)
    assert e.objective(b, r) == pytest.approx(value, rel=1e-12)


def test_pgpe_float32_sigma_squared_does_not_overflow():
    """sigma = 1e30 in float32: sigma**2 = 1e60 overflowed (a RuntimeWarning) though sigma (sigma g) does not."""
    es = ng.algorithms.PGPE(np.zeros(1, np.float32), 1e30, popsize=4, rng=RNG)
    es.ask()
    es.tell(np.zeros(4))
    assert es.distribution.dtype == np.float32 and np.isfinite(es.sigma).all()


@pytest.mark.parametrize("make", [
    lambda: ng.algorithms.SNES(np.zeros(2), 1.0, popsize=4, rng=RNG, lr_sigma=1e300),
    lambda: ng.algorithms.XNES(np.zeros(2), 1.0, popsize=4, rng=RNG, lr_B=1e300),
    lambda: ng.algorithms.XNES(np.zeros(2, np.float32), 1.0, popsize=4, rng=RNG, lr_mu=1e300, separable=True),
    lambda: ng.algorithms.PGPE(np.zeros(2, np.float32), 1.0, popsize=4, rng=RNG, lr_mu=1e300, optimizer="clipup"),
    lambda: ng.algorithms.PGPE(np.zeros(2, np.float32), 1e30, popsize=4, rng=RNG, lr_mu=1e10),
])
def test_tell_whose_update_overflows_changes_nothing(make):
    """An update to inf used to be written into params (or raise a RuntimeWarning midway, ClipUp's velocity set)."""
    es = make()
    es.ask()
    before = {k: v.copy() for k, v in es.distribution.params.items()}
    velocity = None if getattr(es, "clipup", None) is None else es.clipup.velocity.copy()
    with pytest.raises(ValueError, match=r"rescale the fitness or lower lr_"):
        es.tell(np.array([1e300, -1e300, 2e300, 0.0]) if velocity is None else np.array([1.0, -1.0, 2.0, 0.0]))
    for k, v in es.distribution.params.items():
        np.testing.assert_array_equal(v, before[k])
    if velocity is not None:
        np.testing.assert_array_equal(es.clipup.velocity, velocity)
    assert es.generation == 0 and es.best is None
    for rate in ("lr_mu", "lr_sigma", "lr_B"):
        if hasattr(es, rate):
            setattr(es, rate, 0.1)
    if velocity is not None:
        es.clipup.step_size = es.clipup.max_speed = 0.1
    es.tell(np.array([1.0, -1.0, 2.0, 0.0]))  # the population is kept: tell again without ask
    assert es.generation == 1 and all(np.isfinite(v).all() for v in es.distribution.params.values())


def test_clipup_momentum_type_is_named():
    with pytest.raises(TypeError, match="momentum must be a real number in"):
        ng.algorithms.ClipUp(2, 0.1, 0.2, momentum="0.9")
    np.testing.assert_allclose(np.linalg.norm(ng.algorithms.ClipUp(2, 0.1, 1.0).step(np.array([3e200, 4e200]))),
                               0.1)


def test_multivariate_weighted_mu_gradient_does_not_underflow_in_w_u():
    """w = 4e-274, u = 1.6e-100, L = 1e-100: w u = 6e-374 underflowed to 0 before the solve; the answer is 6e-274."""
    p = ng.MultivariateNormal(np.array([-1.56181495e-200]), np.array([[1e-100]]))
    w = np.array([4.06804342e-274])
    expected = w[0] * (1.56181495e-200 / 1e-100 / 1e-100)  # w v with v = u / L = 1.56
    np.testing.assert_allclose(p.weighted_score(w, np.zeros((1, 1)))["mu"], [expected], rtol=1e-14)


def test_assert_weights_close_rescaled_step_stays_small_against_the_ratio():
    """Ratios 1.6e-7, dJ/dr ~ 1e-294: the rescaled complex step was capped at 1e-8, not small against r."""
    p = ng.Normal(np.zeros(2, np.float32), 1e3)
    values = np.array([0.0, 0.0, 1e-300])
    estimate = ng.Mean(normalize=True)(values, np.zeros((3, 2), np.float32), p, log_proposal=np.zeros(3))
    assert estimate.ratios.max() < 1e-6
    assert_weights_close(ng.Mean(normalize=True), values, estimate.ratios)


@pytest.mark.parametrize("seed", range(4))
def test_xnes_step_size_overflow_is_a_value_error(seed):
    """lr_sigma = 1e8: math.exp(eta_sigma g_sigma / 2) raised OverflowError (not ValueError) for g_sigma > 0."""
    es = ng.algorithms.XNES(np.zeros(1), 1e-300, popsize=4, rng=seed, lr_sigma=1e8)
    es.ask()
    with pytest.raises(ValueError, match="XNES: the updated factor is not finite; rescale the fitness or lower"):
        es.tell(np.array([3.0, 1.0, 2.0, 0.0]))
    assert es.generation == 0 and es.distribution.scale_tril[0, 0] == 1e-300


def test_assert_weights_close_tiny_derivative_at_a_tiny_ratio():
    """dJ/dr = 8e-302 at r = 1e-6: a step capped at 1e-8 r left h dJ/dr subnormal (rel err 2.5e-9 > rtol 1e-9)."""
    values = np.array([0.0, 0.0, 2.5e-301])
    assert_weights_close(ng.Mean(), values, np.full(3, 1e-6))


def test_multivariate_float32_weighted_score_keeps_small_entries_beside_large():
    """float32, u = (0, -1e-30, 1e30): scaled by the largest entry in float32, -1e-30 became 1e-60 = 0."""
    p = ng.MultivariateNormal(np.array([0.0, 1e-30, 0.0], np.float32), np.eye(3))
    grad = p.weighted_score(np.array([1.0]), np.array([[0.0, 0.0, 1e30]], np.float32))["mu"]
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, np.array([0.0, -1e-30, 1e30], np.float32), rtol=1e-6)
