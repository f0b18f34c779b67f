"""Restarts: IPOP doubles the population, BIPOP follows pycma's regime rule, starts in the box, budget, target,
a checkpoint taken mid-restart resumes bit for bit, and bad arguments are clear errors."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest

import npevograd as ng
from npevograd.algorithms import PGPE, SNES, RestartResult, Restarts, restart

D = 4


def rastrigin(x: np.ndarray) -> np.ndarray:
    return 10 * x.shape[1] + np.sum(x**2 - 10 * np.cos(2 * np.pi * x), axis=1)


def snes_factory(x0, popsize, rng, sigma_scale=1.0, calls=None, **options):
    if calls is not None:
        calls.append((np.array(x0), popsize, sigma_scale))
    return SNES(x0, 2.0 * sigma_scale, popsize=popsize, rng=rng, minimize=True, **options)


def pgpe_factory(x0, popsize, rng):
    return PGPE(x0, 1.0, popsize=popsize, rng=rng, minimize=True)


def run(restarts: Restarts, fitness=rastrigin) -> RestartResult:
    while not restarts.stop():
        restarts.tell(fitness(restarts.ask()))
    return restarts.result


def test_ipop_doubles_the_population_at_each_restart():
    result = run(Restarts(snes_factory, np.full(D, 3.0), "ipop", max_restarts=4, rng=0))
    default = 4 + int(3 * np.log(D))
    assert [r.popsize for r in result.runs] == [default * 2**k for k in range(5)]
    assert [r.regime for r in result.runs] == ["first"] + ["large"] * 4
    assert result.stop == {"max_restarts": 4.0}
    assert all(r.stop for r in result.runs)  # every run ended by its own criteria
    assert result.evaluations == sum(r.evaluations for r in result.runs)
    assert result.generations == sum(r.generations for r in result.runs)
    assert result.fbest == min(r.fbest for r in result.runs)


def test_bipop_regimes_popsizes_sigmas_and_small_budgets_follow_pycmas_rule():
    calls: list = []
    factory = functools.partial(snes_factory, calls=calls)
    result = run(Restarts(factory, np.full(D, 3.0), "bipop", max_restarts=8, rng=11))
    runs = result.runs
    draws = np.random.default_rng(11)  # the restarts' draws, in order: a seed per run, U per small run
    draws.integers(2**63)
    base = runs[0].popsize
    small, large, large_runs = runs[0].evaluations, 0, 0
    assert runs[0].regime == "first" and calls[0][1] is None and calls[0][2] == 1.0
    for run_, call in zip(runs[1:], calls[1:]):
        if small >= max(1, large):
            large_runs += 1
            assert (run_.regime, run_.popsize, call[2]) == ("large", base * 2**large_runs, 1.0)
            large += run_.evaluations
        else:
            u = draws.uniform()
            popsize = int(base * (2**large_runs) ** (u * u))
            popsize += popsize % 2 if base % 2 == 0 else 0
            assert (run_.regime, run_.popsize, call[2]) == ("small", popsize, 0.01**u)
            assert run_.generations <= max(1, int(0.5 * large / popsize))
            small += run_.evaluations
        draws.integers(2**63)
    regimes = [r.regime for r in runs]
    assert "small" in regimes and "large" in regimes
    # pycma's fmin(bipop=True) stops when irun - runs_with_small > maxrestarts: small runs are not counted
    assert result.stop == {"max_restarts": 8.0}
    assert len(runs) - regimes.count("small") == 8 + 1


def test_bipop_small_populations_stay_even_for_mirrored_strategies():
    result = run(Restarts(pgpe_factory, np.full(D, 3.0), "bipop", max_restarts=6, rng=2))
    assert all(r.popsize % 2 == 0 for r in result.runs)
    assert any(r.regime == "small" for r in result.runs)


def test_later_runs_start_uniformly_in_the_box_the_first_at_x0():
    calls: list = []
    factory = functools.partial(snes_factory, calls=calls)
    run(Restarts(factory, np.full(D, 3.0), "ipop", box=(-5.0, [1.0, 2.0, 3.0, 4.0]), max_restarts=3, rng=4))
    starts = np.array([c[0] for c in calls])
    np.testing.assert_array_equal(starts[0], np.full(D, 3.0))
    assert np.all(starts[1:] >= -5.0) and np.all(starts[1:] <= [1.0, 2.0, 3.0, 4.0])
    assert len({tuple(s) for s in starts}) == len(starts)


def test_budget_and_ftarget_end_the_whole_sequence():
    result = run(Restarts(snes_factory, np.full(D, 3.0), "ipop", budget=5000, rng=1))
    assert result.stop == {"maxfevals": 5000.0}
    assert 5000 <= result.evaluations < 5000 + result.runs[-1].popsize
    result = run(
        Restarts(snes_factory, np.zeros(D) + 0.1, "ipop", ftarget=1e-6, rng=1), fitness=lambda x: (x**2).sum(1)
    )
    assert result.stop == {"ftarget": 1e-6} and result.fbest <= 1e-6 and len(result.runs) == 1


def test_a_checkpoint_taken_mid_restart_resumes_bit_for_bit():
    def history(restarts: Restarts, generations: int) -> list[np.ndarray]:
        told = []
        for _ in range(generations):
            x = restarts.ask()
            told.append(x)
            restarts.tell(rastrigin(x))
        return told

    reference = Restarts(snes_factory, np.full(D, 3.0), "bipop", box=(-5, 5), rng=5)
    straight = history(reference, 1500)
    assert len(reference.runs) >= 3  # the run crosses restarts of both regimes
    for cut in (1, 217, 640, 1499):
        resumed = Restarts(snes_factory, np.full(D, 3.0), "bipop", box=(-5, 5), rng=5)
        head = history(resumed, cut)
        resumed = pickle.loads(pickle.dumps(resumed))  # the checkpoint, as a file would hold it
        tail = history(resumed, 1500 - cut)
        for a, b in zip(head + tail, straight):
            np.testing.assert_array_equal(a, b)
        a, b = resumed.result, reference.result
        np.testing.assert_array_equal(a.xbest, b.xbest)
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.sigma, b.sigma)
        assert (a.fbest, a.evaluations, a.generations, a.stop, a.runs) == (
            b.fbest,
            b.evaluations,
            b.generations,
            b.stop,
            b.runs,
        )


def test_restart_runs_to_the_end_with_a_callback_and_verbose(capsys):
    seen = []

    def callback(es):
        seen.append(es.popsize)
        return len(seen) == 300

    result = restart(snes_factory, rastrigin, np.full(D, 3.0), "ipop", rng=3, callback=callback, verbose=1000)
    assert isinstance(result, RestartResult) and result.stop == {"callback": 1.0} and result.generations == 300
    assert len(set(seen)) >= 2  # the callback sees every run's strategy
    out = capsys.readouterr().out
    assert out.count("Iterat #Fevals") == len(result.runs)


def test_optimize_with_restarts_solves_rastrigin_and_counts_its_runs():
    result = ng.optimize(
        rastrigin, np.full(D, 3.0), 2.0, restarts="ipop", box=(-5, 5), ftarget=1e-8, budget=200_000, rng=1
    )
    assert result.stop == {"ftarget": 1e-8} and result.fbest <= 1e-8
    assert len(result.runs) >= 2 and [r.popsize for r in result.runs] == [8 * 2**k for k in range(len(result.runs))]
    ints = ng.optimize(rastrigin, np.full(D, 3.0), 2.0, restarts=2, rng=1)
    assert len(ints.runs) == 3 and ints.stop == {"max_restarts": 2.0}


def test_optimize_restarts_start_in_finite_bounds():
    result = ng.optimize(rastrigin, np.full(D, 0.5), 1.0, restarts=3, bounds=(-1, 1), rng=0)
    assert np.all(np.abs(result.xbest) <= 1) and len(result.runs) == 4


@pytest.mark.parametrize(
    ("args", "kw", "error", "message"),
    [
        ((3, np.zeros(2)), {}, TypeError, r"factory must be callable as factory\(x0, popsize, rng\), got int"),
        ((snes_factory, np.zeros(2), "lpop"), {}, ValueError, "strategy must be 'ipop' or 'bipop', got 'lpop'"),
        ((snes_factory, np.zeros((2, 2))), {}, ValueError, r"x0 must be a 1-D array of shape \(d,\)"),
        ((snes_factory, np.zeros(2)), {"box": 5}, TypeError, r"box must be a pair \(lower, upper\)"),
        ((snes_factory, np.zeros(2)), {"box": (1, -1)}, ValueError, "box must have lower < upper"),
        ((snes_factory, np.zeros(2)), {"box": (-np.inf, 1)}, ValueError, "box' lower must be finite"),
        ((snes_factory, np.zeros(2)), {"box": ([0, 0, 0], 1)}, ValueError, r"box' lower must be a scalar or"),
        ((snes_factory, np.zeros(2)), {"budget": 0}, ValueError, "budget must be"),
        ((snes_factory, np.zeros(2)), {"max_restarts": -1}, ValueError, "max_restarts must be"),
        ((snes_factory, np.zeros(2)), {"ftarget": "low"}, TypeError, "ftarget must be a real number or None"),
        ((snes_factory, np.zeros(2)), {"rng": np.random.RandomState(0)}, TypeError, "rng must be a numpy Generator"),
        (
            (lambda x0, popsize, rng: 3, np.zeros(2)),
            {},
            TypeError,
            "factory must return an npevograd Strategy, got int",
        ),
        (
            (lambda x0, popsize, rng: SNES(np.zeros(3)), np.zeros(2)),
            {},
            ValueError,
            r"factory built a strategy of dimension 3, expected 2 \(x0's\)",
        ),
    ],
)
def test_bad_arguments_are_clear_errors(args, kw, error, message):
    with pytest.raises(error, match=message):
        Restarts(*args, **kw)


def test_asking_a_finished_sequence_is_a_clear_error():
    restarts = Restarts(snes_factory, np.full(D, 3.0), max_restarts=0, rng=0)
    run(restarts)
    with pytest.raises(ValueError, match=r"the restarts have stopped \(\['max_restarts'\]\); read .result"):
        restarts.ask()
