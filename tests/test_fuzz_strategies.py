"""Hypothesis fuzz of the strategies' public surface (issue 25, "Also"): constructors with every run option,
ask/tell sequences with extreme scales, both dtypes, failures, minimize, nan_policy and bounds.

What must hold for every drawn case:
- a constructor either builds the strategy or raises ValueError/TypeError;
- ``ask`` returns a finite (popsize, d) array in the mean's dtype, inside the box with bounds, or raises a
  ValueError (samples that could overflow) that changes nothing;
- ``tell`` either updates (one more generation, ``popsize`` more evaluations, finite parameters) or raises
  a ValueError and changes nothing (the pickled state is byte-identical);
- a twin built with the opposite ``minimize`` and told the negated values follows the same trajectory;
- ``stop()`` is a dict of names to floats and ``result`` agrees with the counters;
- no RuntimeWarning escapes.
``NPEVOGRAD_FUZZ_EXAMPLES=2000`` runs a long, random search (as tests/test_fuzz.py).
"""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npevograd.algorithms import PGPE, SNES, XNES, EvolvabilityES, OpenES

_LONG = int(os.environ.get("NPEVOGRAD_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_LONG or 40,
    derandomize=not _LONG,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SCALES = [1e-300, 1e-100, 1e-8, 1.0, 1e8, 1e100, 1e300]
SCALES32 = [1e-30, 1e-8, 1.0, 1e8, 1e30]
KINDS = {"snes": SNES, "xnes": XNES, "pgpe": PGPE, "openes": OpenES, "evolvability": EvolvabilityES}


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    d = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    scales = SCALES32 if dtype == np.float32 else SCALES
    mu = np.array(draw(st.lists(st.floats(-3, 3), min_size=d, max_size=d)), dtype=np.float64)
    mu = (mu * draw(st.sampled_from(scales))).astype(dtype)
    sigma = draw(st.sampled_from([1e-8, 0.1, 1.0, 1e8] + ([1e300] if dtype == np.float64 else [1e30])))
    options: dict = {"minimize": draw(st.booleans())}
    if draw(st.booleans()):
        options["nan_policy"] = draw(st.sampled_from(["raise", "worst"]))
    if draw(st.booleans()):
        low = draw(st.floats(-10, 0, exclude_max=True))
        options["bounds"] = (low, low + draw(st.floats(0.1, 10)))
    if kind == "evolvability":
        options["popsize"] = draw(st.sampled_from([4, 10]))
    elif draw(st.booleans()):
        options["popsize"] = draw(st.sampled_from([2, 4, 6, 7]))
    if kind == "pgpe" and draw(st.booleans()):
        options["optimizer"] = "clipup"
    return kind, mu, sigma, options


@st.composite
def fitness_values(draw, n: int):
    scale = draw(st.sampled_from(SCALES + [1.7e308]))
    values = np.array(draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))) * scale
    if draw(st.integers(0, 4)) == 0:
        values[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return values


def build(kind, mu, sigma, options):
    try:
        return KINDS[kind](mu, sigma, rng=0, **options)
    except (ValueError, TypeError):
        return None


@FUZZ
@given(st.data())
def test_strategies_survive_any_sequence_of_asks_and_tells(data):
    kind, mu, sigma, options = data.draw(cases())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        es = build(kind, mu, sigma, options)
        if es is None:
            return
        # a fitness strategy's twin: the opposite minimize, told -f (EvolvabilityES' behaviours have no sign)
        twin = (
            build(kind, mu, sigma, {**options, "minimize": not options["minimize"]}) if kind != "evolvability" else None
        )
        assert twin is not None or kind == "evolvability"
        for _ in range(data.draw(st.integers(1, 6))):
            state = pickle.dumps(es)
            try:
                x = es.ask()
            except ValueError as err:
                assert "could overflow" in str(err) or "has stopped" in str(err)
                assert pickle.dumps(es) == state
                return
            if twin is not None:
                np.testing.assert_array_equal(x, twin.ask())
            assert x.shape == (es.popsize, es.dim) and x.dtype == mu.dtype and np.all(np.isfinite(x))
            if es.bounds is not None:
                assert np.all(x >= es.bounds.lower) and np.all(x <= es.bounds.upper)
            f = data.draw(fitness_values(es.popsize))
            state = pickle.dumps(es)
            generation, evaluations = es.generation, es.evaluations
            try:
                es.tell(f)
            except ValueError:
                assert pickle.dumps(es) == state
                continue
            if twin is not None:
                twin.tell(-f)
            assert (es.generation, es.evaluations) == (generation + 1, evaluations + es.popsize)
            for name, value in es.distribution.params.items():
                assert np.all(np.isfinite(value)), name
                if twin is not None:
                    np.testing.assert_array_equal(value, twin.distribution.params[name])
            stop = es.stop()
            assert all(isinstance(k, str) and isinstance(v, float) for k, v in stop.items())
            result = es.result
            assert (result.evaluations, result.generations, result.stop) == (es.evaluations, es.generation, stop)
            if es.best is not None:
                assert result.fbest == es.best.fitness
                assert twin is None or es.best.fitness == -twin.best.fitness
