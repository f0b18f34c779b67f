"""The small ask/tell loop's overhead: parameters a strategy wrote are not re-checked (a user's change still is)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import npevograd as ng
from npevograd import _checks
from npevograd.algorithms import _strategy
from npevograd.algorithms._stopping import _sorted_median
from npevograd.distributions import _base, normal


def sphere(x: np.ndarray) -> np.ndarray:
    return -np.sum(x**2, axis=1)


@pytest.fixture
def counted(monkeypatch) -> dict[str, int]:
    """Calls of the parameter checks, wherever the distributions call them."""
    calls = {"check_params": 0, "check_sigma": 0}

    def counting(name, original):
        def run(*args):
            calls[name] += 1
            return original(*args)

        return run

    for module in (_base, normal, _strategy):
        monkeypatch.setattr(module, "check_params", counting("check_params", _checks.check_params))
    monkeypatch.setattr(normal, "check_sigma", counting("check_sigma", _checks.check_sigma))
    return calls


@pytest.mark.parametrize("make", [ng.algorithms.SNES, ng.algorithms.PGPE])
def test_parameters_the_strategy_wrote_are_not_checked_again(make, counted):
    es = make(np.ones(5), 0.5, popsize=8, rng=0)
    es.tell(sphere(es.ask()))  # the first generation checks what the user gave
    counted.update(check_params=0, check_sigma=0)
    for _ in range(3):
        es.tell(sphere(es.ask()))
    assert counted == {"check_params": 0, "check_sigma": 0}


def estimator_step(p: ng.Normal, x: np.ndarray, fitness: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """SNES's step as main took it before the closed form, through the estimator (on a copy ``p``):
    natural = natural_gradient(Mean(shaping=nes_utilities).grad), mu + eta_mu n natural_mu and
    sigma exp(eta_sigma n natural_sigma / sigma)."""
    d = p.dim
    lr_sigma = (3 + np.log(d)) / (5 * np.sqrt(d))
    natural = p.natural_gradient(ng.Mean(shaping=ng.nes_utilities)(fitness, x, p).grad)
    mu, sigma = p.params["mu"], p.params["sigma"]
    return mu + 1.0 * n * natural["mu"], sigma * np.exp(lr_sigma * n * natural["sigma"] / sigma)


def shifted_rastrigin(x: np.ndarray) -> np.ndarray:
    y = x - 1.5  # optimum away from 0: mu is compared relative to its size
    return -(10.0 * x.shape[1] + np.sum(y**2 - 10.0 * np.cos(2 * np.pi * y), axis=1))


def shifted_sphere(x: np.ndarray) -> np.ndarray:
    return -np.sum((x - 1.5) ** 2, axis=1)


@pytest.fixture
def estimator_steps(monkeypatch) -> list[int]:
    """SNES generations told through the estimator (not the closed form)."""
    calls = []
    original = ng.algorithms.SNES._update_from_estimator

    def counting(self, x, f):
        calls.append(self.generation)
        return original(self, x, f)

    monkeypatch.setattr(ng.algorithms.SNES, "_update_from_estimator", counting)
    return calls


# SNES steps on the standard draws ask kept; the estimator sees x and recovers them as (x - mu) / sigma, exact
# to about eps |x| / sigma (relative): the two steps agree to that rounding, not bit for bit.
def assert_same_step(es: ng.algorithms.SNES, mu_ref: np.ndarray, sigma_ref: np.ndarray, x: np.ndarray, sigma0):
    recovery = 4 * np.finfo(float).eps * float(np.max(np.abs(x) / sigma0))  # relative error of a recovered z
    np.testing.assert_allclose(es.sigma, sigma_ref, rtol=20 * recovery, atol=0)
    np.testing.assert_allclose(es.mean, mu_ref, rtol=0, atol=20 * recovery * float(np.max(sigma0)))


@pytest.mark.parametrize(("n", "fitness"), [(10, shifted_sphere), (50, shifted_rastrigin), (500, shifted_rastrigin)])
def test_snes_is_the_estimator_step_at_each_of_200_generations(n, fitness, estimator_steps):
    """Each generation of a 200-generation run, from the same state and population, against the estimator's step."""
    es = ng.algorithms.SNES(np.linspace(-3, 4, 10), 2.0, popsize=n, rng=np.random.default_rng(7), tolx=None)
    for _ in range(200):
        x = es.ask()
        before = copy.deepcopy(es.distribution)
        es.tell(fitness(x))
        mu_ref, sigma_ref = estimator_step(before, x, fitness(x), n)
        assert_same_step(es, mu_ref, sigma_ref, x, before.params["sigma"])
    assert estimator_steps == []  # every generation without the estimator's checks


def test_the_kept_draws_are_the_ones_behind_the_samples():
    """x = mu + sigma z, bit for bit, for the z the update uses; a population told with x= has none kept."""
    es = ng.algorithms.SNES(np.linspace(-3, 4, 10), 2.0, popsize=12, rng=np.random.default_rng(7))
    mu, sigma = es.mean, es.sigma
    x = es.ask()
    np.testing.assert_array_equal(x, es._z * sigma + mu)
    es.tell(shifted_sphere(x))
    assert es._z is None
    y = es.distribution.sample(12, np.random.default_rng(1))
    es.tell(shifted_sphere(y), x=y)  # whitened from y: the estimator's path
    assert es.estimate.grad["mu"].shape == (10,)


def test_snes_keeps_its_step_where_sigma_is_below_the_rounding_of_mu():
    """z recovered from x is lost once sigma is below mu's rounding step; the kept draws are not."""
    mu = np.full(4, 1e8)
    es = ng.algorithms.SNES(mu, 1e-9, popsize=8, rng=np.random.default_rng(0))
    x = es.ask()  # every row rounds to mu: (x - mu) / sigma is 0
    z = es._z.copy()
    np.testing.assert_array_equal(x, np.broadcast_to(mu, x.shape))
    es.tell(-np.arange(8.0))  # the first row is the best
    u = ng.nes_utilities(-np.arange(8.0))
    expected = 1e-9 * np.exp(0.5 * es.lr_sigma * (u @ (z * z - 1)))
    np.testing.assert_allclose(es.sigma, expected, rtol=1e-14)


def test_the_fast_path_changes_no_number(monkeypatch):
    def run() -> tuple[np.ndarray, np.ndarray]:
        es = ng.algorithms.SNES(np.linspace(-1, 1, 6), 0.7, popsize=10, rng=3)
        for _ in range(20):
            es.tell(sphere(es.ask()))
        return es.mean, es.sigma

    fast = run()
    monkeypatch.setattr(_base.Distribution, "_params_unchanged", lambda self: False)  # every call checks
    checked = run()
    for a, b in zip(fast, checked):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("mu", np.nan, r"params\['mu'\] must be finite"),
        ("sigma", np.inf, r"params\['sigma'\] must be finite"),
        ("sigma", -1.0, "sigma must be > 0"),
    ],
)
def test_a_change_in_place_before_ask_is_still_an_error(name, value, message):
    es = ng.algorithms.SNES(np.ones(4), 0.5, popsize=6, rng=1)
    for _ in range(2):
        es.tell(sphere(es.ask()))
    es.distribution.params[name][1] = value
    with pytest.raises(ValueError, match=message):
        es.ask()


def test_a_change_in_place_between_ask_and_tell_is_an_error_and_nothing_moves():
    es = ng.algorithms.SNES(np.ones(4), 0.5, popsize=6, rng=1)
    es.tell(sphere(es.ask()))
    x = es.ask()
    es.distribution.params["sigma"][0] = np.nan
    with pytest.raises(ValueError, match=r"params\['sigma'\] must be finite"):
        es.tell(sphere(x))
    assert es.generation == 1
    es.distribution.params["sigma"][0] = 0.5  # put right: the same population can be told
    es.tell(sphere(x))
    assert es.generation == 2


def test_a_replaced_entry_is_still_an_error():
    es = ng.algorithms.SNES(np.ones(4), 0.5, popsize=6, rng=1)
    es.tell(sphere(es.ask()))
    es.distribution.params["mu"] = np.ones(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"params\['mu'\] was replaced by a float32 array"):
        es.ask()
    es.distribution.params["mu"] = np.full(4, 2.0)  # same shape and dtype: allowed, and used
    assert np.allclose(es.ask().mean(axis=0), 2.0, atol=2.0)
    np.testing.assert_array_equal(es.mean, np.full(4, 2.0))


def test_large_parameters_are_checked_at_each_call(counted):
    d = _base.STAMP_BYTES // 8  # mu and sigma together: twice the stamp's budget
    es = ng.algorithms.SNES(np.zeros(d), 0.5, popsize=4, rng=2)
    es.tell(sphere(es.ask()))
    counted.update(check_params=0)
    es.tell(sphere(es.ask()))
    assert counted["check_params"] > 0
    es.distribution.params["mu"][-1] = np.nan
    with pytest.raises(ValueError, match=r"params\['mu'\] must be finite"):
        es.ask()


def test_an_optimizer_step_leaves_the_parameters_checked_at_each_call(counted):
    es = ng.algorithms.OpenES(np.ones(4), 0.5, popsize=6, rng=0)  # mu written by its optimizer, not write_params
    es.tell(sphere(es.ask()))
    counted.update(check_params=0)
    es.tell(sphere(es.ask()))
    assert counted["check_params"] > 0


@pytest.mark.parametrize("m", [1, 2, 3, 10, 11])
def test_the_median_of_sorted_costs_is_numpys(m):
    costs = np.sort(np.random.default_rng(m).standard_normal(m))
    assert _sorted_median(costs) == float(np.median(costs))
    assert _sorted_median(np.array([1e308, 1.7e308])) == 1.35e308  # no overflow where (a + b) / 2 has one


@pytest.mark.parametrize("ties", [False, True])
def test_snes_estimate_and_step_are_n_times_the_natural_gradient_of_the_nes_mean(ties, estimator_steps):
    """The module docstring: the step is n * natural_gradient(Mean(shaping=nes_utilities).grad), with the
    estimate the estimator returns (ties in the fitness share their utilities), on the closed form's path."""
    es = ng.algorithms.SNES(np.linspace(-1, 1, 5), 0.8, popsize=12, rng=4)
    for _ in range(3):
        es.tell(sphere(es.ask()))
    x = es.ask()
    before = copy.deepcopy(es.distribution)
    f = np.round(sphere(x), 0) if ties else sphere(x)
    assert (len(np.unique(f)) < f.size) == ties
    es.tell(f)
    expected = ng.Mean(shaping=ng.nes_utilities)(f, x, before)
    np.testing.assert_array_equal(es.estimate.weights, expected.weights)
    assert es.estimate.value == expected.value
    for name in ("mu", "sigma"):
        np.testing.assert_array_equal(es.estimate.grad[name], expected.grad[name])
    natural = before.natural_gradient(expected.grad)
    mu_ref = before.mu + es.lr_mu * 12 * natural["mu"]
    assert_same_step(
        es, mu_ref, before.sigma * np.exp(es.lr_sigma * 12 * natural["sigma"] / before.sigma), x, before.sigma
    )
    # the closed form: grad_mu = sum_k u_k z_k, grad_sigma = sum_k u_k (z_k^2 - 1), mu + eta_mu sigma grad_mu,
    # sigma exp(eta_sigma / 2 grad_sigma), with u the NES utilities (ties sharing theirs) and z = (x - mu) / sigma
    u, z = ng.nes_utilities(f), (x - before.mu) / before.sigma
    np.testing.assert_allclose(es.mean, before.mu + es.lr_mu * before.sigma * (u @ z), rtol=1e-12)
    np.testing.assert_allclose(es.sigma, before.sigma * np.exp(es.lr_sigma / 2 * (u @ (z * z - 1))), rtol=1e-12)
    assert estimator_steps == []


def test_a_population_told_with_x_takes_the_same_step():
    """x= rows are whitened, (x - mu) / sigma; ask's own rows use the kept draws: the same step to that rounding."""
    es = ng.algorithms.SNES(np.ones(4) + 1, 0.5, popsize=8, rng=5)
    for _ in range(4):
        x = es.ask()
        twin, sigma0 = copy.deepcopy(es), es.sigma
        es.tell(sphere(x))
        twin.tell(sphere(x), x=x.copy())
        assert_same_step(twin, es.mean, es.sigma, x, sigma0)


def test_a_non_finite_closed_form_update_is_refused_and_named(estimator_steps):
    es = ng.algorithms.SNES(np.ones(4), 0.5, popsize=8, rng=6)
    for _ in range(2):
        es.tell(sphere(es.ask()))
    es.lr_sigma = 1e300  # sigma exp(1e300 ...) overflows
    x = es.ask()
    mean, sigma = es.mean, es.sigma
    with pytest.raises(ValueError, match=r"SNES: the updated sigma is not finite and > 0 in float64; .* lr_sigma"):
        es.tell(sphere(x))
    np.testing.assert_array_equal(es.mean, mean)
    np.testing.assert_array_equal(es.sigma, sigma)
    assert es.generation == 2 and estimator_steps == []


def test_the_stop_record_reads_the_best_quartile_and_range():
    es = ng.algorithms.SNES(np.ones(3), 0.5, popsize=8, rng=0, minimize=True)
    x = es.ask()
    costs = np.array([5.0, 1.0, 4.0, 3.0, 2.0, 8.0, 7.0, 6.0])
    es.tell(costs)
    stopping = es._stopping
    assert stopping.cost_range == 7.0 and stopping.best_cost == 1.0 and stopping.flat_generations == 0
    assert es.best is not None and es.best.fitness == 1.0
    np.testing.assert_array_equal(es.best.x, x[1])


@pytest.mark.parametrize("sigma", [1e-300, 1e-310, 5e-324])
def test_a_subnormal_sigma_is_told_as_the_estimator_tells_it_without_a_warning(sigma, recwarn):
    """sum_k w_k z_k^2 / sigma overflows: the estimator's fallback (or its error), the same in tell, no warning."""
    es = ng.algorithms.SNES(np.full(3, 1e-300), sigma, popsize=6, rng=11)
    x = es.ask()
    before = copy.deepcopy(es.distribution)
    try:
        expected = ng.Mean(shaping=ng.nes_utilities)(sphere(x), x, before)
    except ValueError as err:
        with pytest.raises(ValueError, match=re.escape(str(err))):
            es.tell(sphere(x))
        assert es.generation == 0
    else:
        es.tell(sphere(x))
        for name in ("mu", "sigma"):
            np.testing.assert_array_equal(es.estimate.grad[name], expected.grad[name])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_one_piece_draw_stays_where_the_distribution_draws_in_one_piece():
    from npevograd.algorithms import _strategy
    from npevograd.sampling import _blocks

    assert _strategy.SMALL_DRAW < _blocks.PARALLEL_MIN_ENTRIES  # normal_rows: one standard_normal call


@pytest.mark.parametrize(
    ("mu", "sigma", "error"),
    [
        ([1.5e308, -1.5e308], [1.0, 1.0], None),  # the sums overflow, each coordinate's reach does not: written
        ([1.0, np.nan], [1.0, 1.0], "the updated mu is not finite"),
        ([1.0, 1.0], [1.0, np.nan], "the updated sigma is not finite and > 0"),
        ([1.0, 1.0], [np.nan, 1.0], "the updated sigma is not finite and > 0"),
        ([1.0, 1.0], [1.0, 0.0], "the updated sigma is not finite and > 0"),
        ([1.0, 1.0], [1.0, 3e306], "a sample could overflow float64"),
    ],
)
def test_write_params_quick_check_agrees_with_the_checks_one_by_one(mu, sigma, error):
    from npevograd.algorithms._strategy import write_params

    params = {"mu": np.zeros(2), "sigma": np.ones(2)}
    new = {"mu": np.array(mu), "sigma": np.array(sigma)}
    if error is None:
        write_params("T", params, new, "lr")
        np.testing.assert_array_equal(params["mu"], mu)
        return
    with pytest.raises(ValueError, match=error):
        write_params("T", params, new, "lr")
    np.testing.assert_array_equal(params["mu"], [0.0, 0.0])  # nothing written


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_the_cached_utilities_are_nes_utilities_bit_for_bit(dtype, ties):
    from npevograd.estimators.shaping import nes_utilities_of_ranked

    f = np.random.default_rng(3).standard_normal(37).astype(dtype)
    if ties:
        f = np.round(f, 1)
    assert (len(np.unique(f)) < f.size) == ties
    costs = -f
    order = costs.argsort()
    u = nes_utilities_of_ranked(f, order, costs[order])
    assert u.dtype == dtype
    np.testing.assert_array_equal(u, ng.nes_utilities(f))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rng", [np.random.default_rng, np.random.RandomState])
def test_asks_draw_is_the_distributions_sample_bit_for_bit(dtype, rng):
    es = ng.algorithms.SNES(np.linspace(-1, 1, 7).astype(dtype), 0.3, popsize=9, rng=rng(5))
    for _ in range(3):
        es.tell(sphere(es.ask()))
    p, state = copy.deepcopy(es.distribution), copy.deepcopy(es.rng)
    x = es.ask()
    assert x.dtype == dtype
    np.testing.assert_array_equal(x, p.sample(9, state))


def test_peers_small_times_each_strategys_ask_tell(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "benchmarks"))
    peers_small = pytest.importorskip("peers_small")
    out = peers_small.bench_strategies(["SNES", "PGPE"], [4, 6], d=3, repeats=1, generations=2).splitlines()
    assert [line.split(":")[0] for line in out] == ["SNES n=4 d=3", "SNES n=6 d=3", "PGPE n=4 d=3", "PGPE n=6 d=3"]
    assert all(float(line.split(": ")[1].removesuffix(" us")) > 0 for line in out)


def test_an_snes_pickled_with_its_estimate_as_an_attribute_reads_it_back():
    """The previous round's SNES kept ``estimate`` in its __dict__; the property must find it after unpickling."""
    es = ng.algorithms.SNES(np.linspace(-1, 1, 4), 0.5, popsize=8, rng=2)
    es.tell(sphere(es.ask()))
    estimate = es.estimate
    state = dict(es.__dict__)
    state["estimate"] = state.pop("_estimate")  # the old layout: no _estimate, no pending _told
    state.pop("_told", None)
    old = ng.algorithms.SNES.__new__(ng.algorithms.SNES)
    old.__setstate__(state)
    assert old.estimate is estimate
    old.tell(sphere(old.ask()))  # and it goes on
    assert old.generation == 2 and old.estimate is not estimate
