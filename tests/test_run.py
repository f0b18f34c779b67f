"""The run layer: stop criteria (each fires on a constructed case, and not before), minimize, nan_policy,
bounds, result, estimate, and ``optimize`` (methods, executor, progress, callback, bad arguments)."""

from __future__ import annotations

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import npevograd as ng
import npevograd.algorithms as alg
import npevograd.parallel
from npevograd.algorithms import PGPE, SNES, XNES, EvolvabilityES, OpenES

OFF = {"tolfun": None, "tolfunhist": None, "tolx": None, "tolflatfitness": None, "tolstagnation": None}


def sphere(x: np.ndarray) -> np.ndarray:
    return np.sum(x**2, axis=1)


def make(kind: str, d: int = 4, **kw):
    mu = np.linspace(-1, 1, d)
    return {
        "snes": lambda: SNES(mu, 0.5, rng=3, **kw),
        "xnes": lambda: XNES(mu, 0.5, rng=3, **kw),
        "pgpe": lambda: PGPE(mu, 0.5, rng=3, **kw),
        "pgpe_clipup": lambda: PGPE(mu, 0.5, rng=3, optimizer="clipup", **kw),
        "openes": lambda: OpenES(mu, 0.1, rng=3, **kw),
    }[kind]()


RANKED = ["snes", "xnes", "pgpe", "pgpe_clipup", "openes"]


def first_firing(es, fitness, name, condition, generations):
    """Run ``generations``; at each, ``name in es.stop()`` must equal ``condition(es)``; the first such generation."""
    first = None
    for _ in range(generations):
        x = es.ask()
        es.tell(fitness(x))
        fired = name in es.stop()
        assert fired == condition(es), (es.generation, es.stop())
        if fired:
            return es.generation
    return first


# -- each stop criterion fires on its case, and not before
def test_tolupsigma_ends_the_sign_mistake_within_a_bounded_number_of_generations():
    # maximising the convex sum(x^2) (a minimisation told as a maximisation) widens SNES without end
    es = SNES(np.zeros(3), 1.0, rng=0, maxiter=None)
    at = first_firing(es, sphere, "tolupsigma", lambda e: e.sigma.max() > 1e20 * 1.0, 1000)
    assert at is not None and at < 600
    assert es.result.stop == {"tolupsigma": 1e20}


def test_tolx_fires_when_every_width_is_below_it_on_the_sphere():
    es = SNES(np.ones(3), 1.0, rng=1, minimize=True, **{**OFF, "tolx": 1e-6})
    at = first_firing(es, sphere, "tolx", lambda e: bool(np.all(e.sigma < 1e-6)), 2000)
    assert at is not None and at > 10


def test_ftarget_fires_when_the_best_reaches_it_in_either_sign():
    es = SNES(np.ones(3), 1.0, rng=2, minimize=True, ftarget=1e-4, **OFF)
    assert first_firing(es, sphere, "ftarget", lambda e: e.best.fitness <= 1e-4, 500) is not None
    es = SNES(np.ones(3), 1.0, rng=2, ftarget=-1e-4, **OFF)
    assert first_firing(es, lambda x: -sphere(x), "ftarget", lambda e: e.best.fitness >= -1e-4, 500) is not None


def test_maxfevals_and_maxiter_fire_at_their_count():
    es = SNES(np.ones(3), 1.0, rng=2, popsize=8, maxfevals=50, **OFF)
    assert first_firing(es, sphere, "maxfevals", lambda e: e.evaluations >= 50, 20) == 7
    es = SNES(np.ones(3), 1.0, rng=2, maxiter=5, **OFF)
    assert first_firing(es, sphere, "maxiter", lambda e: e.generation >= 5, 20) == 5


def test_tolfun_and_tolfunhist_follow_pycmas_rule_computed_here():
    d, n = 3, 8
    window = int(10 + 30 * d / n) + 1
    bests: list[float] = []
    ranges: list[float] = []

    def recorded(x):
        f = sphere(x)
        bests.append(f.min())
        ranges.append(np.ptp(f))
        return f

    def tolfun(e):
        recent = bests[-window:]
        return ranges[-1] < 1e-8 and max(recent) - min(recent) < 1e-8

    es = SNES(np.ones(d), 1.0, rng=4, popsize=n, minimize=True, **{**OFF, "tolfun": 1e-8})
    assert first_firing(es, recorded, "tolfun", tolfun, 2000) is not None
    bests.clear()
    ranges.clear()

    def tolfunhist(e):
        recent = bests[-window:]
        return len(recent) > 9 and max(recent) - min(recent) < 1e-8

    es = SNES(np.ones(d), 1.0, rng=4, popsize=n, minimize=True, **{**OFF, "tolfunhist": 1e-8})
    assert first_firing(es, recorded, "tolfunhist", tolfunhist, 2000) is not None


def test_tolflatfitness_fires_after_two_flat_generations_in_a_row():
    flat: list[bool] = []

    def plateau(x):  # 1 only far out: most generations have best == the 0.75-quantile
        f = (x[:, 0] > 1.2).astype(float)
        costs = np.sort(-f)
        flat.append(not costs[0] < costs[int(0.75 * len(costs))])
        return f

    es = SNES(np.zeros(2), 1.0, rng=5, **{**OFF, "tolflatfitness": 1})
    at = first_firing(es, plateau, "tolflatfitness", lambda e: len(flat) > 1 and flat[-1] and flat[-2], 200)
    assert at is not None and at >= 2


def test_tolstagnation_follows_pycmas_rule_computed_here_on_a_noise_fitness():
    d, n, tol = 2, 6, 10
    noise = np.random.default_rng(9)
    per_generation: list[tuple[float, float]] = []  # (best, median) cost of each generation

    def pure_noise(x):
        f = noise.standard_normal(len(x))
        per_generation.append((float(-f.max()), float(np.median(-f))))
        return f

    def stagnated(e):
        g = e.generation
        sampled = [per_generation[i - 1] for i in range(5, g + 1, 5)][::-1]  # every 5th generation, newest first
        best_generation = 1 + int(np.argmin([b for b, _ in per_generation]))
        k = int(max(tol / 5 / 2, len(sampled) / 10))
        if not (
            g > d * (5 + 100 / n) and g - best_generation > tol / 2 and len(sampled) > 100 and 2 * k < len(sampled)
        ):
            return False
        best, median = [b for b, _ in sampled], [m for _, m in sampled]
        newer_no_better = np.median(median[:k]) >= np.median(median[k : 2 * k])
        return bool(newer_no_better and np.median(best[:k]) >= np.median(best[k : 2 * k]))

    es = SNES(np.zeros(d), 1.0, rng=6, popsize=n, maxiter=None, tolupsigma=None, **{**OFF, "tolstagnation": tol})
    at = first_firing(es, pure_noise, "tolstagnation", stagnated, 2000)
    assert at is not None and at >= 505  # 101 sampled generations first


def test_noeffectcoord_fires_when_a_width_is_below_the_rounding_of_the_mean():
    es = SNES(np.array([1e10, 0.0]), np.array([1e-7, 1.0]), rng=0, **OFF)
    es.tell(sphere(es.ask()))
    assert "noeffectcoord" in es.stop()


def test_xnes_tolconditioncov_fires_on_an_ill_conditioned_factor():
    es = XNES(np.zeros(2), np.array([1.0, 1e-8]), rng=0, **OFF)
    es.tell(sphere(es.ask()))
    assert es.stop().get("tolconditioncov") == 1e14


def test_stop_is_empty_before_the_first_tell_and_in_a_fresh_run():
    for kind in RANKED:
        es = make(kind)
        assert es.stop() == {}
        es.tell(-sphere(es.ask()))
        assert es.stop() == {}


# -- minimize, nan_policy, bounds
@pytest.mark.parametrize("kind", RANKED)
def test_minimize_equals_maximising_the_negated_fitness_bit_for_bit(kind):
    low, high = make(kind, minimize=True), make(kind)
    for _ in range(15):
        x, y = low.ask(), high.ask()
        np.testing.assert_array_equal(x, y)
        low.tell(sphere(x))
        high.tell(-sphere(y))
    for name in low.distribution.params:
        np.testing.assert_array_equal(low.distribution.params[name], high.distribution.params[name])
    assert low.best.fitness == -high.best.fitness and np.array_equal(low.best.x, high.best.x)
    assert low.result.fbest == -high.result.fbest


@pytest.mark.parametrize("kind", RANKED)
def test_nan_policy_worst_equals_replacing_each_failure_by_one_value_below_the_minimum(kind):
    worst, replaced = make(kind, nan_policy="worst"), make(kind)
    failed = 0
    for g in range(10):
        x = worst.ask()
        replaced.ask()
        f = -sphere(x)
        bad = np.zeros(len(f), bool)
        bad[[g % len(f), (3 * g + 1) % len(f)]] = True
        failed += int(bad.sum())
        told = f.copy()
        told[bad] = [np.nan, np.inf, -np.inf][g % 3]
        worst.tell(told)
        f[bad] = f[~bad].min() - 1.0  # ties among the failed, below every finite value
        replaced.tell(f)
        assert worst.failed_last == bad.sum()
    for name in worst.distribution.params:
        np.testing.assert_array_equal(worst.distribution.params[name], replaced.distribution.params[name])
    assert worst.result.failed == failed


def test_nan_policy_raise_refuses_a_nan_and_changes_nothing():
    es = make("snes")
    x = es.ask()
    before = pickle.dumps(es)
    f = -sphere(x)
    f[2] = np.nan
    with pytest.raises(ValueError, match="fitness must be finite"):
        es.tell(f)
    assert pickle.dumps(es) == before


@pytest.mark.parametrize("kind", RANKED)
def test_bounds_keep_every_evaluated_point_in_the_box(kind):
    es = make(kind, bounds=(-0.5, [0.5, 0.6, 0.7, 0.8]))
    upper = np.array([0.5, 0.6, 0.7, 0.8])
    outside = 0
    for _ in range(20):
        raw_state = pickle.loads(pickle.dumps(es))
        x = es.ask()
        assert np.all(x >= -0.5) and np.all(x <= upper)
        raw = raw_state.distribution.sample(es.popsize, raw_state.rng)  # what was drawn before the repair
        np.testing.assert_array_equal(x, np.clip(raw, -0.5, upper))
        outside += int(np.any(raw != x))
        es.tell(-sphere(x - 2))  # the optimum is outside the box: the mean is pushed to the wall
    assert outside > 0
    assert np.all(es.best.x >= -0.5) and np.all(es.best.x <= upper)


def test_optimize_evaluates_the_rows_ask_would_hand_out_float32_inside_the_box():
    # optimize repairs each population as ask() does: float32 rows, the box's sides rounded inward to float32
    seen = []

    def f(x):
        seen.append(x.copy())
        return np.sum(x.astype(np.float64) ** 2, axis=1)

    ng.optimize(f, np.full(3, 0.9, np.float32), 0.5, method="snes", bounds=(-1.0, 0.1), rng=0, maxiter=5)
    x = np.concatenate(seen)
    assert x.dtype == np.float32
    assert np.all(x >= -1.0) and np.all(x <= 0.1)
    assert np.any(x == np.nextafter(np.float32(0.1), np.float32(0)))  # the wall, in float32, inside the box


def test_bounds_penalty_is_the_squared_distance_in_widths_times_twice_the_iqr_over_d():
    es = SNES(np.zeros(2), np.array([1.0, 2.0]), rng=0, popsize=8, bounds=(-0.1, 0.1), minimize=True)
    x = es.ask()
    raw = es._population.copy()
    f = np.arange(8.0)
    q1, q3 = np.percentile(f, [25, 75])
    penalised = f + 2 * (q3 - q1) / 2 * np.sum(((raw - x) / np.array([1.0, 2.0])) ** 2, axis=1)
    twin = SNES(np.zeros(2), np.array([1.0, 2.0]), rng=0, popsize=8, minimize=True)
    twin.ask()
    es.tell(f)
    twin.tell(penalised)
    np.testing.assert_array_equal(es.distribution.params["mu"], twin.distribution.params["mu"])
    np.testing.assert_array_equal(es.distribution.params["sigma"], twin.distribution.params["sigma"])


# -- result, counters, mean/sigma, estimate
@pytest.mark.parametrize(
    ("kind", "sigma_shape"),
    [("snes", (4,)), ("pgpe", (4,)), ("xnes", ()), ("openes", ()), ("evolvability", ())],
)
def test_mean_and_sigma_shapes_are_as_the_readme_table_says(kind, sigma_shape):
    es = EvolvabilityES(np.zeros(4), popsize=20, rng=0) if kind == "evolvability" else make(kind)
    assert es.mean.shape == (4,)
    assert np.shape(es.sigma) == sigma_shape
    if sigma_shape == ():
        assert isinstance(es.sigma, float)


@pytest.mark.parametrize("kind", RANKED)
def test_result_counts_and_estimate_feed_gradient_stderr(kind):
    es = make(kind)
    assert es.result.xbest is None and np.isnan(es.result.fbest) and es.estimate is None
    for _ in range(3):
        x = es.ask()
        es.tell(-sphere(x))
    r = es.result
    assert (r.evaluations, r.generations) == (3 * es.popsize, 3)
    np.testing.assert_array_equal(r.mean, es.mean)
    with pytest.raises(AttributeError):
        r.fbest = 0.0  # frozen
    x = es.ask()
    before = copy.deepcopy(es.distribution)  # the estimate belongs to the distribution that drew x
    es.tell(-sphere(x))
    se = ng.gradient_stderr(es.estimate, x, before)
    assert set(se) == set(es.estimate.grad)
    assert all(v.shape == before.params[k].shape and np.all(np.isfinite(v)) and np.all(v >= 0) for k, v in se.items())
    assert np.all(se["mu"] > 0)


def test_snes_estimate_is_the_nes_mean_estimate_of_the_told_fitness():
    es = make("snes")
    x = es.ask()
    before = copy.deepcopy(es.distribution)
    es.tell(-sphere(x))
    expected = ng.Mean(shaping=ng.nes_utilities)(-sphere(x), x, before)
    for name in expected.grad:
        np.testing.assert_array_equal(es.estimate.grad[name], expected.grad[name])


# -- the strategies' new options: bad arguments are clear errors
@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"minimize": "yes"}, TypeError, "minimize must be a bool"),
        ({"nan_policy": "omit"}, ValueError, "nan_policy must be 'raise' or 'worst', got 'omit'"),
        ({"bounds": 3.0}, TypeError, r"bounds must be a pair \(lower, upper\)"),
        ({"bounds": (1.0, -1.0)}, ValueError, "bounds must have lower < upper"),
        ({"bounds": ([0, 0], 1.0)}, ValueError, r"bounds' lower must be a scalar or of shape \(4,\)"),
        ({"bounds": (np.nan, 1.0)}, ValueError, "bounds' lower must not be nan"),
        ({"tolx": -1.0}, ValueError, "tolx must be a number > 0 or None, got -1.0"),
        ({"tolfun": "small"}, TypeError, "tolfun must be a real number or None, got str"),
        ({"maxiter": 2.5}, TypeError, "maxiter must be an int"),
        ({"ftarget": np.nan}, ValueError, "ftarget must be a number or None, got nan"),
        ({"tolupsigmaa": 1.0}, TypeError, r"unknown stop criteria \['tolupsigmaa'\]"),
    ],
)
def test_a_bad_run_option_is_a_clear_error(kw, error, message):
    with pytest.raises(error, match=message):
        SNES(np.zeros(4), **kw)


def test_nan_policy_worst_is_refused_by_a_strategy_that_uses_values():
    with pytest.raises(ValueError, match="nan_policy='worst' needs a strategy that ranks its fitness"):
        EvolvabilityES(np.zeros(2), popsize=10, nan_policy="worst")


# -- optimize
def test_optimize_is_the_ask_tell_loop_with_its_result():
    result = ng.optimize(sphere, np.ones(4), 0.5, method="snes", rng=7, ftarget=1e-10)
    es = SNES(np.ones(4), 0.5, rng=7, minimize=True, ftarget=1e-10)
    while not es.stop():
        x = es.ask()
        es.tell(sphere(x))
    assert result.stop == {"ftarget": 1e-10} == es.result.stop
    assert result.fbest == es.result.fbest <= 1e-10
    assert result.evaluations == es.evaluations
    np.testing.assert_array_equal(result.xbest, es.result.xbest)


@pytest.mark.parametrize("method", ["snes", "xnes", "pgpe", "openes"])
def test_optimize_every_method_improves_a_sphere_and_respects_its_budget(method):
    sigma = 0.1 if method == "openes" else 0.5
    result = ng.optimize(sphere, np.ones(3), sigma, method=method, budget=600, rng=1)
    assert result.evaluations <= 600 + 20 and "maxfevals" in result.stop
    assert result.fbest < 3.0 / 10


def test_optimize_maximises_with_minimize_false():
    result = ng.optimize(lambda x: -sphere(x - 1), np.zeros(2), 0.5, minimize=False, rng=0, ftarget=-1e-8)
    assert result.fbest >= -1e-8 and np.allclose(result.xbest, 1, atol=1e-3)


def test_optimize_cmaes_when_installed():
    if not hasattr(alg, "CMAES"):
        pytest.skip("npevograd.algorithms.CMAES is not in this installation")
    result = ng.optimize(sphere, np.ones(4), 0.5, method="cmaes", rng=0, ftarget=1e-8)
    assert result.fbest <= 1e-8


def test_optimize_on_an_executor_equals_the_serial_run():
    serial = ng.optimize(sphere, np.ones(3), 0.5, rng=2, maxiter=40)
    with ThreadPoolExecutor(2) as pool:
        threaded = ng.optimize(sphere, np.ones(3), 0.5, rng=2, maxiter=40, executor=pool)
    assert threaded.fbest == serial.fbest and threaded.evaluations == serial.evaluations
    np.testing.assert_array_equal(threaded.mean, serial.mean)


def test_optimize_with_bounds_and_failures_evaluates_inside_and_ranks_failures_worst():
    seen = []

    def fragile(x):
        seen.append(x.copy())
        f = sphere(x - 3)
        f[x[:, 0] > 0.9] = np.nan  # a simulator that fails near the wall
        return f

    result = ng.optimize(fragile, np.zeros(2), 0.5, rng=3, bounds=(-1, 1), nan_policy="worst", maxiter=60)
    seen = np.concatenate(seen)
    assert np.all(np.abs(seen) <= 1) and result.failed > 0
    assert np.all(np.abs(result.xbest) <= 1)


def test_optimize_callback_stops_and_verbose_prints_pycma_style_lines(capsys):
    calls = []

    def callback(es):
        calls.append(es.generation)
        return es.generation == 7

    result = ng.optimize(sphere, np.ones(5), 0.5, method="xnes", rng=0, callback=callback, verbose=3)
    assert calls == list(range(1, 8)) and result.generations == 7 and result.stop == {"callback": 1.0}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("XNES (popsize") and lines[1].startswith("Iterat #Fevals")
    numbered = [line.split() for line in lines[2:-1]]
    assert [int(row[0]) for row in numbered] == [1, 3, 6]
    assert [int(row[1]) for row in numbered] == [8, 24, 48]  # popsize 4 + floor(3 ln 5) = 8
    assert float(numbered[0][3]) >= 1.0  # the axis ratio of a full covariance
    assert lines[-1].startswith("stop: {'callback': 1.0}")


def test_optimize_row_wise_fitness_through_apply_along_axis():
    def rosen(row):
        return float(np.sum(100 * (row[1:] - row[:-1] ** 2) ** 2 + (1 - row[:-1]) ** 2))

    result = ng.optimize(lambda x: np.apply_along_axis(rosen, 1, x), np.zeros(3), 0.3, method="xnes", rng=0)
    assert result.fbest < 1e-6


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"method": "nelder"}, ValueError, r"method must be one of \['snes', 'xnes', 'pgpe', 'openes'"),
        ({"method": 3}, TypeError, "method must be a string"),
        ({"restarts": "lpop"}, ValueError, "restarts must be None, 'ipop', 'bipop' or an int >= 0, got 'lpop'"),
        ({"restarts": True}, TypeError, "restarts must be None, 'ipop', 'bipop' or an int >= 0, got bool"),
        ({"restarts": -1}, ValueError, "restarts must be"),
        ({"budget": 0}, ValueError, "budget must be"),
        ({"budget": 10, "maxfevals": 10}, ValueError, "give budget or maxfevals, not both"),
        ({"box": (-1, 1)}, ValueError, "box sets where restarts start"),
        ({"verbose": -2}, ValueError, r"verbose must be a bool or an int >= 0 \(generations between lines\), got -2"),
        ({"callback": 3}, TypeError, "callback must be callable as callback"),
        ({"executor": "pool"}, TypeError, "executor must be a concurrent.futures.Executor or None, got str"),
    ],
)
def test_optimize_bad_arguments_are_clear_errors(kw, error, message):
    with pytest.raises(error, match=message):
        ng.optimize(sphere, np.ones(2), 0.5, **kw)


def test_optimize_refuses_a_fitness_of_the_wrong_shape_naming_the_fix():
    message = r"fitness must return one real value per row, shape \(1,\), for a population of shape \(1, 2\).*np.array"
    with pytest.raises(ng.parallel.FitnessError, match=message):  # re-run one sample at a time to name it
        ng.optimize(lambda x: x, np.ones(2), 0.5)
    with pytest.raises(TypeError, match="fitness must be callable"):
        ng.optimize(3, np.ones(2), 0.5)


def test_optimize_names_a_missing_cma_class_clearly(monkeypatch):
    monkeypatch.delattr(alg, "CMAES", raising=False)
    with pytest.raises(ValueError, match="method 'cmaes' needs npevograd.algorithms.CMAES, which this installation"):
        ng.optimize(sphere, np.ones(2), 0.5, method="cmaes")


def test_ng_optimize_is_the_algorithms_one():
    assert ng.optimize is alg.optimize and alg.restart.__module__ == "npevograd.algorithms.restarts"


def test_progress_lines_count_the_failed_evaluations_of_their_generation(capsys):
    def half_failing(x):
        f = sphere(x)
        f[::2] = np.nan
        return f

    result = ng.optimize(half_failing, np.ones(3), 0.5, popsize=8, rng=0, nan_policy="worst", maxiter=4, verbose=1)
    lines = capsys.readouterr().out.splitlines()[2:-1]
    assert len(lines) == 4 and all(line.endswith("  4 failed") for line in lines)
    assert result.failed == 16 and result.stop == {"maxiter": 4.0}
