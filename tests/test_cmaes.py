"""CMAES and SepCMAES: update for update against Hansen's purecma, the tutorial's constants, the rank-mu identity
(a natural-gradient step of ``Mean(shaping=cma_weights)``), stop criteria, errors, minimize, pickles."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from npevograd.algorithms import CMAES


def sphere(x: np.ndarray) -> np.ndarray:
    return np.sum(x**2, axis=1)


def ellipsoid(x: np.ndarray, condition: float = 1e6) -> np.ndarray:
    d = x.shape[1]
    return np.sum(condition ** (np.arange(d) / max(d - 1, 1)) * x**2, axis=1)


def rotated_ellipsoid(x: np.ndarray, condition: float = 1e6) -> np.ndarray:
    d = x.shape[1]
    q = np.linalg.qr(np.random.default_rng(d).standard_normal((d, d)))[0]
    return ellipsoid(x @ q.T, condition)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    return np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2, axis=1)


def rastrigin(x: np.ndarray) -> np.ndarray:
    return 10 * x.shape[1] + np.sum(x**2 - 10 * np.cos(2 * np.pi * x), axis=1)


def relative_error(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------- purecma, update for update


@pytest.mark.parametrize("d", [2, 10, pytest.param(40, marks=pytest.mark.slow)])
def test_matches_purecma_positive_weights(d: int) -> None:
    """The same samples told to both: mean, sigma, C, p_sigma, p_c agree to 1e-10 for 200 generations.

    purecma's own choices are passed in: its c_mu (without the tutorial v2's 1/4), its damping
    d_sigma = 2 mu_eff / n + 0.3 + c_s, its squared-norm CSA, and its eigendecomposition gap
    (it decomposes when more than 0.5 n / ((c_1 + c_mu) d) evaluations have passed).  The two differ by
    rounding only, amplified by cond(C): a rotated ellipsoid of condition 1e3 keeps it below 1e-10 (at 1e6 the
    d = 2 run reaches 1e-10 after C has adapted, with every difference still growing from 1e-16).
    """
    purecma = pytest.importorskip("cma.more_algorithms.purecma")
    gauss = random.Random(0)  # purecma's ask draws from it; its samples are not used
    ref = purecma.CMAES(list(np.linspace(-1, 2, d)), 0.7, randn=gauss.normalvariate)
    par = ref.params
    n = par.lam
    gap = math.floor(par.lazy_gap_evals / n) + 1  # the fewest generations g with g n > lazy_gap_evals
    while not gap * n > par.lazy_gap_evals or (gap - 1) * n > par.lazy_gap_evals:
        gap += 1 if not gap * n > par.lazy_gap_evals else -1
    es = CMAES(
        np.linspace(-1, 2, d),
        0.7,
        popsize=n,
        rng=1,
        active=False,
        minimize=True,
        c_mu=par.cmu,
        d_sigma=par.damps,
        csa_squared=True,
        lazy_gap=gap,
        maxiter=None,
    )
    assert (es.c_1, es.c_c, es.c_sigma, es.mueff) == pytest.approx((par.c1, par.cc, par.cs, par.mueff), rel=1e-14)
    for generation in range(200):
        ref.ask()  # purecma decomposes C in its ask
        x = es.ask()
        f = rotated_ellipsoid(x, 1e3)  # optimum at 0: m and sigma shrink together, x - m keeps its digits
        ref.tell([list(row) for row in x], list(f))
        es.tell(f)
        assert relative_error(es.mean, ref.xmean) < 1e-10, generation
        assert abs(es.sigma / ref.sigma - 1) < 1e-10, generation
        assert relative_error(es.C, [list(row) for row in ref.C]) < 1e-10, generation
        assert relative_error(es.p_sigma, ref.ps) < 1e-10, generation
        assert relative_error(es.p_c, ref.pc) < 1e-10, generation
