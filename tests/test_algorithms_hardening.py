"""Issue 25 on the strategies' side: overflowing samples (defect 3), ClipUp.step's gradient (6), constructor
options that were ignored (13, 14), and rows told that the distribution would never draw (Also)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from scipy import stats

import npevograd as ng
from npevograd.algorithms import PGPE, SNES, XNES, ClipUp, EvolvabilityES, OpenES
from npevograd.algorithms._strategy import IMPLAUSIBLE_TAIL, SAMPLE_REACH, overflow_risk

BUILDERS = {
    "snes": lambda mu, sigma, **kw: SNES(mu, sigma, rng=0, **kw),
    "xnes": lambda mu, sigma, **kw: XNES(mu, sigma, rng=0, **kw),
    "pgpe": lambda mu, sigma, **kw: PGPE(mu, sigma, rng=0, **kw),
    "openes": lambda mu, sigma, **kw: OpenES(mu, sigma, rng=0, **kw),
    "evolvability": lambda mu, sigma, **kw: EvolvabilityES(mu, sigma, popsize=10, rng=0, **kw),
}


# -- defect 3: no inf samples --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1e308), (1.79e308, 1e306), (0.0, 1e307)])
def test_ask_refuses_samples_that_could_overflow_naming_sigma_and_mu(kind, mu, sigma):
    es = BUILDERS[kind](np.full(2, mu), sigma)
    before = pickle.dumps(es)
    with pytest.raises(ValueError, match=r"\.ask\(\): a sample could overflow float64: \|mu\| up to .*sigma"):
        es.ask()
    assert pickle.dumps(es) == before  # nothing drawn, nothing changed


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_ask_still_draws_just_below_the_reach_bound(kind):
    sigma = np.finfo(np.float64).max / SAMPLE_REACH / 4  # |mu| + 64 sigma stays finite
    x = BUILDERS[kind](np.zeros(2), sigma).ask()
    assert np.all(np.isfinite(x))


def test_the_reach_bound_is_above_every_draw_of_numpys_normal():
    # the ziggurat's largest possible |z| is below 14; check that many draws stay well inside 64
    z = np.random.default_rng(0).standard_normal(10**7)
    assert np.abs(z).max() < SAMPLE_REACH / 4
    assert overflow_risk({"mu": np.zeros(1), "sigma": np.array([1e307])}) is not None
    assert overflow_risk({"mu": np.zeros(1), "sigma": np.array([1e306])}) is None
    assert overflow_risk({"mu": np.array([1.7e308]), "sigma": np.array([1.0])}) is None  # 1.7e308 + 64 is finite
    factor = np.array([[2e306, 0.0], [2e306, 2e306]])  # row sums bound L z: the first is finite, the second not
    assert overflow_risk({"mu": np.zeros(2), "scale_tril": np.diag([2e306, 2e306])}) is None
    assert "sigma (per-coordinate spread) up to 4e+306" in overflow_risk({"mu": np.zeros(2), "scale_tril": factor})


def test_snes_on_a_linear_fitness_stops_with_overflow_instead_of_blaming_the_fitness():
    # the case: SNES on a linear fitness widens until sigma ~ 1e307; tolupsigma and maxiter off
    es = SNES(np.zeros(2), rng=0, tolupsigma=None, maxiter=None)
    while not es.stop():
        es.tell(es.ask()[:, 0])
    assert set(es.stop()) == {"overflow"} and es.stop()["overflow"] == np.finfo(np.float64).max
    assert np.all(np.isfinite(es.sigma)) and np.all(np.isfinite(es.mean))  # the overflowing update was not written
    assert overflow_risk(es.distribution.params) is None
    assert es.evaluations == es.generation * es.popsize  # the last generation still counts
    with pytest.raises(ValueError, match=r"SNES has stopped \(es.stop\(\) -> 'overflow'\): SNES: after this update"):
        es.ask()
    state = pickle.loads(pickle.dumps(es))
    assert "overflow" in state.stop()


def test_optimize_ends_a_diverging_run_with_a_named_reason():
    # the sign mistake: SNES minimising a linear f
    result = ng.optimize(lambda x: -x[:, 0], np.zeros(2), 1.0, rng=0, maxiter=None, method="snes")
    assert result.stop == {"tolupsigma": 1e20}
    result = ng.optimize(lambda x: -x[:, 0], np.zeros(2), 1.0, rng=0, maxiter=None, tolupsigma=None, method="snes")
    assert result.stop == {"overflow": np.finfo(np.float64).max}


# -- defect 6: ClipUp.step validates its gradient --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grad", "message"),
    [
        (np.array([1.0, np.nan, 0.0]), "grad must be finite"),
        (np.array([np.inf, 0.0, 0.0]), "grad must be finite"),
        (np.ones((3, 3)), r"grad must have shape \(3,\), got shape \(3, 3\)"),
        (np.ones(2), r"grad must have shape \(3,\), got shape \(2,\)"),
        ("abc", "grad must"),
    ],
)
def test_clipup_step_refuses_a_bad_gradient_and_keeps_its_velocity(grad, message):
    opt = ClipUp(3, step_size=0.1, max_speed=0.2)
    opt.step(np.array([1.0, 2.0, 2.0]))
    velocity = opt.velocity.copy()
    with pytest.raises((ValueError, TypeError), match=message):
        opt.step(grad)
    np.testing.assert_array_equal(opt.velocity, velocity)


def test_clipup_step_is_the_normalised_heavy_ball_clipped_at_max_speed():
    opt = ClipUp(2, step_size=0.1, max_speed=0.15, momentum=0.9)
    v1 = opt.step([3.0, 4.0])
    np.testing.assert_allclose(v1, [0.06, 0.08], rtol=1e-15)  # 0.1 g / ||g||
    v2 = opt.step(np.array([3.0, 4.0], dtype=np.float32))
    np.testing.assert_allclose(v2, 0.15 * np.array([0.6, 0.8]), rtol=1e-12)  # 0.19 clipped to 0.15
    with pytest.raises(TypeError, match="dim must be an int"):
        ClipUp("3", 0.1, 0.2)


# -- defects 13, 14: options that were accepted and ignored ----------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: EvolvabilityES(np.zeros(2), kind="variance", bandwidth="x"), TypeError, "bandwidth must be a real"),
        (
            lambda: EvolvabilityES(np.zeros(2), kind="variance", bandwidth=2.0),
            ValueError,
            "bandwidth applies to kind='entropy' only",
        ),
        (lambda: EvolvabilityES(np.zeros(2), kind="entropy", bandwidth=-1.0), ValueError, "bandwidth must be a finite"),
        (lambda: EvolvabilityES(np.zeros(2), kind="maxvar"), ValueError, "kind must be 'variance' or 'entropy'"),
        (lambda: PGPE(np.zeros(2), momentum=0.5), ValueError, "momentum apply to optimizer='clipup' only"),
        (
            lambda: PGPE(np.zeros(2), max_speed=1.0, momentum=0.5),
            ValueError,
            "max_speed and momentum apply to optimizer='clipup' only, got optimizer='sgd'",
        ),
        (lambda: PGPE(np.zeros(2), sigma_max_change=1.0), ValueError, r"sigma_max_change must be in \(0, 1\)"),
        (lambda: PGPE(np.zeros(2), optimizer="clipup", max_speed=-1.0), ValueError, "max_speed must be a finite"),
        (lambda: PGPE(np.zeros(2), optimizer="adam"), ValueError, "optimizer must be 'sgd' or 'clipup', got 'adam'"),
        (lambda: PGPE(np.zeros(2), popsize=7), ValueError, "popsize must be even for PGPE"),
        (lambda: OpenES(np.zeros(2), popsize=5), ValueError, "popsize must be even for OpenES"),
        (lambda: OpenES(np.zeros(2), lr="x"), TypeError, "lr must be a real number"),
        (lambda: SNES(np.zeros(2), lr_sigma=0.0), ValueError, "lr_sigma must be a finite number > 0"),
        (lambda: SNES(np.zeros(2), noise=3), TypeError, "noise must be a NoiseTable or None"),
    ],
)
def test_constructor_options_are_validated(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_entropy_bandwidth_is_still_used_and_defaults_to_one():
    es = EvolvabilityES(np.zeros(2), kind="entropy", bandwidth=0.3)
    assert es.estimator.bandwidth == 0.3
    assert EvolvabilityES(np.zeros(2), kind="entropy").estimator.bandwidth == 1.0
    clipup = PGPE(np.zeros(2), optimizer="clipup", momentum=0.5).clipup
    assert clipup.momentum == 0.5 and clipup.max_speed == 0.4


# -- Also: rows told that the distribution would practically never draw ----------------------------------------------
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_tell_refuses_rows_from_another_distribution_and_changes_nothing(kind):
    es = BUILDERS[kind](np.zeros(3), 0.5)
    x = es.distribution.sample(es.popsize, np.random.default_rng(1)) + 50.0  # the shift by +50
    before = pickle.dumps(es)
    f = np.arange(es.popsize, dtype=float)
    with pytest.raises(ValueError, match=r"x\[0\] is not a sample of this strategy's distribution: its squared"):
        es.tell(f, x=x)
    assert pickle.dumps(es) == before


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_tell_accepts_its_own_distributions_samples_even_far_in_the_tail(kind):
    es = BUILDERS[kind](np.zeros(3), 0.5)
    rng = np.random.default_rng(2)
    x = es.distribution.sample(es.popsize, rng)
    limit = stats.chi2.isf(IMPLAUSIBLE_TAIL, 3)
    x[0] = 0.5 * np.sqrt(limit * 0.999 / 3)  # squared Mahalanobis norm just inside the quantile
    f = np.linspace(0, 1, es.popsize) + 0.01 * rng.standard_normal(es.popsize)
    es.tell(f, x=x)
    assert es.generation == 1


def test_the_plausibility_quantile_is_chi_square_d_at_1e_minus_12():
    from npevograd.algorithms._strategy import _chi2_limit

    for d in (1, 2, 10, 1000):
        assert _chi2_limit(d) == pytest.approx(stats.chi2.isf(1e-12, d), rel=1e-10)
        # a genuine population of n = 10^4 is refused with probability n x 1e-12 at most
        assert stats.chi2.sf(_chi2_limit(d), d) == pytest.approx(1e-12, rel=1e-6)


def test_parallel_evaluate_samples_are_accepted_by_tell():
    es = SNES(np.zeros(3), 0.5, rng=0)
    evaluation = ng.parallel.evaluate(lambda x: -(x**2).sum(1), es.distribution, es.popsize, es.rng)
    es.tell(evaluation.fitness, x=evaluation.samples)
    assert es.generation == 1


# -- defects the strategy fuzz (tests/test_fuzz_strategies.py) found in the run layer, each fixed at the root ---------
def test_float32_samples_repaired_into_a_box_stay_float32_and_inside_it():
    es = SNES(np.zeros(3, dtype=np.float32), 1.0, rng=0, bounds=(-0.1, 0.1))
    x = es.ask()
    assert x.dtype == np.float32  # np.clip against float64 sides used to return float64
    assert np.all(x >= -0.1) and np.all(x <= 0.1)  # the sides are rounded inward to float32
    assert np.any(x == np.float32(np.nextafter(np.float32(-0.1), np.float32(1))))


@pytest.mark.parametrize("kind", ["snes", "pgpe", "openes"])
def test_extreme_fitness_and_float32_widths_raise_no_runtime_warning(kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        es = BUILDERS[kind](np.zeros(2, dtype=np.float32), 1e30, bounds=(-1.0, 0.0))  # sigma 1e30 in float32
        es.ask()
        f = np.zeros(es.popsize)
        f[1:] = 1.7e308  # ranges and medians of these costs overflow in a naive sum
        es.tell(f)
        assert all(type(v) is float for v in es.stop().values())


def test_a_bound_penalty_that_overflows_ranks_the_sample_worst():
    es = SNES(np.zeros(2), 0.5, rng=1, popsize=6, bounds=(-0.5, 0.5), minimize=True)
    x = es.ask()
    raw = es._population
    f = np.array([-1.7e308, -1.6e308, -1e308, 1e308, 1.6e308, 1.7e308])  # IQR 2e308: each penalty overflows
    costs, failed = es._costs(raw, f)
    outside = np.any(raw != x, axis=1)
    assert 0 < outside.sum() < 6
    assert failed == 0 and np.all(np.isfinite(costs))
    assert np.all(costs[outside] > costs[~outside].max()) and len(set(costs[outside])) == 1
