"""The small ask/tell loop's overhead: parameters a strategy wrote are not re-checked (a user's change still is)."""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng
from npevograd import _checks
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

    for module in (_base, normal):
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
